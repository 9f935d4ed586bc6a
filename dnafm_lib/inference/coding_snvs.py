"""Every possible SNV of a genome's annotated CDS, labelled synonymous or not.

CDS features of a GFF3 that share an ``ID`` (else a ``Parent``) are one coding sequence, its
segments joined in transcript order (descending on the minus strand). The first segment's phase
(``.`` read as 0) says how many bases to skip before the first whole codon; a trailing partial
codon is dropped, as are codons with a base other than A/C/G/T. Each codon base is changed to
the three other bases and translated with the standard genetic code (Biopython's NCBI table 1):
synonymous when the amino acid (or stop) is unchanged. Bases and alleles are reported on the
genome's forward strand, so they line up with the tracks' ``prob_*`` arrays. A (position, allele)
that two overlapping genes label differently is dropped; one they agree on is kept once.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from dnafm_lib.data.gff import GffError, open_gff_text

BASES = "ACGT"
_COMPLEMENT = str.maketrans("ACGT", "TGCA")


@dataclass(frozen=True)
class CodingSequence:
    name: str
    contig: str
    strand: str  # "+" or "-"
    phase: int  # of the first segment in transcript order
    segments: tuple[tuple[int, int], ...]  # 0-based half-open, in transcript order


@dataclass
class CodingSnvs:
    """Parallel arrays, one row per (position, allele)."""

    contig: np.ndarray  # object, contig names
    position: np.ndarray  # int64, 0-based
    ref: np.ndarray  # int8, 0..3 (A, C, G, T) forward strand
    alt: np.ndarray  # int8, 0..3 forward strand
    synonymous: np.ndarray  # bool

    def __len__(self) -> int:
        return int(self.position.size)


def read_coding_sequences(path: str | os.PathLike) -> list[CodingSequence]:
    """The CDS of a GFF3 grouped into coding sequences (see the module docstring)."""
    groups: dict[str, list[tuple[int, str, int, int, str, int]]] = defaultdict(list)
    with open_gff_text(path) as handle:
        for line_number, line in enumerate(handle, start=1):
            if line.startswith("##FASTA"):
                break
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 9 or fields[2] != "CDS":
                continue
            try:
                start, end = int(fields[3]) - 1, int(fields[4])
                phase = 0 if fields[7] == "." else int(fields[7])
            except ValueError:
                raise GffError(f"{path}: line {line_number}: CDS start/end/phase are not integers") from None
            if fields[6] not in "+-" or not fields[6] or phase not in (0, 1, 2) or end <= start:
                raise GffError(f"{path}: line {line_number}: CDS needs strand + or -, phase 0-2 and start <= end")
            attributes = dict(item.split("=", 1) for item in fields[8].split(";") if "=" in item)
            key = attributes.get("ID") or attributes.get("Parent") or f"line {line_number}"
            groups[f"{fields[0]}\t{key}"].append((line_number, fields[0], start, end, fields[6], phase))
    out = []
    for key, parts in groups.items():
        contig, strand = parts[0][1], parts[0][4]
        if any(p[1] != contig or p[4] != strand for p in parts):
            raise GffError(f"{path}: line {parts[0][0]}: CDS {key.split(chr(9))[1]} spans contigs or strands")
        parts.sort(key=lambda p: p[2], reverse=strand == "-")
        out.append(CodingSequence(key.split("\t")[1], contig, strand, parts[0][5], tuple((p[2], p[3]) for p in parts)))
    return out


def coding_snvs(sequences: Iterable[CodingSequence], fetch: Callable[[str, int, int], str]) -> CodingSnvs:
    """Every SNV of the codons of ``sequences``; ``fetch(contig, start, end)`` reads the genome."""
    from Bio.Data.CodonTable import standard_dna_table

    code = dict(standard_dna_table.forward_table)
    code.update({codon: "*" for codon in standard_dna_table.stop_codons})
    labels: dict[tuple[str, int, int], bool | None] = {}
    refs: dict[tuple[str, int], int] = {}
    for cds in sequences:
        # transcript order: segments as sorted above, each read 3'→5' on the minus strand
        positions = np.concatenate(
            [np.arange(s, e) if cds.strand == "+" else np.arange(e - 1, s - 1, -1) for s, e in cds.segments]
        )
        segments = [fetch(cds.contig, s, e).upper() for s, e in cds.segments]
        if cds.strand == "-":
            segments = [segment[::-1].translate(_COMPLEMENT) for segment in segments]
        coding = "".join(segments)
        for first in range(cds.phase, len(coding) - 2, 3):
            codon = coding[first : first + 3]
            amino = code.get(codon)
            if amino is None:
                continue  # a base other than A/C/G/T
            for i in range(3):
                genomic = int(positions[first + i])
                for alt in BASES:
                    if alt == codon[i]:
                        continue
                    mutated = codon[:i] + alt + codon[i + 1 :]
                    forward_alt = alt if cds.strand == "+" else alt.translate(_COMPLEMENT)
                    key = (cds.contig, genomic, BASES.index(forward_alt))
                    synonymous = code[mutated] == amino
                    labels[key] = synonymous if labels.get(key, synonymous) == synonymous else None
                    ref = codon[i] if cds.strand == "+" else codon[i].translate(_COMPLEMENT)
                    refs[(cds.contig, genomic)] = BASES.index(ref)
    kept = sorted(key for key, label in labels.items() if label is not None)
    return CodingSnvs(
        contig=np.array([k[0] for k in kept], dtype=object),
        position=np.array([k[1] for k in kept], dtype=np.int64),
        ref=np.array([refs[(k[0], k[1])] for k in kept], dtype=np.int8),
        alt=np.array([k[2] for k in kept], dtype=np.int8),
        synonymous=np.array([labels[k] for k in kept], dtype=bool),
    )


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for ``positive`` (ties count half): P(score₊ > score₋)."""
    from scipy.stats import rankdata

    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    finite = np.isfinite(scores)
    scores, positive = scores[finite], positive[finite]
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def snv_llrs(snvs: CodingSnvs, log_probs_at: Callable[[str, np.ndarray], np.ndarray]) -> np.ndarray:
    """log p(alt) − log p(ref) per SNV; ``log_probs_at(contig, positions)`` gives (n, 4) forward-strand log-probs."""
    out = np.full(len(snvs), np.nan)
    for contig in dict.fromkeys(snvs.contig):
        rows = np.flatnonzero(snvs.contig == contig)
        log_probs = log_probs_at(contig, snvs.position[rows])
        out[rows] = log_probs[np.arange(rows.size), snvs.alt[rows]] - log_probs[np.arange(rows.size), snvs.ref[rows]]
    return out
