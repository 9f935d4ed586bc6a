"""The device and precision vocabulary every command shares, and the torch objects they become.

Device: ``auto`` (CUDA when PyTorch sees one, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.
Precision: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``bf16`` or ``fp32``; ``32`` (the
spelling `dnafm fit` documents, after Lightning) is the same as ``fp32``. Settings classes check
names with ``device_problem``/``precision_problem`` when they are read; ``resolve_device`` turns
a name into a ``torch.device`` when the work starts.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from dnafm_lib.core.errors import DnafmError

if TYPE_CHECKING:
    import torch

#: the device words; ``cuda:N`` picks one GPU (the workflow schema's tracks.device pattern)
DEVICE_WORDS = ("auto", "cpu", "cuda")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:[0-9]+)?)$")
DEVICE_VOCABULARY = "auto, cpu, cuda or cuda:N"
#: the canonical precision names, and the other spellings accepted for them
PRECISIONS = ("auto", "bf16", "fp32")
PRECISION_ALIASES = {"32": "fp32"}


def device_problem(name: object) -> str | None:
    """What is wrong with ``name`` as a device setting, or None (nothing is imported or probed)."""
    if isinstance(name, str) and DEVICE_PATTERN.match(name):
        return None
    return f"must be {DEVICE_VOCABULARY}, got {name!r}"


def canonical_precision(name: str) -> str:
    """The canonical spelling of a precision name (an unknown name is returned as given)."""
    return PRECISION_ALIASES.get(name, name) if isinstance(name, str) else name


def precision_problem(name: object) -> str | None:
    if isinstance(name, str) and canonical_precision(name) in PRECISIONS:
        return None
    spellings = ", ".join(PRECISIONS) + "".join(f" ({alias} = {to})" for alias, to in PRECISION_ALIASES.items())
    return f"must be one of {spellings}, got {name!r}"


def resolve_device(name: str, setting: str = "--device") -> torch.device:
    """``name`` as a torch.device; ``auto`` is CUDA when PyTorch sees one, else the CPU.

    ``setting`` (e.g. ``trainer.device``) is where ``name`` came from, for the error raised when
    it names no device or a CUDA device on a machine without one. Callers that keep a device
    as text use ``str(...)`` of the result.
    """
    import torch  # here, so that importing this module stays cheap for the CLI

    if device_problem(name) is not None:
        raise DnafmError(f"{setting} {name!r}: use {DEVICE_VOCABULARY}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DnafmError(f"{setting} {name!r}: no CUDA device is available")
    return device


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype ``precision`` computes in on ``device``: ``auto`` is bf16 on CUDA, fp32 elsewhere."""
    import torch

    precision = canonical_precision(precision)
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return torch.bfloat16 if precision == "bf16" else torch.float32


def autocast(device: torch.device, precision: str = "auto"):
    """bf16 autocast where ``precision`` computes in bf16 (fp32 weights); a no-op context otherwise."""
    import torch

    use_bf16 = compute_dtype(precision, device) == torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16)
