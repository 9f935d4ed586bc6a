"""One big genome on CPU: peak memory and time of prepare → shard → tracks at two genome sizes.

A synthetic single-chromosome genome (random bases, soft-masked stretches, N gaps; gzip, 80-nt
lines) of each size goes through the commands the workflow's rules run, each in its own process
(peak RSS from the kernel's rusage of that process):

  prepare   dnafm prepare-genome   (validate, bgzip, .fai/.gzi)
  shard     dnafm shard            (3998-nt windows, the NT cohort's setting)
  plan      dnafm tracks plan      (chunks of --chunk-bp)
  score     dnafm tracks score     (the first chunk and the last one — the far end of the bgzip
                                    file — with the `tiny` preset: a real model, 128 wide, 2 layers)

Scoring a whole 250-Mb chromosome with even the tiny model takes about a day on a shared CPU core,
so tracks are measured on a fixed number of chunks (2) at both sizes: memory and time per chunk
must not depend on the genome's size. Prepare and shard must scale linearly in time with flat
memory. Prints a table and the ratios (big / small) that say so.

    python benchmarks/big_genome.py --sizes-mb 25 250 --work /tmp/big_genome
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

LINE_NT = 80


def write_genome(path: Path, total_bp: int, seed: int = 3, block_bp: int = 8_000_000) -> None:
    """A gzip FASTA of one chromosome, written in blocks (memory bounded by block_bp)."""
    try:
        from isal import igzip as gz  # ISA-L: several times faster than zlib at level 1
    except ImportError:  # pragma: no cover
        import gzip as gz
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGTacgt", dtype=np.uint8)
    with gz.open(path, "wb", compresslevel=1) as out:
        out.write(b">chr1 synthetic big chromosome\n")
        written = 0
        while written < total_bp:
            size = min(block_bp, total_bp - written)
            size -= size % LINE_NT if size > LINE_NT and written + size < total_bp else 0
            codes = rng.integers(0, 4, size, dtype=np.uint8)
            bases = letters[codes]
            # A soft-masked repeat and an N gap per block, as assemblies have.
            if size > 20_000:
                start = int(rng.integers(0, size - 10_000))
                bases[start : start + 5_000] = letters[codes[start : start + 5_000] + 4]
                gap = int(rng.integers(0, size - 10_000))
                bases[gap : gap + 2_000] = ord("N")
            whole = size // LINE_NT
            lines = np.empty((whole, LINE_NT + 1), dtype=np.uint8)
            lines[:, :LINE_NT] = bases[: whole * LINE_NT].reshape(whole, LINE_NT)
            lines[:, LINE_NT] = ord("\n")
            out.write(lines.tobytes())
            if size % LINE_NT:
                out.write(bases[whole * LINE_NT :].tobytes() + b"\n")
            written += size


def measured(command: list[str], log: Path) -> tuple[float, float]:
    """Run `command`; return (wall seconds, peak RSS in MB) of that process tree's largest process."""
    started = time.monotonic()
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{log.read_text()[-3000:]}")
    return wall, usage.ru_maxrss / 1024


def run_size(size_mb: float, work: Path, args) -> list[dict]:
    dnafm = [sys.executable, "-m", "dnafm_lib.cli"]
    folder = work / f"{size_mb:g}mb"
    folder.mkdir(parents=True, exist_ok=True)
    fasta = folder / "input.fa.gz"
    total_bp = int(size_mb * 1e6)
    if not fasta.exists():
        started = time.monotonic()
        write_genome(fasta.with_suffix(".tmp"), total_bp)
        fasta.with_suffix(".tmp").rename(fasta)
        print(
            f"{size_mb:g} Mb: wrote {fasta} ({fasta.stat().st_size / 1e6:.0f} MB gzip) in "
            f"{time.monotonic() - started:.0f} s",
            flush=True,
        )
    genome_dir, shard_dir = folder / "genome", folder / "shards"
    for stale in (genome_dir, shard_dir):
        if stale.exists():
            subprocess.run(["rm", "-rf", str(stale)], check=True)
    rows = []

    def stage(name: str, command: list[str], unit_bp: int) -> None:
        wall, rss = measured(command, folder / f"{name}.log")
        rows.append({"size_mb": size_mb, "stage": name, "wall_s": wall, "rss_mb": rss, "bp": unit_bp})
        print(
            f"{size_mb:>6g} Mb  {name:12s} {wall:8.1f} s  {rss:8.0f} MB peak RSS  "
            f"{unit_bp / max(wall, 1e-9) / 1e6:6.2f} Mb/s",
            flush=True,
        )

    stage(
        "prepare",
        [*dnafm, "prepare-genome", "--genome", "big", "--out-dir", str(genome_dir), "--fasta", str(fasta)],
        total_bp,
    )
    stage(
        "shard",
        [
            *dnafm,
            "shard",
            "--fasta",
            str(genome_dir / "genome.fa.gz"),
            "--genome",
            "big",
            "--out-dir",
            str(shard_dir),
            "--window-nt",
            "3998",
            "--min-tail-nt",
            "512",
        ],
        total_bp,
    )
    plan = folder / "chunks.tsv"
    stage(
        "plan",
        [
            *dnafm,
            "tracks",
            "plan",
            "--fai",
            str(genome_dir / "genome.fa.gz.fai"),
            "--chunk-bp",
            str(args.chunk_bp),
            "--bin-bp",
            "100",
            "--out",
            str(plan),
        ],
        total_bp,
    )
    chunks = [line.split("\t")[0] for line in plan.read_text().splitlines()[1:] if line]
    for label, chunk in (("score_first", chunks[0]), ("score_last", chunks[-1])):
        stage(
            label,
            [
                *dnafm,
                "tracks",
                "score",
                "--fasta",
                str(genome_dir / "genome.fa.gz"),
                "--plan",
                str(plan),
                "--chunk",
                chunk,
                "--model",
                "tiny",
                "--out",
                str(folder / f"{label}.npz"),
                "--window-bp",
                "254",
                "--stride-bp",
                "200",
                "--passes",
                "2",
                "--batch-size",
                "16",
                "--device",
                "cpu",
                "--threads",
                "1",
            ],
            args.chunk_bp,
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=float, nargs=2, default=[25, 250], metavar=("SMALL", "BIG"))
    parser.add_argument("--chunk-bp", type=int, default=20_000, help="tracks chunk size (2 chunks are scored)")
    parser.add_argument("--work", default="/tmp/big_genome")
    args = parser.parse_args(argv)
    work = Path(args.work)
    rows = [row for size in args.sizes_mb for row in run_size(size, work, args)]
    small, big = args.sizes_mb
    print(
        f"\n| stage | {small:g} Mb: time s | peak RSS MB | {big:g} Mb: time s | peak RSS MB | time ratio "
        f"(size ratio {big / small:g}) | RSS ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    by = {(r["size_mb"], r["stage"]): r for r in rows}
    for name in ("prepare", "shard", "plan", "score_first", "score_last"):
        a, b = by[(small, name)], by[(big, name)]
        print(
            f"| {name} | {a['wall_s']:.1f} | {a['rss_mb']:.0f} | {b['wall_s']:.1f} | {b['rss_mb']:.0f} | "
            f"{b['wall_s'] / a['wall_s']:.2f} | {b['rss_mb'] / a['rss_mb']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
