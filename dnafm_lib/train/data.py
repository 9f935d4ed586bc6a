"""MLM batches from a split's shards: sample order, per-rank slices, framing and masking.

Everything a step needs is a pure function of ``(seed, step, sample id)``:

- The sample stream is the concatenation of seeded epoch permutations (``reader.order(seed,
  epoch)``); step ``s`` takes stream positions ``[s·G, (s+1)·G)`` for a global batch of G.
- Rank ``r`` of W takes the contiguous slice ``[r·G/W, (r+1)·G/W)`` of that global batch and
  cuts it into micro-batches.
- Each sample is framed ``[CLS] + window + [EOS]`` (PAD after a short window) and masked with a
  generator seeded by ``(stream, seed, step, sample id)``.

So a resumed run, on any number of ranks, sees exactly the batches an uninterrupted run saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from dnafm_lib.model.tokenizer import ACGT_IDS, MASK_ID, PAD_ID, frame

IGNORE_INDEX = -100  # label of positions that carry no loss (torch cross_entropy's default)
_MASKABLE = np.zeros(256, dtype=bool)
_MASKABLE[list(ACGT_IDS)] = True  # N carries nothing to predict; specials are never chosen
_ACGT = np.array(ACGT_IDS, dtype=np.int64)
# Seed streams keep training and validation masks independent.
TRAIN_STREAM = 0
VALIDATION_STREAM = 1


class WindowReader(Protocol):
    """What the shard reader (dnafm_lib.data.shards.open_split) offers."""

    window: int

    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> tuple[np.ndarray, int]: ...
    def order(self, seed: int, epoch: int) -> np.ndarray: ...


@dataclass
class MlmBatch:
    input_ids: np.ndarray  # int64 (B, window + 2)
    attention_mask: np.ndarray  # bool (B, window + 2)
    labels: np.ndarray  # int64 (B, window + 2): the true id where chosen, IGNORE_INDEX elsewhere
    sample_ids: np.ndarray  # int64 (B,)

    @property
    def n_targets(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())


def frame_window(tokens: np.ndarray, length: int) -> np.ndarray:
    """``[CLS] + tokens[:length] + [EOS]``, PAD to ``len(tokens) + 2`` (a shard row's fixed width)."""
    return frame(tokens[:length], width=tokens.shape[0] + 2)


def sample_rng(stream: int, seed: int, step: int, sample_id: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64([int(stream), int(seed), int(step), int(sample_id)]))


def mask_framed(row: np.ndarray, rng: np.random.Generator, mask_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """BERT masking of one framed row: returns ``(input_ids, labels)``.

    Each A/C/G/T position is chosen with probability ``mask_fraction``; a chosen position
    becomes [MASK] (80%), a uniformly random base (10%) or stays (10%), and its label is the
    true id. [CLS], [EOS], [PAD] and N are never chosen.
    """
    maskable = _MASKABLE[row]
    draws = rng.random(row.shape[0])
    chosen = maskable & (draws < mask_fraction)
    labels = np.where(chosen, row, IGNORE_INDEX)
    inputs = row.copy()
    n_chosen = int(chosen.sum())
    if n_chosen:
        action = rng.random(n_chosen)
        positions = np.flatnonzero(chosen)
        inputs[positions[action < 0.8]] = MASK_ID
        random_positions = positions[(action >= 0.8) & (action < 0.9)]
        inputs[random_positions] = _ACGT[rng.integers(0, 4, size=random_positions.size)]
    return inputs, labels


def build_batch(
    reader: WindowReader, sample_ids: Sequence[int], *, stream: int, seed: int, step: int, mask_fraction: float
) -> MlmBatch:
    rows_in, rows_labels, rows_mask = [], [], []
    for sample_id in sample_ids:
        tokens, length = reader[int(sample_id)]
        row = frame_window(tokens, length)
        inputs, labels = mask_framed(row, sample_rng(stream, seed, step, sample_id), mask_fraction)
        rows_in.append(inputs)
        rows_labels.append(labels)
        rows_mask.append(row != PAD_ID)
    return MlmBatch(
        input_ids=np.stack(rows_in),
        attention_mask=np.stack(rows_mask),
        labels=np.stack(rows_labels),
        sample_ids=np.asarray(sample_ids, dtype=np.int64),
    )


class TrainBatches:
    """Rank ``rank``'s micro-batches for each optimizer step."""

    def __init__(
        self,
        reader: WindowReader,
        *,
        seed: int,
        global_batch_size: int,
        micro_batch_size: int,
        rank: int,
        world_size: int,
        mask_fraction: float,
    ):
        if len(reader) == 0:
            raise ValueError("the training split holds no windows")
        self.reader = reader
        self.seed = seed
        self.global_batch_size = global_batch_size
        self.micro_batch_size = micro_batch_size
        self.rank = rank
        self.world_size = world_size
        self.mask_fraction = mask_fraction
        self._orders: dict[int, np.ndarray] = {}

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            if len(self._orders) >= 2:  # a step spans two epochs at most, unless the batch outgrows the split
                self._orders.pop(min(self._orders))
            self._orders[epoch] = self.reader.order(self.seed, epoch)
        return self._orders[epoch]

    def global_sample_ids(self, step: int) -> np.ndarray:
        """The global batch of step ``step`` (0-based): sample ids in stream order."""
        n = len(self.reader)
        positions = np.arange(step * self.global_batch_size, (step + 1) * self.global_batch_size, dtype=np.int64)
        out = np.empty_like(positions)
        for epoch in np.unique(positions // n):
            here = positions // n == epoch
            out[here] = self._order(int(epoch))[positions[here] % n]
        return out

    def rank_sample_ids(self, step: int) -> np.ndarray:
        per_rank = self.global_batch_size // self.world_size
        return self.global_sample_ids(step)[self.rank * per_rank : (self.rank + 1) * per_rank]

    def epoch_of(self, step: int) -> float:
        return step * self.global_batch_size / len(self.reader)

    def micro_batches(self, step: int) -> list[MlmBatch]:
        ids = self.rank_sample_ids(step)
        return [
            build_batch(
                self.reader,
                ids[i : i + self.micro_batch_size],
                stream=TRAIN_STREAM,
                seed=self.seed,
                step=step,
                mask_fraction=self.mask_fraction,
            )
            for i in range(0, ids.size, self.micro_batch_size)
        ]


def validation_batches(
    reader: WindowReader,
    *,
    seed: int,
    n_samples: int,
    micro_batch_size: int,
    rank: int,
    world_size: int,
    mask_fraction: float,
) -> list[MlmBatch]:
    """A fixed validation set: the first ``n_samples`` of the split's epoch-0 order, the same
    masks at every evaluation. Every rank gets the same number of micro-batches (FSDP's
    forward is collective), so the count is rounded down to a multiple of the world size."""
    n = min(n_samples, len(reader)) // world_size * world_size
    ids = reader.order(seed, 0)[:n][rank::world_size]
    return [
        build_batch(
            reader,
            ids[i : i + micro_batch_size],
            stream=VALIDATION_STREAM,
            seed=seed,
            step=0,
            mask_fraction=mask_fraction,
        )
        for i in range(0, ids.size, micro_batch_size)
    ]


def base_counts(batches: Sequence[MlmBatch]) -> np.ndarray:
    """How many masked targets are A, C, G and T (in ``ACGT_IDS`` order), as float64."""
    counts = np.zeros(len(ACGT_IDS), dtype=np.float64)
    for batch in batches:
        targets = batch.labels[batch.labels != IGNORE_INDEX]
        counts += [(targets == token).sum() for token in ACGT_IDS]
    return counts


def entropy_nats(counts: np.ndarray) -> float:
    """Entropy (nats) of the distribution that ``counts`` describe; NaN when there are none."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.sum() == 0:
        return float("nan")
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def base_composition_entropy_nats(batches: Sequence[MlmBatch]) -> float:
    """Entropy (nats) of the A/C/G/T composition of the masked targets: the loss of a model that
    knows only the base frequencies, the bar a trained model must beat."""
    return entropy_nats(base_counts(batches))
