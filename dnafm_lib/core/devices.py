"""The device a command runs on, from its setting: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dnafm_lib.core.errors import DnafmError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str, setting: str = "--device") -> torch.device:
    """``name`` as a torch.device; ``auto`` is CUDA when PyTorch sees one, else the CPU.

    ``setting`` (e.g. ``trainer.device``) is where ``name`` came from, for the error raised when
    it names no device or a CUDA device on a machine without one. Callers that keep a device
    as text use ``str(...)`` of the result.
    """
    import torch  # here, so that importing this module stays cheap for the CLI

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DnafmError(f"{setting} {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DnafmError(f"{setting} {name!r}: no CUDA device is available")
    return device
