"""Shared by the Slurm tests and benchmarks/nt_rehearsal.py: the local cluster, the repo copy, the
profile edited for this node, and preempting a running pretraining job."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def run_cmd(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


def node_ready() -> bool:
    """True when a Slurm node answers idle, mixed or allocated."""
    if shutil.which("sinfo") is None:
        return False
    result = run_cmd(["sinfo", "-h", "-o", "%T"], timeout=30)
    return result.returncode == 0 and any(s in result.stdout for s in ("idle", "mixed", "allocated"))


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running single-node Slurm with accounting; started here (and stopped after) when needed."""
    if node_ready():
        yield
        return
    if os.geteuid() != 0:
        pytest.skip("no Slurm cluster running and not root: run `sudo scripts/slurm-up.sh` first")
    started = run_cmd(["bash", str(REPO / "scripts" / "slurm-up.sh")], timeout=900)
    assert started.returncode == 0, f"scripts/slurm-up.sh failed:\n{started.stdout}\n{started.stderr}"
    yield
    run_cmd(["bash", str(REPO / "scripts" / "slurm-down.sh")], timeout=300)


def repo_copy(destination: Path) -> Path:
    """The working tree as git sees it (tracked and new files, not ignored ones); links stay links
    (the `slurm` profile link at the top)."""
    listed = run_cmd(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, timeout=60)
    assert listed.returncode == 0, listed.stderr
    for name in filter(None, listed.stdout.split("\0")):
        source, target = REPO / name, destination / name
        if source.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            os.symlink(os.readlink(source), target)
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def edit_profile_for_this_node(
    profile_dir: Path, *, pretrain_tasks: int = 2, jobs: int = 8, genomes_per_group_job: int = 2
) -> dict:
    """Edit profiles/slurm/config.yaml of a repo copy the way an admin of this node would: no GPUs,
    2 CPUs (group jobs of 2 genomes, one CPU each), pretraining as `pretrain_tasks` torchrun agents
    on the one node (gloo), quick polling. Returns the edited settings."""
    path = profile_dir / "config.yaml"
    settings = yaml.safe_load(path.read_text())
    settings.update({"jobs": jobs, "latency-wait": 5, "slurm-init-seconds-before-status-checks": 2})
    settings["group-components"] = {group: genomes_per_group_job for group in settings["group-components"]}
    settings["set-threads"]["pretrain_model"] = 1
    pretrain = settings["set-resources"]["pretrain_model"]
    del pretrain["gres"]
    pretrain.update({"cpus_per_task": 1, "tasks": pretrain_tasks})
    for rule in ("score_chunk", "compare_finetuning"):
        settings["set-resources"][rule] = {"gpu": 0}
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return settings


def release_requeued(job_id: str) -> None:
    """Slurm holds a requeued job for a couple of minutes: as root, let it start again now."""
    if os.geteuid() != 0:
        return
    for _ in range(180):
        if run_cmd(["squeue", "-h", "-j", job_id, "-o", "%T %r"]).stdout.strip() == "PENDING BeginTime":
            # slurmd revokes the old run's credential at the kill and refuses any credential issued
            # in that same second ("Job credential revoked": the restart FAILS): start it a few
            # seconds later, as Slurm's own hold does.
            time.sleep(3)
            run_cmd(["scontrol", "update", f"jobid={job_id}", "StartTime=now"])
            return
        time.sleep(1)


def preempt_pretraining(metrics: Path, run: subprocess.Popen, min_steps: int = 5) -> str | None:
    """Once the pretraining job has logged `min_steps` steps to `metrics`, send it USR1 as a scheduler
    would, and let the requeued job start again at once. Returns the Slurm job id, or None when the
    run ended before."""
    while run.poll() is None:
        jobs = run_cmd(["squeue", "-h", "-o", "%i %k %T"]).stdout.split("\n")
        pretraining = [line.split() for line in jobs if "rule_pretrain_model" in line]
        if (
            pretraining
            and pretraining[0][2] == "RUNNING"
            and metrics.exists()
            and len(metrics.read_text().splitlines()) > min_steps
        ):
            job_id = pretraining[0][0]
            assert run_cmd(["scancel", "--signal=USR1", job_id]).returncode == 0
            release_requeued(job_id)
            return job_id
        time.sleep(1)
    return None
