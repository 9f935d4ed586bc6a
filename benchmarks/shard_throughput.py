"""Shard throughput against the decompression floor and a naive Biopython baseline.

Generates a multi-megabase gzip FASTA (soft-masked stretches, N runs, several contigs), then
times on the same file, in the same run:
  floor  `gzip -dc FILE > /dev/null`           (decompression alone)
  dnafm  dnafm_lib.data.shards.write_genome_shards  (decompress, validate, tokenize, window, write)
  naive  Bio.SeqIO.parse + str.translate       (the obvious per-record string approach)
and prints throughput ratios (higher is better for dnafm). Goal: dnafm >= 0.7 of the floor's
speed and several times the naive one.

    .venv/bin/python benchmarks/shard_throughput.py [--megabases 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dnafm_lib.data.shards import DEFAULT_WINDOW_NT, write_genome_shards  # noqa: E402
from dnafm_lib.model.tokenizer import BYTE_TO_ID  # noqa: E402


def generate_fasta(path: Path, megabases: int, seed: int = 0, line_nt: int = 80) -> int:
    """A gzip FASTA of ``megabases`` Mb in 8 contigs with lower-case and N stretches."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    total = 0
    with gzip.open(path, "wb", compresslevel=6) as handle:
        for contig in range(8):
            length = megabases * 1_000_000 // 8 + contig * 1001
            codes = letters[rng.integers(0, 4, size=length)]
            for start in rng.integers(0, length - 5000, size=length // 20000):  # soft-masked repeats
                codes[start : start + 3000] |= 0x20
            for start in rng.integers(0, length - 20000, size=2):  # assembly gaps
                codes[start : start + 15000] = ord("N")
            whole_lines = length // line_nt
            lines = np.empty((whole_lines, line_nt + 1), dtype=np.uint8)
            lines[:, :line_nt] = codes[: whole_lines * line_nt].reshape(whole_lines, line_nt)
            lines[:, line_nt] = ord("\n")
            text = lines.tobytes()
            if length % line_nt:
                text += codes[whole_lines * line_nt :].tobytes() + b"\n"
            handle.write(f">contig{contig} generated\n".encode() + text)
            total += length
    return total


def cpu_seconds() -> float:
    """CPU time of this process (all threads) plus its finished children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(function, *args) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    function(*args)
    return time.perf_counter() - wall, cpu_seconds() - cpu


def run_floor(path: Path) -> None:
    subprocess.run(["gzip", "-dc", str(path)], stdout=subprocess.DEVNULL, check=True)


def run_dnafm(path: Path, out_dir: Path) -> None:
    write_genome_shards(path, out_dir, "bench", window_nt=DEFAULT_WINDOW_NT, min_tail_nt=512)


def run_naive(path: Path, out_dir: Path) -> None:
    """Per record: SeqIO string, str.translate to id characters, slice into windows, np.save."""
    from Bio import SeqIO

    table = {code: int(BYTE_TO_ID[code]) for code in range(128)}
    rows = []
    with gzip.open(path, "rt") as handle:
        for record in SeqIO.parse(handle, "fasta"):
            ids = str(record.seq).translate(table).encode("latin-1")
            for begin in range(0, len(ids), DEFAULT_WINDOW_NT):
                row = np.zeros(DEFAULT_WINDOW_NT, dtype=np.uint8)
                window = np.frombuffer(ids[begin : begin + DEFAULT_WINDOW_NT], dtype=np.uint8)
                row[: window.size] = window
                rows.append(row)
    np.save(out_dir / "naive.npy", np.stack(rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabases", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5, help="rounds (each runs all three); ratios are medians")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shard-bench-"))
    try:
        fasta = work / "genome.fa.gz"
        nt = generate_fasta(fasta, args.megabases)
        print(f"input: {nt / 1e6:.1f} Mb, {fasta.stat().st_size / 1e6:.1f} MB gzip")
        # Interleaved, so a change in machine load hits all three alike; ratios per round, median.
        # CPU seconds are reported too: on a shared machine they vary far less than wall time.
        rounds = []
        for round_number in range(args.repeats):
            floor = timed(run_floor, fasta)
            ours = timed(run_dnafm, fasta, work / f"shards{round_number}")
            naive = timed(run_naive, fasta, work)
            rounds.append((floor, ours, naive))
            print(
                f"round {round_number + 1}: wall / CPU s: gzip -dc {floor[0]:.2f} / {floor[1]:.2f}, "
                f"dnafm shard {ours[0]:.2f} / {ours[1]:.2f}, naive SeqIO {naive[0]:.2f} / {naive[1]:.2f}"
            )
        names = ("gzip -dc (floor)", "dnafm shard", "naive SeqIO")
        for name, column in zip(names, zip(*rounds)):
            wall = float(np.median([w for w, _ in column]))
            cpu = float(np.median([c for _, c in column]))
            print(f"{name:18s} {wall:6.2f} s wall ({nt / wall / 1e6:6.1f} Mb/s), {cpu:6.2f} CPU-s  (medians)")
        for unit, k in (("wall", 0), ("CPU", 1)):
            floor_ratio = float(np.median([f[k] / o[k] for f, o, _ in rounds]))
            naive_ratio = float(np.median([n[k] / o[k] for _, o, n in rounds]))
            print(
                f"{unit:4s} throughput ratio: dnafm / floor {floor_ratio:.2f} (goal >= 0.7), dnafm / naive {naive_ratio:.2f}"
            )
        print(f"load average: {open('/proc/loadavg').read().split()[0]} on {os.cpu_count()} CPUs")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
