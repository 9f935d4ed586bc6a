"""The Checkpointer saves in the background: training goes on, and the files hold the step's state."""

import threading
import time

import pytest
import torch

from dnafm_lib.model.encoder import build_model, preset_config
from dnafm_lib.train.checkpointer import Checkpointer, list_checkpoints
from dnafm_lib.train.distributed import init_distributed, shutdown_distributed


class HeldWriter(torch.distributed.checkpoint.FileSystemWriter):
    """A file-system writer that writes nothing until the test releases it."""

    release = threading.Event()
    writing = threading.Event()

    def write_data(self, plan, planner):
        HeldWriter.writing.set()
        assert HeldWriter.release.wait(timeout=120), "the test never released the writer"
        return super().write_data(plan, planner)


@pytest.fixture()
def world_of_one():
    ctx = init_distributed("cpu")
    yield ctx
    shutdown_distributed()


def _model_and_optimizer():
    torch.manual_seed(0)
    model = build_model(preset_config("tiny", num_hidden_layers=1))
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2)


def _train_one_step(model, optimizer):
    ids = torch.randint(5, 9, (2, 16))
    model(ids).logits.logsumexp(-1).mean().backward()
    optimizer.step()
    optimizer.zero_grad()


def _weights(model):
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def test_training_goes_on_while_a_save_is_in_flight_and_the_files_hold_the_saved_step(world_of_one, tmp_path):
    model, optimizer = _model_and_optimizer()
    _train_one_step(model, optimizer)
    at_step_1 = _weights(model)
    HeldWriter.release.clear()
    HeldWriter.writing.clear()
    checkpointer = Checkpointer(tmp_path, world_of_one, keep=2, storage_writer=HeldWriter)

    checkpointer.save(1, model, optimizer, {"tokens_seen": 32})
    assert HeldWriter.writing.wait(timeout=60)  # the background thread is in the middle of writing
    _train_one_step(model, optimizer)  # the main thread trains meanwhile
    _train_one_step(model, optimizer)
    assert checkpointer.in_flight and list_checkpoints(tmp_path) == []  # nothing half-written is visible
    HeldWriter.release.set()
    final = checkpointer.wait()
    checkpointer.close()

    assert [step for step, _ in list_checkpoints(tmp_path)] == [1] and final == list_checkpoints(tmp_path)[0][1]
    assert not any(torch.equal(at_step_1[k], v) for k, v in _weights(model).items() if v.ndim == 2)  # it moved on
    fresh, fresh_optimizer = _model_and_optimizer()
    progress = Checkpointer(tmp_path, world_of_one, keep=2, asynchronous=False).load_latest(fresh, fresh_optimizer)
    assert progress["step"] == 1 and progress["tokens_seen"] == 32
    assert all(torch.equal(at_step_1[k], v) for k, v in _weights(fresh).items())  # step 1's, not step 3's
    assert int(fresh_optimizer.state_dict()["state"][0]["step"]) == 1


def test_only_the_newest_checkpoints_are_kept(world_of_one, tmp_path):
    model, optimizer = _model_and_optimizer()
    checkpointer = Checkpointer(tmp_path, world_of_one, keep=2)
    for step in (1, 2, 3):
        _train_one_step(model, optimizer)
        checkpointer.save(step, model, optimizer, {})
    checkpointer.close()
    assert [step for step, _ in list_checkpoints(tmp_path)] == [2, 3]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_writes_finished_says_when_a_save_can_become_the_latest_without_waiting(world_of_one, tmp_path):
    model, optimizer = _model_and_optimizer()
    HeldWriter.release.clear()
    HeldWriter.writing.clear()
    checkpointer = Checkpointer(tmp_path, world_of_one, keep=2, storage_writer=HeldWriter)
    assert not checkpointer.writes_finished  # nothing in flight
    checkpointer.save(1, model, optimizer, {})
    assert HeldWriter.writing.wait(timeout=60)
    assert not checkpointer.writes_finished and list_checkpoints(tmp_path) == []
    HeldWriter.release.set()
    deadline = time.monotonic() + 60
    while not checkpointer.writes_finished:
        assert time.monotonic() < deadline, "the background save never finished"
        time.sleep(0.01)
    assert checkpointer.wait() == list_checkpoints(tmp_path)[0][1]  # no next save needed
    assert not checkpointer.in_flight
    checkpointer.close()
