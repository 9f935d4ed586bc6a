"""One chunk's results on disk: per-base arrays and embedding bin means in one ``.npz``.

Plain arrays only (strings as fixed-width unicode), so reading needs no pickle. Bin means, the
bulk of a chunk at a wide model (hidden/bin_bp values per bp), are stored as float16: what the
gathered ``embeddings_f16.npy`` holds anyway, so nothing downstream changes. Per-base values stay
float32, as the bigWig stores them. Chunk files are temporary: the workflow removes them after a
successful gather (``tracks.keep_chunks`` keeps them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from dnafm_lib.core.atomic import atomic_path
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.inference.tracks.catalog import BASES
from dnafm_lib.inference.tracks.scoring import RegionScores
from dnafm_lib.inference.tracks.tiling import Region


@dataclass
class ChunkArrays:
    regions: list[Region]
    offsets: np.ndarray  # (n_regions + 1,): region i is rows offsets[i]:offsets[i+1]
    per_base: dict[str, np.ndarray]  # track key → (n,) float32, NaN where not scored
    bin_contig: np.ndarray  # (n_bins,) str
    bin_start: np.ndarray  # (n_bins,) int64
    bin_end: np.ndarray  # (n_bins,) int64
    bin_mean: np.ndarray | None  # (n_bins, H) float16; None when loaded with bin_means=False
    hidden: int  # H, the width of the bin means
    settings: dict
    provenance: dict  # the model, device and versions that scored it (tracks/provenance.py); {} if unrecorded


def save_chunk(
    path: str | Path, scores: Sequence[RegionScores], settings: dict, provenance: dict | None = None
) -> None:
    """Write a chunk's arrays atomically."""
    contigs = np.array([s.region.contig for s in scores], dtype=str)
    lengths = np.array([s.region.length for s in scores], dtype=np.int64)
    arrays = {
        "region_contig": contigs,
        "region_start": np.array([s.region.start for s in scores], dtype=np.int64),
        "region_end": np.array([s.region.end for s in scores], dtype=np.int64),
        "offsets": np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
        "mlm_loss": _cat([s.loss_nats for s in scores], (0,)),
        "entropy": _cat([s.entropy_nats for s in scores], (0,)),
        "settings_json": np.array(json.dumps(settings, sort_keys=True)),
        "provenance_json": np.array(json.dumps(provenance or {}, sort_keys=True)),
    }
    probs = _cat([s.probs for s in scores], (0, 4))
    for i, base in enumerate(BASES):
        arrays[f"prob_{base}"] = np.ascontiguousarray(probs[:, i])
    bin_contig, bin_start, bin_end, bin_mean = [], [], [], []
    for s in scores:
        if s.bin_counts is None:
            continue
        filled = np.flatnonzero(s.bin_counts)
        starts = s.region.start + filled * s.bin_bp
        bin_contig.extend([s.region.contig] * filled.size)
        bin_start.append(starts)
        bin_end.append(np.minimum(starts + s.bin_bp, s.region.end))
        bin_mean.append((s.bin_sums[filled] / s.bin_counts[filled, None]).astype(np.float32))
    hidden = next((s.bin_sums.shape[1] for s in scores if s.bin_sums is not None), 0)
    arrays["bin_contig"] = np.array(bin_contig, dtype=str)
    arrays["bin_start"] = _cat(bin_start, (0,), np.int64)
    arrays["bin_end"] = _cat(bin_end, (0,), np.int64)
    # float64 sums → float32 means → float16: the same rounding the gathered array always had.
    arrays["bin_mean"] = _cat(bin_mean, (0, hidden)).astype(np.float16)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load_chunk(path: str | Path, *, bin_means: bool = True) -> ChunkArrays:
    """A chunk's arrays; ``bin_means=False`` skips the bulky bin means (their width is still read)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            regions = [
                Region(str(c), int(s), int(e))
                for c, s, e in zip(data["region_contig"], data["region_start"], data["region_end"])
            ]
            per_base = {key: data[key] for key in ("mlm_loss", "entropy", *(f"prob_{b}" for b in BASES))}
            return ChunkArrays(
                regions=regions,
                offsets=data["offsets"],
                per_base=per_base,
                bin_contig=data["bin_contig"],
                bin_start=data["bin_start"],
                bin_end=data["bin_end"],
                bin_mean=data["bin_mean"] if bin_means else None,
                hidden=_npz_member_shape(data, "bin_mean")[1],
                settings=json.loads(str(data["settings_json"])),
                provenance=json.loads(str(data["provenance_json"])) if "provenance_json" in data else {},
            )
    except (OSError, KeyError, ValueError) as exc:
        raise DnafmError(f"{path}: not a readable tracks chunk file ({exc})") from None


def load_bin_means(path: str | Path) -> np.ndarray:
    """Only a chunk's (n_bins, H) float16 bin means (npz members load one at a time)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["bin_mean"]
    except (OSError, KeyError, ValueError) as exc:
        raise DnafmError(f"{path}: not a readable tracks chunk file ({exc})") from None


def _npz_member_shape(data, name: str) -> tuple[int, ...]:
    """An npz member's shape from its .npy header, without reading the array."""
    with data.zip.open(f"{name}.npy") as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(member)
        else:
            shape, _, _ = np.lib.format.read_array_header_2_0(member)
    return shape


def _cat(parts: list[np.ndarray], empty_shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    if not parts:
        return np.zeros(empty_shape, dtype=dtype)
    return np.concatenate(parts).astype(dtype, copy=False)
