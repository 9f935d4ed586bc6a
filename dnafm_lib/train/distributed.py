"""Process group, device and FSDP2 sharding.

Launch: torchrun (or ``srun torchrun``) sets RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR; a plain
process becomes a world of one (an in-memory store), so the same code path — FSDP2 and
torch.distributed.checkpoint included — runs everywhere. Backend: nccl on GPU, gloo on CPU.

Sharding: ``fully_shard`` on every block, then on the root (embeddings, final norm, MLM
head). On GPU with bf16, a MixedPrecisionPolicy computes in bf16 and reduces gradients in
fp32 while the sharded parameters (the optimizer's master weights) stay fp32.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from dnafm_lib.core.errors import DnafmError

# FSDP2 warns that the model's output holds views; the loop never modifies outputs in place.
warnings.filterwarnings("ignore", message=".*returned a view tensor.*")


@dataclass
class DistributedContext:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device
    backend: str
    # Small control messages (stop votes, target counts) go over gloo on the host, so reading
    # them never waits for the GPU; None in a world of one.
    host_group: dist.ProcessGroup | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_distributed(device_preference: str = "auto") -> DistributedContext:
    """Join the torchrun world, or make a world of one; pick the device and backend."""
    use_cuda = device_preference == "cuda" or (device_preference == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise DnafmError("device 'cuda' was asked for (pretrain setting device), but PyTorch sees no CUDA device")
    backend = "nccl" if use_cuda else "gloo"
    if launched_by_torchrun():
        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    else:
        rank, world_size, local_rank, local_world_size = 0, 1, 0, 1
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
        # Ranks on one machine share its cores rather than each taking all of them.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world_size))
    if not dist.is_initialized():
        if launched_by_torchrun():
            dist.init_process_group(backend, device_id=device if use_cuda else None)
        else:
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    host_group = None
    if world_size > 1:
        host_group = dist.new_group(backend="gloo") if use_cuda else dist.group.WORLD
    return DistributedContext(rank, world_size, local_rank, local_world_size, device, backend, host_group)


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    from dnafm_lib.core.devices import compute_dtype  # the one precision vocabulary

    return compute_dtype(precision, device)


def shard_model(model: nn.Module, compute_dtype: torch.dtype, *, compile_blocks: bool = False) -> nn.Module:
    """Apply torch.compile per block (optional), then FSDP2 per block and on the root."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=torch.float32)
    blocks = model.blocks
    for index in range(len(blocks)):
        if compile_blocks:
            # Compiled per block (all blocks share one graph, so it compiles once) and wrapped
            # before sharding, so FSDP's hooks stay outside the compiled region. The wrapper adds
            # ``_orig_mod`` to names; torch.distributed.checkpoint's state dicts strip it.
            blocks[index] = torch.compile(blocks[index])
        # The last block's parameters are needed again at once by backward: keep them gathered.
        fully_shard(blocks[index], mp_policy=policy, reshard_after_forward=index < len(blocks) - 1)
    fully_shard(model, mp_policy=policy)
    return model


def materialize_on_device(model: nn.Module, device: torch.device, seed: int) -> None:
    """A model built on the meta device and sharded: allocate its shards and initialise them."""
    model.to_empty(device=device)
    torch.manual_seed(seed)
    with torch.no_grad():
        model.init_weights()


def all_reduce_sum(values: list[float], ctx: DistributedContext) -> list[float]:
    """Sum a few host scalars over ranks (one gloo collective; the GPU is not waited for)."""
    tensor = torch.tensor(values, dtype=torch.float64)
    if ctx.world_size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=ctx.host_group)
    return tensor.tolist()


def all_reduce_sum_on_device(tensor: torch.Tensor, ctx: DistributedContext) -> torch.Tensor:
    """Sum a device tensor over ranks in place; nothing waits for the result until it is read."""
    if ctx.world_size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(ctx: DistributedContext) -> None:
    if ctx.world_size > 1:
        dist.barrier()
