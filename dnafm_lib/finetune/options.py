"""The ``fit``/``test`` command-line options: ``--model TASK --model.key VALUE``, a YAML ``--config``.

Every field of TaskConfig, DataConfig and TrainerConfig becomes a dotted flag
(``--model.n_classes 2``, ``--data.path x.tsv``, ``--trainer.max_epochs 5``). jsonargparse
(the parser under LightningCLI, whose syntax this is) turns each flag's text into the field's
annotated type; ``dnafm_lib.core.settings`` then checks flag, YAML and Python values alike and
names a bad one as ``--trainer.lr`` or ``--config x.yaml: trainer.lr``.
Precedence: the dataclass defaults < the YAML file < the command line.

A YAML config mirrors the flags::

    model:
      task: SequenceClassification
      backbone: results/models/demo
      n_classes: 2
    data:
      task: SequenceClassification
      path: windows.tsv
    trainer:
      max_epochs: 5
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.core.settings import Layer, Origin

SECTIONS = ("model", "data", "trainer")

# What each flag means (the default is appended from the config classes).
# a literal table on purpose (same shape as data.SPLIT_ALIASES, different data)
OPTION_HELP = {
    "model.backbone": "a preset (tiny, 300m, 7b) or a checkpoint directory (required)",
    "model.n_classes": "classes of a classification task",
    "model.n_outputs": "values per sequence of SequenceRegression",
    "model.pooling": "sequence pooling: cls or mean (over the bases)",
    "model.strategy": "what trains: full, frozen (head only) or lora",
    "model.pretrained": "false: the backbone's architecture with fresh weights",
    "model.lora_r": "LoRA rank",
    "model.lora_alpha": "LoRA scaling numerator",
    "model.lora_dropout": "dropout on the LoRA path",
    "model.head_dropout": "dropout before the task head",
    "data.path": "CSV, TSV or parquet table (required)",
    "data.sequence_column": "column holding the sequences",
    "data.label_column": "label column (regression: several, comma-separated)",
    "data.split_column": "train/val/test column; when absent the ratios split the rows",
    "data.val_ratio": "fraction of rows for validation without a split column",
    "data.test_ratio": "fraction of rows for test without a split column",
    "data.seed": "seed of the ratio split",
    "data.batch_size": "sequences per step",
    "data.max_length": "longest input in tokens incl. [CLS]/[EOS]; 0 = no limit",
    "trainer.out_dir": "where best/, history.tsv, metrics.json, predictions.tsv go (required)",
    "trainer.max_epochs": "epochs at most",
    "trainer.max_steps": "optimizer steps at most; 0 = no limit",
    "trainer.lr": "AdamW learning rate",
    "trainer.weight_decay": "AdamW weight decay",
    "trainer.warmup_steps": "linear warm-up steps",
    "trainer.patience": "epochs without a better validation loss before stopping",
    "trainer.seed": "seed of the head, a scratch backbone and the batch order",
    "trainer.device": "auto, cpu, cuda or cuda:N",
    "trainer.precision": "auto (bf16 autocast on GPU), bf16 or 32",
    "trainer.progress_bar": "show a tqdm progress bar (true/false)",
    "trainer.grad_clip": "gradient-norm clipping; 0 = off",
}


def _section_classes() -> dict[str, type]:
    from dnafm_lib.finetune.data import DataConfig
    from dnafm_lib.finetune.models import TaskConfig
    from dnafm_lib.finetune.trainer import TrainerConfig

    return {"model": TaskConfig, "data": DataConfig, "trainer": TrainerConfig}


def _section_fields() -> dict[str, list[dataclasses.Field]]:
    return {section: list(dataclasses.fields(cls)) for section, cls in _section_classes().items()}


def add_task_options(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--model TASK``, ``--data TASK`` and one ``--section.key`` flag per option."""
    parser.allow_abbrev = False  # a misspelt --trainer.max_epoch must not silently mean max_epochs
    parser.add_argument("--config", metavar="YAML", help="a YAML file with model/data/trainer sections")
    parser.add_argument(
        "--model",
        dest="model_task",
        metavar="TASK",
        help="SequenceClassification, TokenClassification or SequenceRegression",
    )
    parser.add_argument(
        "--data", dest="data_task", metavar="TASK", help="the data module; must name the same task as --model"
    )
    for section, fields in _section_fields().items():
        group = parser.add_argument_group(f"{section} options")
        for f in fields:
            key = f"{section}.{f.name}"
            default = "" if f.default == "" else f" (default {f.default})"
            group.add_argument(f"--{key}", dest=key, metavar="VALUE", help=OPTION_HELP.get(key, "") + default)


def _read_yaml(path: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise DnafmError(f"--config {path}: no such file") from None
    except yaml.YAMLError as exc:
        raise DnafmError(f"--config {path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DnafmError(f"--config {path}: expected a mapping with model/data/trainer sections")
    return data


def collect_options(args: argparse.Namespace) -> dict[str, Any]:
    """Merge YAML and flags into ``{"model": {...}, "data": {...}, "trainer": {...}, "task": ...}``.

    ``options["layers"][section]`` holds where each section's values came from (the YAML file,
    then the flags), for ``section_settings`` to build and check that section's settings with.
    """
    classes = _section_classes()
    from_yaml: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    tasks: dict[str, str | None] = {"model": None, "data": None}
    where = f"--config {args.config}" if args.config else ""
    if args.config:
        for key, value in _read_yaml(args.config).items():
            section, _, name = str(key).partition(".")
            if section not in SECTIONS:
                raise DnafmError(f"{where}: unknown section {key!r}; use {', '.join(SECTIONS)}")
            if name:  # flat "model.backbone: x"
                from_yaml[section][name] = value
                continue
            if not isinstance(value, dict):
                raise DnafmError(f"{where}: section {key!r} must be a mapping")
            for name, item in value.items():
                if name in ("task", "class_path") and section in tasks:
                    tasks[section] = str(item)
                else:
                    from_yaml[section][name] = item
    flags: dict[str, dict[str, str]] = {section: {} for section in SECTIONS}
    for dest, text in vars(args).items():
        section, _, name = dest.partition(".")
        if section in SECTIONS and name and text is not None:
            flags[section][name] = text
    merged: dict[str, dict[str, Any]] = {}
    layers: dict[str, list[Layer]] = {}
    for section in SECTIONS:
        layers[section] = [
            Layer(from_yaml[section], Origin(where, f"{section}.")),
            Layer.from_text(classes[section], flags[section], Origin(prefix=f"--{section}.")),
        ]
        merged[section] = {key: value for layer in layers[section] for key, value in layer.values.items()}
    tasks["model"] = args.model_task or tasks["model"]
    tasks["data"] = args.data_task or tasks["data"]
    return {**merged, "model_task": tasks["model"], "data_task": tasks["data"], "layers": layers}


def section_settings(options: dict[str, Any], section: str):
    """The checked TaskConfig, DataConfig or TrainerConfig of ``section`` (flags over YAML over defaults)."""
    return _section_classes()[section].load(*options["layers"][section])


def resolve_task(options: dict[str, Any], required: bool = True):
    """The task class named by ``--model`` (and ``--data``, which must agree)."""
    from dnafm_lib.finetune import TASKS

    trainable = [name for name, cls in TASKS.items() if cls.label_kind]
    model_task, data_task = options["model_task"], options["data_task"]
    if model_task is None:
        if required:
            raise DnafmError(f"--model is required: one of {', '.join(trainable)}")
        return None
    if model_task not in TASKS:
        raise DnafmError(f"--model {model_task!r}: unknown task; choose one of {', '.join(trainable)}")
    if data_task is not None and data_task != model_task:
        if data_task not in TASKS:
            raise DnafmError(f"--data {data_task!r}: unknown task; choose one of {', '.join(trainable)}")
        raise DnafmError(f"--data {data_task} does not match --model {model_task}")
    return TASKS[model_task]
