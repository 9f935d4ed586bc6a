"""What made a track set, recorded in tracks.json so two track sets can be compared.

Each scoring job records the model it loaded (path, config.json, the size and modification
time of each weight file), the device and precision, and the package versions in its chunk
file. The gather step checks that every chunk names the same model, hashes the weight files
once (sha256; cached under the dnafm cache keyed by path, size and modification time, so 800
genomes do not hash a 7B checkpoint 800 times) and writes the whole record.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

from dnafm_lib.core.errors import DnafmError

WEIGHT_SUFFIXES = (".safetensors", ".bin")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _weight_files(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.iterdir() if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name in WEIGHT_INDEXES)
    )


def model_identity(model: str | os.PathLike) -> dict[str, Any]:
    """The model as a scoring job saw it: a preset's name, or a directory's path, config and weight files."""
    path = Path(model)
    if not path.is_dir():
        return {"preset": str(model)}
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        config = None
    files = [{"file": p.name, "bytes": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns} for p in _weight_files(path)]
    return {"path": str(path.resolve()), "config": config, "weight_files": files}


def scoring_provenance(model: str | os.PathLike, device: str) -> dict[str, Any]:
    """Written into each chunk file by the scoring job."""
    import torch

    from dnafm_lib import __version__

    return {
        "model": model_identity(model),
        "device": str(device),
        # inference.masked runs CUDA under bf16 autocast, the CPU in float32
        "precision": "bf16-autocast" if str(device).startswith("cuda") else "float32",
        "dnafm_version": __version__,
        "torch_version": torch.__version__,
        "scored_at": _now(),
    }


def _sha256(path: Path) -> str:
    from dnafm_lib.data.indexed_fasta import default_cache_dir

    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()
    cache = default_cache_dir().parent / "sha256" / key
    try:
        cached = cache.read_text().strip()
        if len(cached) == 64:
            return cached
    except OSError:
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    value = digest.hexdigest()
    try:  # a cache that cannot be written only costs the next run a rehash
        from dnafm_lib.core.atomic import atomic_open

        with atomic_open(cache) as handle:
            handle.write(value + "\n")
    except OSError:
        pass
    return value


def tracks_provenance(chunk_records: Sequence[tuple[str, dict]], settings: dict, gather: dict) -> dict[str, Any]:
    """The ``provenance`` of tracks.json from every chunk's record; all chunks must name one model."""
    from dnafm_lib import __version__

    records = [(path, record) for path, record in chunk_records if record]
    if not records:
        return {
            "scoring": settings,
            "gather": gather,
            "dnafm_version": __version__,
            "written_at": _now(),
            "model": None,
        }
    first_path, first = records[0]
    for path, record in records[1:]:
        if record["model"] != first["model"]:
            raise DnafmError(f"{path}: scored with another model than {first_path}; rerun the chunks of this genome")
    model = dict(first["model"])
    if "path" in model:
        directory = Path(model["path"])
        weights = []
        for entry in model.pop("weight_files"):
            weight = directory / entry["file"]
            if (
                not weight.exists()
                or weight.stat().st_size != entry["bytes"]
                or weight.stat().st_mtime_ns != entry["mtime_ns"]
            ):
                raise DnafmError(f"{weight}: changed since the chunks were scored; rerun the chunks of this genome")
            weights.append({"file": entry["file"], "bytes": entry["bytes"], "sha256": _sha256(weight)})
        model["weights"] = weights
    scored_at = sorted(record["scored_at"] for _, record in records)
    throughput = throughput_summary([record["throughput"] for _, record in records if record.get("throughput")])
    return {
        "model": model,
        # chunks may have run on different machines: list every device and precision used
        "scoring": {
            **settings,
            "device": ", ".join(sorted({r["device"] for _, r in records})),
            "precision": ", ".join(sorted({r["precision"] for _, r in records})),
        },
        "throughput": throughput,
        "gather": gather,
        "dnafm_version": __version__,
        "torch_version": first["torch_version"],
        "scored_from": scored_at[0],
        "scored_until": scored_at[-1],
        "written_at": _now(),
    }


def throughput_summary(jobs: Sequence[dict]) -> dict[str, Any] | None:
    """The scoring jobs' throughput (``WindowScorer.run_info`` of each chunk) in one record.

    ``tokens_per_second_per_gpu`` (per rank) is what ``tracks.tokens_per_second`` means for chunk
    sizing; ``slowest`` is the safe value to size by, the jobs of one genome sharing one model.
    """
    timed = [job for job in jobs if job.get("tokens_per_second")]
    if not timed:
        return None
    per_rank = sorted(job["tokens_per_second"] / job["ranks"] for job in timed)
    return {
        "jobs": len(timed),
        "tokens": sum(job["tokens"] for job in timed),
        "tokens_per_second_per_gpu": {
            "slowest": round(per_rank[0], 1),
            "median": round(per_rank[len(per_rank) // 2], 1),
            "fastest": round(per_rank[-1], 1),
        },
        "batch_sizes": sorted({job["batch_size"] for job in timed}),
        "oom_backoffs": sum(job.get("oom_backoffs", 0) for job in timed),
        "ranks": sorted({job["ranks"] for job in timed}),
        "devices": sorted({job.get("device_name", job["device"]) for job in timed}),
    }
