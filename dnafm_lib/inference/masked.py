"""The masked-LM core every zero-shot use of the encoder shares: tracks, mutagenesis, generation.

A forward pass runs under ``autocast``: bf16 on CUDA (weights stay float32), float32 on the
CPU. Predictions are read over A, C, G and T only (the other tokens are never a base), as
float32 logits. The MLM head runs either at every position (``forward``) or only at the
positions read out (``head_logits_at``: a few per window in the tracks, so the vocabulary-wide
projection is not paid at every token).
"""

from __future__ import annotations

import numpy as np
import torch

from dnafm_lib.core import devices
from dnafm_lib.model.tokenizer import ACGT_IDS, MASK_ID, encode_batch


def autocast(device: torch.device | str):
    """bf16 autocast on CUDA; elsewhere a context that changes nothing (float32): the project's
    one rule, ``core.devices.autocast`` at precision auto."""
    return devices.autocast(torch.device(device), "auto")


def forward(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *, return_logits: bool = True):
    """``model(input_ids, attention_mask)`` under ``autocast`` of the device the ids are on."""
    with autocast(input_ids.device):
        return model(input_ids, attention_mask, return_logits=return_logits)


def acgt_logits(logits: torch.Tensor) -> torch.Tensor:
    """The A, C, G, T columns of vocabulary logits (last dimension), as float32."""
    return logits[..., torch.tensor(ACGT_IDS, device=logits.device)].float()


def head_logits_at(model, hidden: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """A/C/G/T logits of the MLM head at ``hidden[rows, columns]`` only: (N, 4) float32."""
    with autocast(hidden.device):
        head = model.cls.predictions
        return acgt_logits(head(hidden[rows, columns], model.bert.embeddings.word_embeddings.weight))


@torch.no_grad()
def masked_log_probs(model, windows: list[str], mask_offsets: list[int], batch_size: int = 32) -> np.ndarray:
    """log p(A, C, G, T) at ``mask_offsets[i]`` of ``windows[i]`` with that base masked: (N, 4).

    Windows are framed [CLS] … [EOS] and right-padded per batch; padding is masked out of
    attention, so a window's scores do not depend on its batch mates.
    """
    model.eval()
    device = next(model.parameters()).device
    out = np.empty((len(windows), 4), dtype=np.float64)
    for first in range(0, len(windows), batch_size):
        chunk = range(first, min(first + batch_size, len(windows)))
        input_ids, attention = encode_batch([windows[i] for i in chunk])
        columns = np.array([1 + mask_offsets[i] for i in chunk])
        input_ids[np.arange(len(chunk)), columns] = MASK_ID
        logits = forward(model, torch.from_numpy(input_ids).to(device), torch.from_numpy(attention).to(device)).logits
        rows = torch.arange(len(chunk), device=device)
        columns = torch.from_numpy(columns).to(device)
        nucleotide_logits = acgt_logits(logits[rows, columns])
        out[first : first + len(chunk)] = torch.log_softmax(nucleotide_logits, dim=-1).double().cpu().numpy()
    return out
