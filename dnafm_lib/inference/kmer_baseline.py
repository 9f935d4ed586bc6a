"""Bidirectional k-mer baselines: P(base | k bases left, k bases right), counted on training genomes.

The bar a masked-LM must clear: with k = 0 the model is base composition; each k above it sees
k more bases on each side, as a masked base's neighbours are seen by the encoder. Probabilities
are add-``pseudocount`` smoothed counts, ``(n(context, base) + a) / (n(context) + 4a)``. Counting
streams each contig in chunks (``count_contexts``), so memory is the count tables (4^(2k+1)
integers per k: 32 MB at k = 5), not the genomes. A position is scored only where its base and
all 2k neighbours are A/C/G/T (soft-masked lowercase counts as its base); elsewhere the loss is NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from dnafm_lib.core.errors import DnafmError

#: the k-mer orders one count pass can hold (4^(2k+1) cells each: 32 MB of int64 at k = 5)
MAX_K = 5
#: bases per streamed chunk when counting a FASTA
CHUNK_BP = 1 << 20
#: byte → 0..3 for A, C, G, T (either case), 4 for anything else
BASE_CODE = np.full(256, 4, dtype=np.uint8)
for _code, _base in enumerate("ACGT"):
    BASE_CODE[ord(_base)] = BASE_CODE[ord(_base.lower())] = _code
UNKNOWN = 4


def encode_bases(sequence: str | bytes | np.ndarray) -> np.ndarray:
    """Codes 0..3 (A, C, G, T) and 4 (N or anything else) of a sequence."""
    if isinstance(sequence, np.ndarray):
        return sequence.astype(np.uint8, copy=False)
    raw = sequence.encode("ascii", "replace") if isinstance(sequence, str) else bytes(sequence)
    return BASE_CODE[np.frombuffer(raw, dtype=np.uint8)]


def _contexts(buffer: np.ndarray, k: int, margin: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Context ids, centre codes and validity of the centres ``buffer[margin:len - margin]``.

    A context id reads the 2k neighbours left to right (k left, then k right) as base-4 digits.
    """
    stop = buffer.size - margin
    centres = buffer[margin:stop]
    valid = centres < UNKNOWN
    ids = np.zeros(centres.size, dtype=np.int64)
    for offset in [*range(-k, 0), *range(1, k + 1)]:
        neighbour = buffer[margin + offset : stop + offset]
        valid &= neighbour < UNKNOWN
        ids = ids * 4 + np.minimum(neighbour, 3)
    return ids, centres, valid


def _padded_buffers(chunks: Iterable[str | bytes | np.ndarray], margin: int) -> Iterator[np.ndarray]:
    """One contig's chunks as buffers whose centres ``[margin, len - margin)`` tile the contig exactly once.

    The contig is padded with ``margin`` unknown codes at each end, and each buffer starts with
    the last ``2 * margin`` codes of the one before, so contexts cross chunk boundaries."""
    pad = np.full(margin, UNKNOWN, dtype=np.uint8)
    carry = pad
    for chunk in chunks:
        codes = encode_bases(chunk)
        if codes.size == 0:
            continue
        buffer = np.concatenate([carry, codes])
        if buffer.size > 2 * margin:
            yield buffer
            carry = buffer[buffer.size - 2 * margin :]
        else:
            carry = buffer
    yield np.concatenate([carry, pad])


def count_contexts(contigs: Iterable[Iterable[str | bytes | np.ndarray]], ks: Sequence[int]) -> dict[int, np.ndarray]:
    """Counts ``(4**(2k), 4)`` of (context, centre base) for each k, over contigs given as chunk streams."""
    ks = sorted(set(ks))
    if not ks or ks[0] < 0 or ks[-1] > MAX_K:
        raise DnafmError(f"k-mer orders must lie in 0..{MAX_K}, got {list(ks)}")
    margin = ks[-1]
    counts = {k: np.zeros(4 ** (2 * k) * 4, dtype=np.int64) for k in ks}
    for chunks in contigs:
        for buffer in _padded_buffers(chunks, margin):
            for k in ks:
                ids, centres, valid = _contexts(buffer, k, margin)
                keys = ids[valid] * 4 + centres[valid]
                counts[k] += np.bincount(keys, minlength=counts[k].size)
    return {k: table.reshape(-1, 4) for k, table in counts.items()}


@dataclass
class KmerBaseline:
    """P(base | k left, k right) from counts, add-``pseudocount`` smoothed."""

    k: int
    counts: np.ndarray  # (4**(2k), 4) int64
    pseudocount: float = 1.0

    def __post_init__(self) -> None:
        if self.counts.shape != (4 ** (2 * self.k), 4):
            raise DnafmError(f"k = {self.k} needs counts of shape {(4 ** (2 * self.k), 4)}, got {self.counts.shape}")
        if self.pseudocount <= 0:
            raise DnafmError(f"the pseudocount must be positive, got {self.pseudocount}")
        smoothed = self.counts + self.pseudocount
        self._log_probs = np.log(smoothed / smoothed.sum(axis=1, keepdims=True))

    @property
    def training_positions(self) -> int:
        return int(self.counts.sum())

    def log_probs(self, sequence: str | bytes | np.ndarray) -> np.ndarray:
        """(n, 4) natural-log P(A, C, G, T) at each position of ``sequence``; NaN rows where the context is incomplete."""
        ids, _, valid = _contexts(np.concatenate([_pad(self.k), encode_bases(sequence), _pad(self.k)]), self.k, self.k)
        out = np.full((ids.size, 4), np.nan)
        out[valid] = self._log_probs[ids[valid]]
        return out

    def loss_nats(self, sequence: str | bytes | np.ndarray) -> np.ndarray:
        """−log P(true base) at each position of ``sequence`` (NaN where the base or its context is not A/C/G/T)."""
        codes = encode_bases(sequence)
        ids, centres, valid = _contexts(np.concatenate([_pad(self.k), codes, _pad(self.k)]), self.k, self.k)
        out = np.full(ids.size, np.nan)
        out[valid] = -self._log_probs[ids[valid], centres[valid]]
        return out


def _pad(k: int) -> np.ndarray:
    return np.full(k, UNKNOWN, dtype=np.uint8)


def fit_baselines(
    contigs: Iterable[Iterable[str | bytes | np.ndarray]], ks: Sequence[int], pseudocount: float = 1.0
) -> dict[int, KmerBaseline]:
    """One count pass over the training contigs, a baseline per k."""
    return {k: KmerBaseline(k, table, pseudocount) for k, table in count_contexts(contigs, ks).items()}


def orders_until_no_gain(held_out_loss_by_k: dict[int, float]) -> list[int]:
    """The orders 0, 1, … up to and including the first whose held-out loss is not below the one before."""
    kept = []
    for k in sorted(held_out_loss_by_k):
        kept.append(k)
        if len(kept) > 1 and not held_out_loss_by_k[k] < held_out_loss_by_k[kept[-2]]:
            break
    return kept


def best_order(held_out_loss_by_k: dict[int, float]) -> int:
    """The order with the lowest held-out loss among ``orders_until_no_gain``."""
    kept = orders_until_no_gain(held_out_loss_by_k)
    return min(kept, key=lambda k: held_out_loss_by_k[k])


def fasta_contig_chunks(fasta, chunk_bp: int = CHUNK_BP) -> Iterator[Iterator[str]]:
    """Each record of an ``open_fasta`` FASTA as a stream of ``chunk_bp`` pieces (memory: one chunk)."""
    for name, record in fasta.records.items():
        length = len(record)
        yield (fasta[name][start : min(start + chunk_bp, length)] for start in range(0, length, chunk_bp))


def composition_entropy_nats(counts: np.ndarray) -> float:
    """Entropy of the base frequencies in a (…, 4) count table, in nats."""
    totals = np.asarray(counts, dtype=np.float64).reshape(-1, 4).sum(axis=0)
    frequencies = totals[totals > 0] / totals.sum()
    return float(-(frequencies * np.log(frequencies)).sum()) if frequencies.size else math.nan
