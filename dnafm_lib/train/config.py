"""Training settings: one dataclass, validated once at the edge (CLI or Snakemake config).

Keys are those of the ``pretrain.train`` section of config/config.yaml. Built by
``dnafm_lib.core.settings`` (``TrainConfig.from_mapping`` / ``TrainConfig.load``): an unknown
key, a value of the wrong type or out of range is one TrainConfigError naming the key and
where it came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dnafm_lib.core.devices import DEVICE_WORDS, PRECISIONS, canonical_precision, device_problem, precision_problem
from dnafm_lib.core.settings import Settings, SettingsError


class TrainConfigError(SettingsError):
    """A training setting that is missing, unknown, of the wrong type or out of range."""


# The settings that take one of a few words (the workflow's config schema is tested against these;
# attn_backend takes dnafm_lib.model.encoder.ATTENTION_BACKENDS and model a preset name).
# device takes core.devices' words but not cuda:N: under torchrun each rank uses its LOCAL_RANK's GPU.
CHOICES = {
    "device": DEVICE_WORDS,
    "precision": PRECISIONS,
    "nonfinite_loss": ("error", "skip"),
}
# Set by the workflow's rule from its own paths, not by the config file's pretrain.train.
WORKFLOW_SET = ("train_manifest", "validation_manifest", "run_dir")


@dataclass
class TrainConfig(Settings):
    ERROR: ClassVar[type[SettingsError]] = TrainConfigError

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

    def __post_init__(self) -> None:
        self.precision = canonical_precision(self.precision)

    # ------------------------------------------------------------------ validation

    def problems(self) -> Iterator[tuple[str, str]]:
        """The rules that need no knowledge of the launch (world size is checked by ``check_world``)."""
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
                yield key, f"must be at least 1, got {getattr(self, key)}"
        if self.validation_samples < 0:
            yield "validation_samples", f"must be 0 or more, got {self.validation_samples}"
        if not 0 <= self.warmup_steps <= self.max_steps:
            yield "warmup_steps", f"must be between 0 and max_steps ({self.max_steps}), got {self.warmup_steps}"
        if self.learning_rate <= 0:
            yield "learning_rate", f"must be above 0, got {self.learning_rate}"
        if not 0 <= self.min_learning_rate <= self.learning_rate:
            yield (
                "min_learning_rate",
                f"must be between 0 and learning_rate ({self.learning_rate}), got {self.min_learning_rate}",
            )
        for key in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, key) < 1:
                yield key, f"must be in [0, 1), got {getattr(self, key)}"
        if self.weight_decay < 0:
            yield "weight_decay", f"must be 0 or more, got {self.weight_decay}"
        for key in ("grad_clip_norm", "adam_eps"):
            if getattr(self, key) <= 0:
                yield key, f"must be above 0, got {getattr(self, key)}"
        if not 0 < self.mask_fraction < 1:
            yield "mask_fraction", f"must be in (0, 1), got {self.mask_fraction}"
        from dnafm_lib.model.encoder import ATTENTION_BACKENDS, PRESETS  # torch is already needed by whoever trains

        for key, allowed in {**CHOICES, "attn_backend": ATTENTION_BACKENDS, "model": tuple(PRESETS)}.items():
            if getattr(self, key) not in allowed:
                if key == "device" and device_problem(self.device) is None:
                    yield (
                        key,
                        f"must be one of {', '.join(allowed)} (each rank takes the GPU of its LOCAL_RANK), got {self.device!r}",
                    )
                elif key == "precision":
                    yield key, precision_problem(self.precision)
                else:
                    yield key, f"must be one of {', '.join(allowed)}, got {getattr(self, key)!r}"

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
