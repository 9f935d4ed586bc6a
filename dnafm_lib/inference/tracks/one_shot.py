"""The one-shot ``dnafm tracks``: plan → score → gather → browser for one genome, in one process.

It calls the same step functions the Snakemake rules run one job each (``plan``, ``score``,
``gather``, ``browser``). Chunk files wait in ``OUT_DIR/chunks`` until the gather succeeds, so
a rerun after a failure or a kill scores only the chunks that are missing or stale
(``score.chunk_is_current``), and they are removed afterwards unless ``keep_chunks``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from dnafm_lib.core.devices import resolve_device
from dnafm_lib.data.indexed_fasta import open_fasta
from dnafm_lib.inference.tracks.catalog import DEFAULT_OUTPUTS
from dnafm_lib.inference.tracks.gather import DEFAULT_N_CLUSTERS, gather_tracks
from dnafm_lib.inference.tracks.plan import DEFAULT_CHUNK_BP, read_chunk_plan, write_chunk_plan
from dnafm_lib.inference.tracks.score import chunk_is_current, load_scoring_model, score_chunk
from dnafm_lib.inference.tracks.scoring import ScoringSettings
from dnafm_lib.inference.tracks.tiling import Region

log = logging.getLogger(__name__)


def run_genome(
    fasta: str | Path,
    model_path: str,
    out_dir: str | Path,
    settings: ScoringSettings,
    *,
    chunk_bp: int = DEFAULT_CHUNK_BP,
    n_clusters: int = DEFAULT_N_CLUSTERS,
    annotation: str | Path | None = None,
    device: str = "auto",
    genome_name: str | None = None,
    model_name: str | None = None,
    igv_js: str | Path | None = None,
    keep_chunks: bool = False,
    embeddings: str = "full",
    outputs: Sequence[str] = DEFAULT_OUTPUTS,
) -> dict:
    """Tracks for a whole genome, chunk by chunk (finished chunks are reused by a rerun, and
    removed after a successful gather unless ``keep_chunks``)."""
    from dnafm_lib.inference.tracks.browser import write_browser_files

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
        paths,
        fai,
        out_dir,
        n_clusters=n_clusters,
        gff_path=annotation,
        seed=settings.seed,
        embeddings=embeddings,
        outputs=outputs,
        fasta_path=fasta,
        model_name=model_name or Path(model_path).name,
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
        if path.exists() and chunk_is_current(path, regions, settings, identity):
            continue
        model = model or load_scoring_model(model_path, device)
        log.info("scoring %s (%d regions)", chunk, len(regions))
        score_chunk(fasta, regions, model, settings, path, device, scoring_provenance(model_path, device))
    return paths


def _remove_chunks(paths: list[Path], plan_path: Path, work: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
    plan_path.unlink(missing_ok=True)
    try:
        work.rmdir()
    except OSError:  # holds files that are not ours
        pass
