#!/usr/bin/env python3
"""The 7B path on one GPU, in one run: every measurement issue 15 asks for, then a RESULTS.md section.

Sections (`--sections`, default all, in this order so the cheapest numbers come first):
  attention  each attention backend at 2 × 32 × 4000 × 136 (bf16): forward and forward+backward,
             ms and attention TFLOP/s; then the one dnafm_lib.model.attention would choose.
  full7b     the published geometry, all 32 layers, bf16, random weights: the scorer's batch
             (8 × 4000 tokens) forward-only — tokens/s, MFU (2N + 4·L·h·S), peak memory; with
             torchao installed also its float8 linears, and their agreement with bf16 on the
             same windows (mean and max |Δ loss| per masked base).
  scorer     benchmarks/tracks_throughput.py --gpu --compile over 1 Mb with 7 passes: the whole
             scorer's time as a ratio to the bare forward over the same windows (goal ≤ 1.10).
  pretrain   benchmarks/gpu_pretrain.py: 4 layers eager and compiled, then the deepest stack of
             --pretrain-depths that fits, compiled: MFU end to end and forward+backward.

Each of the other scripts runs as its own process (its memory is gone when it ends); their
output is copied through. The hg38 projection (both strands, 7 passes) comes from the full-depth
rate. On a CPU, `--smoke` runs every section with tiny shapes — what CI checks.

    PYTHONPATH=. python3 benchmarks/gpu_7b.py --out benchmarks/out/gpu_7b.json   # H100/H200: ~8 min
    PYTHONPATH=. python3 benchmarks/gpu_7b.py --smoke                             # CPU, a minute
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dnafm_lib.model.attention import choose_attention_backend, unavailable_reason  # noqa: E402
from dnafm_lib.model.encoder import (  # noqa: E402
    ATTENTION_BACKENDS,
    Padding,
    _attend,
    build_model,
    count_parameters,
    flops_per_token,
    preset_config,
)
from dnafm_lib.model.tokenizer import ACGT_IDS, CLS_ID, EOS_ID, MASK_ID  # noqa: E402

SECTIONS = ("attention", "full7b", "scorer", "pretrain")
HG38_BP = 3_099_734_149  # GRCh38 primary assembly incl. N runs; the scorer skips N, so this bounds it above
# Dense bf16 tensor-core peaks (no sparsity), by device-name substring.
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0}


def peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(call, device: torch.device, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        call()
    sync(device)
    times = []
    for _ in range(iters):
        started = time.perf_counter()
        call()
        sync(device)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


# --------------------------------------------------------------------------- attention kernels


def sdpa_variants(device: torch.device) -> list[tuple[str, object]]:
    """SDPA pinned to each of its kernels on CUDA (a context manager each); plain SDPA on CPU."""
    import contextlib

    if device.type != "cuda":
        return [("sdpa", contextlib.nullcontext)]
    from torch.nn.attention import SDPBackend, sdpa_kernel

    kernels = {
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
    }
    return [(f"sdpa:{name}", lambda kernel=kernel: sdpa_kernel([kernel])) for name, kernel in kernels.items()]


def attention_section(args, device: torch.device, dtype: torch.dtype) -> dict:
    batch, heads, seq_len, head_dim = args.attn_shape
    generator = torch.Generator(device="cpu").manual_seed(0)
    shape = (batch, seq_len, heads, head_dim)
    q, k, v = (torch.randn(shape, generator=generator).to(device, dtype).requires_grad_() for _ in range(3))
    grad = torch.randn(shape, generator=generator).to(device, dtype)
    forward_flops = 4 * batch * heads * seq_len * seq_len * head_dim  # QK^T and PV
    padding = Padding(key_mask=None)
    rows = []

    def time_one(label: str, backend: str, context) -> None:
        def forward():
            with torch.no_grad(), context():
                _attend(q, k, v, padding, backend, 0.0)

        def forward_backward():
            with context():
                _attend(q, k, v, padding, backend, 0.0).backward(grad)

        try:
            fwd = median_seconds(forward, device, args.warmup, args.iters)
            fwd_bwd = median_seconds(forward_backward, device, args.warmup, args.iters)
        except Exception as exc:  # a kernel that rejects the shape: report it, keep measuring the rest
            rows.append(dict(backend=label, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"))
            return
        rows.append(
            dict(
                backend=label,
                forward_ms=fwd * 1e3,
                forward_bwd_ms=fwd_bwd * 1e3,
                forward_tflops=forward_flops / fwd / 1e12,
                forward_bwd_tflops=3.5 * forward_flops / fwd_bwd / 1e12,
            )
        )  # backward ≈ 2.5 × forward

    import contextlib

    for label, context in sdpa_variants(device):
        time_one(label, "sdpa", context)
    for backend in ("flash_attn", "flash_attn_4", "eager"):
        reason = unavailable_reason(backend, device, dtype, head_dim)
        if reason is None:
            time_one(backend, backend, contextlib.nullcontext)
        else:
            rows.append(dict(backend=backend, error=reason))
    chosen, _ = choose_attention_backend(batch, heads, seq_len, head_dim, device, dtype)
    return dict(
        shape=dict(batch=batch, heads=heads, seq_len=seq_len, head_dim=head_dim),
        rows=rows,
        chosen_by_attention_backends=chosen,
    )


# --------------------------------------------------------------------------- full-depth forward


def masked_windows(batch: int, seq_len: int, passes: int, device: torch.device):
    """[CLS] + random bases (1/passes of them [MASK]) + [EOS], and the masked positions' true bases."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    bases = torch.tensor(ACGT_IDS)[torch.randint(0, 4, (batch, seq_len - 2), generator=generator)]
    masked = torch.rand(batch, seq_len - 2, generator=generator) < 1 / passes
    tokens = torch.where(masked, torch.full_like(bases, MASK_ID), bases)
    ids = torch.cat([torch.full((batch, 1), CLS_ID), tokens, torch.full((batch, 1), EOS_ID)], 1)
    rows, cols = torch.nonzero(masked, as_tuple=True)
    return ids.to(device), rows.to(device), (cols + 1).to(device), bases[masked].to(device)


def per_base_loss(model, ids, rows, cols, truth) -> torch.Tensor:
    with torch.inference_mode():
        logits = model(ids).logits[rows, cols].float()
        return torch.nn.functional.cross_entropy(logits, truth, reduction="none")


def full_depth_section(args, device: torch.device, dtype: torch.dtype) -> dict:
    config = preset_config(args.preset, attn_backend=args.attn_backend)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = build_model(config, device="meta")
    model.to_empty(device=device)
    with torch.no_grad():  # random weights at the init scale, drawn on the device (7B: seconds, not minutes)
        model.init_weights()
    model = model.to(dtype).eval()
    batch, seq_len = args.scorer_batch, args.seq_len
    ids, rows, cols, truth = masked_windows(batch, seq_len, 7, device)

    def forward():
        with torch.inference_mode():
            model(ids, return_logits=False)

    seconds = median_seconds(forward, device, args.warmup, args.iters)
    n_params = count_parameters(config)
    tokens_per_s = batch * seq_len / seconds
    flops = flops_per_token(config, seq_len, training=False, n_params=n_params)
    peak = peak_tflops(device)
    result = dict(
        preset=args.preset,
        layers=config.num_hidden_layers,
        params=n_params,
        batch=batch,
        seq_len=seq_len,
        dtype=str(dtype).removeprefix("torch."),
        tokens_per_s=tokens_per_s,
        tflops=tokens_per_s * flops / 1e12,
        mfu=None if peak is None else tokens_per_s * flops / (peak * 1e12),
        peak_memory_gib=torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    )
    # hg38, both strands, 7 complementary-mask passes + 1 unmasked pass per window, stride half a window.
    windows_per_strand = HG38_BP / (seq_len / 2)
    tokens = 2 * windows_per_strand * (7 + 1) * seq_len
    result["hg38_gpu_hours"] = tokens / tokens_per_s / 3600
    try:
        result["fp8"] = fp8_agreement(model, ids, rows, cols, truth, device, args)
    except Exception as error:  # torchao's API moves between releases: keep the bf16 numbers regardless
        traceback.print_exc()
        result["fp8"] = dict(skipped=f"failed: {type(error).__name__}: {error}")
    model = None  # frees the weights before the next section (the closures above hold only the name)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def fp8_agreement(model, ids, rows, cols, truth, device, args) -> dict:
    """torchao's float8 (dynamic activation + weight) linears vs bf16 on the same windows."""
    try:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, quantize_
    except ImportError:
        return dict(skipped="torchao is not installed")
    if device.type != "cuda" or torch.cuda.get_device_capability(device) < (8, 9):
        return dict(skipped="float8 needs a CUDA device of compute capability 8.9 or newer")
    reference = per_base_loss(model, ids, rows, cols, truth)
    quantize_(model.bert.encoder, Float8DynamicActivationFloat8WeightConfig())
    quantized = per_base_loss(model, ids, rows, cols, truth)

    def forward():
        with torch.inference_mode():
            model(ids, return_logits=False)

    seconds = median_seconds(forward, device, args.warmup, args.iters)
    delta = (quantized - reference).abs()
    return dict(
        tokens_per_s=ids.numel() / seconds,
        mean_abs_delta_loss=float(delta.mean()),
        max_abs_delta_loss=float(delta.max()),
        mean_loss_bf16=float(reference.mean()),
    )


# --------------------------------------------------------------------------- the other scripts


def run_script(argv: list[str], timeout_s: int) -> dict:
    """Run a benchmark script as its own process; its output passes through, its JSON comes back."""
    out = ROOT / "benchmarks" / "out" / f"gpu_7b-{Path(argv[0]).stem}-{os.getpid()}-{time.monotonic_ns()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(ROOT / "benchmarks" / argv[0]), *argv[1:]]
    flag = "--json" if argv[0] == "gpu_pretrain.py" else "--out"
    print("$ " + " ".join(command + [flag, str(out)]), flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    completed = subprocess.run(command + [flag, str(out)], env=env, timeout=timeout_s, text=True)
    if completed.returncode != 0 or not out.exists():
        return dict(error=f"exit {completed.returncode}")
    return json.loads(out.read_text())


def scorer_section(args) -> dict:
    if args.smoke:
        argv = [
            "tracks_throughput.py",
            "--gpu",
            "--smoke",
            "--device",
            "cpu",
            "--layers",
            "2",
            "--iters",
            "1",
            "--warmup",
            "0",
            "--scorer-bp",
            "20000",
            "--passes",
            "7",
            "--batch-size",
            "2",
        ]
    else:
        argv = [
            "tracks_throughput.py",
            "--gpu",
            "--compile",
            "--layers",
            str(args.scorer_layers),
            "--scorer-bp",
            "1000000",
            "--passes",
            "7",
            "--attn-backend",
            args.attn_backend,
        ]
    return run_script(argv, args.script_timeout)


def pretrain_section(args) -> dict:
    base = ["gpu_pretrain.py"] + (["--device", "cpu", "--preset", "tiny"] if args.smoke else [])
    shallow = 2 if args.smoke else 4
    results = {
        f"{shallow} layers": run_script(
            base + ["--layers", str(shallow), "--variants", "eager,eager+ac" if args.smoke else "eager,compile"],
            args.script_timeout,
        )
    }
    for depth in args.pretrain_depths:  # deepest first: stop at the first that fits
        result = run_script(
            base + ["--layers", str(depth), "--variants", "eager+ac" if args.smoke else "compile+ac"],
            args.script_timeout,
        )
        results[f"{depth} layers"] = result
        if any("error" not in r for r in result.get("results", [])):
            break
    return results


# --------------------------------------------------------------------------- report


def pct(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def markdown(report: dict) -> str:
    lines = [
        f"## The 7B path on one GPU (`benchmarks/gpu_7b.py`), {report['date']}",
        "",
        f"Device: **{report['device']}**, torch {report['torch']}.",
        "",
    ]
    for name, value in report.items():
        if isinstance(value, dict) and set(value) == {"error"}:
            lines += [f"Section {name} failed: `{value['error']}`", ""]
    if "attention" in report and "rows" in report["attention"]:
        a = report["attention"]
        s = a["shape"]
        lines += [
            f"Attention at {s['batch']} × {s['heads']} × {s['seq_len']} × {s['head_dim']}:",
            "",
            "| backend | forward ms | TF/s | fwd+bwd ms | TF/s |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in a["rows"]:
            if "error" in r:
                lines.append(f"| {r['backend']} | {r['error']} | | | |")
            else:
                lines.append(
                    f"| {r['backend']} | {r['forward_ms']:.2f} | {r['forward_tflops']:.0f} | "
                    f"{r['forward_bwd_ms']:.2f} | {r['forward_bwd_tflops']:.0f} |"
                )
        lines += ["", f"`choose_attention_backend` picks **{a['chosen_by_attention_backends']}**.", ""]
    if "full7b" in report and "params" in report["full7b"]:
        f = report["full7b"]
        memory = "n/a" if f["peak_memory_gib"] is None else f"{f['peak_memory_gib']:.1f} GiB"
        lines += [
            f"Full depth ({f['layers']} layers, {f['params']:,} parameters, {f['dtype']}), forward of "
            f"{f['batch']} × {f['seq_len']} tokens: {f['tokens_per_s']:,.0f} tokens/s, {f['tflops']:.0f} TF/s, "
            f"MFU {pct(f['mfu'])}, peak memory {memory}.",
            f"hg38 projection (both strands, 7 passes + 1, stride {f['seq_len'] // 2}): "
            f"**{f['hg38_gpu_hours']:,.0f} GPU-hours** at this rate.",
            "",
        ]
        fp8 = f["fp8"]
        if "skipped" in fp8:
            lines += [f"FP8: skipped ({fp8['skipped']}).", ""]
        else:
            lines += [
                f"FP8 (torchao float8 linears): {fp8['tokens_per_s']:,.0f} tokens/s; |Δ loss| per masked base "
                f"mean {fp8['mean_abs_delta_loss']:.4f}, max {fp8['max_abs_delta_loss']:.4f} nats "
                f"(bf16 mean loss {fp8['mean_loss_bf16']:.3f}).",
                "",
            ]
    if "scorer" in report:
        s = report["scorer"]
        shown = {
            k: s[k]
            for k in ("layers", "tokens_per_s", "mfu", "scorer_over_bare_forward", "scorer_bases_per_s", "error")
            if k in s
        }
        lines += [f"Scorer, whole (goal: scorer_over_bare_forward ≤ 1.10): `{json.dumps(shown)}`", ""]
    if "pretrain" in report and set(report["pretrain"]) != {"error"}:
        lines += [
            "Pretraining step:",
            "",
            "| stack | variant | tokens/s | MFU | fwd+bwd MFU | peak GiB |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for stack, result in report["pretrain"].items():
            for r in result.get("results", [dict(variant="-", error=result.get("error", "?"))]):
                if "error" in r:
                    lines.append(f"| {stack} | {r['variant']} | {r['error']} | | | |")
                else:
                    lines.append(
                        f"| {stack} | {r['variant']} | {r['tokens_per_s']:,.0f} | {pct(r['mfu'])} | "
                        f"{pct(r['fwd_bwd_mfu'])} | {r['memory_gib']:.1f} |"
                    )
    return "\n".join(lines)


def write_report(report: dict, out: str | None) -> None:
    if out:
        Path(out).write_text(json.dumps(report, indent=2, default=str))
        Path(out).with_suffix(".md").write_text(markdown(report) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="every section with tiny shapes on the CPU (CI)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, from {', '.join(SECTIONS)}")
    parser.add_argument(
        "--attn-backend",
        default="sdpa",
        choices=ATTENTION_BACKENDS,
        help="backend of the full-depth forward and the scorer",
    )
    parser.add_argument(
        "--pretrain-depths",
        default="32,24,16,8",
        help="stacks to try for the deepest pretraining step that fits, deepest first",
    )
    parser.add_argument("--scorer-layers", type=int, default=4, help="depth of the scorer run (7B geometry)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--script-timeout", type=int, default=900, help="seconds for each sub-script")
    parser.add_argument("--out", help="write the report as JSON here (the markdown goes next to it as .md)")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    args.pretrain_depths = [int(d) for d in args.pretrain_depths.split(",")] if not args.smoke else [3]
    device = torch.device("cpu" if args.smoke else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here: run on a GPU, or use --smoke on a CPU")
    dtype = torch.float32 if args.smoke else torch.bfloat16
    args.preset = "tiny" if args.smoke else "7b"
    args.attn_shape = (1, 4, 128, 32) if args.smoke else (2, 32, 4000, 136)
    args.seq_len = 256 if args.smoke else 4000
    args.scorer_batch = 2 if args.smoke else 8
    if args.smoke:
        args.warmup, args.iters = 0, 1

    report = dict(
        date=datetime.date.today().isoformat(),
        torch=torch.__version__,
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (smoke)",
    )
    for section in sections:
        print(f"== {section}", flush=True)
        try:
            if section == "attention":
                report[section] = attention_section(args, device, dtype)
            elif section == "full7b":
                report[section] = full_depth_section(args, device, dtype)
            elif section == "scorer":
                report[section] = scorer_section(args)
            else:
                report[section] = pretrain_section(args)
        except Exception as error:  # one broken section must not cost the card time of the others
            traceback.print_exc()
            report[section] = dict(error=f"{type(error).__name__}: {error}")
            if device.type == "cuda":
                torch.cuda.empty_cache()
        write_report(report, args.out)  # after each section: a run cut short keeps what it measured
    print(markdown(report))
    failed = [name for name, value in report.items() if isinstance(value, dict) and "error" in value]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
