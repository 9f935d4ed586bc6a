"""GFF3 feature lines (plain or gzip): the one reader the genomes, tracks and fine-tuning stages share."""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from typing import IO, Iterator

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.fasta import is_gzip


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
    """Text of a GFF3, gzip told apart by its magic bytes rather than its name."""
    opener = gzip.open if is_gzip(path) else open
    return opener(path, "rt", encoding="utf-8", errors="replace", newline=None)


def read_features(path: str | os.PathLike) -> Iterator[GffFeature]:
    """Every feature line up to an embedded ``##FASTA`` section; comments and blank lines skipped.

    A truncated or corrupt gzip is a GffError naming the file.
    """
    try:
        yield from _features(path)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise GffError(f"{path}: truncated or corrupt gzip ({exc})") from None


def _features(path: str | os.PathLike) -> Iterator[GffFeature]:
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
