"""Many small genomes in one job: prepare (and shard) a batch of genomes, then put each in place.

A cohort like the NT list holds hundreds of bacterial genomes of a few Mb: one Slurm job each
costs more in queueing and Snakemake start-up than in work. With `prepare.genomes_per_job: N`
the workflow runs one `dnafm prepare-batch` job per N consecutive genomes of the genome table,
writing into a staging folder (results/genome_batches/{batch}/{genome}/genome and …/shards);
a local step then hard-links each genome's files to results/genomes/{genome}/ and
results/shards/{genome}/, where every later step reads them. The files are the same as the
one-genome-per-job path writes (the shard metadata names the final FASTA path, not the staging one).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Iterable, Sequence

from dnafm_lib.core.atomic import atomic_dir
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.core.output_dir import MARKER_NAME, marker_kind
from dnafm_lib.data.genomes import FASTA_NAME, GenomeError, input_fasta, prepare_genome
from dnafm_lib.data.shards import write_genome_shards

GENOME_PART = "genome"
SHARDS_PART = "shards"
# A batch job's Slurm runtime: prepare + shard ran 2.1 s per MB of gzip FASTA at their slowest on
# the 2-core VM (benchmarks/RESULTS.md, one big genome: 2.7 and 3.6 Mb/s, ~0.3 B per nt); twice
# that, plus start-up. Plain FASTA counts as gzip (3× too long a limit, never too short).
RUNTIME_BASE_MIN = 10
RUNTIME_MIN_PER_MB = 4.2 / 60


class GenomeBatchError(DnafmError):
    """A batch of genomes cannot be prepared or put in place."""


def batch_name(index: int) -> str:
    return f"batch{index:05d}"


def genome_batches(genomes: Sequence[str], genomes_per_job: int) -> dict[str, list[str]]:
    """Consecutive runs of `genomes_per_job` genomes, in table order: a genome added at the end of
    the table changes only the last batch, so finished batches are not redone."""
    if genomes_per_job < 1:
        raise GenomeBatchError(f"prepare.genomes_per_job must be at least 1, got {genomes_per_job}")
    return {
        batch_name(start // genomes_per_job): list(genomes[start : start + genomes_per_job])
        for start in range(0, len(genomes), genomes_per_job)
    }


def batch_of(genome: str, genomes: Sequence[str], genomes_per_job: int) -> str:
    """The batch of `genomes` (as genome_batches cuts them) that holds `genome`."""
    try:
        position = list(genomes).index(genome)
    except ValueError:
        raise GenomeBatchError(f"genome {genome!r} is in no batch of the genome table") from None
    return batch_name(position // genomes_per_job)


def batch_runtime_minutes(entries: Iterable[dict]) -> int:
    """Minutes to ask Slurm for, from the sizes of the batch's input FASTAs. Snakemake asks again
    just before it submits the job, when every input exists; a FASTA not downloaded yet (planning,
    a dry run) counts as nothing until then."""
    total_mb = 0.0
    for entry in entries:
        try:
            fasta, _ = input_fasta(entry["genome"], entry.get("fasta"), entry.get("download_record"))
        except GenomeError:
            continue
        total_mb += fasta.stat().st_size / 1e6
    return RUNTIME_BASE_MIN + math.ceil(total_mb * RUNTIME_MIN_PER_MB)


def prepare_batch(
    entries: Iterable[dict],
    staging_dir: str | os.PathLike,
    *,
    genomes_dir: str | os.PathLike,
    window_nt: int | None = None,
    min_tail_nt: int | None = None,
) -> list[dict]:
    """Prepare each entry (prepare_genome's keyword arguments, with `genome`) into staging_dir and,
    with `window_nt`, shard it; returns each genome's provenance. The staging folder appears whole
    or not at all."""
    provenances = []
    entries = list(entries)
    inputs = [entry.get(key) for entry in entries for key in ("fasta", "download_record", "annotation")]
    with atomic_dir(staging_dir, kind="prepare-batch", inputs=inputs) as tmp:
        for entry in entries:
            genome = entry["genome"]
            genome_dir = tmp / genome / GENOME_PART
            provenances.append(prepare_genome(out_dir=genome_dir, **entry))
            if window_nt is not None:
                write_genome_shards(
                    genome_dir / FASTA_NAME,
                    tmp / genome / SHARDS_PART,
                    genome,
                    window_nt=window_nt,
                    min_tail_nt=min_tail_nt,
                    # what the one-genome path records: the FASTA where later steps read it
                    source_fasta_name=str(Path(genomes_dir) / genome / FASTA_NAME),
                )
    return provenances


def _link_tree(source: Path, destination: Path) -> None:
    """Hard-link (copy across filesystems) every file of `source` into a new `destination`, which
    becomes the same kind of output (prepare-genome's or shard's) as `source`."""
    with atomic_dir(destination, kind=marker_kind(source) or "prepare-batch") as tmp:
        for path in sorted(source.iterdir()):
            if path.name == MARKER_NAME:
                continue  # atomic_dir writes its own
            try:
                os.link(path, tmp / path.name)
            except OSError:
                shutil.copy2(path, tmp / path.name)


def adopt_batched_genome(
    staging_dir: str | os.PathLike,
    genome: str,
    genome_out: str | os.PathLike,
    shards_out: str | os.PathLike | None = None,
) -> None:
    """Put one genome of a prepared batch in place: results/genomes/{genome}/ and, when the batch
    was sharded, results/shards/{genome}/."""
    source = Path(staging_dir) / genome
    parts = [(GENOME_PART, genome_out)] + ([(SHARDS_PART, shards_out)] if shards_out is not None else [])
    for part, destination in parts:
        if not (source / part).is_dir():
            raise GenomeBatchError(f"{source / part}: the batch holds no {part} folder for genome {genome}")
        _link_tree(source / part, Path(destination))
