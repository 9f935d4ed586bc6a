"""What training does to the model from outside it: activation checkpointing, compile, FSDP2.

The model file (dnafm_lib.model.encoder) describes the computation only; these wrappers change how it
runs, in torchtitan's order: activation checkpointing around each block, then torch.compile
per block, then ``fully_shard`` per block and on the root.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

from dnafm_lib.model.encoder import build_model, preset_config
from dnafm_lib.train.config import TrainConfig
from dnafm_lib.train.distributed import DistributedContext, materialize_on_device, resolve_precision, shard_model


def apply_activation_checkpointing(model: nn.Module) -> nn.Module:
    """Recompute each block's activations in backward instead of keeping them.

    torch's wrapper keeps parameter names (its ``_checkpoint_wrapped_module.`` prefix is stripped
    from state dicts), so checkpoints load with or without it.
    """
    blocks = model.blocks
    for index in range(len(blocks)):
        blocks[index] = checkpoint_wrapper(blocks[index], preserve_rng_state=False)
    return model


def build_parallel_model(config: TrainConfig, ctx: DistributedContext) -> nn.Module:
    """The model of ``config``, wrapped for training on ``ctx``'s ranks, in train mode."""
    model_config = preset_config(config.model, attn_backend=config.attn_backend, **config.model_overrides)
    dtype = resolve_precision(config.precision, ctx.device)
    on_gpu = ctx.device.type == "cuda"
    if on_gpu:  # large models never exist whole on one rank: build on meta, shard, then initialise shards
        model = build_model(model_config, device="meta")
    else:  # small CPU models: identical full weights on every rank, so any world size starts alike
        torch.manual_seed(config.seed)
        model = build_model(model_config, device="cpu")
    if config.activation_checkpointing:
        apply_activation_checkpointing(model)
    shard_model(model, dtype, compile_blocks=config.compile)
    if on_gpu:
        materialize_on_device(model, ctx.device, config.seed)
    return model.train()
