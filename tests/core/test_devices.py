"""resolve_device: the one place a device setting becomes a torch.device."""

import pytest
import torch

from dnafm_lib.core.devices import resolve_device
from dnafm_lib.core.errors import DnafmError


def test_auto_picks_cuda_when_present_else_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == torch.device(expected)


def test_named_device_comes_back_as_given_and_as_text():
    assert resolve_device("cpu") == torch.device("cpu")
    assert str(resolve_device("cpu", "tracks.device")) == "cpu"


def test_unknown_device_names_the_setting_and_the_choices():
    with pytest.raises(DnafmError, match=r"tracks\.device 'gpu0': use auto, cpu, cuda or cuda:N"):
        resolve_device("gpu0", "tracks.device")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_one_clear_error():
    with pytest.raises(DnafmError, match=r"trainer\.device 'cuda:1': no CUDA device is available"):
        resolve_device("cuda:1", "trainer.device")


@pytest.mark.parametrize("name", ["mps", "CUDA", "cuda:", "cuda:x", "gpu", ""])
def test_one_device_vocabulary_for_settings_and_for_resolve(name):
    from dnafm_lib.core.devices import device_problem

    assert device_problem(name) == f"must be auto, cpu, cuda or cuda:N, got {name!r}"
    with pytest.raises(DnafmError, match="use auto, cpu, cuda or cuda:N"):
        resolve_device(name)


def test_precision_names_and_the_old_spelling_mean_the_same_dtype():
    from dnafm_lib.core.devices import canonical_precision, compute_dtype, precision_problem

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert canonical_precision("32") == "fp32" and precision_problem("32") is None
    assert compute_dtype("32", gpu) == compute_dtype("fp32", gpu) == torch.float32
    assert compute_dtype("bf16", cpu) == compute_dtype("auto", gpu) == torch.bfloat16
    assert compute_dtype("auto", cpu) == torch.float32
    assert precision_problem("fp16") == "must be one of auto, bf16, fp32 (32 = fp32), got 'fp16'"


def test_pretraining_and_fine_tuning_take_the_same_precision_names():
    from dnafm_lib.finetune.trainer import TrainerConfig
    from dnafm_lib.train.config import TrainConfig

    for name, canonical in (("32", "fp32"), ("fp32", "fp32"), ("bf16", "bf16"), ("auto", "auto")):
        assert TrainConfig.from_mapping({"precision": name}).precision == canonical
        assert TrainerConfig.from_mapping({"out_dir": "x", "precision": name}).precision == canonical
