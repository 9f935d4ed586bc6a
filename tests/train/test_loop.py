"""End-to-end pretraining on real demo shards: outputs, export, exact resume, preemption, errors."""

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dnafm_lib.train.checkpointer import list_checkpoints
from dnafm_lib.train.config import TrainConfig
from dnafm_lib.train.loop import NonFiniteLossError, TrainingError, train
from dnafm_lib.train.preemption import PREEMPTED_EXIT_CODE
from tests.support.train import REPO, env, losses, pretrain_command, run_pretrain, settings, write_demo_shards

MAX_STEPS = 12


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    return write_demo_shards(tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="module")
def reference(manifests, tmp_path_factory):
    """An uninterrupted one-process run: the trajectory the other runs must reproduce."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    values = settings(*manifests, run_dir, max_steps=MAX_STEPS)
    result = train(TrainConfig.from_mapping(values))
    return run_dir, values, result


@pytest.mark.slow
def test_training_writes_metrics_tensorboard_plot_and_checkpoints(reference):
    run_dir, values, result = reference
    assert result.final_step == MAX_STEPS and not result.preempted
    rows = losses(run_dir)
    assert sorted(rows) == list(range(1, MAX_STEPS + 1))
    assert rows[MAX_STEPS] < rows[1] - 0.3  # it learns
    assert [step for step, _ in list_checkpoints(run_dir)] == [2, 4, 6, 8, 10, 12]
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["validation_loss_nats"] == pytest.approx(result.validation_loss_nats)
    header = (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert header == "step,loss_nats,lr,grad_norm,tokens_per_s,mfu,val_loss_nats,epoch,elapsed_s"


@pytest.mark.slow
def test_export_writes_a_model_that_load_model_reads_with_the_run_s_validation_loss(reference, tmp_path):
    import torch

    import dnafm_lib
    from dnafm_lib.data.shards import open_split
    from dnafm_lib.train.data import validation_batches
    from dnafm_lib.train.objective import batch_to_device, mlm_loss_sum

    run_dir, values, result = reference
    out = tmp_path / "models" / "demo"
    exported = subprocess.run(
        [sys.executable, "-m", "dnafm_lib.cli", "export", "--run-dir", str(run_dir), "--out", str(out)],
        env=env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert exported.returncode == 0, exported.stderr
    assert sorted(p.name for p in out.iterdir()) == [".dnafm-output.json", "config.json", "model.safetensors"]
    model = dnafm_lib.load_model(out)
    batches = validation_batches(
        open_split(values["validation_manifest"]),
        seed=values["seed"],
        n_samples=values["validation_samples"],
        micro_batch_size=2,
        rank=0,
        world_size=1,
        mask_fraction=0.15,
    )
    with torch.no_grad():
        total = sum(float(mlm_loss_sum(model, *batch_to_device(b, torch.device("cpu")))) for b in batches)
    assert total / sum(b.n_targets for b in batches) == pytest.approx(result.validation_loss_nats, rel=1e-5)


class _RunsCode:
    """Unpickling this runs a shell command: what a tampered checkpoint could hold."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


def test_export_refuses_a_checkpoint_whose_metadata_pickle_would_run_code(tmp_path):
    import pickle

    from dnafm_lib.model.encoder import preset_config

    run_dir = tmp_path / "run"
    step_dir = run_dir / "checkpoints" / "step_00000001"
    step_dir.mkdir(parents=True)
    (run_dir / "model_config.json").write_text(json.dumps(preset_config("tiny").architecture_dict()))
    (step_dir / "progress.json").write_text(json.dumps({"step": 1, "world_size": 1}))
    ran = tmp_path / "code-ran"
    (step_dir / ".metadata").write_bytes(pickle.dumps(_RunsCode(f"touch {ran}")))

    exported = subprocess.run(
        [sys.executable, "-m", "dnafm_lib.cli", "export", "--run-dir", str(run_dir), "--out", str(tmp_path / "out")],
        env=env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert exported.returncode == 1
    assert (
        exported.stderr.strip()
        .splitlines()[-1]
        .startswith(f"dnafm export: error: {step_dir / '.metadata'}: refers to ")
    )
    assert "never holds; refusing to load it" in exported.stderr and "Traceback" not in exported.stderr
    assert not ran.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("model_config", ['{"hidden_size": 64', '{"hidden_sise": 64}'])
def test_export_with_a_broken_model_config_names_the_file(tmp_path, model_config):
    step_dir = tmp_path / "run" / "checkpoints" / "step_00000001"
    step_dir.mkdir(parents=True)
    (step_dir / "progress.json").write_text('{"step": 1}')
    (tmp_path / "run" / "model_config.json").write_text(model_config)

    exported = subprocess.run(
        [
            sys.executable,
            "-m",
            "dnafm_lib.cli",
            "export",
            "--run-dir",
            str(tmp_path / "run"),
            "--out",
            str(tmp_path / "out"),
        ],
        env=env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert exported.returncode == 1
    assert (
        exported.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"dnafm export: error: {tmp_path / 'run' / 'model_config.json'}: not a model configuration written by dnafm pretrain"
        )
    )
    assert "Traceback" not in exported.stderr and not (tmp_path / "out").exists()


def test_export_of_a_missing_run_is_a_clear_error(tmp_path):
    exported = subprocess.run(
        [sys.executable, "-m", "dnafm_lib.cli", "export", "--run-dir", str(tmp_path), "--out", str(tmp_path / "out")],
        env=env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert exported.returncode == 1
    assert "not a pretraining run directory" in exported.stderr and "Traceback" not in exported.stderr


def _wait_for(predicate, process, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            raise AssertionError(
                f"the run ended (exit {process.returncode}) before it could be interrupted:\n" + process.stderr.read()
            )
        time.sleep(0.02)
    process.kill()
    raise AssertionError("timed out waiting for the run")


def _rows(run_dir: Path) -> int:
    path = run_dir / "metrics.csv"
    return len(path.read_text().splitlines()) - 1 if path.exists() else 0


@pytest.mark.slow
def test_run_killed_mid_training_resumes_with_exactly_the_uninterrupted_losses(reference, manifests, tmp_path):
    run_dir = tmp_path / "run"
    values = settings(*manifests, run_dir, max_steps=MAX_STEPS)
    process = subprocess.Popen(
        pretrain_command(values), env=env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(lambda: (run_dir / "checkpoints" / "step_00000004").exists(), process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert _rows(run_dir) < MAX_STEPS  # it really stopped early
    resumed = run_pretrain(values)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr + resumed.stdout
    assert losses(run_dir) == losses(reference[0])  # bit-exact, every step


@pytest.mark.slow
def test_sigkill_between_two_saves_keeps_the_first_one_resumable(reference, manifests, tmp_path):
    # Saves at steps 6 and 12: the step-6 save must be the latest checkpoint before step 12's starts.
    run_dir = tmp_path / "run"
    values = settings(*manifests, run_dir, max_steps=MAX_STEPS, checkpoint_every_steps=6)
    process = subprocess.Popen(
        pretrain_command(values), env=env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(lambda: (run_dir / "checkpoints" / "step_00000006").exists() or _rows(run_dir) >= 11, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _rows(run_dir) < MAX_STEPS  # killed before the second save
    assert [step for step, _ in list_checkpoints(run_dir)] == [6], sorted(p.name for p in run_dir.glob("checkpoints/*"))
    # a line at every step: a resumed run of six steps can end within the second a quiet job waits
    resumed = subprocess.run(
        pretrain_command(values),
        env={**env(), "DNAFM_PROGRESS_SECONDS": "0"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {run_dir / 'checkpoints' / 'step_00000006'} (step 6" in resumed.stdout + resumed.stderr
    assert "pretrain: 12/12 steps (100%), " in resumed.stderr  # the log says how far the run is
    assert losses(run_dir) == losses(reference[0])


@pytest.mark.slow
def test_sigusr1_saves_a_checkpoint_exits_75_and_the_rerun_finishes_exactly(reference, manifests, tmp_path):
    run_dir = tmp_path / "run"
    values = settings(*manifests, run_dir, max_steps=MAX_STEPS, checkpoint_every_steps=100)
    process = subprocess.Popen(
        pretrain_command(values), env=env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(lambda: _rows(run_dir) >= 3, process)
    process.send_signal(signal.SIGUSR1)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == PREEMPTED_EXIT_CODE, stderr
    ((step, path),) = list_checkpoints(run_dir)  # the only checkpoint: the one the signal asked for
    assert 3 <= step < MAX_STEPS
    assert json.loads((run_dir / "preempted.json").read_text())["step"] == step
    assert _rows(run_dir) == step
    resumed = run_pretrain(values)
    assert resumed.returncode == 0, resumed.stderr
    assert losses(run_dir) == losses(reference[0])
    assert not (run_dir / "preempted.json").exists()


def test_nan_loss_stops_with_an_error_naming_the_step(manifests, tmp_path):
    # An absurd learning rate blows the weights up after the first update.
    values = settings(
        *manifests,
        tmp_path / "run",
        max_steps=4,
        warmup_steps=0,
        learning_rate=1e30,
        min_learning_rate=1e30,
        grad_clip_norm=1e30,
        validation_samples=0,
    )
    with pytest.raises(NonFiniteLossError, match=r"^step 2: the training loss is nan"):
        train(TrainConfig.from_mapping(values))


def test_nan_loss_can_skip_the_batch_by_config(manifests, tmp_path):
    values = settings(
        *manifests,
        tmp_path / "run",
        max_steps=4,
        warmup_steps=0,
        learning_rate=1e30,
        min_learning_rate=1e30,
        grad_clip_norm=1e30,
        validation_samples=0,
        nonfinite_loss="skip",
    )
    result = train(TrainConfig.from_mapping(values))
    assert result.final_step == 4
    rows = losses(tmp_path / "run")
    assert math.isfinite(rows[1]) and all(math.isnan(rows[s]) for s in (2, 3, 4))


def test_demo_check_fails_loudly_when_validation_loss_is_not_below_the_composition_entropy(manifests, tmp_path):
    values = settings(*manifests, tmp_path / "run", max_steps=1, warmup_steps=1, require_below_composition_entropy=True)
    with pytest.raises(TrainingError, match=r"final validation loss .* nats is not below the base-composition entropy"):
        train(TrainConfig.from_mapping(values))


def test_demo_check_without_validation_samples_is_refused_before_training(manifests, tmp_path):
    values = settings(
        *manifests,
        tmp_path / "run",
        max_steps=1,
        warmup_steps=1,
        validation_samples=0,
        require_below_composition_entropy=True,
    )
    with pytest.raises(TrainingError, match=r"needs a validation_manifest .* got 0 validation window\(s\)"):
        train(TrainConfig.from_mapping(values))
    assert not (tmp_path / "run" / "checkpoints").exists()
