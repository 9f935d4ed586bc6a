"""bigWig and BED output.

bigWig files are written with pyBigWig: the header lists every contig of ``chrom.sizes`` in
``.fai`` order, and values are added in that order. NaN (an N base, or a bin with no scored
base) is left out of the file, so a browser shows a gap rather than a zero. BED files are
sorted by contig name then start (``sort -k1,1 -k2,2n``, what ``bedtools sort`` gives).

A bigWig is checked whole before it gets its name (``check_bigwig``): libBigWig reports a write
that fails at close only on stderr, and crashes (SIGSEGV) when one fails while values are added,
so the writer also stops with an error while some room is left on the disk (``MIN_FREE_BYTES``).
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from dnafm_lib.core.atomic import atomic_open, atomic_path
from dnafm_lib.core.errors import DnafmError

#: Free space a bigWig's file system must keep while values are added: room for the blocks
#: written before the next check and, with half the file so far, the index and zoom levels of close.
MIN_FREE_BYTES = 8 << 20
#: Values added between two free-space checks (one statvfs per ~1 MB of compressed data at most).
VALUES_PER_SPACE_CHECK = 1 << 18
_BIGWIG_MAGIC = 0x888FFC26
_HEADER = struct.Struct("<IHHQQQHHQQIQ")  # the bbi header: magic, version, zoom levels, offsets, …
_ZOOM_HEADER = struct.Struct("<IIQQ")  # reduction, reserved, data offset, index offset
_RTREE_HEADER_BYTES = 48


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
        self._chrom_sizes = list(chrom_sizes)
        self._bases = 0  # bases given a value: the header's nBasesCovered must say the same
        self._unchecked = VALUES_PER_SPACE_CHECK  # check the disk before the first values
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

    def _before_adding(self, bases: int) -> None:
        self._bases += bases
        self._unchecked += bases
        if self._unchecked >= VALUES_PER_SPACE_CHECK:
            self._unchecked = 0
            self._check_room()

    def _check_room(self) -> None:
        try:
            stats = os.statvfs(self._tmp.parent)
            written = self._tmp.stat().st_size
        except OSError:
            return  # the writes themselves will say what is wrong
        if stats.f_blocks == 0:
            return  # a file system that reports no sizes (some FUSE mounts)
        free = stats.f_bavail * stats.f_frsize
        if free < MIN_FREE_BYTES + written // 2:
            raise DnafmError(
                f"{self.path}: no space left on device: {free // 1024} KiB free, too little to finish "
                "this bigWig; nothing was written"
            )

    def add_bases(self, contig: str, start: int, values: np.ndarray) -> None:
        """One value per base from ``start``; NaN bases are left out."""
        values = np.asarray(values, dtype=np.float32)
        for run_start, run_end in nan_free_runs(values):
            self._check_order(contig, start + run_start, start + run_end)
            self._before_adding(run_end - run_start)
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
        self._before_adding(int((ends - starts).sum()))
        self._bw.addEntries(
            [contig] * starts.size,
            starts.astype(np.int64).tolist(),
            ends=ends.astype(np.int64).tolist(),
            values=values.astype(np.float64).tolist(),
        )

    def close(self) -> None:
        try:
            with _c_stderr_captured() as complaint:
                self._bw.close()
            check_bigwig(self._tmp, self._chrom_sizes, self._bases, shown=self.path, complaint=" ".join(complaint))
        except BaseException as exc:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._atomic.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        try:
            with _c_stderr_captured():  # the file goes anyway: libBigWig's complaint would be noise
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


@contextlib.contextmanager
def _c_stderr_captured() -> Iterator[list[str]]:
    """Catch what C code prints on file descriptor 2 (libBigWig's close messages) into the
    yielded list, so a failure becomes one error line instead of stray noise."""
    caught: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            yield caught
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            caught.extend(sink.read().decode(errors="replace").strip().splitlines())


def check_bigwig(
    path: str | Path,
    chrom_sizes: Sequence[tuple[str, int]],
    bases: int,
    *,
    shown: str | Path | None = None,
    complaint: str = "",
) -> None:
    """Raise DnafmError unless ``path`` is a whole bigWig: every offset of its header and zoom
    headers inside the file, zoom levels and a data index when it holds values, the contigs of
    ``chrom_sizes`` and ``bases`` bases covered."""
    import pyBigWig

    shown = shown or path

    def cut_short(why: str) -> DnafmError:
        said = f"; libBigWig said: {complaint.splitlines()[0]}" if complaint else ""
        return DnafmError(f"{shown}: the bigWig was cut short while writing ({why}{said}); is the disk full?")

    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(_HEADER.size)
        if len(head) < _HEADER.size:
            raise cut_short(f"{size} bytes, shorter than a bigWig header")
        magic, _, n_zooms, chrom_tree, data, index, _, _, _, summary, _, _ = _HEADER.unpack(head)
        if magic != _BIGWIG_MAGIC:
            raise cut_short("no bigWig signature")
        if bases and (n_zooms == 0 or index == 0):
            raise cut_short("no zoom levels or data index")
        zoom_bytes = handle.read(n_zooms * _ZOOM_HEADER.size)
        if len(zoom_bytes) < n_zooms * _ZOOM_HEADER.size:
            raise cut_short(f"{size} bytes, shorter than its {n_zooms} zoom headers")
        zooms = list(_ZOOM_HEADER.iter_unpack(zoom_bytes))
        index_ends = [_rtree_root_end(handle, i) for i in [index] + [zoom[3] for zoom in zooms] if i]
    offsets = [chrom_tree, data, summary] + [zoom[2] for zoom in zooms] + index_ends
    if any(offset > size for offset in offsets):
        raise cut_short(f"{size} bytes, but its header points past the end")
    reader = pyBigWig.open(str(path))
    if reader is None:
        raise cut_short("it does not open")
    try:
        covered = reader.header()["nBasesCovered"]
        if reader.chroms() != dict(chrom_sizes) or covered != bases:
            raise cut_short(f"{covered} of {bases} bases, {len(reader.chroms())} of {len(chrom_sizes)} contigs")
    finally:
        reader.close()


def _rtree_root_end(handle, offset: int) -> int:
    """Where the root node of the R-tree index at ``offset`` ends (past the file's end if it is cut)."""
    handle.seek(offset + _RTREE_HEADER_BYTES)
    node = handle.read(4)  # is_leaf, reserved, item count
    if len(node) < 4:
        return 1 << 62  # not even its node header
    is_leaf, _, count = struct.unpack("<BBH", node)
    return offset + _RTREE_HEADER_BYTES + 4 + count * (32 if is_leaf else 24)


def sorted_bed_rows(rows: Iterable[Sequence]) -> list[Sequence]:
    return sorted(rows, key=lambda row: (str(row[0]), int(row[1]), int(row[2])))


def write_bed(path: str | Path, rows: Iterable[Sequence], header: str | None = None) -> None:
    """Write BED rows sorted by contig name then start; ``header`` becomes a ``track`` line."""
    with atomic_open(path) as handle:
        if header:
            handle.write(header.rstrip("\n") + "\n")
        for row in sorted_bed_rows(rows):
            handle.write("\t".join(str(field) for field in row) + "\n")
