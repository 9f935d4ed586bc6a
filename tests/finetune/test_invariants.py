"""Invariants of the fine-tuning tasks: per-base labels and predictions line up with the bases.

The model sees ``[CLS] + bases + [EOS] + [PAD]…``; base i of a sequence sits at token 1 + i.
  K1. TokenClassification labels are written at tokens ``[1, 1 + n)``: each label sits on the
      token of the base it describes; [CLS], [EOS] and padding carry no label;
  K2. per-base predictions read tokens ``[1, 1 + n)`` back: prediction i is the output at base
      i's token, one row per base;
  K3. a task option of the wrong type or an unknown key is one error naming it (the validator),
      for every key and value type;
  K4. CDS windows: label 1 wholly inside a CDS, 0 touching none, one split per genome block,
      splits named as the task reader expects, in about the configured fractions;
  K5. per-base labels read alike from "0110", "0,1,1,0" and "0 1 1 0";
  K6. variant scoring's reverse complement pairs base i with base n−1−i.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnafm_lib.finetune import TokenClassification
from dnafm_lib.finetune.data import SplitTable
from dnafm_lib.finetune.models import IGNORE_INDEX, TaskConfig, TaskConfigError
from dnafm_lib.finetune.trainer import evaluate
from dnafm_lib.model.tokenizer import encode

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
BASES = "ACGTN"


@pytest.fixture(scope="module")
def token_model():
    torch.manual_seed(0)
    return TokenClassification.from_config({"model.backbone": "tiny", "model.n_classes": 5}).eval()


@PROPERTY
@given(st.lists(st.text(alphabet=BASES, min_size=1, max_size=30), min_size=1, max_size=4))
def test_token_labels_sit_on_the_token_of_their_base(token_model, sequences):
    # Label each base by its own letter: then a label must equal the letter of its token.
    labels = [[BASES.index(b) for b in s] for s in sequences]
    collated = token_model.collate({"sequences": sequences, "labels": labels})
    input_ids, label_ids = collated["input_ids"].numpy(), collated["labels"].numpy()
    letter_of_token = {int(encode(b)[0]): i for i, b in enumerate(BASES)}
    for row, sequence in enumerate(sequences):
        labelled = np.flatnonzero(label_ids[row] != IGNORE_INDEX)
        assert labelled.tolist() == list(range(1, 1 + len(sequence)))  # K1: after [CLS], one per base
        assert [letter_of_token[int(t)] for t in input_ids[row, labelled]] == label_ids[row, labelled].tolist()


def test_per_base_predictions_are_the_outputs_at_each_base_s_token(token_model):
    sequences = ["ACGTTGCA", "GGN", "TTTTACGTACGTAAC"]
    labels = [[BASES.index(b) for b in s] for s in sequences]
    split = SplitTable("test", sequences, [np.array(x) for x in labels], np.arange(3), None)
    evaluation = evaluate(token_model, split, batch_size=2, max_length=None)
    collated = token_model.collate({"sequences": sequences})
    with torch.no_grad():
        probabilities = token_model(collated).float().softmax(dim=-1).numpy()
    for row, sequence in enumerate(sequences):
        predicted = np.asarray(evaluation.outputs[row])
        assert predicted.shape == (len(sequence), 5)  # K2: one row per base
        np.testing.assert_allclose(predicted, probabilities[row, 1 : 1 + len(sequence)], rtol=1e-4, atol=1e-6)


OPTION_VALUES = st.one_of(st.booleans(), st.integers(-3, 40), st.floats(-1, 2, allow_nan=False), st.text(max_size=6))


@PROPERTY
@given(st.sampled_from([f.name for f in TaskConfig.__dataclass_fields__.values()] + ["no_such_option"]), OPTION_VALUES)
def test_task_options_are_accepted_only_with_their_type(key, value):
    defaults = TaskConfig()
    mapping = {"model.backbone": "tiny", f"model.{key}": value}
    expected_type = type(getattr(defaults, key)) if hasattr(defaults, key) else None
    type_ok = expected_type is not None and (
        (expected_type is bool and isinstance(value, bool))
        or (expected_type is int and isinstance(value, int) and not isinstance(value, bool))
        or (expected_type is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (expected_type is str and isinstance(value, str))
    )
    if not type_ok:  # K3: one error naming the key
        with pytest.raises(TaskConfigError, match=f"model.{key}"):
            TaskConfig.from_mapping(mapping)
        return
    try:
        config = TaskConfig.from_mapping(mapping)
    except TaskConfigError as exc:  # a right type, but a value out of range: named too
        assert f"model.{key}" in str(exc)
    else:
        assert getattr(config, key) == value


def test_cds_windows_fall_in_the_splits_the_task_reader_knows_one_per_block(tmp_path):
    """K4. CDS windows: label 1 wholly inside a CDS, 0 touching none; each block of the genome
    has one split; the splits are train/val/test with about the configured fractions; a contig
    exactly one window long keeps its window."""
    from dnafm_lib.finetune.cds_windows import WindowOptions, cds_windows
    from dnafm_lib.finetune.data import SPLIT_ALIASES

    rng = np.random.default_rng(0)
    long_seq = "".join(rng.choice(list("ACGT"), 40_000))
    one_window = "".join(rng.choice(list("ACGT"), 100))
    fasta = tmp_path / "g.fa"
    fasta.write_text(f">long\n{long_seq}\n>one\n{one_window}\n")
    cds = [(1_000 + 3_000 * i, 1_000 + 3_000 * i + 700) for i in range(12)]
    gff = tmp_path / "g.gff3"
    gff.write_text(
        "##gff-version 3\n"
        + "".join(f"long\tt\tCDS\t{s + 1}\t{e}\t.\t+\t0\tID=c{i}\n" for i, (s, e) in enumerate(cds))
        + "one\tt\tCDS\t1\t100\t.\t+\t0\tID=o\n"
    )
    options = WindowOptions(window_bp=100, block_bp=500, val_fraction=0.2, test_fraction=0.3, seed=1)
    table = cds_windows(fasta, gff, "toy", options)
    long_rows = table[table["chrom"] == "long"]
    inside = np.zeros(len(long_seq), bool)
    for s, e in cds:
        inside[s:e] = True
    for start, label in zip(long_rows["start"], long_rows["label"]):
        assert inside[start : start + 100].all() if label == 1 else not inside[start : start + 100].any()
    assert set(table["split"]) == {"train", "val", "test"}
    assert all(SPLIT_ALIASES.get(s) == s for s in table["split"])  # the reader takes them as they are
    assert (long_rows.groupby(long_rows["start"] // 500)["split"].nunique() == 1).all()
    blocks = long_rows.groupby(long_rows["start"] // 500)["split"].first().value_counts(normalize=True)
    assert abs(blocks["test"] - 0.3) < 0.12 and abs(blocks["val"] - 0.2) < 0.12
    assert table[table["chrom"] == "one"][["start", "end", "label"]].values.tolist() == [[0, 100, 1]]


@PROPERTY
@given(
    st.lists(
        st.tuples(st.text(alphabet="ACGT", min_size=1, max_size=12), st.sampled_from(["digits", "commas", "spaces"])),
        min_size=3,
        max_size=6,
    ),
    st.integers(0, 2**16),
)
def test_token_labels_read_alike_as_digits_commas_or_spaces(tmp_path_factory, rows, seed):
    """K5. a per-base label column gives the same labels written "0110", "0,1,1,0" or "0 1 1 0"."""
    from dnafm_lib.finetune.data import DataConfig, load_splits

    rng = np.random.default_rng(seed)
    truth = [rng.integers(0, 3, len(sequence)) for sequence, _ in rows]
    joiners = {"digits": "", "commas": ",", "spaces": " "}
    table = tmp_path_factory.mktemp("labels") / "t.tsv"
    table.write_text(
        "sequence\tlabel\tsplit\n"
        + "".join(
            f"{sequence}\t{joiners[style].join(map(str, labels))}\ttrain\n"
            for (sequence, style), labels in zip(rows, truth)
        )
    )
    splits = load_splits(DataConfig(path=str(table)), "token", TaskConfig(backbone="tiny", n_classes=3))
    assert [list(map(int, labels)) for labels in splits["train"].labels] == [list(map(int, t)) for t in truth]


@PROPERTY
@given(st.text(alphabet="ACGTN", max_size=40))
def test_the_reverse_complement_of_variant_scoring_reads_the_other_strand_backwards(sequence):
    """K6. ISM/variant scoring's reverse complement: base i pairs with base n−1−i of the other strand."""
    from dnafm_lib.inference.mutagenesis import reverse_complement

    pair = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}
    rc = reverse_complement(sequence)
    assert len(rc) == len(sequence)
    assert all(pair[sequence[i]] == rc[len(sequence) - 1 - i] for i in range(len(sequence)))
