"""Zero-shot in-silico mutagenesis and variant scoring with masked marginals.

For a position p with reference base r, the model reads the reference context centred on p
(``flank_bp`` bases each side, clipped at the contig ends) with p replaced by [MASK]; the
log-likelihood ratio of an alternative base a is

    LLR(p, a) = log p(a | context) − log p(r | context)

over the four nucleotides (the normaliser cancels, so it equals the difference of the A/C/G/T
logits). Negative values: the model finds the mutation unlikely. One forward pass per position
yields all three alternatives (``masked.masked_log_probs``). Positions whose reference is N
are not scored.

``score_variants`` averages the forward-strand LLR with the one from the reverse-complement
context (the mirrored position, complemented bases).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.indexed_fasta import fasta_lengths, open_fasta
from dnafm_lib.data.vcf import AlleleKind, check_vcf, classify_allele, iter_lines
from dnafm_lib.inference.masked import masked_log_probs
from dnafm_lib.inference.tracks.tiling import Region

BASES = "ACGT"
_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")
DEFAULT_FLANK_BP = 500


class MutagenesisError(DnafmError):
    """A region, variant or reference the scorer cannot use."""


def reverse_complement(sequence: str) -> str:
    return sequence.translate(_COMPLEMENT)[::-1]


def context_window(contig_length: int, position: int, flank_bp: int) -> tuple[int, int]:
    """[start, end) of the context centred on ``position``, clipped to the contig."""
    return max(0, position - flank_bp), min(contig_length, position + flank_bp + 1)


# ---------------------------------------------------------------------- regions → ISM


def read_regions(bed_path: str | Path, contig_lengths: dict[str, int]) -> list[Region]:
    """BED (first three columns) → regions checked against the FASTA, sorted and merged."""
    regions = []
    with open(bed_path) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            fields = line.rstrip("\n").split("\t")
            where = f"{bed_path}: line {line_number}"
            if len(fields) < 3:
                raise MutagenesisError(f"{where}: expected at least 3 tab-separated columns (chrom, start, end)")
            chrom = fields[0]
            try:
                start, end = int(fields[1]), int(fields[2])
            except ValueError:
                raise MutagenesisError(f"{where}: start/end {fields[1]!r}, {fields[2]!r} are not integers") from None
            if chrom not in contig_lengths:
                raise MutagenesisError(f"{where}: contig {chrom!r} is not in the FASTA")
            if not 0 <= start < end <= contig_lengths[chrom]:
                raise MutagenesisError(
                    f"{where}: {chrom}:{start}-{end} is empty or outside the contig (length {contig_lengths[chrom]})"
                )
            regions.append(Region(chrom, start, end))
    if not regions:
        raise MutagenesisError(f"{bed_path}: no regions")
    return _merged(regions, contig_lengths)


def _merged(regions: list[Region], contig_lengths: dict[str, int]) -> list[Region]:
    """Overlapping or touching regions merged (so each base is scored once), in FASTA order."""
    import pyranges as pr

    frame = pd.DataFrame(
        {
            "Chromosome": [r.contig for r in regions],
            "Start": [r.start for r in regions],
            "End": [r.end for r in regions],
        }
    )
    merged = pr.PyRanges(frame).merge().df
    order = {name: i for i, name in enumerate(contig_lengths)}
    found = [Region(str(row.Chromosome), int(row.Start), int(row.End)) for row in merged.itertuples()]
    return sorted(found, key=lambda r: (order[r.contig], r.start))


@dataclass
class RegionScores:
    """ISM of one region: ``llr[i, a]`` for position ``region.start + i`` and base BASES[a]."""

    region: Region
    reference: str  # upper-case reference bases of the region
    llr: np.ndarray  # (length, 4); 0 at the reference base; NaN where the reference is N


POSITIONS_PER_CHUNK = 4096  # windows held in memory at once (4096 × 1001 bp ≈ 4 MB)


def ism_region(model, fasta, region: Region, flank_bp: int = DEFAULT_FLANK_BP, batch_size: int = 32) -> RegionScores:
    """Masked-marginal LLRs for every position of ``region`` (``fasta``: a pyfaidx.Fasta)."""
    contig_length = len(fasta[region.contig])
    # one read of the region plus its flanks; each position's window is a slice of it
    span_start, span_end = max(0, region.start - flank_bp), min(contig_length, region.end + flank_bp)
    span = str(fasta[region.contig][span_start:span_end])
    reference = span[region.start - span_start : region.end - span_start].upper()
    scored = np.array([i for i, base in enumerate(reference) if base in BASES], dtype=np.int64)
    llr = np.full((len(reference), 4), np.nan)
    for first in range(0, scored.size, POSITIONS_PER_CHUNK):
        chunk = scored[first : first + POSITIONS_PER_CHUNK]
        windows, offsets = [], []
        for i in chunk:
            position = region.start + int(i)
            start, end = context_window(contig_length, position, flank_bp)
            windows.append(span[start - span_start : end - span_start])
            offsets.append(position - start)
        log_probs = masked_log_probs(model, windows, offsets, batch_size)
        ref_index = np.array([BASES.index(reference[i]) for i in chunk])
        llr[chunk] = log_probs - log_probs[np.arange(chunk.size), ref_index][:, None]
    return RegionScores(region, reference, llr)


def ism_table(scores: Iterable[RegionScores]) -> pd.DataFrame:
    """One row per position and alternative: chrom, pos (1-based), ref, alt, llr."""
    frames = []
    for s in scores:
        positions, alts = np.nonzero(~np.isnan(s.llr))
        ref = np.array(list(s.reference))[positions]
        alt = np.array(list(BASES))[alts]
        keep = ref != alt
        frames.append(
            pd.DataFrame(
                {
                    "chrom": s.region.contig,
                    "pos": s.region.start + positions[keep] + 1,
                    "ref": ref[keep],
                    "alt": alt[keep],
                    "llr": s.llr[positions[keep], alts[keep]],
                }
            )
        )
    return (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["chrom", "pos", "ref", "alt", "llr"])
    )


def write_ism_outputs(scores: list[RegionScores], contig_lengths: dict[str, int], out_dir: Path) -> list[Path]:
    """ism.tsv plus bigWigs: max_abs_llr.bw and llr_to_{A,C,G,T}.bw (one value per scored base)."""
    from dnafm_lib.inference.tracks.writers import BigWigWriter

    written = [out_dir / "ism.tsv"]
    ism_table(scores).to_csv(written[0], sep="\t", index=False, float_format="%.6g")
    tracks = {"max_abs_llr": lambda llr: np.abs(llr).max(axis=1)}
    for a, base in enumerate(BASES):
        tracks[f"llr_to_{base}"] = lambda llr, a=a: llr[:, a]
    for name, values_of in tracks.items():
        with BigWigWriter(out_dir / f"{name}.bw", list(contig_lengths.items())) as bigwig:
            for s in scores:  # regions are sorted in FASTA order and do not overlap; N bases are NaN
                bigwig.add_bases(s.region.contig, s.region.start, values_of(s.llr))
        written.append(out_dir / f"{name}.bw")
    return written


# ---------------------------------------------------------------------- VCF scoring


def variant_llrs(
    model, fasta, variants: list[tuple[str, int, str, tuple[str, ...]]], flank_bp: int, batch_size: int
) -> list[list[float | None]]:
    """Strand-averaged LLRs: per variant (chrom, 0-based pos, ref, alts), one value per alt.

    Only alleles ``classify_allele`` calls SNVs are scored; every other allele (insertion,
    deletion, MNV, symbolic, N) gets None, and a variant without an SNV costs no forward pass.
    """
    snvs = [[classify_allele(ref, alt) is AlleleKind.SNV for alt in alts] for _, _, ref, alts in variants]
    windows, offsets = [], []
    for (chrom, position, _, _), is_snv in zip(variants, snvs):
        if not any(is_snv):
            continue
        start, end = context_window(len(fasta[chrom]), position, flank_bp)
        forward = str(fasta[chrom][start:end])
        windows += [forward, reverse_complement(forward)]
        offsets += [position - start, end - 1 - position]
    log_probs = masked_log_probs(model, windows, offsets, batch_size) if windows else np.empty((0, 4))
    out = []
    row = 0
    for (_, _, ref, alts), is_snv in zip(variants, snvs):
        values: list[float | None] = [None] * len(alts)
        if any(is_snv):
            forward_lp, reverse_lp = log_probs[row], log_probs[row + 1]
            row += 2
            ref = ref.upper()
            for i, alt in enumerate(alts):
                if not is_snv[i]:
                    continue
                alt = alt.upper()
                forward = forward_lp[BASES.index(alt)] - forward_lp[BASES.index(ref)]
                reverse = (
                    reverse_lp[BASES.index(reverse_complement(alt))] - reverse_lp[BASES.index(reverse_complement(ref))]
                )
                values[i] = float((forward + reverse) / 2)
        out.append(values)
    return out


def score_vcf(
    model,
    fasta_path: str | Path,
    vcf_in: str | Path,
    vcf_out: str | Path,
    info_field: str = "DNAFM_LLR",
    flank_bp: int = DEFAULT_FLANK_BP,
    batch_size: int = 32,
    records_per_chunk: int = 512,
) -> dict[str, int]:
    """Copy ``vcf_in`` to ``vcf_out`` adding ``info_field`` (Number=A) to every scorable SNV.

    REF must match the FASTA (an error names the record otherwise). Alleles that
    ``dnafm_lib.data.vcf.classify_allele`` does not call SNVs (insertions, deletions, MNVs,
    symbolic alleles, N) get the missing value '.'; records with no SNV allele are copied
    unchanged. The VCF is checked line by line (``check_vcf``) before anything is written, so
    a bad line is one error naming it and no output. Lines are copied as text, so every other
    field stays byte for byte what it was (htslib cannot write back some records it reads,
    e.g. a ``<DEL>``). ``.gz`` output is bgzipped.
    """
    from dnafm_lib.core.atomic import atomic_path
    from dnafm_lib.data.genomes import BgzfWriter

    summary = check_vcf(vcf_in)
    if info_field in summary.info_ids:
        raise MutagenesisError(f"{vcf_in}: INFO field {info_field} already exists; choose another with --info-field")
    fasta = open_fasta(fasta_path)
    lengths = fasta_lengths(fasta)
    info_header = (
        f'##INFO=<ID={info_field},Number=A,Type=Float,Description="DNA FM masked-marginal log-likelihood ratio '
        f'log p(alt) - log p(ref), nats, averaged over both strands (context +/-{flank_bp} bp)">'
    )
    counts = {"records": 0, "scored_alleles": 0, "unscored_alleles": 0}
    lines = ((number, line) for number, line in iter_lines(vcf_in) if line)  # blank lines: skipped, as check_vcf does
    with atomic_path(vcf_out) as tmp:
        bgzip = str(vcf_out).endswith((".gz", ".bgz"))
        with BgzfWriter(tmp) if bgzip else open(tmp, "wb") as out:
            _copy_header(lines, out, info_header)
            while chunk := list(itertools.islice(lines, records_per_chunk)):
                records, variants = _parse_records(chunk, fasta, lengths, vcf_in, fasta_path)
                llrs = variant_llrs(model, fasta, variants, flank_bp, batch_size)
                _write_records(out, records, llrs, info_field, counts)
    return counts


def _copy_header(lines, out, info_header: str) -> None:
    """Copy the meta lines, adding ``info_header`` just before #CHROM; stops after #CHROM."""
    for _, line in lines:
        if line.startswith("#CHROM"):
            out.write(f"{info_header}\n{line}\n".encode())
            break
        out.write(f"{line}\n".encode())


def _parse_records(chunk, fasta, lengths: dict[str, int], vcf_in, fasta_path):
    """Split data lines into fields and (chrom, 0-based pos, ref, alts), checking each against the FASTA."""
    records, variants = [], []
    for line_number, line in chunk:
        fields = line.split("\t")
        chrom, pos, ref = fields[0], int(fields[1]), fields[3].upper()
        where = f"{vcf_in}: line {line_number}: record {chrom}:{pos}"
        if chrom not in lengths:
            raise MutagenesisError(f"{where}: contig {chrom!r} is not in {fasta_path}")
        if pos > lengths[chrom]:
            raise MutagenesisError(f"{where}: position is past the contig end ({lengths[chrom]})")
        genome_ref = str(fasta[chrom][pos - 1 : pos - 1 + len(ref)]).upper()
        if genome_ref != ref and "N" not in genome_ref:
            raise MutagenesisError(f"{where}: REF {fields[3]} but {fasta_path} has {genome_ref}")
        alts = () if fields[4] == "." else tuple(fields[4].split(","))
        records.append(fields)
        variants.append((chrom, pos - 1, ref, alts))
    return records, variants


def _write_records(out, records, llrs, info_field: str, counts: dict[str, int]) -> None:
    """Write each record with its LLRs appended to INFO (when any allele was scored), tallying ``counts``."""
    for fields, values in zip(records, llrs):
        counts["records"] += 1
        counts["scored_alleles"] += sum(v is not None for v in values)
        counts["unscored_alleles"] += sum(v is None for v in values)
        if any(v is not None for v in values):
            entry = f"{info_field}=" + ",".join("." if v is None else f"{v:.6g}" for v in values)
            fields[7] = entry if fields[7] == "." else f"{fields[7]};{entry}"
        out.write(("\t".join(fields) + "\n").encode())


def describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items())
