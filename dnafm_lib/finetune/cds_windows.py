"""The worked example's labelled data: genome windows inside a CDS (1) vs outside any CDS (0).

Labels come from the genome's GFF3 annotation (features of type CDS, either strand). Each
contig is cut into non-overlapping ``window_bp`` tiles; a tile wholly inside CDS is 1, a tile
touching no CDS is 0, and tiles that straddle a boundary or hold an N are dropped. Splits are
drawn per ``block_bp`` block of the genome rather than per window, so neighbouring (correlated)
windows never sit on both sides of the train/test line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dnafm_lib.core.errors import DnafmError

COLUMNS = ["genome", "chrom", "start", "end", "split", "label", "sequence"]


class AnnotationError(DnafmError):
    """A GFF3 file that cannot be read or does not describe the FASTA."""


# plain dataclass fields, like every config class here: same shape, different settings
@dataclass
class WindowOptions:
    window_bp: int = 100
    block_bp: int = 5000
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    seed: int = 0


def read_cds_intervals(gff_path: str | Path) -> dict[str, list[tuple[int, int]]]:
    """CDS features per seqid as 0-based half-open intervals (GFF3 is 1-based, inclusive)."""
    from dnafm_lib.data.gff import read_features

    intervals: dict[str, list[tuple[int, int]]] = {}
    for feature in read_features(gff_path):
        if feature.type != "CDS":
            continue
        if feature.end == feature.start:
            raise AnnotationError(f"{gff_path}: line {feature.line_number}: a CDS of zero length")
        intervals.setdefault(feature.seqid, []).append((feature.start, feature.end))
    return intervals


def cds_windows(fasta_path: str | Path, gff_path: str | Path, genome: str, options: WindowOptions) -> pd.DataFrame:
    """Labelled windows of one genome (columns: COLUMNS)."""
    from dnafm_lib.data.gff import match_annotation
    from dnafm_lib.data.indexed_fasta import open_fasta

    fasta = open_fasta(fasta_path)
    intervals = read_cds_intervals(gff_path)
    if not intervals:
        raise AnnotationError(f"{gff_path}: no CDS features")
    match_annotation(gff_path, fasta_path, list(fasta.keys()), seqids=intervals)  # CDS on other seqids: unused
    rng = np.random.default_rng(options.seed)
    frames = []
    for chrom in fasta.keys():
        sequence = str(fasta[chrom][:]).upper()
        length = len(sequence)
        in_cds = np.zeros(length + 1, dtype=np.int32)  # coverage via a difference array
        for start, end in intervals.get(chrom, []):
            in_cds[start] += 1
            in_cds[min(end, length)] -= 1
        covered = np.cumsum(in_cds)[:length] > 0
        n_windows = length // options.window_bp
        if n_windows == 0:
            continue
        tiles = covered[: n_windows * options.window_bp].reshape(n_windows, options.window_bp).sum(axis=1)
        starts = np.arange(n_windows) * options.window_bp
        label = np.where(tiles == options.window_bp, 1, np.where(tiles == 0, 0, -1))
        # one split per block: train, val or test with the configured fractions
        n_blocks = -(-length // options.block_bp)
        block_split = rng.choice(
            ["train", "val", "test"],
            size=n_blocks,
            p=[1 - options.val_fraction - options.test_fraction, options.val_fraction, options.test_fraction],
        )
        split = block_split[starts // options.block_bp]
        sequences = [sequence[s : s + options.window_bp] for s in starts]
        has_n = np.array(["N" in s for s in sequences])
        keep = (label >= 0) & ~has_n
        frames.append(
            pd.DataFrame(
                {
                    "genome": genome,
                    "chrom": chrom,
                    "start": starts[keep],
                    "end": starts[keep] + options.window_bp,
                    "split": split[keep],
                    "label": label[keep],
                    "sequence": np.array(sequences, dtype=object)[keep],
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def summarize(table: pd.DataFrame) -> str:
    counts = table.groupby(["split", "label"]).size().unstack(fill_value=0)
    parts = [f"{split}: {int(row.get(1, 0))} CDS / {int(row.get(0, 0))} non-CDS" for split, row in counts.iterrows()]
    return "; ".join(parts)


def annotated_genomes(genomes: pd.DataFrame, wanted: str | list[str] = "all") -> list[str]:
    """Genomes of a splits table that have an annotation: all of them, or the ``wanted`` ones (checked)."""
    annotated = [str(g) for g, a in zip(genomes["genome"], genomes["annotation"]) if isinstance(a, str) and a]
    if wanted == "all":
        if not annotated:
            raise AnnotationError("no genome of the splits table has an annotation (GFF3) to label windows with")
        return annotated
    missing = [g for g in wanted if g not in annotated]
    if missing:
        raise AnnotationError(
            f"config finetune.genomes: {', '.join(missing)} not in the splits table or without an annotation"
        )
    return list(wanted)
