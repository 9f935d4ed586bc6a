"""The Trainer keeps losses on the device between logging steps: what it logs is still each step's loss."""

import pytest

from dnafm_lib.train.config import TrainConfig
from dnafm_lib.train.loop import train
from tests.support.train import losses, settings, write_demo_shards


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    return write_demo_shards(tmp_path_factory.mktemp("shards"))


@pytest.mark.slow
def test_logging_every_third_step_logs_the_same_losses_as_logging_every_step(manifests, tmp_path):
    common = dict(max_steps=7, checkpoint_every_steps=100, validation_samples=0)
    train(TrainConfig.from_mapping(settings(*manifests, tmp_path / "every", log_every_steps=1, **common)))
    result = train(TrainConfig.from_mapping(settings(*manifests, tmp_path / "third", log_every_steps=3, **common)))

    every, third = losses(tmp_path / "every"), losses(tmp_path / "third")
    assert sorted(third) == [3, 6, 7]  # the logging steps and the last one
    assert all(third[step] == every[step] for step in third)  # bit-exact: the same steps, read later
    assert result.train_loss_nats == every[7]
