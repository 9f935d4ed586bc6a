"""Windows over contigs, and which bases each window scores.

A contig is covered by windows of ``window_bp`` (3998 nt: the model's 4000-token context minus
[CLS] and [EOS]) that start every ``stride_bp``; the last one ends at the contig end. Each base
is scored from the window whose centre it is nearest to, so the kept parts ("kept" below) of
neighbouring windows abut and every base is scored exactly once, always with at least
``(window_bp - stride_bp) / 2`` bases of context on both sides away from contig ends. A contig
shorter than a window is one window over the whole contig.

Chunks (the unit of one scatter job) are lists of regions ``(contig, start, end)``; their
boundaries fall on multiples of ``bin_bp`` (or a contig end), so embedding bins never straddle
two chunks, and a chunk scores exactly the windows whose kept part meets it. Windows depend only
on the contig, never on the chunk, so chunked and unchunked runs score the same windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dnafm_lib.core.errors import DnafmError

#: The model's 4000-token context minus [CLS] and [EOS].
WINDOW_BP = 3998


@dataclass(frozen=True)
class Window:
    """Window ``[start, end)`` of a contig; it scores bases ``[keep_start, keep_end)``."""

    contig: str
    start: int
    end: int
    keep_start: int
    keep_end: int


@dataclass(frozen=True)
class Region:
    """A half-open stretch ``[start, end)`` of one contig."""

    contig: str
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


def check_geometry(window_bp: int, stride_bp: int) -> None:
    if not 1 <= window_bp <= WINDOW_BP:
        raise DnafmError(f"tracks.window_bp {window_bp}: must be between 1 and {WINDOW_BP}")
    if not 1 <= stride_bp <= window_bp:
        raise DnafmError(f"tracks.stride_bp {stride_bp}: must be between 1 and window_bp ({window_bp})")


def window_starts(contig_bp: int, window_bp: int = WINDOW_BP, stride_bp: int = WINDOW_BP // 2) -> np.ndarray:
    """Start of every window over a contig: 0, stride, 2·stride, …, and contig_bp - window_bp last."""
    if contig_bp <= window_bp:
        return np.zeros(1, dtype=np.int64)
    last = contig_bp - window_bp
    starts = np.arange(0, last, stride_bp, dtype=np.int64)
    return np.append(starts, last)


def contig_windows(
    contig: str, contig_bp: int, window_bp: int = WINDOW_BP, stride_bp: int = WINDOW_BP // 2
) -> list[Window]:
    """Every window of one contig, with kept parts that abut and cover ``[0, contig_bp)``."""
    check_geometry(window_bp, stride_bp)
    if contig_bp <= 0:
        return []
    starts = window_starts(contig_bp, window_bp, stride_bp)
    ends = np.minimum(starts + window_bp, contig_bp)
    # Twice the centre, to stay in integers; a base b is nearest to the centre c when
    # |2b+1 - 2c| is smallest, so boundaries sit halfway between consecutive centres.
    centres2 = starts + ends
    bounds = (centres2[:-1] + centres2[1:]) // 4
    keep_starts = np.concatenate(([0], bounds))
    keep_ends = np.concatenate((bounds, [contig_bp]))
    return [
        Window(contig, int(s), int(e), int(ks), int(ke))
        for s, e, ks, ke in zip(starts, ends, keep_starts, keep_ends)
        if ke > ks
    ]


def windows_for_region(
    region: Region, contig_bp: int, window_bp: int = WINDOW_BP, stride_bp: int = WINDOW_BP // 2
) -> list[Window]:
    """The contig's windows whose kept part meets ``region``, with kept parts clipped to it.

    The same windows as ``contig_windows`` gives, but only those near the region are built: time
    and memory per chunk do not grow with the contig (a 250-Mb chromosome has 1.25 million
    windows at a 200-bp stride)."""
    check_geometry(window_bp, stride_bp)
    if contig_bp <= 0:
        return []
    last = max(0, contig_bp - window_bp)
    count = 1 if contig_bp <= window_bp else -(-last // stride_bp) + 1  # regular starts, then `last`

    def start_of(index: int) -> int:
        return last if index == count - 1 else index * stride_bp

    def centre2_of(index: int) -> int:
        start = start_of(index)
        return start + min(start + window_bp, contig_bp)

    # A window meets the region only if it overlaps it: these indices bound such windows.
    first = max(0, (region.start - window_bp) // stride_bp - 1)
    final = min(count - 1, region.end // stride_bp + 1)
    out = []
    for index in range(first, final + 1):
        start = start_of(index)
        keep_start = 0 if index == 0 else (centre2_of(index - 1) + centre2_of(index)) // 4
        keep_end = contig_bp if index == count - 1 else (centre2_of(index) + centre2_of(index + 1)) // 4
        if keep_end <= keep_start:
            continue
        keep_start, keep_end = max(keep_start, region.start), min(keep_end, region.end)
        if keep_end > keep_start:
            out.append(Window(region.contig, start, min(start + window_bp, contig_bp), keep_start, keep_end))
    return out


def plan_chunks(contig_lengths: Sequence[tuple[str, int]], chunk_bp: int, bin_bp: int) -> list[list[Region]]:
    """Cut contigs (in .fai order) into chunks of about ``chunk_bp``.

    A long contig is split at multiples of ``bin_bp``; short contigs are packed together until a
    chunk holds ``chunk_bp``. Every base of every contig lies in exactly one chunk.
    """
    if chunk_bp < bin_bp:
        raise DnafmError(f"tracks.chunk_bp {chunk_bp}: must be at least tracks.bin_bp ({bin_bp})")
    piece_bp = (chunk_bp // bin_bp) * bin_bp
    chunks: list[list[Region]] = []
    current: list[Region] = []
    filled = 0
    for contig, length in contig_lengths:
        start = 0
        while start < length:
            # Fill what room is left, cutting only at a bin boundary of this contig.
            take_bp = max(bin_bp, ((piece_bp - filled) // bin_bp) * bin_bp)
            end = min(length, start + take_bp)
            current.append(Region(contig, start, end))
            filled += end - start
            start = end
            if filled >= piece_bp:
                chunks.append(current)
                current, filled = [], 0
    if current:
        chunks.append(current)
    return chunks


def forward_tokens_per_bp(
    window_bp: int, stride_bp: int, passes: int, reverse_complement: bool, embeddings: bool, masking: str = "passes"
) -> float:
    """Model input tokens that scoring one base of a long contig costs.

    A window (``window_bp`` nt + [CLS] + [EOS]) starts every ``stride_bp``; each runs ``passes``
    masked forwards (twice with the reverse complement) and one more for the embeddings. With
    ``exact`` masking every base has a masked forward of its own (per strand) instead.
    """
    strands = 2 if reverse_complement else 1
    embedding = (window_bp + 2) * (1 if embeddings else 0) / stride_bp
    if masking == "exact":
        return (window_bp + 2) * strands + embedding
    return (window_bp + 2) * passes * strands / stride_bp + embedding


def chunk_bp_for_job_minutes(
    target_job_minutes: float, tokens_per_second: float, tokens_per_bp: float, bin_bp: int
) -> int:
    """bp a scoring job can take to run about ``target_job_minutes`` at ``tokens_per_second``.

    So a job spends its time scoring rather than loading the model (14.6 GB at 7B); rounded down
    to whole bins, at least one bin.
    """
    if target_job_minutes <= 0 or tokens_per_second <= 0:
        raise DnafmError(
            f"tracks.target_job_minutes ({target_job_minutes}) and tracks.tokens_per_second "
            f"({tokens_per_second}) must be positive"
        )
    bp = target_job_minutes * 60 * tokens_per_second / tokens_per_bp
    return max(bin_bp, int(bp // bin_bp) * bin_bp)
