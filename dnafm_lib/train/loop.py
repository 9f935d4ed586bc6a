"""The pretraining loop: wires config, data, model, optimiser, checkpoints and metrics.

``train(config)`` runs on every rank (torchrun) or as one process; it resumes from the
latest checkpoint in ``config.run_dir`` by itself. It returns a TrainResult; a preempted run
(SIGTERM/SIGUSR1) returns ``preempted=True`` after saving (see checkpointing for the exit
code contract).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..atomic import atomic_open
from ..errors import DnafmError
from ..model import build_model, flops_per_token, preset_config
from . import checkpointing, metrics
from .checkpointing import PREEMPTED_MARKER
from .config import TrainConfig
from .data import TrainBatches, base_composition_entropy_nats, validation_batches
from .distributed import (
    DistributedContext,
    all_reduce_sum,
    init_distributed,
    materialize_on_device,
    resolve_precision,
    shard_model,
    shutdown_distributed,
)
from .objective import batch_to_device, mlm_loss_sum
from .optim import build_optimizer, clip_gradients, learning_rate_at, set_learning_rate

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


def build_sharded_model(config: TrainConfig, ctx: DistributedContext) -> torch.nn.Module:
    model_config = preset_config(config.model, attn_backend=config.attn_backend,
                                 activation_checkpointing=config.activation_checkpointing, **config.model_overrides)
    dtype = resolve_precision(config.precision, ctx.device)
    if ctx.device.type == "cuda":
        # Large models never exist whole on one rank: build on meta, shard, then initialise shards.
        model = build_model(model_config, device="meta")
        shard_model(model, dtype, compile_blocks=config.compile)
        materialize_on_device(model, ctx.device, config.seed)
    else:
        # Small CPU models: identical full weights on every rank, so any world size starts alike.
        torch.manual_seed(config.seed)
        model = build_model(model_config, device="cpu")
        shard_model(model, dtype, compile_blocks=config.compile)
    return model.train()


def _validate(model, batches, ctx: DistributedContext) -> float:
    loss_sum, targets = torch.zeros((), device=ctx.device), 0
    model.eval()  # no dropout while validating
    with torch.no_grad():
        for batch in batches:
            loss_sum += mlm_loss_sum(model, *batch_to_device(batch, ctx.device))
            targets += batch.n_targets
    model.train()
    total_loss, total_targets = all_reduce_sum([float(loss_sum), float(targets)], ctx)
    return total_loss / max(total_targets, 1.0)


def _write_json(path: Path, data: dict) -> None:
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


def train(config: TrainConfig) -> TrainResult:
    ctx = init_distributed(config.device)
    try:
        return _train(config, ctx)
    finally:
        shutdown_distributed()


def _train(config: TrainConfig, ctx: DistributedContext) -> TrainResult:
    from ..shards import open_split  # numpy only; imported here so the benchmark needs no shards

    config.check_world(ctx.world_size)
    run_dir = Path(config.run_dir)
    reader = open_split(config.train_manifest)
    validation_reader = open_split(config.validation_manifest) if config.validation_manifest else None
    # Checked before any work: the check needs validation samples, at least one per rank.
    validation_windows = min(len(validation_reader), config.validation_samples) if validation_reader else 0
    if config.require_below_composition_entropy and validation_windows < ctx.world_size:
        raise TrainingError(
            f"require_below_composition_entropy needs a validation_manifest and validation_samples with at least "
            f"one window per rank ({ctx.world_size}); got {validation_windows} validation window(s)"
        )

    model = build_sharded_model(config, ctx)
    optimizer = build_optimizer(model, config, ctx.device)
    sequence_length = reader.window + 2
    flops_token = flops_per_token(model.config, sequence_length, training=True)
    peak_flops = metrics.peak_flops_per_device(ctx.device, config.peak_flops_per_device)

    step, tokens_seen = 0, 0
    latest = checkpointing.latest_checkpoint(run_dir)
    if latest is not None:
        progress = checkpointing.load_checkpoint(latest, model, optimizer)
        step, tokens_seen = int(progress["step"]), int(progress.get("tokens_seen", 0))
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_json(run_dir / MODEL_CONFIG_NAME, model.config.architecture_dict())
        _write_json(run_dir / TRAIN_CONFIG_NAME, config.to_dict())
    logger = metrics.MetricsLogger(run_dir, enabled=ctx.is_main, resume_step=step, total_steps=config.max_steps,
                                   progress_bar=config.progress_bar)
    if latest is not None:
        logger.message(f"resumed from {latest} (step {step}, saved on {progress['world_size']} rank(s), "
                       f"now {ctx.world_size})")
    logger.message(f"training {config.model} ({sum(p.numel() for p in model.parameters()):,} parameters) on "
                   f"{reader!r}, {ctx.world_size} rank(s) on {ctx.device.type}, global batch "
                   f"{config.global_batch_size} = {config.micro_batch_size} × {ctx.world_size} rank(s) × "
                   f"{config.accumulation_steps(ctx.world_size)} accumulation step(s)")

    batches = TrainBatches(reader, seed=config.seed, global_batch_size=config.global_batch_size,
                           micro_batch_size=config.micro_batch_size, rank=ctx.rank, world_size=ctx.world_size,
                           mask_fraction=config.mask_fraction)
    validation = []
    if validation_reader is not None and config.validation_samples:
        validation = validation_batches(validation_reader, seed=config.seed, n_samples=config.validation_samples,
                                        micro_batch_size=config.micro_batch_size, rank=ctx.rank,
                                        world_size=ctx.world_size, mask_fraction=config.mask_fraction)
    # Every rank computes the same entropy bar from the targets of all ranks' batches.
    entropy_nats = None
    if validation:
        all_validation = validation_batches(validation_reader, seed=config.seed, n_samples=config.validation_samples,
                                            micro_batch_size=config.micro_batch_size, rank=0, world_size=1,
                                            mask_fraction=config.mask_fraction)
        entropy_nats = base_composition_entropy_nats(all_validation)

    preemption = checkpointing.PreemptionFlag().install()
    tokens_per_step = config.global_batch_size * sequence_length
    last_saved, train_loss, validation_loss = (step if latest is not None else -1), None, None
    stop_requested = False
    if ctx.is_main:
        (run_dir / PREEMPTED_MARKER).unlink(missing_ok=True)
    throughput: list[float] = []
    started = time.perf_counter()
    try:
        while step < config.max_steps:
            step_started = time.perf_counter()
            micro_batches = batches.micro_batches(step)
            local_targets = sum(b.n_targets for b in micro_batches)
            # One collective: the global target count (the loss denominator) and any stop request.
            global_targets, stop_votes = all_reduce_sum([float(local_targets), float(preemption.requested)], ctx)
            if stop_votes:  # some rank was signalled: all stop at this same step
                stop_requested = True
                break
            lr = learning_rate_at(step, config)
            set_learning_rate(optimizer, lr)
            # FSDP averages gradients over ranks; scaling by the world size makes that a sum, so the
            # step's gradient is d(total loss / global targets), independent of the split.
            scale = ctx.world_size / max(global_targets, 1.0)
            loss_sum = torch.zeros((), device=ctx.device)
            for batch in micro_batches:
                micro_loss = mlm_loss_sum(model, *batch_to_device(batch, ctx.device))
                (micro_loss * scale).backward()
                loss_sum += micro_loss.detach()
            (total_loss,) = all_reduce_sum([float(loss_sum)], ctx)
            train_loss = total_loss / max(global_targets, 1.0)
            grad_norm = clip_gradients(model, config.grad_clip_norm)
            if not (math.isfinite(train_loss) and math.isfinite(grad_norm)):
                if config.nonfinite_loss == "error":
                    raise NonFiniteLossError(
                        f"step {step + 1}: the training loss is {train_loss} and the gradient norm {grad_norm}; "
                        f"lower learning_rate (now {lr:.3g}) or set nonfinite_loss: skip to drop such batches"
                    )
                optimizer.zero_grad(set_to_none=True)
                logger.message(f"step {step + 1}: non-finite loss {train_loss}, batch skipped")
            else:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens_seen += tokens_per_step
            elapsed = time.perf_counter() - step_started
            tokens_per_s = tokens_per_step / elapsed
            throughput.append(tokens_per_s)
            row = {"loss_nats": train_loss, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": tokens_per_s,
                   "mfu": metrics.model_flops_utilization(flops_token, tokens_per_s, peak_flops, ctx.world_size),
                   "epoch": batches.epoch_of(step), "elapsed_s": time.perf_counter() - started}
            if validation and (step % config.validate_every_steps == 0 or step == config.max_steps):
                validation_loss = _validate(model, validation, ctx)
                row["val_loss_nats"] = validation_loss
                logger.message(f"step {step}: validation loss {validation_loss:.4f} nats")
            if step % config.log_every_steps == 0 or "val_loss_nats" in row or step == config.max_steps:
                logger.log(step, row)
            logger.advance()
            if step % config.checkpoint_every_steps == 0 or step == config.max_steps:
                checkpointing.save_checkpoint(run_dir, step, model, optimizer, ctx,
                                              {"tokens_seen": tokens_seen}, config.keep_checkpoints)
                last_saved = step
        preempted = stop_requested
        if preempted:
            if last_saved != step:
                checkpointing.save_checkpoint(run_dir, step, model, optimizer, ctx,
                                              {"tokens_seen": tokens_seen}, config.keep_checkpoints)
            if ctx.is_main:  # tells the launcher, which sees only torchrun's exit status
                _write_json(run_dir / PREEMPTED_MARKER, {"step": step, "signal": preemption.signal_number})
            logger.message(f"preempted by signal {preemption.signal_number}: saved step {step}; "
                           f"exit {checkpointing.PREEMPTED_EXIT_CODE} and run again to resume")
    finally:
        preemption.uninstall()
        logger.close()

    if not preempted and validation and validation_loss is None:  # resumed a finished run
        validation_loss = _validate(model, validation, ctx)
    result = TrainResult(
        final_step=step, preempted=preempted, train_loss_nats=train_loss, validation_loss_nats=validation_loss,
        composition_entropy_nats=entropy_nats,
        mean_tokens_per_s=(sum(throughput) / len(throughput)) if throughput else None,
        checkpoint=str(checkpointing.latest_checkpoint(run_dir)),
    )
    if preempted:
        return result
    if ctx.is_main:
        metrics.plot_curves(run_dir / metrics.CSV_NAME, run_dir / metrics.PLOT_NAME,
                            title=f"{config.model} · {run_dir.name}")
        _write_json(run_dir / SUMMARY_NAME, asdict(result))
        if validation_loss is not None:
            print(f"final validation loss {validation_loss:.4f} nats; base-composition entropy of the validation "
                  f"targets {entropy_nats:.4f} nats", flush=True)
    if config.require_below_composition_entropy and not validation_loss < entropy_nats:
        raise TrainingError(
            f"{run_dir}: the final validation loss {validation_loss:.4f} nats is not below the base-composition "
            f"entropy {entropy_nats:.4f} nats of the validation data: the model learned nothing beyond base "
            f"frequencies (train longer or raise learning_rate)"
        )
    return result
