"""Which attention kernel to run, chosen by timing them on the device at hand.

The model (dnafm_lib.model.encoder) runs one of ATTENTION_BACKENDS; a flash-attn kernel that cannot take
the inputs (no CUDA, float32, a head dim it lacks, dropout under FlashAttention-4) falls back to
PyTorch SDPA there. Here: which backends can really run for a geometry, and the fastest of them,
measured on the caller's shapes (head dim 136 at 7B is unusual enough that no kernel is assumed
fastest).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dnafm_lib.model.encoder import ATTENTION_BACKENDS, BACKEND_PACKAGES, Padding, _attend, flash_kernel_applies


@dataclass(frozen=True)
class BackendTiming:
    backend: str
    seconds: float | None  # median per call; None when the backend cannot run here
    note: str = ""


def unavailable_reason(backend: str, device: torch.device, dtype: torch.dtype, head_dim: int) -> str | None:
    """Why `backend` would not run its own kernel for these inputs, or None when it would."""
    if backend not in ATTENTION_BACKENDS:
        return f"unknown backend (choose from {', '.join(ATTENTION_BACKENDS)})"
    if backend in BACKEND_PACKAGES:
        package, installed = BACKEND_PACKAGES[backend]
        if not installed:
            return f"the {package} package is not installed"
        probe = torch.empty(1, 1, 1, head_dim, device=device, dtype=dtype)  # the kernel test reads only its kind
        if not flash_kernel_applies(backend, probe, 0.0):
            return (
                f"needs CUDA, bf16/fp16 and a head dim it supports (here {device.type}, {dtype}, "
                f"{head_dim}): would fall back to sdpa"
            )
    return None


def measure_attention(
    backend: str,
    batch: int,
    heads: int,
    seq_len: int,
    head_dim: int,
    device: torch.device,
    dtype: torch.dtype,
    backward: bool = True,
    repeats: int = 3,
    warmup: int = 1,
) -> float:
    """Median seconds of one attention call (forward, or forward+backward) with random inputs."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    shape = (batch, seq_len, heads, head_dim)
    q, k, v = (
        torch.randn(shape, generator=generator).to(device=device, dtype=dtype).requires_grad_(backward)
        for _ in range(3)
    )
    grad = torch.randn(shape, generator=generator).to(device=device, dtype=dtype)
    padding = Padding(key_mask=None)

    def call() -> None:
        with torch.set_grad_enabled(backward):
            out = _attend(q, k, v, padding, backend, 0.0)
            if backward:
                out.backward(grad)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        call()
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def choose_attention_backend(
    batch: int,
    heads: int,
    seq_len: int,
    head_dim: int,
    device: torch.device | str,
    dtype: torch.dtype,
    candidates: tuple[str, ...] = ATTENTION_BACKENDS,
    measure: Callable[[str], float] | None = None,
) -> tuple[str, list[BackendTiming]]:
    """The fastest backend that runs its own kernel here, and every candidate's timing or reason.

    `measure(backend) -> seconds` defaults to timing forward+backward on random inputs of the given
    shape. Backends that would only fall back to SDPA are listed with the reason, not timed.
    """
    device = torch.device(device)
    if measure is None:

        def measure(backend: str) -> float:
            return measure_attention(backend, batch, heads, seq_len, head_dim, device, dtype)

    timings = []
    for backend in candidates:
        reason = unavailable_reason(backend, device, dtype, head_dim)
        if reason is not None:
            timings.append(BackendTiming(backend, None, reason))
            continue
        try:
            timings.append(BackendTiming(backend, measure(backend)))
        except torch.cuda.OutOfMemoryError:
            timings.append(BackendTiming(backend, None, "out of memory"))
    timed = [t for t in timings if t.seconds is not None]
    if not timed:
        return "sdpa", timings  # SDPA always runs (on CPU through its math kernel)
    return min(timed, key=lambda t: t.seconds).backend, timings
