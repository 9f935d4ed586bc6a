"""The fit/test loop for task models.

``fit`` trains on the train split with AdamW, evaluates the validation split after each epoch,
keeps the best checkpoint by validation loss (early stopping after ``patience`` epochs
without improvement), then scores the test split with the best weights. Outputs, each written
atomically, in ``out_dir``::

    best/               task.json + model.safetensors (load with dnafm_lib.finetune.load_task)
    history.tsv         epoch, train_loss, val_loss and the validation metrics
    metrics.json        {"val": {...}, "test": {...}} from the best checkpoint
    predictions.tsv     one row per test sequence: row, the table's other columns, label, prediction, p_*

On a GPU the forward pass runs in bf16 autocast (fp32 weights); on CPU in fp32.
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from dnafm_lib.core.atomic import atomic_open
from dnafm_lib.core.devices import autocast, canonical_precision, device_problem, precision_problem, resolve_device
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.core.progress import Progress
from dnafm_lib.core.settings import Settings
from dnafm_lib.finetune.data import SplitTable
from dnafm_lib.finetune.metrics import classification_metrics, regression_metrics
from dnafm_lib.finetune.models import IGNORE_INDEX, TaskModel


@dataclass
class TrainerConfig(Settings):
    """The ``trainer.*`` options."""

    SECTION: ClassVar[str] = "trainer"

    out_dir: str = ""  # checkpoints, metrics and predictions go here
    max_epochs: int = 10
    max_steps: int = 0  # 0 = no limit beyond max_epochs
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 0  # linear warm-up, then constant
    patience: int = 3  # epochs without a better validation loss before stopping
    seed: int = 0
    device: str = "auto"  # core.devices: auto, cpu, cuda, cuda:1, ...
    precision: str = "auto"  # core.devices: auto (bf16 on GPU, fp32 on CPU), bf16, fp32 (or 32)
    progress_bar: bool = True
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        self.precision = canonical_precision(self.precision)

    def problems(self) -> Iterator[tuple[str, str]]:
        if not self.out_dir:
            yield "out_dir", "is required (where checkpoints, metrics and predictions go)"
        if precision_problem(self.precision):
            yield "precision", precision_problem(self.precision)
        if device_problem(self.device):
            yield "device", device_problem(self.device)
        if self.max_epochs < 1:
            yield "max_epochs", f"must be at least 1, got {self.max_epochs}"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _progress(iterable, total: int, description: str, enabled: bool):
    from tqdm.auto import tqdm

    # Progress lines too (every 30 s and each tenth): a job's log shows how far it is, bar or not.
    lines = Progress(description, total, unit="batches", write=lambda line: tqdm.write(line, file=sys.stderr))
    return tqdm(
        lines.track(iterable),
        total=total,
        desc=description,
        disable=not enabled,
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
    )


@dataclass
class Evaluation:
    loss: float
    metrics: dict[str, float]
    outputs: np.ndarray  # probabilities (classification) or values (regression), per sequence
    labels: list[Any]


@torch.no_grad()
def evaluate(
    model: TaskModel,
    split: SplitTable,
    batch_size: int,
    max_length: int | None,
    precision: str = "auto",
    progress_bar: bool = False,
) -> Evaluation:
    """Loss, metrics and per-sequence outputs of ``model`` on ``split``."""
    model.eval()
    device = model.device
    total_loss, total_weight, outputs = 0.0, 0, []
    n_batches = math.ceil(len(split) / batch_size)
    for batch in _progress(split.batches(batch_size), n_batches, f"eval {split.name}", progress_bar):
        collated = model.collate(batch, max_length=max_length)
        with autocast(device, precision):
            raw = model(collated)
        raw = raw.float()
        loss = model.loss(collated, raw)
        weight = len(batch["sequences"])
        total_loss += float(loss) * weight
        total_weight += weight
        outputs.extend(_per_sequence_outputs(model, raw, collated))
    return Evaluation(
        loss=total_loss / max(total_weight, 1),
        metrics=compute_metrics(model, outputs, split.labels),
        outputs=np.asarray(outputs, dtype=object) if model.label_kind == "token" else np.asarray(outputs),
        labels=split.labels,
    )


def _per_sequence_outputs(model: TaskModel, raw: torch.Tensor, collated: dict[str, torch.Tensor]) -> list:
    if model.label_kind == "classification":
        return list(raw.softmax(dim=-1).cpu().numpy())
    if model.label_kind == "regression":
        return list(raw.cpu().numpy())
    # token: probabilities of the bases only (positions 1..n), one (n, C) array per sequence
    probabilities = raw.softmax(dim=-1).cpu().numpy()
    lengths = collated["attention_mask"].sum(dim=1).cpu().numpy() - 2
    return [probabilities[row, 1 : 1 + n] for row, n in enumerate(lengths)]


def compute_metrics(model: TaskModel, outputs: list, labels: list) -> dict[str, float]:
    if not outputs:
        return {}
    if model.label_kind == "classification":
        return classification_metrics(np.asarray(labels), np.stack(outputs))
    if model.label_kind == "regression":
        return regression_metrics(np.asarray(labels), np.stack(outputs))
    flat_labels = np.concatenate([np.asarray(label) for label in labels])
    keep = flat_labels != IGNORE_INDEX
    return classification_metrics(flat_labels[keep], np.concatenate(outputs)[keep])


def fit(
    model: TaskModel,
    splits: dict[str, SplitTable],
    batch_size: int,
    max_length: int | None,
    config: TrainerConfig,
    run_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train, keep the best checkpoint by validation loss, score the test split; return metrics."""
    _check_trainable(model, splits, config)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    device = resolve_device(config.device, "trainer.device")
    model.to(device)
    optimizer, scheduler = _optimizer(model, config)
    validation = splits["val"] if len(splits["val"]) else None
    history: list[dict[str, float]] = []
    best_loss, epochs_without_gain, step = math.inf, 0, 0
    for epoch in range(1, config.max_epochs + 1):
        train_loss, step = _train_epoch(
            model, splits["train"], epoch, step, optimizer, scheduler, batch_size, max_length, config
        )
        record = _epoch_record(model, validation, epoch, step, train_loss, batch_size, max_length, config)
        history.append(record)
        print(
            " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()), file=sys.stderr
        )
        monitored = record.get("val_loss", train_loss)  # no validation split: keep the last epoch
        if monitored < best_loss or validation is None:
            best_loss, epochs_without_gain = monitored, 0
            model.save(out_dir / "best")
        else:
            epochs_without_gain += 1
            if epochs_without_gain >= config.patience:
                print(f"early stopping: no better val_loss for {config.patience} epochs", file=sys.stderr)
                break
        if config.max_steps and step >= config.max_steps:
            break
    with atomic_open(out_dir / "history.tsv") as handle:
        pd.DataFrame(history).to_csv(handle, sep="\t", index=False)
    best = _reload(out_dir / "best", device)
    return test(
        best,
        splits,
        batch_size,
        max_length,
        out_dir,
        config.precision,
        config.progress_bar,
        run_config=run_config,
        history=history,
    )


def _check_trainable(model: TaskModel, splits: dict[str, SplitTable], config: TrainerConfig) -> None:
    config.validate()
    if model.label_kind is None:
        raise DnafmError(
            f"{model.task_name} has no training objective; use SequenceClassification, "
            "TokenClassification or SequenceRegression"
        )
    if len(splits["train"]) == 0:
        raise DnafmError("the train split is empty")


def _optimizer(model: TaskModel, config: TrainerConfig):
    """AdamW over the trainable parameters, with a linear warm-up."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(config.warmup_steps, 0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / (warmup + 1)))
    return optimizer, scheduler


def _train_epoch(
    model: TaskModel,
    train: SplitTable,
    epoch: int,
    step: int,
    optimizer,
    scheduler,
    batch_size: int,
    max_length: int | None,
    config: TrainerConfig,
) -> tuple[float, int]:
    """One pass over ``train`` (or up to ``max_steps``): the mean training loss and the step reached."""
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    running, seen = 0.0, 0
    bar = _progress(
        train.batches(batch_size, shuffle=True, seed=config.seed + epoch),
        math.ceil(len(train) / batch_size),
        f"epoch {epoch}/{config.max_epochs}",
        config.progress_bar,
    )
    for batch in bar:
        collated = model.collate(batch, max_length=max_length)
        with autocast(model.device, config.precision):
            outputs = model(collated)
        loss = model.loss(collated, outputs.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        running += loss.item() * len(batch["sequences"])
        seen += len(batch["sequences"])
        bar.set_postfix(loss=f"{running / seen:.4f}")
        if config.max_steps and step >= config.max_steps:
            break
    return running / max(seen, 1), step


def _epoch_record(
    model: TaskModel,
    validation: SplitTable | None,
    epoch: int,
    step: int,
    train_loss: float,
    batch_size: int,
    max_length: int | None,
    config: TrainerConfig,
) -> dict[str, Any]:
    """The epoch's row of history.tsv: training loss, and validation loss and metrics when there is a split."""
    record: dict[str, Any] = {"epoch": epoch, "step": step, "train_loss": train_loss}
    if validation is not None:
        evaluation = evaluate(model, validation, batch_size, max_length, config.precision)
        record["val_loss"] = evaluation.loss
        record.update({f"val_{k}": v for k, v in evaluation.metrics.items() if k != "n"})
    return record


def _reload(best_dir: Path, device: torch.device) -> TaskModel:
    from dnafm_lib.finetune.models import load_task

    return load_task(best_dir).to(device)


def test(
    model: TaskModel,
    splits: dict[str, SplitTable],
    batch_size: int,
    max_length: int | None,
    out_dir: str | Path,
    precision: str = "auto",
    progress_bar: bool = True,
    run_config: dict[str, Any] | None = None,
    history: list | None = None,
) -> dict[str, Any]:
    """Score val and test with ``model``; write metrics.json and the test predictions.tsv."""
    out_dir = Path(out_dir)
    results: dict[str, Any] = {"task": model.task_name}
    for name in ("val", "test"):
        if len(splits[name]):
            evaluation = evaluate(model, splits[name], batch_size, max_length, precision, progress_bar)
            results[name] = {"loss": evaluation.loss, **evaluation.metrics}
            if name == "test":
                write_predictions(model, splits[name], evaluation, out_dir / "predictions.tsv")
    if "test" not in results:
        print("note: the test split is empty; no predictions.tsv", file=sys.stderr)
    if history:
        results["epochs"] = len(history)
    if run_config is not None:
        results["config"] = run_config
    with atomic_open(out_dir / "metrics.json") as handle:
        json.dump(_strict_json(results), handle, indent=2, allow_nan=False, default=str)
        handle.write("\n")
    return results


def _strict_json(value):
    """numpy scalars → Python; NaN/inf (e.g. AUROC of a one-class split) → null, as strict JSON requires."""
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(item) for item in value]
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_predictions(model: TaskModel, split: SplitTable, evaluation: Evaluation, path: Path) -> None:
    table = split.extra.copy()
    table.insert(0, "row", split.rows)
    if model.label_kind == "classification":
        probabilities = np.stack(evaluation.outputs)
        table["label"] = split.labels
        table["prediction"] = probabilities.argmax(axis=1)
        for c in range(probabilities.shape[1]):
            table[f"p_{c}"] = probabilities[:, c]
    elif model.label_kind == "regression":
        values = np.stack(evaluation.outputs).reshape(len(split), -1)
        labels = np.asarray(split.labels).reshape(len(split), -1)
        for c in range(values.shape[1]):
            suffix = "" if values.shape[1] == 1 else f"_{c}"
            table[f"label{suffix}"] = labels[:, c]
            table[f"prediction{suffix}"] = values[:, c]
    else:  # token: per-base classes as digit strings, comma-separated when a class has two digits
        join = "".join if model.config.n_classes <= 10 else ",".join
        table["label"] = [join(str(int(v)) for v in labels) for labels in split.labels]
        table["prediction"] = [join(str(int(v)) for v in p.argmax(axis=1)) for p in evaluation.outputs]
    with atomic_open(path) as handle:
        table.to_csv(handle, sep="\t", index=False, float_format="%.6g")
