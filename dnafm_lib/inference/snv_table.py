"""Every possible SNV of a genome with the model's score: a sorted, tabix-indexed table.

Built from the per-base probabilities the tracks passes already computed (no extra forward):
for each scored base whose reference is A/C/G/T, one row per other base,

    chrom  pos (1-based)  ref  alt  llr  llr_z

``llr`` = ln P(alt) − ln P(ref) under masking, natural log; with ``reverse_complement`` the
probabilities are the strand average the tracks hold.

``llr_z`` is the llr as a z-score among the genome's SNVs of the same class: the reference
trinucleotide (base before, ref, base after) and the alternative base, 192 classes. The raw llr
mixes how surprising this change is with what every model expects of its kind (a C→T next to a G
is common in most genomes) on a scale that differs between models; within its class, the z-score
keeps only the first, so tables of different genomes and models compare. A z-score rather than a
rank because two streaming passes (count, sum and sum of squares per class) give it with memory
flat in genome size, and it keeps the llr's sign and spacing. A base at a contig end or next to
an N has no trinucleotide: its ``llr_z`` is ``.``.

Both values are written with 3 significant digits (``%.3g``): a row is ~35 bytes of text, and
~9·10⁹ rows for hg38 come to ~67 GB bgzipped (21.6 bytes per bp measured on the demo, see
benchmarks/RESULTS.md); ``tracks.outputs`` leaves the table out where that is too much.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from dnafm_lib.core.atomic import atomic_path, sweep_stale
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.genomes import BgzfWriter

BASES = "ACGT"
COLUMNS = ("chrom", "pos", "ref", "alt", "llr", "llr_z")
FORMAT_VERSION = 1
# zlib level 6: 19% smaller than level 1 on the demo's tables (21.6 against 26.5 bytes per bp)
# for 4× the compression time, which stays a small part of formatting the rows
TABLE_ZLIB_LEVEL = 6
#: the class of an SNV: trinucleotide (64) × alternative base (4; the reference's own slot unused)
N_CLASSES = 64 * 4
# A probability the float32 softmax rounded to 0 would give an infinite llr; this floor keeps
# every value finite (ln of it ≈ −87, far beyond any real score).
_PROB_FLOOR = float(np.finfo(np.float32).tiny)
_BASE_CODE = np.full(256, -1, dtype=np.int8)
for _i, _b in enumerate(BASES):
    _BASE_CODE[ord(_b)] = _i
    _BASE_CODE[ord(_b.lower())] = _i


@dataclass
class RegionProbs:
    """One scored region: its contig, 0-based start, reference bases and (n, 4) A/C/G/T probabilities."""

    contig: str
    start: int
    ref: bytes
    probs: np.ndarray  # (n, 4) float32, NaN where not scored
    flanks: tuple[int, int] = (0, 0)  # context bases at each end that are not part of the region


@dataclass
class RegionSnvs:
    """The SNVs of one region, three per scored A/C/G/T base, in position then A/C/G/T order."""

    pos: np.ndarray  # 1-based, int64
    ref: np.ndarray  # base codes 0..3
    alt: np.ndarray  # base codes 0..3
    llr: np.ndarray  # float64
    klass: np.ndarray  # 0..N_CLASSES-1, or -1 without a trinucleotide


def region_snvs(region: RegionProbs) -> RegionSnvs:
    """Every SNV of a region with its llr and class (vectorised)."""
    codes = _BASE_CODE[np.frombuffer(region.ref, dtype=np.uint8)].astype(np.int64)
    probs = np.asarray(region.probs, dtype=np.float64)
    if len(codes) != len(probs):
        raise DnafmError(
            f"{region.contig}:{region.start}: {len(codes)} reference bases but {len(probs)} probability rows"
        )
    keep = np.flatnonzero((codes >= 0) & ~np.isnan(probs).any(axis=1))
    ref = codes[keep]
    logp = np.log(np.maximum(probs[keep], _PROB_FLOOR))
    # the three other bases of each position, in A/C/G/T order
    others = np.array([[b for b in range(4) if b != r] for r in range(4)], dtype=np.int64)
    alt = others[ref]  # (k, 3)
    llr = np.take_along_axis(logp, alt, axis=1) - logp[np.arange(len(keep)), ref][:, None]
    left = np.full(len(codes), -1, dtype=np.int64)
    right = np.full(len(codes), -1, dtype=np.int64)
    left[1:], right[:-1] = codes[:-1], codes[1:]
    # the first and last base of a region: their neighbour lies outside it (regions abut only
    # inside a contig's chunks; the caller passes the flanking bases when it has them)
    trinucleotide = np.where((left[keep] >= 0) & (right[keep] >= 0), left[keep] * 16 + ref * 4 + right[keep], -1)
    klass = np.where(trinucleotide[:, None] >= 0, trinucleotide[:, None] * 4 + alt, -1)
    return RegionSnvs(
        pos=np.repeat(region.start + keep + 1, 3),
        ref=np.repeat(ref, 3),
        alt=alt.reshape(-1),
        llr=llr.reshape(-1),
        klass=klass.reshape(-1),
    )


class ClassStats:
    """Count, sum and sum of squares of the llr per class; then each class's mean and SD."""

    def __init__(self) -> None:
        self.count = np.zeros(N_CLASSES, dtype=np.float64)
        self.total = np.zeros(N_CLASSES, dtype=np.float64)
        self.squares = np.zeros(N_CLASSES, dtype=np.float64)

    def add(self, snvs: RegionSnvs) -> None:
        known = snvs.klass >= 0
        klass, llr = snvs.klass[known], snvs.llr[known]
        self.count += np.bincount(klass, minlength=N_CLASSES)
        self.total += np.bincount(klass, weights=llr, minlength=N_CLASSES)
        self.squares += np.bincount(klass, weights=llr * llr, minlength=N_CLASSES)

    def mean_sd(self) -> tuple[np.ndarray, np.ndarray]:
        """Per class; SD NaN where a class has fewer than two SNVs or no spread (z undefined)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.total / self.count
            variance = (self.squares - self.count * mean * mean) / (self.count - 1)
        sd = np.sqrt(np.clip(variance, 0.0, None))
        sd[(self.count < 2) | ~(sd > 1e-12)] = np.nan
        return mean, sd


def z_scores(snvs: RegionSnvs, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Each SNV's llr standardised within its class; NaN without a class."""
    z = np.full(len(snvs.llr), np.nan)
    known = snvs.klass >= 0
    z[known] = (snvs.llr[known] - mean[snvs.klass[known]]) / sd[snvs.klass[known]]
    return z


def format_rows(contig: str, snvs: RegionSnvs, z: np.ndarray) -> bytes:
    """The table's text lines for one region."""
    # plain lists, not numpy scalars: formatting numpy scalars one by one is 3× slower
    llr_text = [f"{v:.3g}" for v in snvs.llr.tolist()]
    z_text = ["." if v != v else f"{v:.3g}" for v in z.tolist()]  # v != v: NaN, no class
    prefix = f"{contig}\t"
    rows = zip(snvs.pos.tolist(), snvs.ref.tolist(), snvs.alt.tolist(), llr_text, z_text)
    return "".join([f"{prefix}{p}\t{BASES[r]}\t{BASES[a]}\t{v}\t{w}\n" for p, r, a, v, w in rows]).encode()


def header_lines(meta: dict) -> list[str]:
    """The ``##`` lines (what made the table, what the columns mean) and the column line."""
    lines = [f"##dnafm_snv_table={FORMAT_VERSION}"]
    lines += [f"##{key}={json.dumps(value) if not isinstance(value, str) else value}" for key, value in meta.items()]
    lines += [
        "##llr=ln P(alt) - ln P(ref), natural log, masked-LM probabilities of the tracks passes",
        "##llr_z=z-score of llr among this genome's SNVs of the same reference trinucleotide and alt ('.' at contig ends and next to N)",
        "##precision=3 significant digits",
        "#" + "\t".join(COLUMNS),
    ]
    return lines


def write_snv_table(
    regions: Callable[[], Iterable[RegionProbs]],
    out_path: str | os.PathLike,
    meta: dict,
    per_region: Callable[[RegionProbs, RegionSnvs], None] | None = None,
) -> dict:
    """Write ``out_path`` (bgzip) and ``out_path.tbi`` from the regions, in their order (.fai order).

    ``regions`` is a function returning a fresh iterator of :class:`RegionProbs` (it is read
    twice: class statistics, then rows), so memory stays flat in genome size. Both files are
    written under temporary names and renamed when whole, the index last: a table with its
    ``.tbi`` beside it is complete. ``per_region`` sees each region's SNVs as they are written
    (the min-LLR track is drawn from them).
    """
    import pysam

    out_path = Path(out_path)
    index_path = Path(f"{out_path}.tbi")
    stats = ClassStats()
    for region in regions():
        stats.add(region_snvs(region))
    mean, sd = stats.mean_sd()
    sweep_stale(index_path)
    n_rows = 0
    with atomic_path(out_path) as tmp:
        with BgzfWriter(tmp, level=TABLE_ZLIB_LEVEL) as writer:
            writer.write(("\n".join(header_lines(meta)) + "\n").encode())
            last = ("", 0)  # contig and 1-based position of the last row written
            for region in regions():
                snvs = region_snvs(region)
                if per_region is not None:
                    per_region(region, snvs)
                if not len(snvs.pos):
                    continue
                if region.contig == last[0] and snvs.pos[0] <= last[1]:
                    raise DnafmError(f"{out_path}: regions out of order at {region.contig}:{region.start}")
                last = (region.contig, int(snvs.pos[-1]))
                writer.write(format_rows(region.contig, snvs, z_scores(snvs, mean, sd)))
                n_rows += len(snvs.llr)
        try:
            pysam.tabix_index(str(tmp), seq_col=0, start_col=1, end_col=1, meta_char="#", force=True)
        except (OSError, ValueError) as exc:
            raise DnafmError(f"{out_path}: cannot index the SNV table ({exc})") from None
        tmp_index = Path(f"{tmp}.tbi")
    # atomic_path renamed the table into place; its index follows (newer than the table, as tabix wants)
    os.replace(tmp_index, index_path)
    return {"file": out_path.name, "rows": n_rows, "classes_with_z": int(np.isfinite(sd).sum())}


def read_table_meta(path: str | os.PathLike) -> dict:
    """The ``##key=value`` lines of a table's header (model, settings, …)."""
    import pysam

    try:
        with pysam.TabixFile(str(path)) as table:
            header = list(table.header)
    except (OSError, ValueError) as exc:
        raise DnafmError(f"{path}: not a tabix-indexed SNV table ({exc})") from None
    meta = {}
    for line in header:
        if line.startswith("##") and "=" in line:
            key, _, value = line[2:].partition("=")
            meta[key] = value
    if "dnafm_snv_table" not in meta:
        raise DnafmError(f"{path}: not a dnafm SNV table (no ##dnafm_snv_table header line)")
    return meta


#: rows of probabilities read from the bigWigs at a time: memory flat in contig length
SLICE_BP = 1_000_000


def bigwig_regions(
    prob_bigwigs: dict[str, str | os.PathLike], fasta, slice_bp: int = SLICE_BP
) -> Iterator[RegionProbs]:
    """The genome's probabilities from the tracks' ``prob_{A,C,G,T}.bw``, in ``.fai`` order, by slices.

    The bigWigs store the scorer's float32 probabilities as they were (NaN-free runs only), so the
    table equals one built from the chunk files; each slice carries one flanking base each side,
    so classes never depend on where slices are cut.
    """
    import pyBigWig

    handles = {base: pyBigWig.open(str(prob_bigwigs[base])) for base in BASES}
    try:
        for contig, length in handles["A"].chroms().items():
            if contig not in fasta:
                raise DnafmError(f"{prob_bigwigs['A']}: contig {contig!r} is not in the genome FASTA")
            for start in range(0, length, slice_bp):
                end = min(start + slice_bp, length)
                probs = np.stack(
                    [_bigwig_values(handles[b], contig, start, end, prob_bigwigs[b]) for b in BASES], axis=1
                )
                yield _with_flanks(contig, start, end, probs, fasta)
    finally:
        for handle in handles.values():
            handle.close()


def _bigwig_values(handle, contig: str, start: int, end: int, path) -> np.ndarray:
    if contig not in handle.chroms() or handle.chroms()[contig] <= start:
        raise DnafmError(f"{path}: no contig {contig!r} of the length the other probability tracks have")
    return np.asarray(handle.values(contig, start, end, numpy=True), dtype=np.float32)


def min_llr_per_base(region: RegionProbs, snvs: RegionSnvs) -> tuple[int, np.ndarray]:
    """The lowest llr of each base's three SNVs (its most damaging change), NaN where it has none.

    Returns the region's start and values without its flanking context bases.
    """
    values = np.full(len(region.ref), np.nan, dtype=np.float32)
    if len(snvs.llr):
        values[snvs.pos[::3] - 1 - region.start] = snvs.llr.reshape(-1, 3).min(axis=1)
    left, right = region.flanks
    return region.start + left, values[left : len(values) - right]


def chunk_regions(chunk_paths: Sequence[str | os.PathLike], fasta) -> Iterator[RegionProbs]:
    """The scored regions of a genome's chunk files, with their reference bases from ``fasta``.

    The first and last base of a region get their trinucleotide from the FASTA's neighbours, so
    a class never depends on where chunks were cut (chunked and unchunked tables are equal).
    """
    from dnafm_lib.inference.tracks.chunk_arrays import load_chunk

    for path in chunk_paths:
        chunk = load_chunk(path, bin_means=False)
        probs = np.stack([chunk.per_base[f"prob_{b}"] for b in BASES], axis=1)
        for i, region in enumerate(chunk.regions):
            rows = probs[chunk.offsets[i] : chunk.offsets[i + 1]]
            yield _with_flanks(region.contig, region.start, region.end, rows, fasta)


def _with_flanks(contig: str, start: int, end: int, probs: np.ndarray, fasta) -> RegionProbs:
    """A region's bases with one flanking base each side (NaN probabilities there, so never a row)."""
    record = fasta[contig]
    lo, hi = max(start - 1, 0), min(end + 1, len(record))
    bases = str(record[lo:hi]).encode()
    padded = np.full((hi - lo, 4), np.nan, dtype=np.float32)
    padded[start - lo : start - lo + (end - start)] = probs
    return RegionProbs(contig, lo, bases, padded, flanks=(start - lo, hi - end))


def write_snv_outputs(
    regions: Callable[[], Iterable[RegionProbs]],
    chrom_sizes: Sequence[tuple[str, int]],
    table_path: str | os.PathLike | None,
    min_llr_path: str | os.PathLike | None,
    meta: dict,
) -> dict:
    """The all-SNV table and/or the min-LLR bigWig from a genome's regions (each ``None`` to skip)."""
    from dnafm_lib.inference.tracks.writers import BigWigWriter

    writer = BigWigWriter(min_llr_path, chrom_sizes) if min_llr_path is not None else None

    def add_min_llr(region: RegionProbs, snvs: RegionSnvs) -> None:
        if writer is not None:
            writer.add_bases(region.contig, *min_llr_per_base(region, snvs))

    try:
        if table_path is not None:
            info = write_snv_table(regions, table_path, meta, add_min_llr)
        else:  # the track alone: one pass, no class statistics
            for region in regions():
                add_min_llr(region, region_snvs(region))
            info = {}
    except BaseException as exc:
        if writer is not None:
            writer.abort(exc)
        raise
    if writer is not None:
        writer.close()
    return info


def write_snv_outputs_from_bigwigs(
    prob_bigwigs: dict[str, str | os.PathLike],
    fasta_path: str | os.PathLike,
    chrom_sizes: Sequence[tuple[str, int]],
    table_path: str | os.PathLike | None,
    min_llr_path: str | os.PathLike | None,
    meta: dict,
) -> dict:
    """The same outputs from a finished tracks folder's probability bigWigs (no chunk files needed)."""
    from dnafm_lib.data.indexed_fasta import open_fasta

    fasta = open_fasta(fasta_path)
    return write_snv_outputs(lambda: bigwig_regions(prob_bigwigs, fasta), chrom_sizes, table_path, min_llr_path, meta)
