"""Invariants of the pretraining data and loop, on tiny inputs and a tiny model (CPU, seconds).

Masking (``train.data.mask_framed``), for every row of bases, N runs and padding:
  D1. [CLS], [EOS], [PAD] and N are never chosen: their input is unchanged and their label ignored;
  D2. a chosen position's label is its true base; an unchosen position's input is unchanged;
  D3. a chosen position becomes [MASK], a base, or stays — nothing else;
  D4. random replacements cover A/C/G/T uniformly;
  D5. the draws differ between steps for one sample (and between samples at one step), and are
      a pure function of (stream, seed, step, sample id);
  D6. a sample is masked alike whichever micro-batch carries it;
  D7. the composition-entropy bar is 0 for one base, log 4 for four equal ones, NaN for none.
Sample order (``train.data.TrainBatches``):
  O1. within each epoch every sample is taken exactly once;
  O2. the ranks' slices are disjoint and concatenate to the global batch; the micro-batches of a
      rank concatenate to its slice, in order, whatever their size.
Loop (``train.loop.train``):
  L1. a resumed run takes exactly the steps left: a run stopped at step k and started again logs
      steps k+1.. with the losses, learning rates and gradient norms of an uninterrupted run;
  L2. a global batch's gradient does not depend on how it is cut into micro-batches
      (1×4, 2×2, 4×1 give the same loss, gradient norm and next step).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnafm_lib.model.tokenizer import ACGT_IDS, CLS_ID, EOS_ID, MASK_ID, N_ID, PAD_ID
from dnafm_lib.train.data import (
    IGNORE_INDEX,
    TRAIN_STREAM,
    MlmBatch,
    TrainBatches,
    base_composition_entropy_nats,
    build_batch,
    frame_window,
    mask_framed,
    sample_rng,
)
from tests.support.train import write_demo_shards

FAST_PROPERTY = settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
NEVER_CHOSEN = (CLS_ID, EOS_ID, PAD_ID, N_ID)


@st.composite
def framed_rows(draw):
    """A framed row: [CLS] + bases with N runs + [EOS], then PAD up to the window."""
    window = draw(st.integers(1, 200))
    length = draw(st.integers(1, window))
    tokens = np.array(draw(st.lists(st.sampled_from(list(ACGT_IDS)), min_size=window, max_size=window)), dtype=np.uint8)
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.integers(0, window - 1))
        tokens[start : start + draw(st.integers(1, 20))] = N_ID
    return frame_window(tokens, length)


@FAST_PROPERTY
@given(framed_rows(), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_masking_never_touches_special_tokens_or_n_and_labels_the_true_base(row, fraction, seed):
    inputs, labels = mask_framed(row, np.random.default_rng(seed), fraction)
    protected = np.isin(row, NEVER_CHOSEN)
    assert (labels[protected] == IGNORE_INDEX).all()  # D1
    assert (inputs[protected] == row[protected]).all()  # D1
    chosen = labels != IGNORE_INDEX
    assert (labels[chosen] == row[chosen]).all()  # D2
    assert (inputs[~chosen] == row[~chosen]).all()  # D2
    assert np.isin(inputs[chosen], (MASK_ID, *ACGT_IDS)).all()  # D3
    if fraction == 1.0:
        assert chosen.sum() == (~protected).sum()


def test_random_replacements_cover_the_four_bases_uniformly():
    # Rows of one base only: a replaced position shows which base the draw picked.
    row = frame_window(np.full(4000, ACGT_IDS[0], dtype=np.uint8), 4000)
    counts = np.zeros(4)
    for sample in range(40):
        inputs, _ = mask_framed(row, sample_rng(TRAIN_STREAM, 0, 0, sample), 1.0)
        counts += [(inputs == base).sum() for base in ACGT_IDS]
    # A kept base is A; the random draws put ~1/40 of positions on each base, so
    # A = 10% kept + 2.5% random, and C, G, T each ≈ 2.5%.
    n = 40 * 4000
    share = counts / n
    assert abs(share[0] - 0.125) < 0.01
    for i in (1, 2, 3):
        assert abs(share[i] - 0.025) < 0.004, f"{'ACGT'[i]} drawn {share[i]:.4f} of positions, expected 0.025"
    # χ² over C, G, T (A also holds the unchanged positions): uniform within noise (p > 0.001).
    expected = counts[1:].sum() / 3
    chi2 = float(((counts[1:] - expected) ** 2 / expected).sum())
    assert chi2 < 13.8


def test_masks_differ_between_steps_and_between_samples_and_repeat_exactly(tmp_path):
    row = frame_window(np.array(list(ACGT_IDS) * 50, dtype=np.uint8), 200)

    def labels(step, sample):
        return mask_framed(row, sample_rng(TRAIN_STREAM, 7, step, sample), 0.15)[1]

    assert (labels(3, 11) == labels(3, 11)).all()  # D5: pure function
    assert not (labels(3, 11) == labels(4, 11)).all()  # D5: another step, another mask
    assert not (labels(3, 11) == labels(3, 12)).all()  # another sample


def test_the_composition_entropy_is_zero_for_one_base_and_log4_for_four_equal_ones():
    """The bar a trained model must beat: entropy of the masked targets' A/C/G/T mix."""

    def batch_of(labels):
        row = np.full(8, IGNORE_INDEX, dtype=np.int64)
        row[: len(labels)] = labels
        return MlmBatch(
            input_ids=row[None],
            attention_mask=np.ones((1, 8), bool),
            labels=row[None],
            sample_ids=np.zeros(1, np.int64),
        )

    assert base_composition_entropy_nats([batch_of([ACGT_IDS[2]])]) == 0.0  # one target
    assert base_composition_entropy_nats([batch_of(list(ACGT_IDS))]) == pytest.approx(np.log(4))
    assert np.isnan(base_composition_entropy_nats([batch_of([])]))  # no target: no bar


# --------------------------------------------------------------------------- sample order


class ListReader:
    """An in-memory split: what TrainBatches needs from the shard reader."""

    def __init__(self, n: int, window: int = 8):
        self.window = window
        self.rows = [np.full(window, ACGT_IDS[i % 4], dtype=np.uint8) for i in range(n)]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i], self.window

    def order(self, seed, epoch):
        return np.random.default_rng([seed, epoch]).permutation(len(self.rows))


@FAST_PROPERTY
@given(st.integers(1, 30), st.sampled_from([1, 2, 4]), st.integers(1, 4), st.data())
def test_every_sample_once_per_epoch_and_slices_rebuild_the_global_batch(n, world, per_rank, data):
    micro = data.draw(st.integers(1, per_rank))
    global_batch = world * per_rank
    reader = ListReader(n)
    one = TrainBatches(
        reader, seed=5, global_batch_size=global_batch, micro_batch_size=micro, rank=0, world_size=1, mask_fraction=0.15
    )
    steps = -(-3 * n // global_batch)
    stream = np.concatenate([one.global_sample_ids(s) for s in range(steps)])
    for epoch in range(3):  # O1
        assert sorted(stream[epoch * n : (epoch + 1) * n].tolist()) == list(range(n))
    step = data.draw(st.integers(0, steps))
    ranks = [
        TrainBatches(
            reader,
            seed=5,
            global_batch_size=global_batch,
            micro_batch_size=micro,
            rank=r,
            world_size=world,
            mask_fraction=0.15,
        )
        for r in range(world)
    ]
    # O2: disjoint rank slices, in order, rebuilding the global batch; micro-batches rebuild a slice.
    assert np.concatenate([r.rank_sample_ids(step) for r in ranks]).tolist() == one.global_sample_ids(step).tolist()
    for r in ranks:
        micro_ids = np.concatenate([b.sample_ids for b in r.micro_batches(step)])
        assert micro_ids.tolist() == r.rank_sample_ids(step).tolist()
        assert all(b.input_ids.shape[0] <= micro for b in r.micro_batches(step))


def test_a_sample_is_masked_alike_whatever_micro_batch_carries_it():
    reader = ListReader(12, window=40)
    ids = [3, 7, 1, 9]
    whole = build_batch(reader, ids, stream=TRAIN_STREAM, seed=2, step=5, mask_fraction=0.3)
    for cut in (1, 2):
        parts = [
            build_batch(reader, ids[i : i + cut], stream=TRAIN_STREAM, seed=2, step=5, mask_fraction=0.3)
            for i in range(0, 4, cut)
        ]
        assert (np.concatenate([p.input_ids for p in parts]) == whole.input_ids).all()
        assert (np.concatenate([p.labels for p in parts]) == whole.labels).all()


# --------------------------------------------------------------------------- the loop, in process


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_demo_shards(tmp_path_factory.mktemp("shards"), window_nt=30)


@pytest.fixture(scope="module", autouse=True)
def quick_loop():
    """One torch thread (tiny model), and no loss-curve PNG: drawing it takes longer than training."""
    import torch

    from dnafm_lib.train import metrics

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "plot_curves", lambda *args, **kwargs: None, raising=False)
        yield
    torch.set_num_threads(before)


def _train(shards, run_dir: Path, **overrides):
    from dnafm_lib.train.config import TrainConfig
    from dnafm_lib.train.loop import train

    train_manifest, _ = shards
    values = dict(
        train_manifest=str(train_manifest),
        validation_manifest="",
        run_dir=str(run_dir),
        model="tiny",
        seed=3,
        global_batch_size=4,
        micro_batch_size=2,
        max_steps=4,
        warmup_steps=2,
        learning_rate=3e-3,
        min_learning_rate=3e-4,
        checkpoint_every_steps=2,
        keep_checkpoints=10,
        validation_samples=0,
        device="cpu",
        progress_bar=False,
        log_every_steps=1,
    )
    values.update(overrides)
    return train(TrainConfig.from_mapping(values))


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _curve(run_dir: Path, *columns) -> np.ndarray:
    return np.array([[int(r["step"]), *(float(r[c]) for c in columns)] for r in _rows(run_dir)])


@pytest.fixture(scope="module")
def uninterrupted(shards, tmp_path_factory):
    """4 steps of a global batch of 4 (2 micro-batches of 2), checkpoints after steps 2 and 4."""
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = _train(shards, run_dir)
    assert result.final_step == 4
    return run_dir


def test_a_resumed_run_takes_exactly_the_steps_left_with_the_uninterrupted_schedule(uninterrupted, shards, tmp_path):
    # A crash after step 2's checkpoint: the run folder as it was then.
    crashed = tmp_path / "run"
    shutil.copytree(uninterrupted, crashed)
    checkpoints = sorted(p.name for p in (crashed / "checkpoints").iterdir())
    assert checkpoints == ["step_00000002", "step_00000004"]
    shutil.rmtree(crashed / "checkpoints" / "step_00000004")
    lines = (crashed / "metrics.csv").read_text().splitlines(keepends=True)
    (crashed / "metrics.csv").write_text("".join(lines[:3]))  # the header, steps 1 and 2
    resumed = _train(shards, crashed)
    assert resumed.final_step == 4
    # Steps 3 and 4 once each, and the same data order, masks and learning-rate schedule as
    # the uninterrupted run (a step counter restarted at 0 repeats steps 1-4 from step 2's weights).
    curve = _curve(crashed, "loss_nats", "lr", "grad_norm")
    assert curve[:, 0].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(curve, _curve(uninterrupted, "loss_nats", "lr", "grad_norm"), rtol=1e-5)
    assert sorted(p.name for p in (crashed / "checkpoints").iterdir()) == checkpoints


@pytest.mark.parametrize("micro_batch_size", [1, 4], ids=["4x1", "1x4"])
def test_the_gradient_of_a_global_batch_does_not_depend_on_its_micro_batch_cut(
    uninterrupted, shards, tmp_path, micro_batch_size
):
    # The uninterrupted run cuts each global batch of 4 as 2×2; same loss and gradient norm at
    # step 1, and at step 2 (so the same update was applied).
    _train(shards, tmp_path / "run", micro_batch_size=micro_batch_size, max_steps=2, checkpoint_every_steps=100)
    np.testing.assert_allclose(
        _curve(tmp_path / "run", "loss_nats", "grad_norm"),
        _curve(uninterrupted, "loss_nats", "grad_norm")[:2],
        rtol=1e-4,
    )
