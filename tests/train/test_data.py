"""MLM batches: framing, masking statistics, specials never chosen, determinism across world sizes."""

import numpy as np
import pytest

from dnafm_lib.data.shards import open_split
from dnafm_lib.model.tokenizer import ACGT_IDS, CLS_ID, EOS_ID, MASK_ID, N_ID, PAD_ID
from dnafm_lib.train.data import (
    IGNORE_INDEX,
    TrainBatches,
    base_composition_entropy_nats,
    frame_window,
    mask_framed,
    sample_rng,
    validation_batches,
)
from tests.support.train import write_demo_shards


@pytest.fixture(scope="module")
def readers(tmp_path_factory):
    train, validation = write_demo_shards(tmp_path_factory.mktemp("shards"))
    return open_split(train), open_split(validation)


def test_frame_is_cls_window_eos_then_pad():
    tokens = np.array([5, 6, 7, 8, 0, 0], dtype=np.uint8)
    row = frame_window(tokens, 4)
    assert row.tolist() == [CLS_ID, 5, 6, 7, 8, EOS_ID, PAD_ID, PAD_ID]


def test_masking_chooses_15_percent_of_bases_split_80_10_10():
    rng = np.random.default_rng(0)
    row = np.concatenate([[CLS_ID], rng.choice(ACGT_IDS, 200_000), [EOS_ID]]).astype(np.int64)
    inputs, labels = mask_framed(row, sample_rng(0, 0, 0, 0), 0.15)
    chosen = labels != IGNORE_INDEX
    assert chosen.mean() == pytest.approx(0.15, abs=0.003)
    assert (labels[chosen] == row[chosen]).all()  # the label is the true base
    as_mask = (inputs[chosen] == MASK_ID).mean()
    changed_to_base = ((inputs[chosen] != MASK_ID) & (inputs[chosen] != row[chosen])).mean()
    kept = (inputs[chosen] == row[chosen]).mean()
    assert as_mask == pytest.approx(0.80, abs=0.01)
    # A random base equals the true one a quarter of the time: 10% × 3/4 change, 10% + 10%/4 stay.
    assert changed_to_base == pytest.approx(0.075, abs=0.006)
    assert kept == pytest.approx(0.125, abs=0.006)
    assert (inputs[~chosen] == row[~chosen]).all()  # unchosen positions are untouched
    assert set(np.unique(inputs[chosen])) <= {MASK_ID, *ACGT_IDS}


def test_cls_eos_pad_and_n_are_never_chosen():
    row = np.array([CLS_ID] + [5, N_ID, 6, 7, N_ID, 8] * 2000 + [EOS_ID] + [PAD_ID] * 500, dtype=np.int64)
    for sample in range(20):
        inputs, labels = mask_framed(row, sample_rng(0, 1, 2, sample), 0.5)
        special = np.isin(row, [CLS_ID, EOS_ID, PAD_ID, N_ID])
        assert (labels[special] == IGNORE_INDEX).all()
        assert (inputs[special] == row[special]).all()
        assert (labels != IGNORE_INDEX).any()


def test_masks_depend_only_on_seed_step_and_sample(readers):
    train, _ = readers
    one = TrainBatches(train, seed=7, global_batch_size=8, micro_batch_size=4, rank=0, world_size=1, mask_fraction=0.15)
    again = TrainBatches(
        train, seed=7, global_batch_size=8, micro_batch_size=4, rank=0, world_size=1, mask_fraction=0.15
    )
    other_seed = TrainBatches(
        train, seed=8, global_batch_size=8, micro_batch_size=4, rank=0, world_size=1, mask_fraction=0.15
    )
    a, b = one.micro_batches(5), again.micro_batches(5)
    assert all((x.input_ids == y.input_ids).all() and (x.labels == y.labels).all() for x, y in zip(a, b))
    assert not (other_seed.micro_batches(5)[0].sample_ids == a[0].sample_ids).all()
    assert not (one.micro_batches(6)[0].input_ids == a[0].input_ids).all()


def test_ranks_take_disjoint_slices_that_rebuild_the_one_rank_batch(readers):
    train, _ = readers
    common = dict(seed=1, global_batch_size=8, mask_fraction=0.15)
    single = TrainBatches(train, rank=0, world_size=1, micro_batch_size=2, **common)
    ranks = [TrainBatches(train, rank=r, world_size=2, micro_batch_size=2, **common) for r in range(2)]
    for step in (0, 3):
        whole = single.micro_batches(step)
        parts = ranks[0].micro_batches(step) + ranks[1].micro_batches(step)
        assert np.array_equal(
            np.concatenate([b.sample_ids for b in whole]), np.concatenate([b.sample_ids for b in parts])
        )
        assert np.array_equal(
            np.concatenate([b.input_ids for b in whole]), np.concatenate([b.input_ids for b in parts])
        )
        assert np.array_equal(np.concatenate([b.labels for b in whole]), np.concatenate([b.labels for b in parts]))


def test_every_sample_is_seen_once_per_epoch_in_a_seeded_order(readers):
    train, _ = readers
    batches = TrainBatches(
        train, seed=2, global_batch_size=10, micro_batch_size=10, rank=0, world_size=1, mask_fraction=0.15
    )
    n = len(train)
    steps = n // 10 + 1
    stream = np.concatenate([batches.global_sample_ids(s) for s in range(steps)])
    assert sorted(stream[:n].tolist()) == list(range(n))
    assert np.array_equal(stream[:n], train.order(2, 0))
    assert np.array_equal(stream[n:], train.order(2, 1)[: stream.size - n])  # the next epoch reshuffles


def test_batch_rows_are_framed_windows_of_the_split(readers):
    train, _ = readers
    batch = TrainBatches(
        train, seed=0, global_batch_size=4, micro_batch_size=4, rank=0, world_size=1, mask_fraction=0.15
    ).micro_batches(0)[0]
    assert batch.input_ids.shape == (4, train.window + 2)
    for row, labels, mask, sample in zip(batch.input_ids, batch.labels, batch.attention_mask, batch.sample_ids):
        tokens, length = train[int(sample)]
        truth = frame_window(tokens, length)
        restored = np.where(labels != IGNORE_INDEX, labels, row)
        assert np.array_equal(restored, truth)
        assert mask.sum() == length + 2


def test_validation_set_is_fixed_and_split_evenly_over_ranks(readers):
    _, validation = readers
    args = dict(seed=0, n_samples=9, micro_batch_size=2, mask_fraction=0.15)
    single = validation_batches(validation, rank=0, world_size=1, **args)
    pair = [validation_batches(validation, rank=r, world_size=2, **args) for r in range(2)]
    assert sum(b.input_ids.shape[0] for b in single) == 9
    assert [sum(b.input_ids.shape[0] for b in p) for p in pair] == [4, 4]  # 8: a multiple of the world size
    assert len(pair[0]) == len(pair[1])  # every rank runs the same number of forwards
    again = validation_batches(validation, rank=0, world_size=1, **args)
    assert all(np.array_equal(a.input_ids, b.input_ids) for a, b in zip(single, again))


def test_composition_entropy_of_uniform_bases_is_log4(readers):
    rng = np.random.default_rng(0)
    row = np.concatenate([[CLS_ID], rng.choice(ACGT_IDS, 100_000), [EOS_ID]]).astype(np.int64)
    inputs, labels = mask_framed(row, sample_rng(0, 0, 0, 0), 0.15)

    class Batch:
        pass

    batch = Batch()
    batch.labels = labels[None]
    assert base_composition_entropy_nats([batch]) == pytest.approx(np.log(4), abs=2e-3)
    only_a = Batch()
    only_a.labels = np.where(labels != IGNORE_INDEX, ACGT_IDS[0], IGNORE_INDEX)[None]
    assert base_composition_entropy_nats([only_a]) == 0.0
