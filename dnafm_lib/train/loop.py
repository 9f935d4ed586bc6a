"""The pretraining loop: a Trainer that wires data, model, optimiser, checkpoints and metrics.

``train(config)`` runs on every rank (torchrun) or as one process; it resumes from the
latest checkpoint in ``config.run_dir`` by itself. It returns a TrainResult; a preempted run
(SIGTERM/SIGUSR1) returns ``preempted=True`` after saving (see preemption for the exit
code contract).

The host reads the device only at *sync steps* (logging, validation, checkpoint and the last
step): losses and gradient norms stay on the device in between, so the GPU runs ahead of
Python. The one exception is ``nonfinite_loss: skip``, which must look at every step's loss
before deciding to apply its update.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dnafm_lib.core.atomic import atomic_open
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.core.progress import Progress
from dnafm_lib.model.encoder import flops_per_token
from dnafm_lib.train import metrics
from dnafm_lib.train.checkpointer import Checkpointer
from dnafm_lib.train.config import TrainConfig
from dnafm_lib.train.data import MlmBatch, TrainBatches, base_counts, entropy_nats, validation_batches
from dnafm_lib.train.distributed import (
    DistributedContext,
    all_reduce_sum,
    all_reduce_sum_on_device,
    init_distributed,
    shutdown_distributed,
)
from dnafm_lib.train.objective import batch_to_device, mlm_loss_sum
from dnafm_lib.train.optim import build_optimizer, clip_gradients, learning_rate_at, set_learning_rate
from dnafm_lib.train.parallelize import build_parallel_model
from dnafm_lib.train.preemption import PREEMPTED_EXIT_CODE, PREEMPTED_MARKER, PreemptionFlag

SUMMARY_NAME = "summary.json"
MODEL_CONFIG_NAME = "model_config.json"
TRAIN_CONFIG_NAME = "train_config.json"


class TrainingError(DnafmError):
    """Training cannot go on, or did not reach its goal."""


class NonFiniteLossError(TrainingError):
    pass


@dataclass
class TrainResult:
    final_step: int
    preempted: bool
    train_loss_nats: float | None
    validation_loss_nats: float | None
    composition_entropy_nats: float | None
    mean_tokens_per_s: float | None
    checkpoint: str | None


@dataclass
class _StepOnDevice:
    """One optimizer step's numbers, still on the device until the next sync step."""

    step: int
    lr: float
    loss_nats: torch.Tensor  # float64 scalar: the global mean loss
    grad_norm: torch.Tensor  # scalar, before clipping


def _write_json(path: Path, data: dict) -> None:
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


class Trainer:
    """``setup()``, then ``train_step()`` until ``max_steps`` (with the bookkeeping each step
    is due), then ``finish()``; ``run()`` does all three with preemption handling."""

    def __init__(self, config: TrainConfig, ctx: DistributedContext):
        self.config = config
        self.ctx = ctx
        self.run_dir = Path(config.run_dir)
        self.step = 0
        self.tokens_seen = 0
        self.train_loss: float | None = None
        self.validation_loss: float | None = None
        self.composition_entropy: float | None = None
        self._on_device: list[_StepOnDevice] = []
        self._throughput: list[float] = []
        self._last_saved = -1

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        self.config.check_world(self.ctx.world_size)
        self._open_data()  # first: its checks need no model
        self.model = build_parallel_model(self.config, self.ctx)
        self.optimizer = build_optimizer(self.model, self.config, self.ctx.device)
        self.checkpointer = Checkpointer(self.run_dir, self.ctx, keep=self.config.keep_checkpoints)
        progress = self._resume()
        self._start_logging(progress)
        self._build_validation()

    def _open_data(self) -> None:
        from dnafm_lib.data.shards import open_split  # numpy only; imported here so the benchmark needs no shards

        config, ctx = self.config, self.ctx
        self.reader = open_split(config.train_manifest)
        self.validation_reader = open_split(config.validation_manifest) if config.validation_manifest else None
        # Checked before any work: the check needs validation samples, at least one per rank.
        windows = min(len(self.validation_reader), config.validation_samples) if self.validation_reader else 0
        if config.require_below_composition_entropy and windows < ctx.world_size:
            raise TrainingError(
                f"require_below_composition_entropy needs a validation_manifest and validation_samples with at "
                f"least one window per rank ({ctx.world_size}); got {windows} validation window(s)"
            )
        # keyword arguments spelled out on purpose; validation_batches below takes the same masking and rank settings
        self.batches = TrainBatches(
            self.reader,
            seed=config.seed,
            global_batch_size=config.global_batch_size,
            micro_batch_size=config.micro_batch_size,
            rank=ctx.rank,
            world_size=ctx.world_size,
            mask_fraction=config.mask_fraction,
        )
        self.tokens_per_step = config.global_batch_size * (self.reader.window + 2)

    def _build_validation(self) -> None:
        """This rank's share of the validation set, built once; the entropy bar from all shares."""
        config, ctx = self.config, self.ctx
        self.validation: list[MlmBatch] = []
        if self.validation_reader is None or not config.validation_samples:
            return
        # the same masking and rank settings as TrainBatches above, spelled out on purpose
        self.validation = validation_batches(
            self.validation_reader,
            seed=config.seed,
            n_samples=config.validation_samples,
            micro_batch_size=config.micro_batch_size,
            rank=ctx.rank,
            world_size=ctx.world_size,
            mask_fraction=config.mask_fraction,
        )
        if self.validation:  # the same on every rank: each gets the same number of batches
            self.composition_entropy = entropy_nats(all_reduce_sum(list(base_counts(self.validation)), ctx))

    def _resume(self) -> dict | None:
        progress = self.checkpointer.load_latest(self.model, self.optimizer)
        if progress is not None:
            self.step, self.tokens_seen = int(progress["step"]), int(progress.get("tokens_seen", 0))
            self._last_saved = self.step
        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            _write_json(self.run_dir / MODEL_CONFIG_NAME, self.model.config.architecture_dict())
            _write_json(self.run_dir / TRAIN_CONFIG_NAME, self.config.to_dict())
            (self.run_dir / PREEMPTED_MARKER).unlink(missing_ok=True)
        return progress

    def _start_logging(self, progress: dict | None) -> None:
        config, ctx = self.config, self.ctx
        self.logger = metrics.MetricsLogger(
            self.run_dir,
            enabled=ctx.is_main,
            resume_step=self.step,
            total_steps=config.max_steps,
            progress_bar=config.progress_bar,
        )
        # Steps of the whole run (a resumed run starts at its checkpoint's), every 30 s and each tenth.
        self.progress = Progress(
            "pretrain", config.max_steps, unit="steps", done=self.step, write=self.logger.progress_line
        )
        self.flops_per_token = flops_per_token(self.model.config, self.reader.window + 2, training=True)
        self.peak_flops = metrics.peak_flops_per_device(ctx.device, config.peak_flops_per_device)
        if progress is not None:
            self.logger.message(
                f"resumed from {progress['path']} (step {self.step}, saved on "
                f"{progress['world_size']} rank(s), now {ctx.world_size})"
            )
        parameters = sum(p.numel() for p in self.model.parameters())
        self.logger.message(
            f"training {config.model} ({parameters:,} parameters) on {self.reader!r}, {ctx.world_size} rank(s) on "
            f"{ctx.device.type}, global batch {config.global_batch_size} = {config.micro_batch_size} × "
            f"{ctx.world_size} rank(s) × {config.accumulation_steps(ctx.world_size)} accumulation step(s)"
        )

    # ------------------------------------------------------------------ one step

    def train_step(self, stop_requested: bool = False) -> bool:
        """One optimizer update; False (and nothing done) when some rank asked to stop."""
        micro_batches = self.batches.micro_batches(self.step)
        local_targets = sum(batch.n_targets for batch in micro_batches)
        written = self.checkpointer.writes_finished
        # One host collective: the global target count (the loss denominator), any stop request,
        # and how many ranks have written their part of the save in flight.
        global_targets, stop_votes, written_votes = all_reduce_sum(
            [float(local_targets), float(stop_requested), float(written)], self.ctx
        )
        if written_votes == self.ctx.world_size:  # every rank's files are on disk: make it the latest now
            self.checkpointer.wait()
        if stop_votes:  # some rank was signalled: all stop at this same step
            return False
        lr = learning_rate_at(self.step, self.config)
        set_learning_rate(self.optimizer, lr)
        loss_sum = self._forward_backward(micro_batches, global_targets)
        loss_nats = all_reduce_sum_on_device(loss_sum.double(), self.ctx) / max(global_targets, 1.0)
        record = _StepOnDevice(self.step + 1, lr, loss_nats, clip_gradients(self.model, self.config.grad_clip_norm))
        if self.config.nonfinite_loss == "skip" and not self._finite(record):
            self.logger.message(f"step {record.step}: non-finite loss {float(loss_nats)}, batch skipped")
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens_seen += self.tokens_per_step
        self._on_device.append(record)
        return True

    def _forward_backward(self, micro_batches: list[MlmBatch], global_targets: float) -> torch.Tensor:
        """Accumulate the gradients of the global mean loss; return this rank's summed loss (on device)."""
        # FSDP averages gradients over ranks; scaling by the world size makes that a sum, so the
        # step's gradient is d(total loss / global targets), independent of the split.
        scale = self.ctx.world_size / max(global_targets, 1.0)
        loss_sum = torch.zeros((), device=self.ctx.device)
        for batch in micro_batches:
            micro_loss = mlm_loss_sum(self.model, *batch_to_device(batch, self.ctx.device))
            (micro_loss * scale).backward()
            loss_sum += micro_loss.detach()
        return loss_sum

    @staticmethod
    def _finite(record: _StepOnDevice) -> bool:
        return bool(torch.isfinite(record.loss_nats) & torch.isfinite(record.grad_norm))  # a host sync

    # ------------------------------------------------------------------ bookkeeping at sync steps

    def _due(self, every_steps: int) -> bool:
        return self.step % every_steps == 0 or self.step == self.config.max_steps

    def after_step(self) -> None:
        """Log, validate and checkpoint when the step just taken is due for it."""
        config = self.config
        logging, checkpointing = self._due(config.log_every_steps), self._due(config.checkpoint_every_steps)
        validating = bool(self.validation) and self._due(config.validate_every_steps)
        if logging or validating or checkpointing:
            row = self._read_device_numbers()
            if validating:
                self.validation_loss = row["val_loss_nats"] = self.validate()
                self.logger.message(f"step {self.step}: validation loss {self.validation_loss:.4f} nats")
            if logging or validating:
                self.logger.log(self.step, row)
        self.logger.advance()
        self.progress.update(self.step)
        if checkpointing:
            self._save()
        if logging or validating or checkpointing:
            self._interval_started = time.perf_counter()  # throughput counts training time only

    def _read_device_numbers(self) -> dict:
        """Bring the steps since the last sync to the host (one transfer): the last step's row."""
        records, self._on_device = self._on_device, []
        values = torch.stack([torch.stack([r.loss_nats, r.grad_norm.double()]) for r in records]).tolist()
        if self.config.nonfinite_loss == "error":
            for record, (loss, grad_norm) in zip(records, values):
                if not (math.isfinite(loss) and math.isfinite(grad_norm)):
                    raise NonFiniteLossError(
                        f"step {record.step}: the training loss is {loss} and the gradient norm {grad_norm}; lower "
                        f"learning_rate (now {record.lr:.3g}) or set nonfinite_loss: skip to drop such batches"
                    )
        interval_s = time.perf_counter() - self._interval_started
        tokens_per_s = len(records) * self.tokens_per_step / interval_s
        self._throughput.append(tokens_per_s)
        self.train_loss, grad_norm = values[-1]
        mfu = metrics.model_flops_utilization(self.flops_per_token, tokens_per_s, self.peak_flops, self.ctx.world_size)
        return {
            "loss_nats": self.train_loss,
            "lr": records[-1].lr,
            "grad_norm": grad_norm,
            "tokens_per_s": tokens_per_s,
            "mfu": mfu,
            "epoch": self.batches.epoch_of(self.step),
            "elapsed_s": time.perf_counter() - self._started,
        }

    def validate(self) -> float:
        """Mean validation loss (nats) over all ranks' shares."""
        loss_sum, targets = torch.zeros((), device=self.ctx.device), 0
        self.model.eval()  # no dropout while validating
        with torch.no_grad():
            for batch in self.validation:
                loss_sum += mlm_loss_sum(self.model, *batch_to_device(batch, self.ctx.device))
                targets += batch.n_targets
        self.model.train()
        total_loss, total_targets = all_reduce_sum([float(loss_sum), float(targets)], self.ctx)
        return total_loss / max(total_targets, 1.0)

    def _save(self) -> None:
        self.checkpointer.save(self.step, self.model, self.optimizer, {"tokens_seen": self.tokens_seen})
        self._last_saved = self.step

    # ------------------------------------------------------------------ run and finish

    def run(self) -> TrainResult:
        self.setup()
        preemption = PreemptionFlag().install()
        self._started = self._interval_started = time.perf_counter()
        stopped = False
        try:
            while self.step < self.config.max_steps and not stopped:
                stopped = not self.train_step(stop_requested=preemption.requested)
                if not stopped:
                    self.after_step()
            if stopped:
                self._save_for_requeue(preemption.signal_number)
        except BaseException:
            self.checkpointer.abandon()
            raise
        finally:
            preemption.uninstall()
            self.logger.close()
        return self.finish(preempted=stopped)

    def _save_for_requeue(self, signal_number: int | None) -> None:
        if self._last_saved != self.step:
            if self._on_device:
                self._read_device_numbers()  # a non-finite step is an error, not a checkpoint
            self._save()
        self.checkpointer.wait()
        if self.ctx.is_main:  # tells the launcher, which sees only torchrun's exit status
            _write_json(self.run_dir / PREEMPTED_MARKER, {"step": self.step, "signal": signal_number})
        self.logger.message(
            f"preempted by signal {signal_number}: saved step {self.step}; "
            f"exit {PREEMPTED_EXIT_CODE} and run again to resume"
        )

    def finish(self, preempted: bool = False) -> TrainResult:
        """Wait for the last save; write the summary and the plot; apply the demo's check."""
        self.checkpointer.close()
        if not preempted and self.validation and self.validation_loss is None:  # resumed a finished run
            self.validation_loss = self.validate()
        result = TrainResult(
            final_step=self.step,
            preempted=preempted,
            train_loss_nats=self.train_loss,
            validation_loss_nats=self.validation_loss,
            composition_entropy_nats=self.composition_entropy,
            mean_tokens_per_s=(sum(self._throughput) / len(self._throughput)) if self._throughput else None,
            checkpoint=str(self.checkpointer.latest()),
        )
        if not preempted:
            self.progress.finish()
            self._write_summary(result)
            self._check_learned()
        return result

    def _write_summary(self, result: TrainResult) -> None:
        if not self.ctx.is_main:
            return
        metrics.plot_curves(
            self.run_dir / metrics.CSV_NAME,
            self.run_dir / metrics.PLOT_NAME,
            title=f"{self.config.model} · {self.run_dir.name}",
        )
        _write_json(self.run_dir / SUMMARY_NAME, asdict(result))
        if self.validation_loss is not None:
            print(
                f"final validation loss {self.validation_loss:.4f} nats; base-composition entropy of the "
                f"validation targets {self.composition_entropy:.4f} nats",
                flush=True,
            )

    def _check_learned(self) -> None:
        if self.config.require_below_composition_entropy and not self.validation_loss < self.composition_entropy:
            raise TrainingError(
                f"{self.run_dir}: the final validation loss {self.validation_loss:.4f} nats is not below the "
                f"base-composition entropy {self.composition_entropy:.4f} nats of the validation data: the model "
                f"learned nothing beyond base frequencies (train longer or raise learning_rate)"
            )


def train(config: TrainConfig) -> TrainResult:
    ctx = init_distributed(config.device)
    try:
        return Trainer(config, ctx).run()
    finally:
        shutdown_distributed()
