"""bp per score_chunk job, from the workflow's ``tracks`` config (workflow/rules/tracks_common.smk)."""

from __future__ import annotations

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.inference.tracks.tiling import chunk_bp_for_job_minutes, forward_tokens_per_bp


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
        tracks.get("masking", "passes"),
    )
    return chunk_bp_for_job_minutes(minutes, rate, per_bp, tracks["bin_bp"])
