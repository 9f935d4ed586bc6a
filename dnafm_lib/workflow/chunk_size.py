"""bp per score_chunk job, from the workflow's ``tracks`` config (workflow/rules/tracks_common.smk)."""

from __future__ import annotations

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.inference.tracks.tiling import chunk_bp_for_job_minutes, forward_tokens_per_bp


def ranks_per_job(tracks: dict) -> int:
    """Scoring processes per job: one per GPU it asks for (``gpus_per_job``), one without GPUs."""
    return max(1, int(tracks.get("gpus_per_job") or 0))


def configured_chunk_bp(tracks: dict) -> int:
    """bp per scoring job from the workflow's ``tracks`` config.

    With ``target_job_minutes`` (and ``tokens_per_second``, the model's scoring throughput on one
    GPU: tracks.json's ``throughput.tokens_per_second_per_gpu``), chunks are sized so each job
    scores for about that long on its ``ranks_per_job`` GPUs; otherwise ``chunk_bp``.
    """
    minutes = tracks.get("target_job_minutes")
    if minutes is None:
        return int(tracks["chunk_bp"])
    rate = tracks.get("tokens_per_second")
    if rate is None:
        raise DnafmError(
            "config tracks.target_job_minutes needs tracks.tokens_per_second (the model's scoring "
            "throughput on one GPU, e.g. tokens_per_second_per_gpu in a run's tracks.json or "
            "benchmarks/tracks_throughput.py)"
        )
    per_bp = forward_tokens_per_bp(
        tracks["window_bp"],
        tracks["stride_bp"],
        tracks["passes"],
        bool(tracks.get("reverse_complement")),
        tracks.get("layer", -1) is not None,
        tracks.get("masking", "passes"),
    )
    # the ranks split a chunk's batches evenly: a job of N GPUs scores N times the bases
    return chunk_bp_for_job_minutes(minutes, rate * ranks_per_job(tracks), per_bp, tracks["bin_bp"])
