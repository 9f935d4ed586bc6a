#!/usr/bin/env python3
"""BGZF writing of DNA: dnafm's BgzfWriter (ISA-L level-1 blocks) against Bio.bgzf at levels 1 and 6.

Writes the same synthetic FASTA text (random bases, soft-masked stretches, 80-nt lines) with each
writer, in this process, and prints seconds, output size and the speed ratio against Bio.bgzf
(level 1 is Bio.bgzf's fastest setting; 6, its default, is what a caller gets without asking).
Every output is read back with gzip and compared with the input.

    PYTHONPATH=. python3 benchmarks/bgzf_writers.py [--megabases 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dnafm_lib.data.genomes import BgzfWriter  # noqa: E402


def fasta_text(megabases: int, seed: int = 0, line_nt: int = 80) -> bytes:
    rng = np.random.default_rng(seed)
    codes = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=megabases * 1_000_000)]
    for start in rng.integers(0, codes.size - 5000, size=codes.size // 20000):  # soft-masked repeats
        codes[start : start + 3000] |= 0x20
    lines = codes[: codes.size // line_nt * line_nt].reshape(-1, line_nt)
    body = np.concatenate([lines, np.full((lines.shape[0], 1), ord("\n"), dtype=np.uint8)], axis=1)
    return b">chr1\n" + body.tobytes()


def write_dnafm(path: Path, text: bytes) -> None:
    with BgzfWriter(path) as writer:
        for start in range(0, len(text), 1 << 20):  # as write_bgzip_fasta: about a MiB at a time
            writer.write(text[start : start + (1 << 20)])


def write_biopython(level: int):
    def write(path: Path, text: bytes) -> None:
        from Bio import bgzf

        with bgzf.BgzfWriter(str(path), "wb", compresslevel=level) as writer:
            for start in range(0, len(text), 1 << 20):
                writer.write(text[start : start + (1 << 20)])

    return write


def best_seconds(write, path: Path, text: bytes, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        write(path, text)
        times.append(time.perf_counter() - started)
    with gzip.open(path, "rb") as handle:
        assert handle.read() == text, f"{path}: does not read back as the input"
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabases", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    text = fasta_text(args.megabases)
    writers = {
        "dnafm BgzfWriter (ISA-L level 1)": write_dnafm,
        "Bio.bgzf level 1": write_biopython(1),
        "Bio.bgzf level 6 (default)": write_biopython(6),
    }
    with tempfile.TemporaryDirectory(prefix="bgzf-bench-") as tmp:
        results = {}
        for index, (name, write) in enumerate(writers.items()):
            path = Path(tmp) / f"{index}.fa.gz"
            results[name] = (best_seconds(write, path, text, args.repeats), os.path.getsize(path))
    baseline = results["Bio.bgzf level 1"][0]
    print(f"{args.megabases} Mb of FASTA, best of {args.repeats}")
    print("| writer | seconds | MB written | speed vs Bio.bgzf level 1 |")
    print("| --- | --- | --- | --- |")
    for name, (seconds, size) in results.items():
        print(f"| {name} | {seconds:.2f} | {size / 1e6:.1f} | {baseline / seconds:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
