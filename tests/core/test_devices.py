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
