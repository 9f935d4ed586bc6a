"""Tracks throughput: what scoring a genome costs over the model's own forward passes.

CPU mode (default; tiny model, synthetic genome with N runs):
  * bases scored per second, end to end (FASTA → masks → forwards → chunk files → bigWigs,
    embeddings, PCA, k-means, segments);
  * ratio of that end-to-end time to the bare model forward time over the same windows
    (same number of sequences, same lengths and batch size; goal ≤ 1.15);
  * bigWig writing time against pyBigWig's own addEntries of the same arrays (one call per
    contig, no NaN handling).

GPU mode (--gpu): the 7B geometry with fewer blocks (--layers), bf16 autocast, batches of framed
4000-token masked windows run the way the scorer runs them (encoder, then the MLM head at the
masked positions); prints tokens/s and forward MFU with 2N + 4·L·h·S FLOPs per token
(goal ≥ 60%). Needs nothing beyond PyTorch (this file imports the rest inside the CPU mode).

    PYTHONPATH=. python3 benchmarks/tracks_throughput.py            # CPU
    PYTHONPATH=. python3 benchmarks/tracks_throughput.py --gpu      # GPU, ~1 minute on an H100
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dnafm_lib.model.encoder import ATTENTION_BACKENDS  # noqa: E402

# Dense bf16 peak (TFLOP/s) by device name; --peak-tflops overrides.
PEAK_BF16_TFLOPS = {
    "H100 SXM": 989.0,
    "H100 80GB HBM3": 989.0,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H200": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
}


def peak_tflops(name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    if "H100" in name:
        return 989.0
    return None


# --------------------------------------------------------------------------- GPU mode


def gpu_benchmark(args) -> dict:
    from dnafm_lib.model.encoder import build_model, count_parameters, flops_per_token, preset_config
    from dnafm_lib.model.tokenizer import ACGT_IDS, CLS_ID, EOS_ID, MASK_ID

    device = torch.device(args.device or "cuda")
    # --smoke: the same code path with the tiny geometry, to check the script on a CPU.
    config = preset_config(
        "tiny" if args.smoke else "7b", num_hidden_layers=args.layers, attn_backend=args.attn_backend
    )
    model = build_model(config, device=device).eval()
    seq_len = 4000
    generator = torch.Generator(device="cpu").manual_seed(0)
    bases = torch.tensor(ACGT_IDS)[torch.randint(0, 4, (args.batch_size, seq_len - 2), generator=generator)]
    masked = torch.rand(args.batch_size, seq_len - 2, generator=generator) < 1 / args.passes
    tokens = torch.where(masked, torch.full_like(bases, MASK_ID), bases)
    input_ids = torch.cat(
        [torch.full((args.batch_size, 1), CLS_ID), tokens, torch.full((args.batch_size, 1), EOS_ID)], 1
    )
    input_ids = input_ids.to(device)
    rows, cols = torch.nonzero(masked, as_tuple=True)
    rows, cols = rows.to(device), (cols + 1).to(device)
    acgt = torch.tensor(ACGT_IDS, device=device)
    forward = model
    if args.compile:
        forward = torch.compile(model)

    def step():
        with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            hidden = forward(input_ids, return_logits=False).last_hidden_state
            logits = model.cls.predictions(hidden[rows, cols], model.bert.embeddings.word_embeddings.weight)
            return torch.softmax(logits.float().index_select(1, acgt), dim=-1)

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step()
    synchronize()
    start = time.perf_counter()
    for _ in range(args.iters):
        step()
    synchronize()
    seconds = time.perf_counter() - start
    tokens_per_s = args.batch_size * seq_len * args.iters / seconds
    n_params = count_parameters(config)
    flops = flops_per_token(config, seq_len, training=False, n_params=n_params)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke test)"
    peak = args.peak_tflops or peak_tflops(name)
    result = {
        "mode": "gpu",
        "device": name,
        "layers": args.layers,
        "hidden": config.hidden_size,
        "heads": config.num_attention_heads,
        "params": n_params,
        "batch": args.batch_size,
        "seq_len": seq_len,
        "attn_backend": args.attn_backend,
        "compiled": args.compile,
        "dtype": "bf16 autocast",
        "tokens_per_s": round(tokens_per_s),
        "tflops": round(tokens_per_s * flops / 1e12, 1),
        "bases_scored_per_s_at_7_passes_stride_1999": round(tokens_per_s / (args.passes + 1) * 1999 / 4000),
    }
    if peak:
        result["peak_tflops"] = peak
        result["mfu"] = round(tokens_per_s * flops / (peak * 1e12), 4)
    if args.scorer_bp:
        result.update(gpu_scorer(args, model, device, tokens_per_s, synchronize))
    return result


def gpu_scorer(args, model, device, bare_tokens_per_s: float, synchronize) -> dict:
    """The real scorer (masks, batches, head, per-base arrays) over a synthetic sequence."""
    import numpy as np

    from dnafm_lib.inference.tracks.scoring import ScoringSettings, WindowScorer
    from dnafm_lib.inference.tracks.tiling import Region

    rng = np.random.default_rng(0)
    seq = "".join(np.array(list("ACGT"))[rng.integers(0, 4, args.scorer_bp)])
    settings = ScoringSettings(
        window_bp=3998, stride_bp=1999, passes=args.passes, batch_size=args.batch_size, embedding_layer=-1
    )
    scorer = WindowScorer(model, settings, device)
    lengths = {"synthetic": len(seq)}
    scorer.score_regions([Region("synthetic", 0, 20_000)], lambda c, s, e: seq[s:e], lengths)  # warm-up
    synchronize()
    start = time.perf_counter()
    (scores,) = scorer.score_regions([Region("synthetic", 0, len(seq))], lambda c, s, e: seq[s:e], lengths)
    synchronize()
    seconds = time.perf_counter() - start
    n_windows = len(range(0, len(seq) - 3998, 1999)) + 1
    forward_tokens = n_windows * (args.passes + 1) * 4000
    scorer_tokens_per_s = forward_tokens / seconds
    return {
        "scorer_bp": len(seq),
        "scorer_s": round(seconds, 2),
        "scorer_bases_per_s": round(len(seq) / seconds),
        "scorer_tokens_per_s": round(scorer_tokens_per_s),
        "scorer_over_bare_forward": round(bare_tokens_per_s / scorer_tokens_per_s, 3),
        "scorer_all_bases_scored": bool(np.isfinite(scores.loss_nats).all()),
    }


# --------------------------------------------------------------------------- CPU mode


def synthetic_genome(path: Path, genome_bp: int, seed: int = 0) -> list[tuple[str, int]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    sizes = [("chr1", genome_bp * 6 // 10), ("chr2", genome_bp * 3 // 10), ("scaffold_3", genome_bp // 10)]
    with open(path, "w") as handle:
        for name, n in sizes:
            seq = np.array(list("ACGT"))[rng.integers(0, 4, n)]
            seq[n // 3 : n // 3 + n // 50] = "N"
            handle.write(f">{name}\n")
            text = "".join(seq)
            for i in range(0, n, 80):
                handle.write(text[i : i + 80] + "\n")
    return sizes


def bare_forward_seconds(model, fasta: Path, settings, chunk_bp: int) -> tuple[float, int]:
    """The model's forward over exactly the sequences the scorer runs (same lengths, batches)."""
    import numpy as np

    from dnafm_lib.data.indexed_fasta import open_fasta
    from dnafm_lib.inference.tracks.tiling import plan_chunks, windows_for_region
    from dnafm_lib.inference.tracks.writers import read_chrom_sizes

    sizes = read_chrom_sizes(str(fasta) + ".fai")
    lengths = dict(sizes)
    fa = open_fasta(fasta)
    sequences = []
    for regions in plan_chunks(sizes, chunk_bp, settings.bin_bp):
        for region in regions:
            for w in windows_for_region(region, lengths[region.contig], settings.window_bp, settings.stride_bp):
                seq = fa[w.contig][w.start : w.end]
                if set(seq.upper()) <= {"N"}:
                    continue
                per_window = settings.passes * (2 if settings.reverse_complement else 1)
                per_window += settings.embedding_layer is not None
                sequences += [w.end - w.start + 2] * per_window
    rng = np.random.default_rng(0)
    batches = [sequences[i : i + settings.batch_size] for i in range(0, len(sequences), settings.batch_size)]
    inputs = []
    for batch in batches:
        width = max(batch)
        ids = torch.from_numpy(rng.integers(5, 9, (len(batch), width)))
        mask = torch.zeros(len(batch), width, dtype=torch.bool)
        for row, n in enumerate(batch):
            mask[row, :n] = True
        inputs.append((ids, None if bool(mask.all()) else mask))
    with torch.inference_mode():
        start, cpu_start = time.perf_counter(), time.process_time()
        for ids, mask in inputs:
            model(ids, mask)
        return time.perf_counter() - start, time.process_time() - cpu_start, len(sequences)


def bigwig_write_ratio(tmp: Path, genome_bp: int) -> dict:
    import numpy as np
    import pyBigWig

    from dnafm_lib.inference.tracks.writers import BigWigWriter

    rng = np.random.default_rng(1)
    sizes = [("chr1", genome_bp * 6 // 10), ("chr2", genome_bp * 4 // 10)]
    arrays = {}
    for name, n in sizes:
        values = rng.random(n, dtype=np.float32)
        values[n // 4 : n // 4 + n // 100] = np.nan  # an N run
        arrays[name] = values
    start = time.perf_counter()
    with BigWigWriter(tmp / "ours.bw", sizes) as writer:
        for name, _ in sizes:
            writer.add_bases(name, 0, arrays[name])
    ours = time.perf_counter() - start
    start = time.perf_counter()
    bw = pyBigWig.open(str(tmp / "baseline.bw"), "w")
    bw.addHeader(sizes, maxZooms=10)
    for name, _ in sizes:
        bw.addEntries(name, 0, values=arrays[name].astype(np.float64), span=1, step=1)
    bw.close()
    baseline = time.perf_counter() - start
    return {
        "bigwig_bp": genome_bp,
        "bigwig_write_s": round(ours, 3),
        "pybigwig_addentries_s": round(baseline, 3),
        "bigwig_write_ratio": round(ours / baseline, 3),
    }


def cpu_benchmark(args) -> dict:
    import dnafm_lib
    from dnafm_lib.data.indexed_fasta import open_fasta
    from dnafm_lib.inference.tracks.one_shot import run_genome
    from dnafm_lib.inference.tracks.scoring import ScoringSettings

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = ScoringSettings(
        window_bp=args.window_bp,
        stride_bp=args.stride_bp,
        passes=args.passes,
        batch_size=args.batch_size,
        bin_bp=100,
        embedding_layer=-1,
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fasta = tmp / "genome.fa"
        synthetic_genome(fasta, args.genome_bp)
        open_fasta(fasta)
        torch.manual_seed(0)
        model_dir = tmp / "tiny"
        dnafm_lib.save_model(dnafm_lib.load_model("tiny"), model_dir)
        model = dnafm_lib.load_model(str(model_dir)).eval()
        # Warm up imports and kernels on a few windows so neither side pays them.
        import matplotlib.pyplot  # noqa: F401  (segment colours)
        import pyBigWig  # noqa: F401
        import sklearn.cluster  # noqa: F401
        import sklearn.decomposition  # noqa: F401

        from dnafm_lib.inference.tracks.score import score_chunk
        from dnafm_lib.inference.tracks.tiling import Region

        score_chunk(fasta, [Region("chr1", 0, 3 * args.window_bp)], model, settings, tmp / "warmup.npz")
        # Interleaved repeats; wall time and process CPU time (the latter suffers less from other
        # processes on a shared machine). The median repeat is reported.
        ratios, cpu_ratios, e2e_times, bare_times = [], [], [], []
        for repeat in range(args.repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            summary = run_genome(
                fasta,
                str(model_dir),
                tmp / f"run{repeat}",
                settings,
                chunk_bp=args.chunk_bp,
                n_clusters=4,
                device="cpu",
            )
            e2e, e2e_cpu = time.perf_counter() - start, time.process_time() - cpu_start
            bare, bare_cpu, n_sequences = bare_forward_seconds(model, fasta, settings, args.chunk_bp)
            e2e_times.append(e2e)
            bare_times.append(bare)
            ratios.append(e2e / bare)
            cpu_ratios.append(e2e_cpu / bare_cpu)
        best = sorted(range(args.repeats), key=lambda i: cpu_ratios[i])[args.repeats // 2]
        result = {
            "mode": "cpu",
            "model": "tiny",
            "threads": torch.get_num_threads(),
            "genome_bp": args.genome_bp,
            "scored_bp": summary["scored_bp"],
            "window_bp": args.window_bp,
            "stride_bp": args.stride_bp,
            "passes": args.passes,
            "batch_size": args.batch_size,
            "forward_sequences": n_sequences,
            "end_to_end_s": round(e2e_times[best], 2),
            "bare_forward_s": round(bare_times[best], 2),
            "bases_scored_per_s": round(summary["scored_bp"] / e2e_times[best]),
            "end_to_end_over_forward_wall": round(ratios[best], 3),
            "end_to_end_over_forward_cpu": round(cpu_ratios[best], 3),
            "wall_ratios_all": [round(r, 3) for r in ratios],
            "cpu_ratios_all": [round(r, 3) for r in cpu_ratios],
        }
        result.update(bigwig_write_ratio(tmp, args.bigwig_bp))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="GPU mode: 7B geometry, reduced depth, bf16")
    parser.add_argument("--device", help="GPU mode: the CUDA device (default cuda)")
    parser.add_argument("--layers", type=int, default=4, help="GPU mode: blocks of the 7B geometry to run")
    parser.add_argument("--attn-backend", default="sdpa", choices=ATTENTION_BACKENDS)
    parser.add_argument("--compile", action="store_true", help="GPU mode: torch.compile the model")
    parser.add_argument(
        "--scorer-bp",
        type=int,
        default=100_000,
        help="GPU mode: also run the real scorer over this many synthetic bp (0: skip)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="GPU mode's code path with the tiny geometry (with --device cpu)"
    )
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, help="GPU mode: dense bf16 peak for MFU (default: by device name)")
    parser.add_argument("--batch-size", type=int, help="sequences per forward (default: 8 GPU, 4 CPU)")
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--genome-bp", type=int, default=12_000, help="CPU mode: synthetic genome size")
    parser.add_argument("--window-bp", type=int, default=1000, help="CPU mode: window length")
    parser.add_argument("--stride-bp", type=int, default=500, help="CPU mode: window stride")
    parser.add_argument("--chunk-bp", type=int, default=5_000, help="CPU mode: chunk size")
    parser.add_argument(
        "--bigwig-bp", type=int, default=5_000_000, help="CPU mode: bp written for the bigWig comparison"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", help="also write the result JSON to this file")
    args = parser.parse_args(argv)
    if args.gpu:
        args.batch_size = args.batch_size or 8
        if not torch.cuda.is_available() and not (args.device or "").startswith("cpu"):
            print("tracks_throughput --gpu: no CUDA device", file=sys.stderr)
            return 1
        result = gpu_benchmark(args)
    else:
        args.batch_size = args.batch_size or 4
        result = cpu_benchmark(args)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
