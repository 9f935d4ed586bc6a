"""Write the key table of config/README.md from the config schema, so the reference cannot drift.

    python scripts/config_reference.py          # rewrite the table between the markers
    python scripts/config_reference.py --check  # exit 1 when config/README.md is out of date

One row per key of workflow/schemas/config.schema.yaml (nested keys as dotted paths): its type
and range from the schema, its default from config/config.yaml (the layer every cohort file is
merged over; training settings it leaves out default to dnafm_lib.train.config.TrainConfig),
and what it does from the schema's description, or from NOTES below where the schema has none.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
DEFAULTS = ROOT / "config/config.yaml"
REFERENCE = ROOT / "config/README.md"
START = "<!-- config-reference:start (scripts/config_reference.py writes this table) -->"
END = "<!-- config-reference:end -->"

# What a key does, for the keys whose schema entry has no description (from config/config.yaml's
# comments and the comments of TrainConfig). A key here that the schema lacks is an error.
NOTES = {
    "logs_dir": "where each job's log goes",
    "finetune.val_fraction": "fraction of the blocks that go to validation",
    "finetune.test_fraction": "fraction of the blocks that go to test (the rest trains)",
    "finetune.pooling": "sequence pooling of the classifier: cls (the [CLS] hidden state) or mean (over bases)",
    "finetune.strategy": "what trains: full (the whole model), frozen (the head only) or lora (LoRA adapters + head)",
    "finetune.max_epochs": "epochs at most (early stopping after `patience` epochs without a better validation loss)",
    "finetune.patience": "epochs without a better validation loss before fitting stops",
    "finetune.lr": "AdamW learning rate",
    "finetune.batch_size": "sequences per optimizer step",
    "finetune.seed": "seed of the block split, the head's (and the scratch backbone's) weights and the batch order",
    "finetune.device": "auto (cuda when present, bf16 autocast), cpu or cuda",
    "finetune.threads": "CPU threads of the fine-tuning job",
    "finetune.gpus_per_job": "GPUs of the fine-tuning job (Slurm)",
    "finetune.mem_mb": "memory of the fine-tuning job, MB (Slurm)",
    "finetune.runtime_min": "wall-clock limit of the fine-tuning job, minutes (Slurm)",
    "pretrain.mem_mb": "memory of the pretraining job, MB (Slurm)",
    "pretrain.train.model": "the encoder preset to train (dnafm_lib.model.encoder)",
    "pretrain.train.model_overrides": "architecture settings that replace the preset's (e.g. num_hidden_layers)",
    "pretrain.train.seed": "seed of the weights, the sample order and the masks",
    "pretrain.train.global_batch_size": (
        "samples per optimizer step; a multiple of micro_batch_size × nodes × nproc_per_node "
        "(gradient accumulation makes up the rest; checked at start)"
    ),
    "pretrain.train.micro_batch_size": "samples per forward pass on each rank",
    "pretrain.train.max_steps": "optimizer steps of the run",
    "pretrain.train.learning_rate": "peak AdamW learning rate, reached by linear warmup",
    "pretrain.train.min_learning_rate": "learning rate at the end of the cosine decay",
    "pretrain.train.warmup_steps": "steps of linear warmup (at most max_steps)",
    "pretrain.train.weight_decay": "AdamW weight decay, on matrices only (not biases or norms)",
    "pretrain.train.adam_beta1": "AdamW β1",
    "pretrain.train.adam_beta2": "AdamW β2",
    "pretrain.train.adam_eps": "AdamW ε",
    "pretrain.train.grad_clip_norm": "gradient clipping norm",
    "pretrain.train.mask_fraction": (
        "fraction of the A/C/G/T positions chosen for the MLM loss; of those 80% [MASK], 10% a random base, 10% kept"
    ),
    "pretrain.train.device": "auto (cuda when available), cpu or cuda",
    "pretrain.train.precision": "auto (bf16 compute on a GPU, fp32 on a CPU), bf16 or fp32",
    "pretrain.train.compile": "torch.compile each transformer block",
    "pretrain.train.activation_checkpointing": "recompute activations in the backward pass (less memory, slower)",
    "pretrain.train.attn_backend": "attention kernel: sdpa, flash_attn (the flash-attn package), flash_attn_4 or eager",
    "pretrain.train.checkpoint_every_steps": "steps between torch.distributed checkpoints (a run resumes from the latest)",
    "pretrain.train.keep_checkpoints": "checkpoints kept, the newest",
    "pretrain.train.log_every_steps": "steps between rows of metrics.csv (losses stay on the GPU in between)",
    "pretrain.train.validate_every_steps": "steps between validation losses",
    "pretrain.train.validation_samples": "validation windows per validation (0: none)",
    "pretrain.train.nonfinite_loss": "a NaN/inf loss: error stops the run naming the step; skip drops that batch",
    "pretrain.train.require_below_composition_entropy": (
        "fail the run unless the final validation loss is below the base-composition entropy "
        "of the validation targets (the demo's acceptance check)"
    ),
    "pretrain.train.peak_flops_per_device": "peak dense FLOP/s of one device, for MFU; 0 looks the card up (none on a CPU)",
    "pretrain.train.progress_bar": "show a progress bar on the console",
}


def keys(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every key of the schema as (dotted path, its schema entry), parents before children."""
    for name, node in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        yield path, node
        yield from keys(node, f"{path}.")


def schema_keys(schema_path: Path = SCHEMA) -> list[str]:
    return [path for path, _ in keys(yaml.safe_load(schema_path.read_text()))]


def _range(node: dict[str, Any]) -> str:
    bounds = []
    for word, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if word in node:
            bounds.append(f"{sign} {node[word]}")
    return f" ({', '.join(bounds)})" if bounds else ""


def type_of(node: dict[str, Any]) -> str:
    if "oneOf" in node:
        return " or ".join(type_of(option) for option in node["oneOf"])
    if "enum" in node:
        words = ", ".join(f"`{value}`" for value in node["enum"])
        return f"one of {words}" if len(node["enum"]) > 1 else words
    kind = node.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    if "object" in kinds:
        if "properties" in node:
            return "section"
        values = node.get("additionalProperties")
        return f"map of name → {type_of(values)}" if isinstance(values, dict) else "mapping"
    if "array" in kinds:
        items = node.get("items", {})
        return f"list of {type_of(items)}" if "enum" in items else f"list of {items.get('type', 'any')}s"
    return " or ".join(kinds) + _range(node)


def _inline(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1000).strip()
    return f"`{text.removesuffix('...').strip()}`"


def _train_defaults() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from dnafm_lib.train.config import TrainConfig

    return {field.name: getattr(TrainConfig(), field.name) for field in dataclasses.fields(TrainConfig)}


def default_of(path: str, node: dict[str, Any], defaults: dict[str, Any], train: dict[str, Any]) -> str:
    if "properties" in node:
        return ""
    value: Any = defaults
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            break
        value = value[part]
    else:
        return _inline(value)
    if path.startswith("pretrain.train.") and path.count(".") == 2:
        return f"{_inline(train[path.rsplit('.', 1)[1]])} (TrainConfig)"
    if "default" in node:
        return _inline(node["default"])
    return "—"


def table() -> str:
    schema = yaml.safe_load(SCHEMA.read_text())
    defaults = yaml.safe_load(DEFAULTS.read_text())
    train = _train_defaults()
    known = set()
    rows = ["| key | type | default | what it does |", "| --- | --- | --- | --- |"]
    for path, node in keys(schema):
        known.add(path)
        text = " ".join(str(node.get("description") or NOTES.get(path, "")).split())
        if not text:
            raise SystemExit(
                f"{SCHEMA.relative_to(ROOT)}: key {path} has no description; add one to NOTES in {__file__}"
            )
        cells = [f"`{path}`", type_of(node), default_of(path, node, defaults, train), text]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    stale = sorted(set(NOTES) - known)
    if stale:
        raise SystemExit(f"{__file__}: NOTES describes key(s) the schema does not have: {', '.join(stale)}")
    return "\n".join(rows) + "\n"


def render(current: str) -> str:
    """config/README.md with the table between the markers replaced."""
    head, start, rest = current.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"{REFERENCE.relative_to(ROOT)}: the markers {START!r} and {END!r} are missing")
    return f"{head}{START}\n{table()}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that config/README.md is current")
    args = parser.parse_args(argv)
    current = REFERENCE.read_text()
    wanted = render(current)
    if args.check:
        if current != wanted:
            print(
                f"{REFERENCE.relative_to(ROOT)} is out of date: run python scripts/config_reference.py", file=sys.stderr
            )
            return 1
        return 0
    REFERENCE.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
