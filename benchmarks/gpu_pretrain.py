#!/usr/bin/env python3
"""Pretraining throughput on one device at DNA FM 7B's width, with reduced depth.

Runs the real training step of dnafm_lib.train (FSDP2 on one rank, bf16 compute with fp32
master weights, fused AdamW, MLM loss on 15% of positions) on synthetic windows, for several
engine variants: eager / torch.compile, with and without activation checkpointing. First it
times the SDPA kernels (FlashAttention-2, cuDNN, memory-efficient) at the 32 × 136 head
geometry and uses the fastest for every variant.

Prints tokens/s and MFU per variant and ends with a table. MFU = flops_per_token × tokens/s /
peak, flops_per_token = 6N + 12·L·h·S (dnafm_lib.model.encoder.flops_per_token); the peak is the
card's dense bf16 figure (H100/H200 SXM: 989 TFLOP/s), looked up from its name.

    PYTHONPATH=. python3 benchmarks/gpu_pretrain.py                      # H100: ~2-3 minutes
    PYTHONPATH=. python3 benchmarks/gpu_pretrain.py --device cpu --preset tiny   # CI smoke test

Needs only PyTorch and numpy (imports dnafm_lib.model.encoder and dnafm_lib.train modules).
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time

import numpy as np
import torch

from dnafm_lib.model.encoder import ATTENTION_BACKENDS, build_model, flops_per_token, preset_config
from dnafm_lib.train import metrics
from dnafm_lib.train.config import TrainConfig
from dnafm_lib.train.data import build_batch
from dnafm_lib.train.distributed import init_distributed, materialize_on_device, shard_model, shutdown_distributed
from dnafm_lib.train.objective import batch_to_device, mlm_loss_sum
from dnafm_lib.train.optim import build_optimizer, clip_gradients
from dnafm_lib.train.parallelize import apply_activation_checkpointing

VARIANTS = {
    "eager": dict(compile=False, activation_checkpointing=False),
    "eager+ac": dict(compile=False, activation_checkpointing=True),
    "compile": dict(compile=True, activation_checkpointing=False),
    "compile+ac": dict(compile=True, activation_checkpointing=True),
}
PRESET_DEFAULTS = {
    # 7B width (hidden 4352, 32 heads of 136, SwiGLU 11584) at reduced depth, 4000-token inputs.
    # Two micro-batches per optimizer step: the model card's 1024 = 2 × 2 × 256 GPUs.
    "7b": dict(
        layers=4,
        seq_len=4000,
        micro_batch=2,
        accumulation=2,
        steps=8,
        warmup=3,
        variants="eager,eager+ac,compile,compile+ac",
    ),
    "tiny": dict(layers=2, seq_len=256, micro_batch=2, accumulation=1, steps=2, warmup=1, variants="eager,eager+ac"),
}


class SyntheticWindows:
    """Random A/C/G/T windows with the shard reader's interface (the data path is the real one)."""

    def __init__(self, n_windows: int, window: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.window = window
        self.tokens = rng.choice(np.array([5, 6, 7, 8], dtype=np.uint8), size=(n_windows, window))

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def __getitem__(self, i: int):
        return self.tokens[i], self.window

    def order(self, seed: int, epoch: int):
        return np.random.default_rng([seed, epoch]).permutation(len(self))


def attention_backends(
    batch: int, heads: int, seq_len: int, head_dim: int, device, repeats: int = 5
) -> list[tuple[str, float | None, str]]:
    """Time forward+backward of each SDPA kernel; (name, ms or None, note)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    results = []
    shape = (batch, heads, seq_len, head_dim)
    q, k, v = (torch.randn(shape, device=device, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    grad = torch.randn(shape, device=device, dtype=torch.bfloat16)

    def time_backend(label: str, backend) -> None:
        try:
            with sdpa_kernel([backend]):
                for _ in range(2):
                    torch.nn.functional.scaled_dot_product_attention(q, k, v).backward(grad)
                torch.cuda.synchronize()
                start = time.perf_counter()
                for _ in range(repeats):
                    torch.nn.functional.scaled_dot_product_attention(q, k, v).backward(grad)
                torch.cuda.synchronize()
            results.append((label, (time.perf_counter() - start) / repeats * 1e3, ""))
        except Exception as exc:  # a kernel that does not support this head dim / card
            results.append(
                (label, None, f"unavailable: {str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__}")
            )

    for name in ("FLASH_ATTENTION", "CUDNN_ATTENTION", "EFFICIENT_ATTENTION"):
        time_backend(name, getattr(SDPBackend, name))
    # FlashAttention-3/4 kernels registered with PyTorch replace the FLASH_ATTENTION backend once
    # activated (process-wide, no way back), so they are timed last.
    try:
        from torch.nn.attention import activate_flash_attention_impl, list_flash_attention_impls

        impls = list(list_flash_attention_impls())
    except ImportError:
        impls = []
    for impl in impls:
        try:
            activate_flash_attention_impl(impl)
        except Exception as exc:
            results.append((f"FLASH_ATTENTION+{impl}", None, f"cannot activate: {str(exc).splitlines()[0][:80]}"))
            continue
        time_backend(f"FLASH_ATTENTION+{impl}", SDPBackend.FLASH_ATTENTION)
    return results


def select_sdpa_backend(name: str) -> None:
    """Leave only one SDPA kernel enabled (global flags, which torch.compile also honours)."""
    name, _, impl = name.partition("+")
    if impl:
        from torch.nn.attention import activate_flash_attention_impl

        activate_flash_attention_impl(impl)
    flags = {
        "FLASH_ATTENTION": torch.backends.cuda.enable_flash_sdp,
        "CUDNN_ATTENTION": torch.backends.cuda.enable_cudnn_sdp,
        "EFFICIENT_ATTENTION": torch.backends.cuda.enable_mem_efficient_sdp,
    }
    for key, enable in flags.items():
        enable(key == name)
    torch.backends.cuda.enable_math_sdp(False)


def run_variant(name: str, args, model_config, ctx, peak_flops) -> dict:
    switches = VARIANTS[name]
    config = TrainConfig(
        model=args.preset if args.preset != "7b" else "7b",
        micro_batch_size=args.micro_batch,
        global_batch_size=args.micro_batch,
        learning_rate=1e-4,
        min_learning_rate=1e-5,
        warmup_steps=0,
        compile=switches["compile"],
        activation_checkpointing=switches["activation_checkpointing"],
    )
    dtype = torch.bfloat16 if ctx.device.type == "cuda" else torch.float32
    if ctx.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        model = build_model(model_config, device="meta")
    else:
        torch.manual_seed(0)
        model = build_model(model_config, device="cpu")
    if config.activation_checkpointing:
        apply_activation_checkpointing(model)
    shard_model(model, dtype, compile_blocks=config.compile)
    if ctx.device.type == "cuda":
        materialize_on_device(model, ctx.device, seed=0)
    model.train()
    optimizer = build_optimizer(model, config, ctx.device)
    reader = SyntheticWindows(
        n_windows=args.micro_batch * args.accumulation * (args.steps + args.warmup), window=args.seq_len - 2
    )
    flops_token = flops_per_token(model_config, args.seq_len, training=True)

    def sync():
        if ctx.device.type == "cuda":
            torch.cuda.synchronize()

    phase_s = {"forward_backward": 0.0, "optimizer": 0.0}

    def step(index: int, timed: bool) -> float:
        micro = [
            build_batch(
                reader,
                range(i * args.micro_batch, (i + 1) * args.micro_batch),
                stream=0,
                seed=0,
                step=index,
                mask_fraction=0.15,
            )
            for i in range(index * args.accumulation, (index + 1) * args.accumulation)
        ]
        targets = sum(b.n_targets for b in micro)
        started = time.perf_counter()
        for batch in micro:
            loss_sum = mlm_loss_sum(model, *batch_to_device(batch, ctx.device))
            (loss_sum / targets).backward()
        if timed:
            sync()
            phase_s["forward_backward"] += time.perf_counter() - started
            started = time.perf_counter()
        clip_gradients(model, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if timed:
            sync()
            phase_s["optimizer"] += time.perf_counter() - started
        return float(loss_sum.detach()) / micro[-1].n_targets  # waits for the step to finish

    started = time.perf_counter()
    for index in range(args.warmup):
        loss = step(index, timed=False)
    sync()
    warmup_s = time.perf_counter() - started
    started = time.perf_counter()
    for index in range(args.warmup, args.warmup + args.steps):
        loss = step(index, timed=True)
    sync()
    elapsed = time.perf_counter() - started
    tokens_per_step = args.accumulation * args.micro_batch * args.seq_len
    tokens_per_s = args.steps * tokens_per_step / elapsed
    mfu = metrics.model_flops_utilization(flops_token, tokens_per_s, peak_flops, 1)
    # Under FSDP on many GPUs each rank updates only its 1/W shard, so the optimizer's share of a
    # step vanishes; the forward+backward MFU is what a large run approaches.
    compute_tokens_per_s = args.steps * tokens_per_step / phase_s["forward_backward"]
    compute_mfu = metrics.model_flops_utilization(flops_token, compute_tokens_per_s, peak_flops, 1)
    memory_gib = torch.cuda.max_memory_allocated() / 2**30 if ctx.device.type == "cuda" else float("nan")
    result = dict(
        variant=name,
        tokens_per_s=tokens_per_s,
        mfu=mfu,
        step_ms=elapsed / args.steps * 1e3,
        fwd_bwd_ms=phase_s["forward_backward"] / args.steps * 1e3,
        optimizer_ms=phase_s["optimizer"] / args.steps * 1e3,
        fwd_bwd_mfu=compute_mfu,
        warmup_s=warmup_s,
        memory_gib=memory_gib,
        loss=loss,
    )
    print(
        f"{name:12s} {tokens_per_s:12,.0f} tokens/s  step {result['step_ms']:7.1f} ms "
        f"(fwd+bwd {result['fwd_bwd_ms']:.1f}, optimizer {result['optimizer_ms']:.1f})  MFU {_pct(mfu)} "
        f"(fwd+bwd {_pct(compute_mfu)})  peak memory {memory_gib:5.1f} GiB  "
        f"(warmup {warmup_s:.1f} s, loss {loss:.3f})",
        flush=True,
    )
    if not math.isfinite(loss):
        raise RuntimeError(f"{name}: non-finite loss {loss}")
    model = optimizer = None  # freed before the next variant
    gc.collect()
    if ctx.device.type == "cuda":
        torch.cuda.empty_cache()
    torch._dynamo.reset()
    return result


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", choices=tuple(PRESET_DEFAULTS), default="7b", help="model width (7b or tiny)")
    parser.add_argument("--layers", type=int, help="blocks (default 4 at 7b, 2 at tiny)")
    parser.add_argument("--seq-len", type=int, help="tokens per sequence incl. [CLS]/[EOS] (default 4000)")
    parser.add_argument("--micro-batch", type=int, help="sequences per forward (default 2, the model card's)")
    parser.add_argument(
        "--accumulation",
        type=int,
        help="micro-batches per optimizer step (default 2 at 7b: the card's 1024 / (2 × 256 GPUs))",
    )
    parser.add_argument("--steps", type=int, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, help="untimed steps per variant (compilation happens here)")
    parser.add_argument("--variants", help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--attn-backend",
        default="sdpa",
        choices=ATTENTION_BACKENDS,
        help="the model's attention backend (sdpa: the fastest SDPA kernel timed below)",
    )
    args = parser.parse_args(argv)
    for key, value in PRESET_DEFAULTS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")

    ctx = init_distributed(args.device)  # a world of one: FSDP2 on one rank
    model_config = preset_config(args.preset, num_hidden_layers=args.layers, attn_backend=args.attn_backend)
    peak_flops = metrics.peak_flops_per_device(ctx.device)
    device_name = torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else "CPU"
    print(
        f"device: {device_name}; peak {'unknown' if peak_flops is None else f'{peak_flops / 1e12:.0f} TFLOP/s'} "
        f"(dense bf16); torch {torch.__version__}"
    )
    print(
        f"model: {args.preset} width (hidden {model_config.hidden_size}, {model_config.num_attention_heads} heads "
        f"of {model_config.head_dim}, intermediate {model_config.intermediate_size}), {args.layers} layers; "
        f"micro batch {args.micro_batch} × {args.seq_len} tokens, {args.accumulation} per optimizer step; "
        f"{flops_per_token(model_config, args.seq_len) / 1e9:.2f} GFLOP per token (6N + 12·L·h·S)"
    )

    if ctx.device.type == "cuda":
        timings = attention_backends(
            args.micro_batch, model_config.num_attention_heads, args.seq_len, model_config.head_dim, ctx.device
        )
        for name, ms, note in timings:
            print(f"attention {name:24s} {'' if ms is None else f'{ms:8.2f} ms fwd+bwd'} {note}")
        usable = [(ms, name) for name, ms, _ in timings if ms is not None]
        if usable:
            best = min(usable)[1]
            print(f"attention: using {best} for the training variants")
            select_sdpa_backend(best)

    results = []
    for name in variants:
        try:
            results.append(run_variant(name, args, model_config, ctx, peak_flops))
        except torch.cuda.OutOfMemoryError:
            print(f"{name:12s} out of memory", flush=True)
            results.append(dict(variant=name, error="out of memory"))
            gc.collect()
            torch.cuda.empty_cache()
        except Exception as exc:
            print(f"{name:12s} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", flush=True)
            results.append(dict(variant=name, error=type(exc).__name__))

    print()
    print(
        f"| variant | tokens/s | step ms | fwd+bwd ms | optimizer ms | MFU | fwd+bwd MFU | peak GiB |"
        f"   ({device_name}, {args.layers} layers, {args.accumulation} micro-batch(es) per step)"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        if "error" in r:
            print(f"| {r['variant']} | {r['error']} | | | | | | |")
        else:
            print(
                f"| {r['variant']} | {r['tokens_per_s']:,.0f} | {r['step_ms']:.1f} | {r['fwd_bwd_ms']:.1f} | "
                f"{r['optimizer_ms']:.1f} | {_pct(r['mfu'])} | {_pct(r['fwd_bwd_mfu'])} | {r['memory_gib']:.1f} |"
            )
    ok = [r for r in results if "error" not in r]
    if len(ok) > 1:
        base = ok[0]
        print(
            "speed vs "
            + base["variant"]
            + ": "
            + ", ".join(f"{r['variant']} ×{r['tokens_per_s'] / base['tokens_per_s']:.2f}" for r in ok[1:])
        )
    if args.json:
        import json

        with open(args.json, "w") as handle:
            json.dump({"device": device_name, "args": vars(args), "results": results}, handle, indent=2)
    shutdown_distributed()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
