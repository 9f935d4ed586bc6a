"""Annotate a VCF from SNV tables by tabix lookup: no model, no GPU.

Each ALT allele that is an SNV (``data.vcf.classify_allele``) gets its table row's ``llr`` and
``llr_z`` in INFO (Number=A; ``.`` for other alleles and positions the table lacks). Lines are
copied as text after ``check_vcf``, as ``score-variants`` does, so every other field stays byte
for byte. REF is checked against the table's reference base: a mismatch is an error naming the
record, or, with ``allow_ref_mismatch``, a counted warning and ``.`` for that record's alleles.

Tables of one model (e.g. one per genome) are searched by contig; tables of different models
give each model its own pair of INFO fields, suffixed with the model's name.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dnafm_lib.core.atomic import atomic_path, sweep_stale
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.genomes import BgzfWriter
from dnafm_lib.data.vcf import AlleleKind, check_vcf, classify_allele, iter_lines
from dnafm_lib.inference.snv_table import read_table_meta

log = logging.getLogger(__name__)

LLR_FIELD = "DNAFM_LLR"
LLR_Z_FIELD = "DNAFM_LLR_Z"


class AnnotationError(DnafmError):
    """A VCF or table that cannot be annotated as asked; the message names the record or file."""


@dataclass
class ModelTables:
    """The tables of one model: INFO field names, and which table holds each contig."""

    model: str
    llr_field: str
    z_field: str
    by_contig: dict[str, object] = field(default_factory=dict)  # contig → pysam.TabixFile
    describe: str = ""


def open_tables(paths: list[str | os.PathLike]) -> list[ModelTables]:
    import pysam

    if not paths:
        raise AnnotationError("no SNV table given (--table)")
    grouped: dict[str, ModelTables] = {}
    for path in paths:
        meta = read_table_meta(path)
        model = meta.get("model", "unnamed")
        group = grouped.setdefault(model, ModelTables(model, LLR_FIELD, LLR_Z_FIELD))
        group.describe = f"model {model}, settings {meta.get('settings', '{}')}"
        table = pysam.TabixFile(str(path))
        for contig in table.contigs:
            if contig in group.by_contig:
                raise AnnotationError(f"{path}: contig {contig!r} is in two tables of model {model}")
            group.by_contig[contig] = table
    if len(grouped) > 1:  # one pair of fields per model
        for group in grouped.values():
            suffix = re.sub(r"[^A-Za-z0-9_]", "_", group.model)
            group.llr_field, group.z_field = f"{LLR_FIELD}_{suffix}", f"{LLR_Z_FIELD}_{suffix}"
    return list(grouped.values())


def info_headers(groups: list[ModelTables]) -> list[str]:
    lines = []
    for group in groups:
        lines.append(
            f'##INFO=<ID={group.llr_field},Number=A,Type=Float,Description="DNA FM ln P(alt) - ln P(ref), '
            f'natural log, from the all-SNV table ({_quote(group.describe)})">'
        )
        lines.append(
            f'##INFO=<ID={group.z_field},Number=A,Type=Float,Description="{group.llr_field} as a z-score among '
            f'the genome SNVs of the same reference trinucleotide and alt ({_quote(group.describe)})">'
        )
    return lines


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")


def lookup(table, chrom: str, pos: int) -> dict[str, tuple[str, str, str]]:
    """The table's rows at 1-based ``pos``: alt → (ref, llr, llr_z) as written."""
    rows = {}
    for line in table.fetch(chrom, pos - 1, pos):
        fields = line.split("\t")
        rows[fields[3]] = (fields[2], fields[4], fields[5])
    return rows


def annotate_vcf(
    vcf_in: str | os.PathLike,
    table_paths: list[str | os.PathLike],
    vcf_out: str | os.PathLike,
    *,
    allow_ref_mismatch: bool = False,
    records_per_chunk: int = 4096,
) -> dict[str, int]:
    """Copy ``vcf_in`` to ``vcf_out`` with the tables' scores per ALT; ``.gz`` output is bgzipped and indexed."""
    import pysam

    summary = check_vcf(vcf_in)
    groups = open_tables(table_paths)
    for group in groups:
        for name in (group.llr_field, group.z_field):
            if name in summary.info_ids:
                raise AnnotationError(f"{vcf_in}: INFO field {name} already exists")
    counts = {"records": 0, "annotated_alleles": 0, "unannotated_alleles": 0, "ref_mismatches": 0}
    bgzip = str(vcf_out).endswith(".gz")
    index_path = Path(f"{vcf_out}.tbi")
    if bgzip:
        sweep_stale(index_path)
    lines = ((number, line) for number, line in iter_lines(vcf_in) if line)
    with atomic_path(vcf_out) as tmp:
        with BgzfWriter(tmp) if bgzip else open(tmp, "wb") as out:
            for _, line in lines:
                if line.startswith("#CHROM"):
                    out.write(("\n".join(info_headers(groups)) + f"\n{line}\n").encode())
                    break
                out.write(f"{line}\n".encode())
            while chunk := list(itertools.islice(lines, records_per_chunk)):
                out.write(_annotate_chunk(chunk, groups, vcf_in, allow_ref_mismatch, counts))
        if bgzip:
            try:
                pysam.tabix_index(str(tmp), preset="vcf", force=True)
            except (OSError, ValueError) as exc:
                raise AnnotationError(f"{vcf_out}: cannot index the VCF ({exc}); is it sorted?") from None
    if bgzip:
        os.replace(f"{tmp}.tbi", index_path)
    if counts["ref_mismatches"]:
        log.warning(
            "%s: %d records' REF differs from the table's reference base; left unannotated",
            vcf_in,
            counts["ref_mismatches"],
        )
    return counts


def _annotate_chunk(chunk, groups: list[ModelTables], vcf_in, allow_ref_mismatch: bool, counts) -> bytes:
    out = []
    for line_number, line in chunk:
        fields = line.split("\t")
        chrom, pos, ref = fields[0], int(fields[1]), fields[3].upper()
        alts = [] if fields[4] == "." else fields[4].split(",")
        counts["records"] += 1
        entries = []
        for group in groups:
            table = group.by_contig.get(chrom)
            rows = lookup(table, chrom, pos) if table is not None and len(ref) == 1 else {}
            table_ref = next(iter(rows.values()))[0] if rows else None
            if table_ref is not None and table_ref != ref:
                if not allow_ref_mismatch:
                    raise AnnotationError(
                        f"{vcf_in}: line {line_number}: record {chrom}:{pos}: REF {fields[3]} but the "
                        f"{group.model} table has {table_ref} (another assembly? --allow-ref-mismatch skips such records)"
                    )
                counts["ref_mismatches"] += 1
                rows = {}
            values = [rows.get(alt.upper()) if classify_allele(ref, alt) is AlleleKind.SNV else None for alt in alts]
            counts["annotated_alleles"] += sum(v is not None for v in values)
            counts["unannotated_alleles"] += sum(v is None for v in values)
            if any(v is not None for v in values):
                entries.append(f"{group.llr_field}=" + ",".join("." if v is None else v[1] for v in values))
                entries.append(f"{group.z_field}=" + ",".join("." if v is None else v[2] for v in values))
        if entries:
            joined = ";".join(entries)
            fields[7] = joined if fields[7] == "." else f"{fields[7]};{joined}"
        out.append("\t".join(fields) + "\n")
    return "".join(out).encode()


def describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items())
