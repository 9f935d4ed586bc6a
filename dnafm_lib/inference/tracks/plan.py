"""Plan step: cut a genome (its .fai) into chunks, one scoring job each, and read the plan back.

The plan is a TSV of ``chunk contig start end`` rows in .fai order; a chunk may hold several
regions (small contigs share one), and chunk boundaries fall on multiples of ``bin_bp`` so no
embedding bin straddles two chunks (``tiling.plan_chunks``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from dnafm_lib.core.atomic import atomic_open
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.inference.tracks.tiling import Region, plan_chunks
from dnafm_lib.inference.tracks.writers import read_chrom_sizes

CHUNK_PLAN_COLUMNS = ("chunk", "contig", "start", "end")
#: bp per chunk when nothing else says (bounds a scoring job's memory and time)
DEFAULT_CHUNK_BP = 1_000_000


def chunk_id(index: int) -> str:
    return f"chunk{index:05d}"


def write_chunk_plan(fai_path: str | Path, out_tsv: str | Path, chunk_bp: int, bin_bp: int) -> list[str]:
    """Cut a genome (its .fai) into chunks; write ``chunk contig start end`` rows; return the ids."""
    chunks = plan_chunks(read_chrom_sizes(fai_path), chunk_bp, bin_bp)
    with atomic_open(out_tsv) as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(CHUNK_PLAN_COLUMNS)
        for index, regions in enumerate(chunks):
            for region in regions:
                writer.writerow((chunk_id(index), region.contig, region.start, region.end))
    return [chunk_id(i) for i in range(len(chunks))]


def read_chunk_plan(path: str | Path) -> dict[str, list[Region]]:
    """Chunk id → its regions, in file (.fai) order."""
    plan: dict[str, list[Region]] = {}
    with open(path, newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header is None or tuple(header) != CHUNK_PLAN_COLUMNS:
            raise DnafmError(f"{path}: expected header {' '.join(CHUNK_PLAN_COLUMNS)}")
        for line_number, row in enumerate(reader, 2):
            try:
                plan.setdefault(row[0], []).append(Region(row[1], int(row[2]), int(row[3])))
            except (IndexError, ValueError):
                raise DnafmError(f"{path}: line {line_number}: expected chunk, contig, start, end") from None
    return plan


def chunk_regions(plan_path: str | Path, chunk: str) -> list[Region]:
    """The regions of one chunk of a plan file; an error names the plan when it has no such chunk."""
    plan = read_chunk_plan(plan_path)
    if chunk not in plan:
        raise DnafmError(f"{plan_path}: no chunk {chunk!r}")
    return plan[chunk]
