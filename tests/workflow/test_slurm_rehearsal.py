"""benchmarks/nt_rehearsal.py --smoke: the NT cohort's shape through the real workflow on the local Slurm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.slurm import run_cmd

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(2400)
def test_rehearsal_smoke_runs_every_stage_through_slurm_with_a_requeued_pretraining(slurm_cluster, tmp_path):
    work = tmp_path / "rehearsal"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
    }
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "nt_rehearsal.py"), "--smoke", "--work", str(work)],
        env=env,
        capture_output=True,
        text=True,
        timeout=2300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    record = json.loads((work / "rehearsal.json").read_text())
    stages = {stage["stage"]: stage for stage in record["stages"]}
    assert list(stages) == ["splits", "downloads", "prepare_shard", "pretrain", "export", "tracks", "report"]

    # The NT shape: 20 lines, 3 gone (the rat among them, swapped back in by config) → 18 genomes.
    summary = json.loads((work / "results" / "splits" / "summary.json").read_text())
    assert summary["listed_genomes"] == 20 and summary["genomes"] == 18
    assert summary["per_split"] == {"train": 14, "validation": 2, "test": 2}
    # Downloads ran on the submit host; prepare and shard in batches of 4 genomes per Slurm job
    # (prepare.genomes_per_job), each genome then put in place on the submit host.
    assert stages["downloads"]["jobs_per_rule"]["download_genome"] == 18 and stages["downloads"]["slurm_jobs"] == 0
    prepare = stages["prepare_shard"]
    assert prepare["jobs_per_rule"]["prepare_genome_batch"] == 5  # ceil(18 / 4)
    assert prepare["jobs_per_rule"]["adopt_batched_genome"] == 18
    assert "prepare_genome" not in prepare["jobs_per_rule"] and "shard_genome" not in prepare["jobs_per_rule"]
    assert prepare["slurm_jobs_per_rule"] == {"rule_prepare_genome_batch": 5}
    assert prepare["slurm_jobs"] == 5
    # Pretraining was preempted once and finished in its requeued run.
    job = record["preempted_job"]
    assert job, run.stdout[-3000:]
    states = run_cmd(["sacct", "-j", job, "-X", "--duplicates", "--parsable2", "--noheader", "--format=State"])
    assert states.stdout.split() == ["REQUEUED", "COMPLETED"]
    assert (work / "results" / "models" / "rehearsal" / "model.safetensors").stat().st_size > 0
    # Tracks for the two chosen genomes, and the report.
    tracks = sorted((work / "results" / "tracks").glob("*/rehearsal/igv.html"))
    assert len(tracks) == 2
    assert (work / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    assert "wall" in run.stdout and "Slurm jobs" in run.stdout
