"""Score step: the regions of one chunk → its chunk file (per-base arrays, bin sums, provenance).

``scoring.WindowScorer`` does the arithmetic; this module loads the model, reads the FASTA and
writes the file (``chunk_arrays``). ``chunk_is_current`` is how the one-shot run tells a chunk
file it may keep from one it must score again.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.indexed_fasta import fasta_lengths, open_fasta
from dnafm_lib.inference.tracks.scoring import Ranks, ScoringSettings, WindowScorer
from dnafm_lib.inference.tracks.tiling import Region

log = logging.getLogger(__name__)


def load_scoring_model(model_path: str, device: str):
    from dnafm_lib.model.model_dir import load_model

    return load_model(model_path).to(device).eval()


def score_chunk(
    fasta_path: str | Path,
    regions: Sequence[Region],
    model,
    settings: ScoringSettings,
    out_npz: str | Path,
    device: str = "cpu",
    provenance: dict | None = None,
    ranks: Ranks = Ranks(),
) -> dict:
    """Score ``regions`` of a genome and write the chunk file (with ``provenance``: tracks/provenance.py).

    With several ``ranks`` every rank scores its share and rank 0 alone writes the file. The
    throughput (tokens per second, batch size, ranks, device: ``WindowScorer.run_info``) goes
    into the log and the provenance's ``throughput``; it is also returned.
    """
    from dnafm_lib.inference.tracks.chunk_arrays import save_chunk

    fasta = open_fasta(fasta_path)
    lengths = fasta_lengths(fasta)
    for region in regions:
        if region.contig not in lengths or region.end > lengths[region.contig]:
            raise DnafmError(f"{fasta_path}: region {region.contig}:{region.start}-{region.end} is not in the FASTA")

    def fetch(contig: str, start: int, end: int) -> str:
        return fasta[contig][start:end]

    scorer = WindowScorer(model.to(device), settings, device, ranks)
    scores = scorer.score_regions(regions, fetch, lengths)
    info = scorer.run_info
    if ranks.rank == 0:
        log.info(
            "throughput: %s tokens/s (%d tokens in %.1f s; batch size %d, %d rank(s), %s)",
            info["tokens_per_second"],
            info["tokens"],
            info["seconds"],
            info["batch_size"],
            info["ranks"],
            info.get("device_name", info["device"]),
        )
        # the batch an `auto` run found lives here, not in the settings that gather compares
        save_chunk(out_npz, scores, dataclasses.asdict(settings), {**(provenance or {}), "throughput": info})
    return info


def chunk_is_current(path: Path, regions: Sequence[Region], settings: ScoringSettings, model: dict) -> bool:
    """A kept chunk file counts only if it holds the same regions scored with the same settings and
    model (``model``: ``provenance.model_identity``)."""
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
