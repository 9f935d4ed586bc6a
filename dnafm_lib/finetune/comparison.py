"""Pretrained vs from-scratch: the same fine-tuning run on two initialisations of one architecture.

Both runs see the same data, splits, seed, optimiser and epochs; only the backbone's starting
weights differ (the checkpoint's, or a fresh BERT initialisation of its shape). The test
metrics of both are returned and written side by side, whichever way they come out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from dnafm_lib.core.atomic import atomic_open
from dnafm_lib.finetune.data import DataConfig, load_splits
from dnafm_lib.finetune.models import SequenceClassification, TaskConfig
from dnafm_lib.finetune.trainer import TrainerConfig, fit, seed_everything

INITIALISATIONS = {"pretrained": True, "scratch": False}
REPORTED = ["accuracy", "f1", "mcc", "auroc", "loss", "n"]


def compare_initialisations(
    backbone: str, data: DataConfig, trainer: TrainerConfig, model_options: dict[str, Any], out_dir: str | Path
) -> pd.DataFrame:
    """Fine-tune SequenceClassification from ``backbone`` and from scratch; one row of test metrics each."""
    out_dir = Path(out_dir)
    rows = []
    for name, pretrained in INITIALISATIONS.items():
        task_config = TaskConfig.from_mapping({**model_options, "backbone": backbone, "pretrained": pretrained})
        splits = load_splits(data, SequenceClassification.label_kind, task_config)
        seed_everything(trainer.seed)
        model = SequenceClassification(task_config)
        # the same head in both runs: building a scratch backbone draws from the RNG first
        seed_everything(trainer.seed)
        for layer in model.head.modules():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
        run_trainer = TrainerConfig(**{**trainer.__dict__, "out_dir": str(out_dir / name)})
        results = fit(model, splits, data.batch_size, data.max_length or None, run_trainer)
        test = results.get("test", {})
        rows.append(
            {"initialisation": name, "epochs": results.get("epochs"), **{f"test_{k}": test.get(k) for k in REPORTED}}
        )
    table = pd.DataFrame(rows)
    with atomic_open(out_dir / "comparison.tsv") as handle:
        table.to_csv(handle, sep="\t", index=False, float_format="%.4f")
    return table
