"""torchrun: 2 gloo ranks reproduce 1 rank; a 2-rank checkpoint resumes on 1 rank."""

import signal
import subprocess
import time

import pytest

from dnafm_lib.train.checkpointer import list_checkpoints
from dnafm_lib.train.config import TrainConfig
from dnafm_lib.train.loop import train
from dnafm_lib.train.preemption import PREEMPTED_EXIT_CODE
from tests.support.train import REPO, env, losses, pretrain_command, run_pretrain, settings, write_demo_shards

MAX_STEPS = 8


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    return write_demo_shards(tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="module")
def one_rank(manifests, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("one_rank") / "run"
    train(TrainConfig.from_mapping(settings(*manifests, run_dir, max_steps=MAX_STEPS)))
    return losses(run_dir)


def _close(a: dict, b: dict, rel: float) -> bool:
    return sorted(a) == sorted(b) and all(abs(a[s] - b[s]) <= rel * abs(b[s]) for s in a)


@pytest.mark.slow
def test_two_gloo_ranks_under_torchrun_follow_the_one_rank_loss_trajectory(manifests, one_rank, tmp_path):
    run_dir = tmp_path / "run"
    result = run_pretrain(settings(*manifests, run_dir, max_steps=MAX_STEPS), "--nproc-per-node", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 rank(s) on cpu" in result.stdout + result.stderr
    two = losses(run_dir)
    # Same global batch, same samples and masks; only the order of float sums differs.
    assert _close(two, one_rank, rel=1e-5), (two, one_rank)


@pytest.mark.slow
def test_checkpoint_saved_by_two_ranks_resumes_on_one_rank(manifests, one_rank, tmp_path):
    run_dir = tmp_path / "run"
    values = settings(*manifests, run_dir, max_steps=MAX_STEPS, checkpoint_every_steps=100)
    launcher = subprocess.Popen(
        pretrain_command(values, "--nproc-per-node", "2"),
        env=env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    while not ((run_dir / "metrics.csv").exists() and len((run_dir / "metrics.csv").read_text().splitlines()) > 3):
        assert launcher.poll() is None, launcher.stderr.read()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    launcher.send_signal(signal.SIGUSR1)  # as Slurm does before preempting: the launcher passes it on
    _, stderr = launcher.communicate(timeout=180)
    assert launcher.returncode == PREEMPTED_EXIT_CODE, stderr[-3000:]
    ((step, _),) = list_checkpoints(run_dir)
    assert 3 <= step < MAX_STEPS
    resumed = run_pretrain(values)  # one plain process now
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {run_dir / 'checkpoints' / f'step_{step:08d}'} (step {step}, saved on 2 rank(s), now 1)" in (
        resumed.stdout + resumed.stderr
    )
    assert _close(losses(run_dir), one_rank, rel=1e-5)
