"""The masked-LM objective on one micro-batch (shared by the loop and the GPU benchmark)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dnafm_lib.train.data import IGNORE_INDEX, MlmBatch


def batch_to_device(batch: MlmBatch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """``(input_ids, attention_mask or None when nothing is padded, labels)`` on ``device``."""
    input_ids = torch.from_numpy(batch.input_ids).to(device, non_blocking=True)
    labels = torch.from_numpy(batch.labels).to(device, non_blocking=True)
    # No mask when no row is padded: SDPA then takes its fastest (mask-free) kernel.
    mask = None if batch.attention_mask.all() else torch.from_numpy(batch.attention_mask).to(device, non_blocking=True)
    return input_ids, mask, labels


def mlm_loss_sum(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, labels: torch.Tensor
) -> torch.Tensor:
    """Summed cross-entropy (nats, fp32) over the chosen positions; the caller divides by the
    global number of targets so the loss does not depend on how the batch was split."""
    logits = model(input_ids, attention_mask).logits
    return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
