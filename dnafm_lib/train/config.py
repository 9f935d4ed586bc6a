"""Training settings: one dataclass, validated once at the edge (CLI or Snakemake config).

Keys are those of the ``pretrain.train`` section of config/config.yaml; an unknown key, a
value of the wrong type or out of range is one TrainConfigError naming the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from dnafm_lib.core.errors import DnafmError


class TrainConfigError(DnafmError):
    """A training setting that is missing, unknown, of the wrong type or out of range."""


# The settings that take one of a few words (the workflow's config schema is tested against these;
# attn_backend takes dnafm_lib.model.encoder.ATTENTION_BACKENDS and model a preset name).
CHOICES = {
    "device": ("auto", "cpu", "cuda"),
    "precision": ("auto", "bf16", "fp32"),
    "nonfinite_loss": ("error", "skip"),
}
# Set by the workflow's rule from its own paths, not by the config file's pretrain.train.
WORKFLOW_SET = ("train_manifest", "validation_manifest", "run_dir")


@dataclass
class TrainConfig:
    # Where: shard manifests in, run directory out (checkpoints, metrics, tensorboard).
    train_manifest: str = "results/shards/train.manifest.json"
    validation_manifest: str | None = "results/shards/validation.manifest.json"
    run_dir: str = "results/pretrain/demo"
    # What: a preset of dnafm_lib.model.encoder plus architecture overrides (e.g. num_hidden_layers).
    model: str = "tiny"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    # Batch: global_batch_size samples per optimizer step, micro_batch_size per forward per rank;
    # gradient accumulation makes up the rest.
    global_batch_size: int = 32
    micro_batch_size: int = 16
    max_steps: int = 200
    # Optimiser: AdamW, linear warmup to learning_rate then cosine to min_learning_rate.
    learning_rate: float = 1e-3
    min_learning_rate: float = 1e-4
    warmup_steps: int = 20
    weight_decay: float = 0.1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_eps: float = 1e-8
    grad_clip_norm: float = 1.0
    # MLM: this fraction of A/C/G/T positions is chosen; of those 80% [MASK], 10% random base, 10% kept.
    mask_fraction: float = 0.15
    # Engine: device auto = cuda when available; precision auto = bf16 on GPU, fp32 on CPU.
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    activation_checkpointing: bool = False
    attn_backend: str = "sdpa"
    # Bookkeeping (steps count optimizer updates).
    checkpoint_every_steps: int = 100
    keep_checkpoints: int = 2
    log_every_steps: int = 1
    validate_every_steps: int = 50
    validation_samples: int = 256
    # What to do with a NaN/inf loss: "error" stops naming the step; "skip" drops that batch.
    nonfinite_loss: str = "error"
    # The demo's acceptance check: the final validation loss must beat the base-composition entropy.
    require_below_composition_entropy: bool = False
    # Peak dense FLOP/s of one device for MFU; 0 = look the card up (none on CPU: MFU left blank).
    peak_flops_per_device: float = 0.0
    progress_bar: bool = True

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "pretrain settings") -> "TrainConfig":
        """Build from a dict (YAML/JSON); unknown keys and wrong types are errors naming the key."""
        if not isinstance(values, Mapping):
            raise TrainConfigError(f"{where}: expected a mapping of settings, got {type(values).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise TrainConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
        defaults = cls()
        coerced = {}
        for key, value in values.items():
            coerced[key] = _coerce(key, value, getattr(defaults, key), known[key].type, where)
        config = dataclasses.replace(defaults, **coerced)
        config.check()
        return config

    def replace(self, **changes: Any) -> "TrainConfig":
        merged = {**dataclasses.asdict(self), **changes}
        return TrainConfig.from_mapping(merged)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # ------------------------------------------------------------------ validation

    def check(self) -> None:
        """Checks that need no knowledge of the launch (world size is checked by ``check_world``)."""
        positive = (
            "global_batch_size",
            "micro_batch_size",
            "max_steps",
            "checkpoint_every_steps",
            "keep_checkpoints",
            "log_every_steps",
            "validate_every_steps",
        )
        for key in positive:
            if getattr(self, key) < 1:
                raise TrainConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.validation_samples < 0:
            raise TrainConfigError(f"validation_samples must be 0 or more, got {self.validation_samples}")
        if not 0 <= self.warmup_steps <= self.max_steps:
            raise TrainConfigError(
                f"warmup_steps must be between 0 and max_steps ({self.max_steps}), got {self.warmup_steps}"
            )
        if self.learning_rate <= 0 or not 0 <= self.min_learning_rate <= self.learning_rate:
            raise TrainConfigError(
                f"need 0 < learning_rate and 0 <= min_learning_rate <= learning_rate, "
                f"got learning_rate {self.learning_rate}, min_learning_rate {self.min_learning_rate}"
            )
        for key in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, key) < 1:
                raise TrainConfigError(f"{key} must be in [0, 1), got {getattr(self, key)}")
        if self.weight_decay < 0 or self.grad_clip_norm <= 0 or self.adam_eps <= 0:
            raise TrainConfigError("weight_decay must be >= 0, grad_clip_norm and adam_eps > 0")
        if not 0 < self.mask_fraction < 1:
            raise TrainConfigError(f"mask_fraction must be in (0, 1), got {self.mask_fraction}")
        from dnafm_lib.model.encoder import ATTENTION_BACKENDS, PRESETS  # torch is already needed by whoever trains

        for key, allowed in {**CHOICES, "attn_backend": ATTENTION_BACKENDS}.items():
            if getattr(self, key) not in allowed:
                raise TrainConfigError(f"{key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")

        if self.model not in PRESETS:
            raise TrainConfigError(f"model must be one of {', '.join(PRESETS)}, got {self.model!r}")

    def check_world(self, world_size: int) -> None:
        """The global batch must split evenly into micro-batches on every rank."""
        per_step = self.micro_batch_size * world_size
        if self.global_batch_size % per_step:
            raise TrainConfigError(
                f"global_batch_size {self.global_batch_size} is not divisible by micro_batch_size "
                f"{self.micro_batch_size} × world size {world_size} = {per_step}; choose a global batch "
                f"that is a multiple of {per_step}"
            )

    def accumulation_steps(self, world_size: int) -> int:
        return self.global_batch_size // (self.micro_batch_size * world_size)


def _coerce(key: str, value: Any, default: Any, annotation: Any, where: str) -> Any:
    """YAML gives ints for floats and strings for paths; anything else mismatched is an error."""

    def bad(expected: str) -> TrainConfigError:
        return TrainConfigError(f"{where}: {key} must be {expected}, got {value!r} ({type(value).__name__})")

    if key == "validation_manifest" and value is None:
        return None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if isinstance(default, str) or default is None:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if isinstance(default, dict):
        if not isinstance(value, Mapping):
            raise bad("a mapping")
        return dict(value)
    return value
