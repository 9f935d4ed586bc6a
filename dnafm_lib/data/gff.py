"""GFF3 feature lines (plain, gzip, xz, bzip2 or zstd): the one reader the genomes, tracks and
fine-tuning stages share, and the check that an annotation belongs to the genome it is used with."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import IO, Collection, Iterator

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.compressed import open_text


class GffError(DnafmError):
    """A GFF3 line that is not a feature line of nine columns with integer coordinates."""


@dataclass(frozen=True)
class GffFeature:
    line_number: int
    seqid: str
    type: str
    start: int  # 0-based
    end: int  # exclusive (GFF3's 1-based inclusive end); start == end for a zero-length insertion site


def open_gff_text(path: str | os.PathLike) -> IO[str]:
    """Text of a GFF3, its compression told apart by its magic bytes rather than its name.

    A truncated or corrupt compressed file is a GffError naming the file when it is read.
    """
    return open_text(path, GffError)


def read_features(path: str | os.PathLike) -> Iterator[GffFeature]:
    """Every feature line up to an embedded ``##FASTA`` section; comments and blank lines skipped."""
    with open_gff_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            if line.startswith("##FASTA"):
                return  # embedded sequences follow; they are not features
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 9:
                raise GffError(
                    f"{path}: line {line_number}: expected 9 tab-separated GFF3 columns, found {len(fields)}"
                )
            try:
                start, end = int(fields[3]), int(fields[4])
            except ValueError:
                raise GffError(
                    f"{path}: line {line_number}: start/end {fields[3]!r}/{fields[4]!r} are not integers"
                ) from None
            if start < 1 or end < start - 1:
                raise GffError(f"{path}: line {line_number}: bad interval {start}..{end}")
            yield GffFeature(line_number, fields[0], fields[2], start - 1, end)


def _some(names: Collection[str], shown: int = 5) -> str:
    listed = list(names)
    return ", ".join(repr(name) for name in listed[:shown]) + (
        f", … ({len(listed)} in all)" if len(listed) > shown else ""
    )


def match_annotation(
    gff_path: str | os.PathLike,
    fasta_path: str | os.PathLike,
    contigs: Collection[str],
    seqids: Collection[str] | None = None,
) -> str | None:
    """Check that the annotation ``gff_path`` belongs to the genome whose records are ``contigs``.

    ``seqids`` are the annotation's seqids when the caller has read them (else the file is read).
    No seqid among the contigs is a GffError naming both files and a few names of each (the
    annotation is of another assembly or another naming: ``chr1`` against ``NC_000001.11``), as
    is an annotation without a feature line: either would give an all-zero result. When only some
    match, returns a warning line that counts and names the missing ones (their features are not
    used); None when all match.
    """
    if seqids is None:
        seqids = Counter(feature.seqid for feature in read_features(gff_path))
    if not seqids:
        raise GffError(f"{gff_path}: no feature lines (an annotation for {fasta_path} needs at least one)")
    contig_set = set(contigs)
    missing = [seqid for seqid in seqids if seqid not in contig_set]
    if len(missing) == len(seqids):
        raise GffError(
            f"{gff_path}: no seqid of the annotation is a record of {fasta_path} (annotation: {_some(seqids)}; "
            f"FASTA: {_some(contigs)}); is it the annotation of another assembly?"
        )
    if not missing:
        return None
    return (
        f"{gff_path}: {len(missing)} of {len(seqids)} seqids are not records of {fasta_path}, "
        f"their features are left out: {_some(missing)}"
    )
