"""The steps the workflow runs, as functions: plan chunks, score a chunk, gather, browser files.

``run_genome`` chains them for one genome (the one-shot ``dnafm tracks``); it keeps finished
chunk files in its work directory until the gather succeeds, so a rerun after a failure scores
only what is missing.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from pathlib import Path
from typing import Sequence

from dnafm_lib.core.atomic import atomic_open
from dnafm_lib.core.devices import resolve_device
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.indexed_fasta import fasta_lengths, open_fasta
from dnafm_lib.inference.tracks.scoring import ScoringSettings, WindowScorer
from dnafm_lib.inference.tracks.tiling import Region, chunk_bp_for_job_minutes, forward_tokens_per_bp, plan_chunks
from dnafm_lib.inference.tracks.writers import read_chrom_sizes

log = logging.getLogger(__name__)

CHUNK_PLAN_COLUMNS = ("chunk", "contig", "start", "end")


def chunk_id(index: int) -> str:
    return f"chunk{index:05d}"


def configured_chunk_bp(tracks: dict) -> int:
    """bp per scoring job from the workflow's ``tracks`` config.

    With ``target_job_minutes`` (and ``tokens_per_second``, the model's scoring throughput on one
    job's device), chunks are sized so each job scores for about that long; otherwise
    ``chunk_bp``.
    """
    minutes = tracks.get("target_job_minutes")
    if minutes is None:
        return int(tracks["chunk_bp"])
    rate = tracks.get("tokens_per_second")
    if rate is None:
        raise DnafmError(
            "config tracks.target_job_minutes needs tracks.tokens_per_second (the model's scoring "
            "throughput on one job's device, e.g. from benchmarks/tracks_throughput.py)"
        )
    per_bp = forward_tokens_per_bp(
        tracks["window_bp"],
        tracks["stride_bp"],
        tracks["passes"],
        bool(tracks.get("reverse_complement")),
        tracks.get("layer", -1) is not None,
    )
    return chunk_bp_for_job_minutes(minutes, rate, per_bp, tracks["bin_bp"])


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


def score_regions_to_file(
    fasta_path: str | Path,
    regions: Sequence[Region],
    model,
    settings: ScoringSettings,
    out_npz: str | Path,
    device: str = "cpu",
    provenance: dict | None = None,
) -> None:
    """Score ``regions`` of a genome and write the chunk file (with ``provenance``: tracks/provenance.py)."""
    from dnafm_lib.inference.tracks.chunk_arrays import save_chunk

    fasta = open_fasta(fasta_path)
    lengths = fasta_lengths(fasta)
    for region in regions:
        if region.contig not in lengths or region.end > lengths[region.contig]:
            raise DnafmError(f"{fasta_path}: region {region.contig}:{region.start}-{region.end} is not in the FASTA")

    def fetch(contig: str, start: int, end: int) -> str:
        return fasta[contig][start:end]

    scorer = WindowScorer(model.to(device), settings, device)
    scores = scorer.score_regions(regions, fetch, lengths)
    save_chunk(out_npz, scores, dataclasses.asdict(settings), provenance)


def load_scoring_model(model_path: str, device: str):
    from dnafm_lib.model.model_dir import load_model

    return load_model(model_path).to(device).eval()


def write_browser_files(
    out_dir: str | Path,
    fasta: str | Path,
    genome_name: str,
    model_name: str,
    igv_js: str | Path,
    *,
    annotation: str | Path | None = None,
    assembly: str | None = None,
    hub_email: str = "",
) -> None:
    from dnafm_lib.inference.tracks.hub import check_hub_names, write_hub
    from dnafm_lib.inference.tracks.igv import BrowserInputs, write_igv_html, write_igv_session

    check_hub_names(genome_name, assembly or genome_name, model_name, hub_email)  # before any file is written
    inputs = BrowserInputs(
        Path(out_dir), genome_name, model_name, Path(fasta), annotation=Path(annotation) if annotation else None
    )
    write_igv_session(inputs)
    write_igv_html(inputs, Path(igv_js))
    write_hub(Path(out_dir), genome_name, assembly or genome_name, model_name, email=hub_email)


def run_genome(
    fasta: str | Path,
    model_path: str,
    out_dir: str | Path,
    settings: ScoringSettings,
    *,
    chunk_bp: int = 1_000_000,
    n_clusters: int = 8,
    annotation: str | Path | None = None,
    device: str = "auto",
    genome_name: str | None = None,
    model_name: str | None = None,
    igv_js: str | Path | None = None,
    keep_chunks: bool = False,
    embeddings: str = "full",
) -> dict:
    """Tracks for a whole genome, chunk by chunk (finished chunks are reused by a rerun, and
    removed after a successful gather unless ``keep_chunks``)."""
    from dnafm_lib.inference.tracks.gather import gather_tracks

    out_dir = Path(out_dir)
    fasta = Path(fasta)
    fai = Path(str(fasta) + ".fai")
    if not fai.exists():
        open_fasta(fasta)  # pyfaidx writes the .fai of a plain FASTA
    work = out_dir / "chunks"
    plan_path = work / "chunks.tsv"
    write_chunk_plan(fai, plan_path, chunk_bp, settings.bin_bp)
    plan = read_chunk_plan(plan_path)
    device = str(resolve_device(device, "tracks.device"))
    paths = _score_chunks(fasta, plan, work, model_path, settings, device)
    summary = gather_tracks(
        paths, fai, out_dir, n_clusters=n_clusters, gff_path=annotation, seed=settings.seed, embeddings=embeddings
    )
    if not keep_chunks:
        _remove_chunks(paths, plan_path, work)
    if igv_js:
        write_browser_files(
            out_dir,
            fasta,
            genome_name or fasta.name.split(".")[0],
            model_name or Path(model_path).name,
            igv_js,
            annotation=annotation,
        )
    return summary


def _score_chunks(
    fasta: Path, plan: dict[str, list[Region]], work: Path, model_path: str, settings: ScoringSettings, device: str
) -> list[Path]:
    """Score every chunk of ``plan`` into ``work`` that a previous run has not finished; return all chunk paths."""
    from dnafm_lib.inference.tracks.provenance import model_identity, scoring_provenance

    model = None  # loaded only when some chunk needs scoring
    identity = model_identity(model_path)  # reads config.json and stats weight files: once, not per chunk
    paths = []
    for chunk, regions in plan.items():
        path = work / f"{chunk}.npz"
        paths.append(path)
        if path.exists() and _is_finished(path, regions, settings, identity):
            continue
        model = model or load_scoring_model(model_path, device)
        log.info("scoring %s (%d regions)", chunk, len(regions))
        score_regions_to_file(fasta, regions, model, settings, path, device, scoring_provenance(model_path, device))
    return paths


def _remove_chunks(paths: list[Path], plan_path: Path, work: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
    plan_path.unlink(missing_ok=True)
    try:
        work.rmdir()
    except OSError:  # holds files that are not ours
        pass


def _is_finished(path: Path, regions: Sequence[Region], settings: ScoringSettings, model: dict) -> bool:
    """A kept chunk file counts only if it holds the same regions scored with the same settings and model."""
    from dnafm_lib.inference.tracks.chunk_arrays import load_chunk

    try:
        chunk = load_chunk(path)
    except DnafmError:
        return False
    return (
        chunk.regions == list(regions)
        and chunk.settings == dataclasses.asdict(settings)
        and chunk.provenance.get("model") == model
    )
