"""Small genomes and a saved tiny model for the tracks tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import dnafm_lib
from dnafm_lib.inference.tracks.scoring import ScoringSettings

#: Light settings: short windows so a test scores a few kb in about a second.
FAST = ScoringSettings(window_bp=300, stride_bp=150, passes=3, bin_bp=50, batch_size=8, embedding_layer=-1)


def random_bases(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array(list("ACGT"))[rng.integers(0, 4, n)]


def write_fasta(path: Path, records: list[tuple[str, str]], width: int = 60) -> Path:
    with open(path, "w") as handle:
        for name, seq in records:
            handle.write(f">{name}\n")
            for i in range(0, len(seq), width):
                handle.write(seq[i : i + width] + "\n")
    return path


def genome_with_gaps(seed: int = 0) -> list[tuple[str, str]]:
    """Contigs in non-sorted order: a long one with N runs, one shorter than a window, tiny ones."""
    rng = np.random.default_rng(seed)
    long = random_bases(rng, 2400)
    long[500:620] = "N"  # an N run inside a window
    long[1999:2001] = "N"
    long[2300:] = "N"  # N up to the contig end
    soft = random_bases(rng, 900)
    soft[100:200] = np.char.lower(soft[100:200])  # soft-masked repeat: scored like upper case
    return [
        ("chrZ", "".join(long)),
        ("chrB", "".join(random_bases(rng, 250))),  # shorter than a window
        ("chrA", "".join(soft)),
        ("allN", "N" * 80),
        ("chr_tiny", "".join(random_bases(rng, 7))),
    ]


def many_short_contigs(seed: int = 1, n: int = 40) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        bases = random_bases(rng, int(rng.integers(20, 500)))
        if i % 3 == 0:
            lo = int(rng.integers(0, bases.size))
            bases[lo : lo + int(rng.integers(1, 60))] = "N"
        records.append((f"scaffold_{n - i:03d}", "".join(bases)))
    return records


def save_tiny_model(path: Path) -> Path:
    import torch

    torch.manual_seed(0)
    dnafm_lib.save_model(dnafm_lib.load_model("tiny"), path)
    return path
