"""VCF input: what kind of change each allele is, and a check of the file before htslib reads it.

htslib (pysam) accepts much that it later cannot write (an INFO tag missing from the header,
a ``<DEL>`` allele), and reports a malformed line as "truncated file" without a line number.
``check_vcf`` reads the text once, in Python, and stops at the first line that would go wrong
with one ``VcfError`` naming the file and line; the scorer then copies the checked lines as text.

``classify_allele`` is the one place that decides whether a REF/ALT pair is a single-base
substitution: every scorer asks it, so an insertion such as ``A→AC`` is never scored as an SNV.
"""

from __future__ import annotations

import enum
import gzip
import os
import re
import zlib
from pathlib import Path
from typing import Iterator, NamedTuple

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.fasta import is_gzip

NUCLEOTIDES = frozenset("ACGT")
FIXED_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
# VCF asks for A/C/G/T/N; some callers write other IUPAC codes, which htslib reads too.
_IUPAC = "ACGTNRYSWKMBDHVacgtnryswkmbdhv"
_REF = re.compile(f"^[{_IUPAC}]+$")
_BASES_ALT = _REF
_SYMBOLIC_ALT = re.compile(r"^<[^<>,\s]+>$")
# breakend notation (VCF 4.x §5.4): t[p[, t]p], ]p]t, [p[t, and single breakends .t / t.
_BREAKEND_ALT = re.compile(r"^([ACGTNacgtn]*[\[\]][^\[\]\s]+[\[\]][ACGTNacgtn]*|\.[ACGTNacgtn]+|[ACGTNacgtn]+\.)$")
_HEADER_ID = re.compile(r"^##(INFO|FORMAT|FILTER)=<ID=([^,>]+)")
_INFO_KEY = re.compile(r"^[^\s=;,]+$")  # the spec's pattern is stricter, but real files use keys like 1000G


class VcfError(DnafmError):
    """A VCF that cannot be read: the message names the file and the line."""


class AlleleKind(str, enum.Enum):
    SNV = "snv"  # one base to another, both A/C/G/T
    INSERTION = "insertion"  # ALT longer than REF (A→AC)
    DELETION = "deletion"  # ALT shorter than REF (AC→A)
    MNV = "mnv"  # same length > 1 (AC→GT)
    SYMBOLIC = "symbolic"  # <DEL>, <INS:ME>, breakends, '*' (overlapping deletion), '.' (no ALT)
    OTHER = "other"  # one base with N or another IUPAC code, or ALT equal to REF


def classify_allele(ref: str, alt: str | None) -> AlleleKind:
    """The kind of change REF→ALT. Only ``AlleleKind.SNV`` is scored by the masked-marginal scorers."""
    if alt is None or alt in (".", "*") or not _BASES_ALT.match(alt) or not _BASES_ALT.match(ref or ""):
        return AlleleKind.SYMBOLIC
    ref, alt = ref.upper(), alt.upper()
    if len(alt) > len(ref):
        return AlleleKind.INSERTION
    if len(alt) < len(ref):
        return AlleleKind.DELETION
    if len(ref) > 1:
        return AlleleKind.MNV
    if ref in NUCLEOTIDES and alt in NUCLEOTIDES and ref != alt:
        return AlleleKind.SNV
    return AlleleKind.OTHER


def _open_text_lines(path: Path):
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def _check_alt(alt: str, where: str) -> None:
    if alt == ".":
        return
    for allele in alt.split(","):
        if allele == "*" or _BASES_ALT.match(allele) or _SYMBOLIC_ALT.match(allele) or _BREAKEND_ALT.match(allele):
            continue
        raise VcfError(f"{where}: ALT allele {allele!r} is not bases, '*', a <SYMBOLIC> allele or a breakend")


class VcfSummary(NamedTuple):
    records: int
    info_ids: frozenset[str]


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """``(line number, text without the line break)`` of a plain or gzip/bgzip text file, UTF-8.

    A byte that is not UTF-8, or a truncated or corrupt gzip, is a VcfError naming the file and line.
    """
    path = Path(path)
    line_number = 0
    try:
        with _open_text_lines(path) as handle:
            for line_number, raw in enumerate(handle, start=1):
                try:
                    yield line_number, raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    raise VcfError(
                        f"{path}: line {line_number}: byte 0x{raw[exc.start]:02x} at column {exc.start + 1} is not UTF-8"
                    ) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise VcfError(f"{path}: truncated or corrupt gzip after line {line_number} ({exc})") from None


def check_vcf(path: str | os.PathLike) -> VcfSummary:
    """Read ``path`` (plain or bgzip VCF) and raise VcfError at the first problem.

    Checked: text is UTF-8; a ``#CHROM`` header line with the eight fixed columns comes before
    the records; each record has as many tab-separated fields as that line; POS is an integer
    ≥ 1; REF is bases; ALT is bases, ``*``, ``<ID>`` or a breakend; QUAL is a number or ``.``;
    every INFO, FILTER and FORMAT key is declared by a ``##`` header line.
    """
    path = Path(path)
    declared: dict[str, set[str]] = {"INFO": set(), "FORMAT": set(), "FILTER": {"PASS"}}
    columns: list[str] | None = None
    records = 0
    for line_number, line in iter_lines(path):
        where = f"{path}: line {line_number}"
        if line_number == 1 and not line.startswith("##fileformat=VCF"):
            raise VcfError(f"{where}: expected '##fileformat=VCFv4.x' (not a VCF file?)")
        if line.startswith("##") and columns is None:
            declared_id = _HEADER_ID.match(line)
            if declared_id:
                declared[declared_id[1]].add(declared_id[2])
            continue
        if line.startswith("#"):
            if columns is not None:
                raise VcfError(f"{where}: header line after the #CHROM line")
            columns = line.split("\t")
            if tuple(columns[:8]) != FIXED_COLUMNS:
                raise VcfError(
                    f"{where}: the column header must be the tab-separated {' '.join(FIXED_COLUMNS)}"
                    " (then FORMAT and sample names)"
                )
            continue
        if columns is None:
            raise VcfError(f"{where}: record before the '#CHROM' column header line")
        if not line:
            continue  # blank lines (often one at the end) are skipped, here and by the scorer
        _check_record(line.split("\t"), columns, declared, where)
        records += 1
    if columns is None:
        raise VcfError(f"{path}: no '#CHROM' column header line (not a VCF file?)")
    return VcfSummary(records, frozenset(declared["INFO"]))


def _check_record(fields: list[str], columns: list[str], declared: dict[str, set[str]], where: str) -> None:
    if len(fields) != len(columns):
        raise VcfError(f"{where}: {len(fields)} tab-separated fields, but the #CHROM line has {len(columns)}")
    chrom, pos, _id, ref, alt, qual, filters, info = fields[:8]
    if not chrom:
        raise VcfError(f"{where}: empty CHROM")
    if not pos.isdigit() or int(pos) < 1:
        raise VcfError(f"{where}: POS {pos!r} is not a position ≥ 1")
    where = f"{where} ({chrom}:{pos})"
    if not _REF.match(ref):
        raise VcfError(f"{where}: REF {ref!r} is not a run of bases (A, C, G, T, N or IUPAC codes)")
    _check_alt(alt, where)
    if qual != ".":
        try:
            float(qual)
        except ValueError:
            raise VcfError(f"{where}: QUAL {qual!r} is not a number or '.'") from None
    if filters != ".":
        for name in filters.split(";"):
            if name not in declared["FILTER"]:
                raise VcfError(f"{where}: FILTER {name!r} is not declared in the header (add a ##FILTER line)")
    if info != ".":
        for item in info.split(";"):
            key = item.split("=", 1)[0]
            if not _INFO_KEY.match(key):
                raise VcfError(f"{where}: INFO entry {item!r} is not KEY or KEY=VALUE")
            if key not in declared["INFO"]:
                raise VcfError(f"{where}: INFO tag {key!r} is not declared in the header (add a ##INFO line)")
    if len(fields) > 8:
        for key in fields[8].split(":"):
            if key not in declared["FORMAT"]:
                raise VcfError(f"{where}: FORMAT key {key!r} is not declared in the header (add a ##FORMAT line)")
