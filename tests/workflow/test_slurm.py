"""The workflow and pretraining under a real Slurm (scripts/slurm-up.sh): jobs, accounting, requeue.

Needs the local single-node cluster: the `slurm_cluster` fixture uses a running one, or starts it
with scripts/slurm-up.sh when run as root (and stops it again), or skips.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.slurm import edit_profile_for_this_node, preempt_pretraining, release_requeued, repo_copy, run_cmd

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
GENOMES = Path("/work/shared/data/genomes")
VENV_BIN = Path(sys.executable).parent


def env_with_venv(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **extra}


def sacct_jobs(*args: str) -> list[dict[str, str]]:
    """sacct rows (main job records only) as dicts."""
    fields = ["JobIdRaw", "JobName", "State", "Comment", "ExitCode"]
    result = run_cmd(
        ["sacct", "-X", "--parsable2", "--noheader", "--starttime", "now-1day", "--format=" + ",".join(fields), *args],
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [dict(zip(fields, line.split("|"))) for line in result.stdout.splitlines() if line]


def wait_for_state(job_id: str, states: set[str], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    state = ""
    while time.monotonic() < deadline:
        rows = sacct_jobs("-j", job_id)
        state = rows[-1]["State"] if rows else ""
        if state.split()[0:1] and state.split()[0] in states:
            return state
        time.sleep(2)
    raise AssertionError(f"Slurm job {job_id} is {state!r}, not one of {sorted(states)}, after {timeout_s} s")


# --------------------------------------------------------------------- pretraining with requeue


def make_shards(work: Path) -> tuple[Path, Path]:
    """Small train/validation manifests from two of the shipped genomes (254-nt windows)."""
    dnafm = [sys.executable, "-m", "dnafm_lib.cli"]
    for genome, fasta in (
        ("chloroplast", "arabidopsis_chloroplast_NC_000932.1.fna.gz"),
        ("plasmid", "yersinia_plasmid_pPCP1_NC_005816.1.fna.gz"),
    ):
        result = run_cmd(
            [
                *dnafm,
                "shard",
                "--fasta",
                str(GENOMES / fasta),
                "--genome",
                genome,
                "--out-dir",
                str(work / "shards" / genome),
                "--window-nt",
                "254",
                "--min-tail-nt",
                "64",
            ]
        )
        assert result.returncode == 0, result.stderr
    manifests = []
    for split, genome in (("train", "chloroplast"), ("validation", "plasmid")):
        out = work / "shards" / f"{split}.manifest.json"
        result = run_cmd([*dnafm, "index-shards", "--split", split, "--out", str(out), str(work / "shards" / genome)])
        assert result.returncode == 0, result.stderr
        manifests.append(out)
    return manifests[0], manifests[1]


@pytest.mark.timeout(1500)  # includes starting the cluster (and installing its packages) when first
def test_pretrain_job_runs_two_ranks_and_resumes_from_its_checkpoint_after_usr1_requeue(slurm_cluster, tmp_path):
    train, validation = make_shards(tmp_path)
    run_dir = tmp_path / "run"
    max_steps = 20
    script = tmp_path / "pretrain.sbatch"
    script.write_text(
        "#!/bin/bash\n"
        'echo "batch start: restart ${SLURM_RESTART_COUNT:-0}"\n'
        f"exec {VENV_BIN}/dnafm launch-pretrain --train-manifest {train} --validation-manifest {validation} "
        f"--run-dir {run_dir} --model tiny --max-steps {max_steps} --device cpu "
        "--set warmup_steps=2 --set global_batch_size=8 --set micro_batch_size=4 "
        "--set checkpoint_every_steps=1000 --set validation_samples=8 --set progress_bar=false\n"
    )
    log = tmp_path / "pretrain.log"
    submitted = run_cmd(
        [
            "sbatch",
            "--parsable",
            "--requeue",
            "--open-mode=append",
            "--ntasks=2",
            "--cpus-per-task=1",
            "--mem=4000",
            "-J",
            "dnafm-requeue-test",
            "-o",
            str(log),
            str(script),
        ],
        cwd=tmp_path,
        env=env_with_venv(),
        timeout=60,
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().split(";")[0]

    # Let it train a few steps, then preempt it the way a scheduler warns a job: USR1 to its steps.
    metrics = run_dir / "metrics.csv"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and len(metrics.read_text().splitlines()) > 3):
        assert time.monotonic() < deadline, f"no training steps after 300 s:\n{log.read_text() if log.exists() else ''}"
        assert run_cmd(["squeue", "-h", "-j", job_id]).stdout.strip(), f"job ended early:\n{log.read_text()}"
        time.sleep(1)
    signalled = run_cmd(["scancel", "--signal=USR1", job_id])
    assert signalled.returncode == 0, signalled.stderr

    # The job requeues itself; Slurm holds a requeued job for a while: let it start now.
    deadline = time.monotonic() + 120
    while "requeueing job" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, f"the job did not requeue itself:\n{log.read_text()}"
        time.sleep(1)
    release_requeued(job_id)
    wait_for_state(job_id, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}, timeout_s=600)

    text = log.read_text()
    records = run_cmd(["sacct", "-j", job_id, "-X", "--duplicates", "--parsable2", "--noheader", "--format=State"])
    states = run_cmd(["sacct", "-j", job_id, "--duplicates", "--format=JobID,State,ExitCode,Reason,Start,End"]).stdout
    assert records.stdout.split() == ["REQUEUED", "COMPLETED"], f"{states}\n{text}"
    saved = re.search(r"preempted by signal 10: saved step (\d+)", text)
    assert saved, text
    saved_step = int(saved.group(1))
    assert 0 < saved_step < max_steps
    assert (
        f"resumed from {run_dir}/checkpoints/step_{saved_step:08d} (step {saved_step}, saved on 2 rank(s), now 2)"
        in text
    )
    assert "batch start: restart 1" in text and text.count("2 rank(s) on cpu") == 2
    assert_training_continued_after(metrics, saved_step, max_steps)
    assert json.loads((run_dir / "summary.json").read_text())["final_step"] == max_steps


def assert_training_continued_after(metrics: Path, saved_step: int, max_steps: int) -> None:
    """metrics.csv holds every step once, and its clock (elapsed_s) restarts right after the saved
    step: the steps after it were trained by the requeued run, continuing, not starting over."""
    with open(metrics, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows] == list(range(1, max_steps + 1))
    elapsed = [float(row["elapsed_s"]) for row in rows]
    drops = [int(rows[i]["step"]) for i in range(1, len(rows)) if elapsed[i] < elapsed[i - 1]]
    assert drops == [saved_step + 1]


# --------------------------------------------------------------------- the demo through the profile


def declared_local_rules() -> set[str]:
    """The rule names listed under `localrules:` in workflow/rules/*.smk."""
    names = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for block in re.findall(r"^localrules:\n((?:[ \t]+\S.*\n)+)", smk.read_text(), flags=re.MULTILINE):
            names |= set(re.findall(r"\w+", block))
    return names


@dataclass
class DemoRun:
    work: Path
    result: subprocess.CompletedProcess
    preempted_job: str | None  # the pretraining job signalled with USR1 mid-run


@pytest.fixture(scope="module")
def demo_on_slurm(slurm_cluster, tmp_path_factory) -> DemoRun:
    """The demo workflow run to the end with `snakemake --profile slurm` in a copy of the repo,
    its pretraining job preempted (USR1) once on the way."""
    work = repo_copy(tmp_path_factory.mktemp("slurm_demo"))
    # This node as its admin would set the profile up: no GPUs, 2 CPUs, 2 training ranks.
    edit_profile_for_this_node(work / "profiles" / "slurm")
    # 2 training ranks: the global batch must split over them. Shorter training than the demo's
    # (this tests the cluster machinery; tests/test_workflow_* hold the demo to its loss bar).
    (work / "ci_slurm.yaml").write_text(
        "pretrain:\n  train:\n    micro_batch_size: 16\n    max_steps: 60\n    checkpoint_every_steps: 30\n"
        "    validate_every_steps: 30\n    validation_samples: 64\n    require_below_composition_entropy: false\n"
        "    progress_bar: false\nfinetune:\n  genomes: [yersinia_pPCP1]\n  max_epochs: 1\n"
    )
    log = open(work / "snakemake.log", "w+")
    snakemake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--profile",
            "slurm",
            "--jobs",
            "4",
            "--slurm-init-seconds-before-status-checks",
            "2",
            "--configfile",
            "ci_slurm.yaml",
        ],
        cwd=work,
        env=env_with_venv(),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        preempted = preempt_pretraining(work / "results" / "pretrain" / "demo" / "metrics.csv", snakemake)
        snakemake.wait(timeout=2400)
    finally:
        if snakemake.poll() is None:
            snakemake.terminate()
            snakemake.wait(60)
    log.seek(0)
    result = subprocess.CompletedProcess(snakemake.args, snakemake.returncode, log.read(), "")
    log.close()
    return DemoRun(work, result, preempted)


@pytest.mark.timeout(2400)  # the first test to use it waits for the whole demo run
def test_demo_workflow_finishes_through_the_slurm_profile(demo_on_slurm):
    work, result = demo_on_slurm.work, demo_on_slurm.result
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    # Nothing left to do: every output of `rule all` exists and is up to date.
    dry = run_cmd(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", "ci_slurm.yaml"],
        cwd=work,
        env=env_with_venv(),
        timeout=600,
    )
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout + dry.stderr
    # What a user opens: the exported model and, per genome of the splits, the IGV session.
    results = work / "results"
    assert (results / "models" / "demo" / "model.safetensors").stat().st_size > 0
    genomes = [line.split("\t")[0] for line in (results / "splits" / "genomes.tsv").read_text().splitlines()[1:]]
    assert genomes and all((results / "tracks" / g / "demo" / "igv_session.xml").is_file() for g in genomes)


@pytest.mark.timeout(2400)
def test_every_rule_of_the_demo_ran_as_a_completed_slurm_job(demo_on_slurm):
    work, result = demo_on_slurm.work, demo_on_slurm.result
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    # A rule's job is logged with its number, a group job (profile `groups`) with a uuid.
    submitted = dict(re.findall(r"Job (\S+) has been submitted with SLURM jobid (\d+)", log))
    single = re.findall(r"^Job (\d+) has been submitted with SLURM jobid", log, flags=re.MULTILINE)
    remote_rules = re.findall(r"^(?:rule|checkpoint) (\w+):", log, flags=re.MULTILINE)
    local_rules = set(re.findall(r"^local(?:rule|checkpoint) (\w+):", log, flags=re.MULTILINE))
    assert remote_rules and len(single) == len(remote_rules)
    # Only the rules the workflow declares local (light, or needing the internet) ran outside Slurm.
    assert local_rules <= declared_local_rules() | {"all"}

    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)  # every job of the run has this name
    slurm_ids = set(submitted.values())
    jobs = sacct_jobs("--name", run_id)
    assert {job["JobIdRaw"] for job in jobs} == slurm_ids
    assert all(job["State"] == "COMPLETED" for job in jobs), jobs
    # Comments: rule_{rule}_wildcards_… for a rule's job, rule_{group}_{rule}_{rule}… for a group job.
    groups = yaml.safe_load((work / "profiles" / "slurm" / "config.yaml").read_text())["groups"]
    rules_in_slurm, grouped_rules = set(), set()
    for job in jobs:
        name = re.match(r"rule_(\w+?)(_wildcards_.*)?$", job["Comment"]).group(1)
        members = {rule for rule, group in groups.items() if name.startswith(f"{group}_") and rule in name}
        rules_in_slurm |= members or {name}
        grouped_rules |= members
    assert rules_in_slurm == set(remote_rules) | grouped_rules
    assert grouped_rules == {"prepare_genome", "shard_genome"}  # each genome's two steps, one Slurm job


@pytest.mark.timeout(2400)
def test_report_of_the_finished_demo_is_one_self_contained_html_file(demo_on_slurm, tmp_path):
    work, result = demo_on_slurm.work, demo_on_slurm.result
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    before = set(work.rglob("*.html"))
    report = work / "report.html"
    made = run_cmd(
        [sys.executable, "-m", "snakemake", "--report", str(report), "--cores", "1", "--configfile", "ci_slurm.yaml"],
        cwd=work,
        env=env_with_venv(),
        timeout=600,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert set(work.rglob("*.html")) - before == {report}
    html = report.read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    # The workflow description and each result's caption are in it.
    for caption in (
        "run of cohort",
        "of pretraining run",
        "The train / validation / test splits",
        "/demo/igv.html",
        "Embedding clusters of genome",
        "The fine-tuning example",
    ):
        assert caption in html, caption


@pytest.mark.timeout(2400)
def test_demo_pretraining_preempted_by_usr1_is_requeued_and_resumes_from_its_checkpoint(demo_on_slurm):
    work, result, job_id = demo_on_slurm.work, demo_on_slurm.result, demo_on_slurm.preempted_job
    assert result.returncode == 0, result.stdout[-6000:]
    assert job_id, "the pretraining job was never seen running"
    records = run_cmd(["sacct", "-j", job_id, "-X", "--duplicates", "--parsable2", "--noheader", "--format=State"])
    assert records.stdout.split() == ["REQUEUED", "COMPLETED"]
    # The log of the second run (Snakemake starts the rule's log afresh) names the checkpoint.
    log = (work / "logs" / "pretrain_model" / "demo.log").read_text()
    resumed = re.search(
        r"resumed from results/pretrain/demo/checkpoints/step_\d+ \(step (\d+), "
        r"saved on 2 rank\(s\), now 2\)",
        log,
    )
    assert resumed, log[-4000:]
    max_steps = json.loads((work / "results" / "pretrain" / "demo" / "train_config.json").read_text())["max_steps"]
    assert_training_continued_after(
        work / "results" / "pretrain" / "demo" / "metrics.csv", int(resumed.group(1)), max_steps
    )
