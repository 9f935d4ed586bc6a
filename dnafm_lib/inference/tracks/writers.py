"""bigWig and BED output.

bigWig files are written with pyBigWig: the header lists every contig of ``chrom.sizes`` in
``.fai`` order, and values are added in that order. NaN (an N base, or a bin with no scored
base) is left out of the file, so a browser shows a gap rather than a zero. BED files are
sorted by contig name then start (``sort -k1,1 -k2,2n``, what ``bedtools sort`` gives).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from dnafm_lib.core.atomic import atomic_open, atomic_path
from dnafm_lib.core.errors import DnafmError


def read_chrom_sizes(path: str | Path) -> list[tuple[str, int]]:
    """``chrom.sizes`` or a ``.fai`` (first two columns), in file order."""
    sizes: list[tuple[str, int]] = []
    seen: set[str] = set()
    with open(path) as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            try:
                name, length = fields[0], int(fields[1])
            except (IndexError, ValueError):
                raise DnafmError(f"{path}: line {line_number}: expected 'name<TAB>length'") from None
            if name in seen:
                raise DnafmError(f"{path}: line {line_number}: duplicate contig {name!r}")
            seen.add(name)
            sizes.append((name, length))
    return sizes


def nan_free_runs(values: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of every run of non-NaN values."""
    present = ~np.isnan(values)
    edges = np.flatnonzero(np.diff(np.concatenate(([False], present, [False])).astype(np.int8)))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


class BigWigWriter:
    """Per-base (``add_bases``) or per-interval (``add_intervals``) values, in ``.fai`` order."""

    def __init__(self, path: str | Path, chrom_sizes: Sequence[tuple[str, int]]):
        import pyBigWig

        self._atomic = atomic_path(path)
        self._tmp = self._atomic.__enter__()
        self._order = {name: i for i, (name, _) in enumerate(chrom_sizes)}
        self._sizes = dict(chrom_sizes)
        self._last = (-1, 0)  # (contig rank, end) of the last entry: pyBigWig needs sorted input
        self.path = Path(path)
        self._bw = pyBigWig.open(str(self._tmp), "w")
        self._bw.addHeader(list(chrom_sizes), maxZooms=10)

    def _check_order(self, contig: str, start: int, end: int) -> None:
        if contig not in self._order:
            raise DnafmError(f"{self.path}: contig {contig!r} is not in the chromosome sizes")
        if end > self._sizes[contig]:
            raise DnafmError(f"{self.path}: {contig}:{start}-{end} runs past the contig end ({self._sizes[contig]})")
        rank = self._order[contig]
        if (rank, start) < self._last:
            raise DnafmError(f"{self.path}: {contig}:{start} written out of .fai order")
        self._last = (rank, end)

    def add_bases(self, contig: str, start: int, values: np.ndarray) -> None:
        """One value per base from ``start``; NaN bases are left out."""
        values = np.asarray(values, dtype=np.float32)
        for run_start, run_end in nan_free_runs(values):
            self._check_order(contig, start + run_start, start + run_end)
            # fixedStep entries (span 1, step 1): the compact form for per-base data
            self._bw.addEntries(
                contig, start + run_start, values=values[run_start:run_end].astype(np.float64), span=1, step=1
            )

    def add_intervals(self, contig: str, starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> None:
        """bedGraph-style entries on one contig; NaN values are left out."""
        keep = ~np.isnan(values)
        if not keep.any():
            return
        starts, ends, values = starts[keep], ends[keep], values[keep]
        self._check_order(contig, int(starts[0]), int(ends[-1]))
        self._bw.addEntries(
            [contig] * starts.size,
            starts.astype(np.int64).tolist(),
            ends=ends.astype(np.int64).tolist(),
            values=values.astype(np.float64).tolist(),
        )

    def close(self) -> None:
        self._bw.close()
        self._atomic.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        try:
            self._bw.close()
        finally:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)

    def __enter__(self) -> "BigWigWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)


def sorted_bed_rows(rows: Iterable[Sequence]) -> list[Sequence]:
    return sorted(rows, key=lambda row: (str(row[0]), int(row[1]), int(row[2])))


def write_bed(path: str | Path, rows: Iterable[Sequence], header: str | None = None) -> None:
    """Write BED rows sorted by contig name then start; ``header`` becomes a ``track`` line."""
    with atomic_open(path) as handle:
        if header:
            handle.write(header.rstrip("\n") + "\n")
        for row in sorted_bed_rows(rows):
            handle.write("\t".join(str(field) for field in row) + "\n")
