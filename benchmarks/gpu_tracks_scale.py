"""GPU check of track scoring at cluster scale: every GPU of the node in one job, `batch_size: auto`
against a real out-of-memory error, and the throughput each job records.

Run on a CUDA machine:  python benchmarks/gpu_tracks_scale.py [--preset 300m] [--out results.json]
(``--device cpu --preset tiny --ranks 2`` is a quick smoke run of the same path on a CPU.)

1. `dnafm tracks score --batch-size auto`: the batch the probe found and the job's tokens/s.
2. The same chunk at that batch, fixed: per-base arrays byte-identical to 1; the embedding bin
   means' largest difference (CUDA's index_add_ adds with atomics, in no fixed order).
3. Twice that batch, fixed: the first batch runs out of memory for real; the job halves its batch
   and goes on (oom_backoffs ≥ 1); per-base arrays byte-identical to 2.
4. With N ≥ 2 GPUs (or ``--ranks``): `--ranks N` against one rank, per-base arrays byte-identical,
   tokens/s per GPU of each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dnafm_lib  # noqa: E402
from dnafm_lib.data.indexed_fasta import ensure_indexed  # noqa: E402
from dnafm_lib.inference.tracks.chunk_arrays import load_chunk  # noqa: E402

PER_BASE = ("mlm_loss", "entropy", "prob_A", "prob_C", "prob_G", "prob_T")


def score(work: Path, name: str, device: str, batch: str, ranks: int = 1, window: int = 3998) -> dict:
    out = work / f"{name}.npz"
    command = [sys.executable, "-m", "dnafm_lib.cli", "tracks", "score", "--fasta", str(work / "genome.fa")]
    command += ["--plan", str(work / "plan.tsv"), "--chunk", "chunk00000", "--model", str(work / "model")]
    command += ["--out", str(out), "--device", device, "--batch-size", batch, "--ranks", str(ranks)]
    command += ["--window-bp", str(window), "--stride-bp", str(window // 2)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode != 0:
        raise SystemExit(f"{name}: {done.stderr[-3000:]}")
    line = next((x for x in done.stderr.splitlines() if "throughput:" in x), "")
    return {"path": out, "throughput": load_chunk(out).provenance["throughput"], "log_line": line.strip()}


def compare(a: Path, b: Path) -> dict:
    with np.load(a) as x, np.load(b) as y:
        same = {name: x[name].tobytes() == y[name].tobytes() for name in PER_BASE}
        bins = float(np.max(np.abs(x["bin_mean"].astype(np.float32) - y["bin_mean"].astype(np.float32)), initial=0))
    return {"per_base_identical": all(same.values()), "arrays": same, "bin_mean_max_abs_diff": bins}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="300m")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--genome-bp", type=int, default=400_000)
    parser.add_argument("--window-bp", type=int, default=3998)
    parser.add_argument("--ranks", type=int, default=torch.cuda.device_count() if torch.cuda.is_available() else 1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rng = np.random.default_rng(0)
        (work / "genome.fa").write_text(">chr1\n" + "".join(rng.choice(list("ACGT"), args.genome_bp)) + "\n")
        ensure_indexed(work / "genome.fa")
        torch.manual_seed(0)
        dnafm_lib.save_model(dnafm_lib.load_model(args.preset), work / "model")
        subprocess.run(
            [sys.executable, "-m", "dnafm_lib.cli", "tracks", "plan", "--fai", str(work / "genome.fa.fai")]
            + ["--chunk-bp", str(args.genome_bp), "--out", str(work / "plan.tsv")],
            check=True,
        )
        results: dict = {"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu"}
        auto = score(work, "auto", args.device, "auto", window=args.window_bp)
        found = auto["throughput"]["batch_size"]
        results["auto"] = {"throughput": auto["throughput"], "log_line": auto["log_line"]}
        fixed = score(work, "fixed", args.device, str(found), window=args.window_bp)
        results["auto_vs_fixed"] = compare(auto["path"], fixed["path"])
        if args.device == "cuda" and found < 512:
            over = score(work, "over", args.device, str(2 * found), window=args.window_bp)
            results["oom_backoff"] = {"throughput": over["throughput"], **compare(over["path"], fixed["path"])}
        if args.ranks >= 2:
            many = score(work, "ranks", args.device, str(found), ranks=args.ranks, window=args.window_bp)
            results["ranks_vs_one"] = {"throughput": many["throughput"], **compare(many["path"], fixed["path"])}
            results["one_rank_throughput"] = fixed["throughput"]
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    checks = [results["auto_vs_fixed"]] + [results[k] for k in ("oom_backoff", "ranks_vs_one") if k in results]
    return 0 if all(c["per_base_identical"] for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
