"""Shared by the tests/test_train_*.py files: real shards from the demo genomes, run helpers."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "resources" / "demo"
CHLOROPLAST = DEMO / "arabidopsis_chloroplast_NC_000932.1.fna.gz"
PLASMID = DEMO / "yersinia_plasmid_pPCP1_NC_005816.1.fna.gz"
WINDOW_NT = 126  # 128-token inputs keep CPU tests fast


def write_demo_shards(root: Path, window_nt: int = WINDOW_NT) -> tuple[Path, Path]:
    """train = the Arabidopsis chloroplast, validation = the Yersinia plasmid; returns the manifests."""
    from dnafm_lib.data.shards import write_genome_shards, write_manifest

    write_genome_shards(CHLOROPLAST, root / "chloroplast", "chloroplast", window_nt=window_nt, min_tail_nt=16)
    write_genome_shards(PLASMID, root / "plasmid", "plasmid", window_nt=window_nt, min_tail_nt=16)
    train = root / "train.manifest.json"
    validation = root / "validation.manifest.json"
    write_manifest("train", [root / "chloroplast"], train)
    write_manifest("validation", [root / "plasmid"], validation)
    return train, validation


def settings(train: Path, validation: Path, run_dir: Path, **overrides) -> dict:
    """Small, fast settings: 8 steps of a global batch of 8 (micro batch 2)."""
    values = dict(
        train_manifest=str(train),
        validation_manifest=str(validation),
        run_dir=str(run_dir),
        model="tiny",
        seed=3,
        global_batch_size=8,
        micro_batch_size=2,
        max_steps=8,
        warmup_steps=2,
        learning_rate=3e-3,
        min_learning_rate=3e-4,
        checkpoint_every_steps=2,
        keep_checkpoints=10,
        validate_every_steps=4,
        validation_samples=8,
        device="cpu",
        progress_bar=False,
    )
    values.update(overrides)
    return values


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def pretrain_command(values: dict, *extra: str) -> list[str]:
    return [sys.executable, "-m", "dnafm_lib.cli", "pretrain", "--config-json", json.dumps(values), *extra]


def run_pretrain(values: dict, *extra: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        pretrain_command(values, *extra), env=env(), cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def losses(run_dir: Path) -> dict[int, float]:
    """step → training loss from metrics.csv."""
    with open(Path(run_dir) / "metrics.csv", newline="") as handle:
        return {int(row["step"]): float(row["loss_nats"]) for row in csv.DictReader(handle)}
