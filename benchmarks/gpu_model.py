"""Forward and forward+backward throughput of DNA FM blocks, per attention backend.

On a GPU: 7B-width blocks (hidden 4352, 32 heads × 136, SwiGLU 11584), a reduced depth
(default 4 of the 32 layers), batches of 4000-token sequences, bf16 weights and activations,
each attention backend that runs here (SDPA pinned to cuDNN, to FlashAttention-2, to
memory-efficient; the flash-attn package when importable), eager and torch.compile'd (each
block compiled; identical blocks share one graph). Prints tokens/s and MFU
(training 6N + 12·L·h·S FLOPs per token, forward 2N + 4·L·h·S) and ends with a table.

On CPU (`--device cpu --preset tiny`, what CI runs) the same code path runs small and fast.
Needs nothing beyond PyTorch: `PYTHONPATH=. python3 benchmarks/gpu_model.py`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dnafm_lib.model.encoder import HAVE_FLASH_ATTN, build_model, flops_per_token, preset_config  # noqa: E402

# Dense bf16 tensor-core peaks (no sparsity), by device-name substring.
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def sdpa_context(kernel: str):
    if kernel == "default":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    choice = {
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "math": SDPBackend.MATH,
    }[kernel]
    return sdpa_kernel([choice])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(step, device: torch.device, warmup: int, iters: int) -> float:
    """Median seconds per call of step()."""
    for _ in range(warmup):
        step()
    synchronize(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def run_case(args, device, backend: str, kernel: str, compiled: bool, heads: int) -> dict:
    config = preset_config(args.preset, num_hidden_layers=args.layers, attn_backend=backend)
    if heads:
        config = dataclasses.replace(config, num_attention_heads=heads)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = build_model(config, device=device).to(dtype)
    n_params = model.num_parameters()
    if compiled:
        torch._dynamo.reset()
        for block in model.blocks:
            block.compile()
    seq_len = min(args.seq_len, config.max_position_embeddings)
    ids = torch.randint(5, 9, (args.batch, seq_len), device=device)
    tokens = args.batch * seq_len
    result = {
        "backend": backend if backend != "sdpa" else f"sdpa:{kernel}",
        "compiled": compiled,
        "heads": f"{config.num_attention_heads}x{config.head_dim}",
        "params": n_params,
    }
    peak = peak_tflops(device)
    with sdpa_context(kernel):

        def forward():
            with torch.no_grad():
                model(ids, return_logits=True)

        def train_step():
            model(ids).logits.float().logsumexp(-1).mean().backward()

        for mode, step, training in (("fwd", forward, False), ("fwd+bwd", train_step, True)):
            try:
                seconds = time_step(step, device, args.warmup, args.iters)
            except Exception as exc:  # a kernel that does not support this geometry
                result[mode] = f"unsupported: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
                continue
            rate = tokens / seconds
            flops = flops_per_token(config, seq_len, training=training, n_params=n_params) * rate
            result[mode] = {
                "tokens_per_s": rate,
                "tflops": flops / 1e12,
                "mfu": flops / (peak * 1e12) if peak else None,
            }
            model.zero_grad(set_to_none=True)
    model = None  # freed before the next variant
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def cell(value) -> str:
    if isinstance(value, str):
        return value.split(":")[0] if value.startswith("unsupported") else value
    mfu = f"{100 * value['mfu']:.1f}%" if value["mfu"] is not None else "n/a"
    return f"{value['tokens_per_s']:>10,.0f} tok/s {value['tflops']:7.1f} TF/s MFU {mfu:>6}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", default=None, help="model width (default 7b on GPU, tiny on CPU)")
    parser.add_argument("--layers", type=int, default=None, help="blocks to run (default 4 on GPU, 2 on CPU)")
    parser.add_argument("--batch", type=int, default=None, help="sequences per step (default 2 on GPU, 2 on CPU)")
    parser.add_argument(
        "--seq-len", type=int, default=None, help="tokens per sequence (default 4000 on GPU, 512 on CPU)"
    )
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    parser.add_argument(
        "--compare-heads",
        type=int,
        default=34,
        help="also run the best compiled backend with this many heads (34 → 34×128); 0 skips",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    args.preset = args.preset or ("7b" if gpu else "tiny")
    args.layers = args.layers or (4 if gpu else 2)
    args.batch = args.batch or 2
    args.seq_len = args.seq_len or (4000 if gpu else 512)
    args.warmup = args.warmup if args.warmup is not None else (3 if gpu else 1)
    args.iters = args.iters or (10 if gpu else 2)

    cases = (
        [("sdpa", "cudnn"), ("sdpa", "flash"), ("sdpa", "efficient")]
        if gpu
        else [("sdpa", "default"), ("eager", "default")]
    )
    if gpu and HAVE_FLASH_ATTN:
        cases.append(("flash_attn", "default"))
    compile_options = (False,) if args.no_compile else (False, True)
    if gpu:
        print(
            f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, "
            f"peak bf16 {peak_tflops(device)} TFLOP/s, flash-attn package: {HAVE_FLASH_ATTN}"
        )
    print(f"geometry: preset {args.preset}, {args.layers} layers, batch {args.batch} × {args.seq_len} tokens")
    results = []
    for backend, kernel in cases:
        for compiled in compile_options:
            if compiled and kernel == "efficient":
                continue  # the memory-efficient kernel is the slow fallback: its eager row is enough
            result = run_case(args, device, backend, kernel, compiled, heads=0)
            print(result, flush=True)
            results.append(result)
    if gpu and args.compare_heads and not args.no_compile:

        def train_mfu(r):
            return r["fwd+bwd"]["mfu"] if isinstance(r["fwd+bwd"], dict) and r["fwd+bwd"]["mfu"] else 0.0

        best = max((r for r in results if r["compiled"]), key=train_mfu)
        backend, _, kernel = best["backend"].partition(":")
        result = run_case(args, device, backend, kernel or "default", True, heads=args.compare_heads)
        print(result, flush=True)
        results.append(result)

    print("\n| backend | compiled | heads×dim | forward | forward+backward |")
    print("|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['backend']} | {'yes' if r['compiled'] else 'no'} | {r['heads']} | {cell(r['fwd'])} | {cell(r['fwd+bwd'])} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
