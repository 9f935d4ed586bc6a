"""Task models on the DNA FM backbone: embeddings, sequence/token classification, regression.

The model card's usage, on this project's backbone::

    from dnafm_lib.finetune import SequenceClassification
    model = SequenceClassification.from_config({"model.backbone": "tiny", "model.n_classes": 2}).eval()
    collated = model.collate({"sequences": ["ACGT", "ACGT"]})
    logits = model(collated)  # (B, n_classes)

``forward`` takes the dict that ``collate`` returns and gives one tensor: embeddings (B, L, H),
logits (B, C) or (B, L, C), or regression outputs (B, n_outputs). ``loss(collated, outputs)``
is the training objective. A task model saves and loads itself as ``task.json`` plus
``model.safetensors`` (no pickles).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from dnafm_lib.core.atomic import atomic_dir
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.core.settings import Settings, SettingsError
from dnafm_lib.model.tokenizer import encode_batch

TASK_CONFIG_NAME = "task.json"
WEIGHTS_NAME = "model.safetensors"
IGNORE_INDEX = -100  # label value the losses and metrics skip (framing tokens, padding)
POOLINGS = ("cls", "mean")
STRATEGIES = ("full", "frozen", "lora")
# Linears inside the blocks that LoRA adapts (attention projections and the SwiGLU MLP).
LORA_TARGETS = ["query", "key", "value", "dense", "gate_proj", "up_proj", "down_proj"]


class TaskConfigError(SettingsError):
    """A task configuration key that is unknown, missing or of the wrong type."""


@dataclass
class TaskConfig(Settings):
    """The ``model.*`` options every task understands (unused ones are ignored by a task)."""

    SECTION: ClassVar[str] = "model"
    ERROR: ClassVar[type[SettingsError]] = TaskConfigError

    backbone: str = ""  # preset name (tiny, 300m, 7b) or a checkpoint directory
    n_classes: int = 2  # classification tasks
    n_outputs: int = 1  # SequenceRegression
    pooling: str = "cls"  # sequence tasks: [CLS] hidden state, or mean over nucleotides
    strategy: str = "full"  # full fine-tuning, frozen backbone (head only), or LoRA adapters
    pretrained: bool = True  # False: the backbone's architecture with fresh weights (a baseline)
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    head_dropout: float = 0.0

    def problems(self) -> Iterator[tuple[str, str]]:
        if not self.backbone:
            yield "backbone", "is required (a preset such as 'tiny' or a checkpoint directory)"
        if self.pooling not in POOLINGS:
            yield "pooling", f"must be one of {', '.join(POOLINGS)}, got {self.pooling!r}"
        if self.strategy not in STRATEGIES:
            yield "strategy", f"must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"
        for name in ("n_classes", "n_outputs", "lora_r"):
            if getattr(self, name) < 1:
                yield name, f"must be at least 1, got {getattr(self, name)}"


def _load_backbone(config: TaskConfig, architecture: dict[str, Any] | None = None) -> nn.Module:
    """The ``bert`` part of the masked-LM model: pretrained weights, or fresh ones of that shape."""
    from dnafm_lib.model.encoder import ModelConfig, build_model
    from dnafm_lib.model.model_dir import load_model

    if architecture is not None:  # restoring a saved task: the weights come from its own file
        return build_model(ModelConfig(**architecture)).bert
    try:
        model = load_model(config.backbone)
    except (KeyError, FileNotFoundError, DnafmError) as exc:
        raise TaskConfigError(f"model.backbone {config.backbone!r}: {exc}") from None
    if not config.pretrained:
        model.init_weights()
    return model.bert


class TaskModel(nn.Module):
    """Backbone + a task head. Subclasses set ``head`` and implement ``forward`` and ``loss``."""

    task_name: ClassVar[str]
    #: the labels the task trains on: "classification", "regression", "token" (per base), or None
    label_kind: ClassVar[str | None] = None

    def __init__(self, config: TaskConfig, architecture: dict[str, Any] | None = None):
        super().__init__()
        self.config = config
        self.backbone = _load_backbone(config, architecture)
        self.hidden_size = self.backbone.config.hidden_size
        self.head = self.build_head()
        self._apply_strategy()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(cls, mapping: dict[str, Any]) -> "TaskModel":
        """``{"model.backbone": "tiny", "model.n_classes": 2, ...}`` → a task model."""
        return cls(TaskConfig.from_mapping(dict(mapping)))

    def build_head(self) -> nn.Module | None:
        return None

    def linear_head(self, n_out: int) -> nn.Module:
        """Dropout then one linear layer to ``n_out`` (checkpoint keys ``head.1.*``)."""
        return nn.Sequential(nn.Dropout(self.config.head_dropout), nn.Linear(self.hidden_size, n_out))

    def _apply_strategy(self) -> None:
        strategy = self.config.strategy
        if strategy == "frozen":
            self.backbone.requires_grad_(False)
        elif strategy == "lora":
            from peft import LoraConfig, inject_adapter_in_model

            lora = LoraConfig(
                r=self.config.lora_r,
                lora_alpha=self.config.lora_alpha,
                lora_dropout=self.config.lora_dropout,
                target_modules=LORA_TARGETS,
            )
            self.backbone = inject_adapter_in_model(lora, self.backbone)
            # peft leaves the base weights trainable when injecting into a plain module
            for name, parameter in self.backbone.named_parameters():
                parameter.requires_grad_("lora_" in name)

    # ------------------------------------------------------------------ data

    def collate(self, batch: dict[str, Any], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """``{"sequences": [...], "labels": [...]}`` → tensors; "labels" is optional."""
        if "sequences" not in batch:
            raise DnafmError(f"collate: the batch needs a 'sequences' list, got keys {sorted(batch)}")
        sequences = list(batch["sequences"])
        input_ids, attention_mask = encode_batch(sequences, max_length=max_length)
        out = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}
        if batch.get("labels") is not None:
            out["labels"] = self.collate_labels(batch["labels"], sequences, input_ids.shape[1])
        return out

    def collate_labels(self, labels: Sequence[Any], sequences: Sequence[str], width: int) -> torch.Tensor:
        raise DnafmError(f"{self.task_name} takes no labels")

    # ------------------------------------------------------------------ compute

    def encode(self, collated: dict[str, torch.Tensor]) -> torch.Tensor:
        device = self.device
        hidden, _ = self.backbone(collated["input_ids"].to(device), collated["attention_mask"].to(device))
        return hidden

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.config.pooling == "cls":
            return hidden[:, 0]
        # mean over nucleotides only: drop [CLS] (position 0) and [EOS] (the last real token)
        mask = attention_mask.to(hidden.device).clone()
        mask[:, 0] = False
        last = attention_mask.sum(dim=1) - 1
        mask[torch.arange(mask.shape[0], device=mask.device), last.to(mask.device)] = False
        weights = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    def loss(self, collated: dict[str, torch.Tensor], outputs: torch.Tensor) -> torch.Tensor:
        raise DnafmError(f"{self.task_name} has no training objective")

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``task.json`` (task, options, backbone architecture) and ``model.safetensors``."""
        meta = {
            "task": self.task_name,
            "model": dataclasses.asdict(self.config),
            "architecture": self.backbone.config.architecture_dict(),
        }
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        with atomic_dir(path, kind="fit") as tmp:
            (tmp / TASK_CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")
            save_file(state, str(tmp / WEIGHTS_NAME))
        return Path(path)


def load_task(path: str | os.PathLike) -> TaskModel:
    """Restore a task model written by ``TaskModel.save`` (the backbone path is not needed)."""
    from dnafm_lib.finetune import TASKS

    directory = Path(path)
    meta_path = directory / TASK_CONFIG_NAME
    if not meta_path.is_file():
        raise DnafmError(f"{directory}: not a task checkpoint (no {TASK_CONFIG_NAME})")
    meta = json.loads(meta_path.read_text())
    task_class = TASKS.get(meta.get("task"))
    if task_class is None:
        raise DnafmError(f"{meta_path}: unknown task {meta.get('task')!r}")
    config = TaskConfig.from_mapping(meta["model"], where=str(meta_path))
    model = task_class(config, architecture=meta["architecture"])
    state = load_file(str(directory / WEIGHTS_NAME))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DnafmError(
            f"{directory / WEIGHTS_NAME}: weights do not match {meta['task']} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model


# ---------------------------------------------------------------------- the four tasks


class Embed(TaskModel):
    """Hidden states of the last layer: (B, L, H), [CLS] at 0 and [EOS] after the last base."""

    task_name = "Embed"

    def forward(self, collated: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encode(collated)


def _sequence_labels(labels: Sequence[Any], dtype: torch.dtype, where: str) -> torch.Tensor:
    try:
        return torch.as_tensor(np.asarray(labels), dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise DnafmError(f"{where}: labels must be numbers ({exc})") from None


# each task spells out its head, labels, forward and loss on purpose: same shape, different maths
class SequenceClassification(TaskModel):
    """One class per sequence: logits (B, n_classes) from the pooled hidden state."""

    task_name = "SequenceClassification"
    label_kind = "classification"

    def build_head(self) -> nn.Module:
        return self.linear_head(self.config.n_classes)

    def collate_labels(self, labels, sequences, width):
        return _sequence_labels(labels, torch.long, "SequenceClassification")

    def forward(self, collated: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.encode(collated)
        return self.head(self.pool(hidden, collated["attention_mask"]))

    def loss(self, collated, outputs):
        return F.cross_entropy(outputs.float(), collated["labels"].to(outputs.device))


# each task spells out its head, labels, forward and loss on purpose: same shape, different maths
class TokenClassification(TaskModel):
    """One class per base: logits (B, L, n_classes); framing and padding positions are ignored."""

    task_name = "TokenClassification"
    label_kind = "token"

    def build_head(self) -> nn.Module:
        return self.linear_head(self.config.n_classes)

    def collate_labels(self, labels, sequences, width):
        out = torch.full((len(labels), width), IGNORE_INDEX, dtype=torch.long)
        for row, (per_base, sequence) in enumerate(zip(labels, sequences)):
            values = torch.as_tensor(np.asarray(per_base), dtype=torch.long).reshape(-1)
            if values.numel() != len(sequence):
                raise DnafmError(
                    f"TokenClassification: sequence {row} has {len(sequence)} bases but {values.numel()} labels"
                )
            out[row, 1 : 1 + values.numel()] = values  # position 0 is [CLS]
        return out

    def forward(self, collated: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.encode(collated))

    def loss(self, collated, outputs):
        labels = collated["labels"].to(outputs.device)
        return F.cross_entropy(outputs.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)


class SequenceRegression(TaskModel):
    """n_outputs real values per sequence: (B, n_outputs), trained with mean squared error."""

    task_name = "SequenceRegression"
    label_kind = "regression"

    def build_head(self) -> nn.Module:
        return self.linear_head(self.config.n_outputs)

    def collate_labels(self, labels, sequences, width):
        values = _sequence_labels(labels, torch.float32, "SequenceRegression")
        return values.reshape(len(labels), -1)

    def forward(self, collated: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.encode(collated)
        return self.head(self.pool(hidden, collated["attention_mask"]))

    def loss(self, collated, outputs):
        labels = collated["labels"].to(outputs.device)
        return F.mse_loss(outputs.float(), labels.reshape(outputs.shape))
