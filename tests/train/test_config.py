"""Training settings: validated once, with one clear error naming the setting."""

import subprocess
import sys

import pytest

from dnafm_lib.train.config import TrainConfig, TrainConfigError
from tests.support.train import REPO, env


def test_global_batch_not_divisible_by_micro_batch_times_world_size_is_a_clear_error():
    config = TrainConfig.from_mapping({"global_batch_size": 10, "micro_batch_size": 4})
    with pytest.raises(
        TrainConfigError, match=r"global_batch_size 10 is not divisible by micro_batch_size 4 × world size 2 = 8"
    ):
        config.check_world(2)


def test_a_divisible_global_batch_gives_the_accumulation_steps():
    config = TrainConfig.from_mapping({"global_batch_size": 1024, "micro_batch_size": 2})
    config.check_world(256)
    assert config.accumulation_steps(256) == 2


def test_unknown_setting_is_named():
    with pytest.raises(TrainConfigError, match="unknown setting.*learning_rat\\b"):
        TrainConfig.from_mapping({"learning_rat": 1e-3})


def test_wrong_type_names_the_key():
    with pytest.raises(TrainConfigError, match="max_steps must be an integer, got '10'"):
        TrainConfig.from_mapping({"max_steps": "10"})


def test_out_of_range_values_are_rejected():
    with pytest.raises(TrainConfigError, match="mask_fraction"):
        TrainConfig.from_mapping({"mask_fraction": 1.5})
    with pytest.raises(TrainConfigError, match="warmup_steps"):
        TrainConfig.from_mapping({"max_steps": 10, "warmup_steps": 11})
    with pytest.raises(TrainConfigError, match="model must be one of"):
        TrainConfig.from_mapping({"model": "13b"})


def test_cli_refuses_an_indivisible_batch_before_starting_workers(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dnafm_lib.cli",
            "pretrain",
            "--run-dir",
            str(tmp_path / "run"),
            "--set",
            "global_batch_size=10",
            "--set",
            "micro_batch_size=4",
            "--nproc-per-node",
            "2",
        ],
        env=env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("dnafm pretrain: error: global_batch_size 10 is not divisible")
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_cli_reads_the_pretrain_section_of_a_cohort_config(tmp_path):
    from dnafm_lib.cli import build_parser
    from dnafm_lib.commands.pretrain import settings_from_args

    cohort = tmp_path / "cohort.yaml"
    cohort.write_text(
        "cohort: x\npretrain:\n  run: x\n  train:\n    global_batch_size: 1024\n    micro_batch_size: 2\n"
    )
    args = build_parser("pretrain").parse_args(
        ["pretrain", "--config", str(cohort), "--set", "max_steps=70", "--model", "7b"]
    )
    config = settings_from_args(args)
    assert (config.global_batch_size, config.micro_batch_size, config.max_steps, config.model) == (1024, 2, 70, "7b")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_cli_asked_for_cuda_without_a_gpu_is_one_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dnafm_lib.cli", "pretrain", "--run-dir", str(tmp_path / "run"), "--device", "cuda"],
        env=env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "dnafm pretrain: error: device 'cuda' was asked for (pretrain setting device), but PyTorch sees no CUDA device"
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "max_steps=ten"], "--set max_steps must be an integer, got 'ten'"),
        (["--set", "learning_rat=1e-3"], "unknown setting --set learning_rat; known: train_manifest"),
        (["--max-steps", "0"], "--max-steps must be at least 1, got 0"),
        (["--config-json", '{"precision": "fp16"}'], "--config-json: precision must be one of auto, bf16, fp32"),
        (["--config", "{cohort}"], "{cohort}: pretrain.train.max_steps must be an integer, got '10' (str)"),
    ],
)
def test_cli_names_a_bad_setting_and_the_layer_it_came_from(tmp_path, capsys, argv, message):
    from dnafm_lib.cli import main

    cohort = tmp_path / "cohort.yaml"
    cohort.write_text("cohort: x\npretrain:\n  train:\n    max_steps: '10'\n")
    argv = [arg.replace("{cohort}", str(cohort)) for arg in argv]
    assert main(["pretrain", "--run-dir", str(tmp_path / "run"), *argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dnafm pretrain: error: ")
    assert message.replace("{cohort}", str(cohort)) in err
    assert not (tmp_path / "run").exists()


def test_cuda_n_is_refused_for_pretraining_where_each_rank_takes_its_local_gpu():
    with pytest.raises(TrainConfigError, match=r"^device must be one of auto, cpu, cuda \(each rank"):
        TrainConfig.from_mapping({"device": "cuda:1"})
