"""Sequence-logo tracks from the predicted base probabilities (as GPN and marin-dna publish them).

At each base the model's A/C/G/T distribution carries ``IC = 2 − H`` bits of information
(``H`` its entropy in bits); a logo draws each letter ``P(letter) × IC`` tall, so the four
heights sum to ``IC``: a tall single letter where the model is sure, nothing where it guesses.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from dnafm_lib.inference.tracks.catalog import BASES, LOGO_TRACKS, MAX_INFORMATION_BITS


def logo_heights_bits(probs: np.ndarray) -> np.ndarray:
    """``(n, 4)`` A/C/G/T probabilities → ``(n, 4)`` letter heights in bits (NaN rows stay NaN)."""
    probs = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probs > 0, probs * np.log2(np.where(probs > 0, probs, 1.0)), 0.0)
    information_bits = MAX_INFORMATION_BITS + terms.sum(axis=1)  # 2 − H, H = −Σ p log2 p
    heights = probs * np.clip(information_bits, 0.0, MAX_INFORMATION_BITS)[:, None]
    heights[np.isnan(probs).any(axis=1)] = np.nan
    return heights.astype(np.float32)


def with_logo_tracks(per_base: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A chunk's per-base arrays plus the four ``logo_*`` arrays computed from its ``prob_*``."""
    heights = logo_heights_bits(np.stack([per_base[f"prob_{b}"] for b in BASES], axis=1))
    return {**per_base, **{spec.key: np.ascontiguousarray(heights[:, i]) for i, spec in enumerate(LOGO_TRACKS)}}
