"""`dnafm fit` / `dnafm test` end to end on tiny tables, and their errors on bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnafm_lib.cli import main

# Fast settings for every run: the tiny preset, a few steps, no progress bar in test logs.
FAST = ["--model.backbone", "tiny", "--trainer.progress_bar", "false", "--data.batch_size", "16"]


def _composition_table(n_rows=96, seed=0, length=24):
    """AT-rich (label 0) vs GC-rich (label 1) sequences: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_rows):
        label = i % 2
        alphabet = np.array(list("GCGCGCAT" if label else "ATATATGC"))
        sequence = "".join(rng.choice(alphabet, size=length))
        block = (i // 2) % 6  # consecutive pairs share a split, so each split holds both labels
        split = "test" if block == 0 else "val" if block == 1 else "train"
        rows.append({"name": f"seq{i}", "sequence": sequence, "label": label, "split": split})
    return pd.DataFrame(rows)


@pytest.fixture
def classification_tsv(tmp_path):
    path = tmp_path / "windows.tsv"
    _composition_table().to_csv(path, sep="\t", index=False)
    return path


def _fit(argv, capsys):
    code = main(["fit", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_fit_then_test_on_the_command_line_writes_sane_metrics_and_predictions(tmp_path, classification_tsv):
    """The model card's syntax, through the installed `dnafm` entry point, config file plus flags."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "model:\n  task: SequenceClassification\n  backbone: tiny\n  n_classes: 2\n  pooling: mean\n"
        "trainer:\n  max_epochs: 3\n  lr: 0.001\n  progress_bar: false\n"
    )
    out_dir = tmp_path / "run"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    fit = subprocess.run(
        [
            "dnafm",
            "fit",
            "--config",
            str(config),
            "--model",
            "SequenceClassification",
            "--model.backbone",
            "tiny",
            "--model.n_classes",
            "2",
            "--data",
            "SequenceClassification",
            "--data.path",
            str(classification_tsv),
            "--trainer.out_dir",
            str(out_dir),
            "--trainer.max_epochs",
            "4",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert fit.returncode == 0, fit.stderr
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["config"]["trainer"]["max_epochs"] == 4  # the flag beat the YAML file
    assert metrics["test"]["n"] == 16 and metrics["test"]["accuracy"] >= 0.9
    assert set(metrics["test"]) >= {"accuracy", "f1", "mcc", "auroc", "loss"}
    history = pd.read_csv(out_dir / "history.tsv", sep="\t")
    assert list(history["epoch"]) == list(range(1, len(history) + 1)) and {"train_loss", "val_loss"} <= set(history)
    predictions = pd.read_csv(out_dir / "predictions.tsv", sep="\t")
    table = pd.read_csv(classification_tsv, sep="\t")
    assert len(predictions) == (table["split"] == "test").sum()
    assert list(predictions["name"]) == list(table.loc[predictions["row"], "name"])  # rows trace back to the input
    np.testing.assert_allclose(predictions[["p_0", "p_1"]].sum(axis=1), 1.0, atol=1e-5)
    assert (predictions["prediction"] == predictions[["p_0", "p_1"]].to_numpy().argmax(axis=1)).all()
    assert sorted(p.name for p in (out_dir / "best").iterdir()) == [
        ".dnafm-output.json",
        "model.safetensors",
        "task.json",
    ]

    test = subprocess.run(
        [
            "dnafm",
            "test",
            "--ckpt-path",
            str(out_dir / "best"),
            "--data.path",
            str(classification_tsv),
            "--trainer.out_dir",
            str(tmp_path / "test"),
            "--trainer.progress_bar",
            "false",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert test.returncode == 0, test.stderr
    retested = json.loads((tmp_path / "test" / "metrics.json").read_text())
    for key in ("accuracy", "f1", "mcc", "auroc"):
        assert retested["test"][key] == pytest.approx(metrics["test"][key])
    assert (tmp_path / "test" / "predictions.tsv").exists()


def test_regression_from_parquet_reports_mse_and_correlations(tmp_path, capsys):
    table = _composition_table(n_rows=60, seed=1)
    table["gc"] = table["sequence"].map(lambda s: (s.count("G") + s.count("C")) / len(s))
    path = tmp_path / "gc.parquet"
    table.drop(columns=["label"]).to_parquet(path)
    code, out, err = _fit(
        [
            "--model",
            "SequenceRegression",
            *FAST,
            "--data.path",
            str(path),
            "--data.label_column",
            "gc",
            "--trainer.out_dir",
            str(tmp_path / "run"),
            "--trainer.max_epochs",
            "2",
        ],
        capsys,
    )
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"mse", "pearson", "spearman"}
    predictions = pd.read_csv(tmp_path / "run" / "predictions.tsv", sep="\t")
    assert {"label", "prediction"} <= set(predictions) and len(predictions) == 10
    np.testing.assert_allclose(
        predictions["label"], table.loc[predictions["row"], "gc"], rtol=1e-5
    )  # written with 6 digits


def test_token_classification_from_csv_writes_per_base_predictions(tmp_path, capsys):
    table = _composition_table(n_rows=36, seed=2, length=12).drop(columns=["label"])
    table["classes"] = table["sequence"].map(lambda s: "".join("1" if b in "GC" else "0" for b in s))
    table.loc[0, "classes"] = "0" + table.loc[0, "classes"][1:]  # a leading zero must survive the CSV
    path = tmp_path / "bases.csv"
    table.to_csv(path, index=False)
    code, out, err = _fit(
        [
            "--model",
            "TokenClassification",
            *FAST,
            "--model.n_classes",
            "2",
            "--data.path",
            str(path),
            "--data.label_column",
            "classes",
            "--trainer.out_dir",
            str(tmp_path / "run"),
            "--trainer.max_epochs",
            "1",
        ],
        capsys,
    )
    assert code == 0, err
    predictions = pd.read_csv(tmp_path / "run" / "predictions.tsv", sep="\t", dtype={"label": str, "prediction": str})
    assert (predictions["label"].str.len() == 12).all() and (predictions["prediction"].str.len() == 12).all()
    assert list(predictions["label"]) == list(table.loc[predictions["row"], "classes"])


def test_without_a_split_column_the_ratios_split_the_rows(tmp_path, capsys):
    path = tmp_path / "nosplit.tsv"
    _composition_table(n_rows=40).drop(columns=["split"]).to_csv(path, sep="\t", index=False)
    code, out, err = _fit(
        [
            "--model",
            "SequenceClassification",
            *FAST,
            "--data.path",
            str(path),
            "--data.val_ratio",
            "0.25",
            "--data.test_ratio",
            "0.2",
            "--trainer.out_dir",
            str(tmp_path / "run"),
            "--trainer.max_steps",
            "2",
        ],
        capsys,
    )
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["val"]["n"] == 10 and metrics["test"]["n"] == 8


def test_early_stopping_ends_training_after_patience_epochs_without_gain(tmp_path, capsys):
    path = tmp_path / "noise.tsv"
    table = _composition_table(n_rows=48)
    table["label"] = np.random.default_rng(3).integers(0, 2, len(table))  # labels carry no signal
    table.to_csv(path, sep="\t", index=False)
    code, out, err = _fit(
        [
            "--model",
            "SequenceClassification",
            *FAST,
            "--data.path",
            str(path),
            "--trainer.lr",
            "3e-3",
            "--trainer.patience",
            "1",
            "--trainer.max_epochs",
            "30",
            "--trainer.out_dir",
            str(tmp_path / "run"),
        ],
        capsys,
    )
    assert code == 0, err
    history = pd.read_csv(tmp_path / "run" / "history.tsv", sep="\t")
    assert len(history) < 30 and "early stopping" in err
    best_epoch = int(history["val_loss"].idxmin()) + 1
    assert len(history) == best_epoch + 1  # stopped one epoch (the patience) after the best one


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--model", "SequenceClasification"],
            "--model 'SequenceClasification': unknown task; choose one of "
            "SequenceClassification, TokenClassification, SequenceRegression",
        ),
        (
            ["--model", "SequenceClassification", "--data", "SequenceRegression"],
            "--data SequenceRegression does not match --model SequenceClassification",
        ),
        (
            ["--model", "SequenceClassification", "--data.label_column", "target"],
            "windows.tsv: no column 'target'; columns are ['name', 'sequence', 'label', 'split']",
        ),
        (
            ["--model", "SequenceClassification", "--model.n_classes", "two"],
            "--model.n_classes must be an integer, got 'two'",
        ),
        (["--model", "SequenceClassification", "--trainer.precision", "16"], "--trainer.precision must be one of"),
        (["--model", "SequenceClassification", "--trainer.device", "gpu"], "--trainer.device must be auto, cpu"),
    ],
)
def test_bad_options_give_one_clear_error_and_no_output(tmp_path, classification_tsv, capsys, argv, message):
    code, out, err = _fit(
        [*argv, *FAST, "--data.path", str(classification_tsv), "--trainer.out_dir", str(tmp_path / "run")], capsys
    )
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("dnafm fit: error: ") and message in err
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_misspelt_option_is_rejected_not_taken_for_a_longer_one(tmp_path, classification_tsv, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(
            [
                "fit",
                "--model",
                "SequenceClassification",
                *FAST,
                "--trainer.max_epoch",
                "2",
                "--data.path",
                str(classification_tsv),
                "--trainer.out_dir",
                str(tmp_path / "run"),
            ]
        )
    assert stopped.value.code == 2
    assert "unrecognized arguments: --trainer.max_epoch 2" in capsys.readouterr().err


def test_an_unknown_key_in_the_yaml_config_names_the_file_and_key(tmp_path, classification_tsv, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("trainer:\n  max_epoch: 2\n")
    code, out, err = _fit(
        [
            "--config",
            str(config),
            "--model",
            "SequenceClassification",
            *FAST,
            "--data.path",
            str(classification_tsv),
            "--trainer.out_dir",
            str(tmp_path / "run"),
        ],
        capsys,
    )
    assert code == 1 and f"--config {config}: unknown setting trainer.max_epoch; known: trainer.out_dir" in err


def test_labels_of_the_wrong_type_name_the_file_row_and_value(tmp_path, capsys):
    path = tmp_path / "words.csv"
    table = _composition_table(n_rows=12)
    table["label"] = table["label"].map({0: "intergenic", 1: "cds"})
    table.to_csv(path, index=False)
    code, out, err = _fit(
        [
            "--model",
            "SequenceClassification",
            *FAST,
            "--data.path",
            str(path),
            "--trainer.out_dir",
            str(tmp_path / "run"),
        ],
        capsys,
    )
    assert code == 1
    assert err.strip() == (
        f"dnafm fit: error: {path}: row 0: label 'intergenic' is not an integer class id "
        "(classification labels must be integers 0..1)"
    )


def test_a_class_id_beyond_n_classes_is_an_error(tmp_path, capsys):
    path = tmp_path / "three.tsv"
    table = _composition_table(n_rows=12)
    table.loc[5, "label"] = 2
    table.to_csv(path, sep="\t", index=False)
    code, out, err = _fit(
        [
            "--model",
            "SequenceClassification",
            *FAST,
            "--data.path",
            str(path),
            "--trainer.out_dir",
            str(tmp_path / "run"),
        ],
        capsys,
    )
    assert code == 1 and "row 5: label 2 is outside 0..1 (model.n_classes)" in err


def _write_genome(tmp_path):
    """One 1000-bp contig: CDS at 101..300 (+) and 651..800 (-), a CDS edge inside 400-500, Ns at 900-905."""
    rng = np.random.default_rng(5)
    sequence = list("".join(rng.choice(list("ACGT"), 1000)))
    sequence[900:905] = "NNNNN"
    fasta = tmp_path / "genome.fa"
    fasta.write_text(">ctg1 test\n" + "".join(sequence) + "\n")
    gff = tmp_path / "annotation.gff3"
    gff.write_text(
        "##gff-version 3\n"
        "ctg1\ttest\tgene\t101\t300\t.\t+\t.\tID=g1\n"
        "ctg1\ttest\tCDS\t101\t300\t.\t+\t0\tID=c1\n"
        "ctg1\ttest\tCDS\t420\t480\t.\t+\t0\tID=c2\n"
        "ctg1\ttest\tCDS\t651\t800\t.\t-\t0\tID=c3\n"
    )
    return fasta, gff


def test_cds_windows_labels_windows_wholly_inside_or_outside_cds_and_drops_the_rest(tmp_path, capsys):
    fasta, gff = _write_genome(tmp_path)
    out = tmp_path / "windows.tsv"
    assert (
        main(
            [
                "cds-windows",
                "--fasta",
                str(fasta),
                "--gff",
                str(gff),
                "--names",
                "toy",
                "--out",
                str(out),
                "--window-bp",
                "50",
                "--block-bp",
                "200",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == ["genome", "chrom", "start", "end", "split", "label", "sequence"]
    inside = set(range(100, 300, 50)) | set(range(650, 800, 50))
    straddling = {400, 450}  # the CDS at 420..480 covers part of each
    with_n = {900}
    expected_starts = sorted(set(range(0, 1000, 50)) - straddling - with_n)
    assert list(table["start"]) == expected_starts
    assert set(table.loc[table["label"] == 1, "start"]) == inside
    assert (table.groupby(table["start"] // 200)["split"].nunique() == 1).all()  # one split per block
    assert table.loc[0, "sequence"] == fasta.read_text().splitlines()[1][:50]


def test_cds_windows_rejects_a_gff_for_another_assembly(tmp_path, capsys):
    fasta, gff = _write_genome(tmp_path)
    gff.write_text("chrZ\ttest\tCDS\t1\t90\t.\t+\t0\tID=x\n")
    code = main(["cds-windows", "--fasta", str(fasta), "--gff", str(gff), "--out", str(tmp_path / "w.tsv")])
    assert code == 1 and f"{gff}: no seqid of the annotation is a record of {fasta}" in capsys.readouterr().err
    assert not (tmp_path / "w.tsv").exists()


def test_annotated_genomes_picks_rows_with_a_gff_and_checks_the_wanted_ones():
    from dnafm_lib.core.errors import DnafmError
    from dnafm_lib.finetune.cds_windows import annotated_genomes

    table = pd.DataFrame({"genome": ["a", "b", "c"], "annotation": ["a.gff3", "", "c.gff3"]})
    assert annotated_genomes(table) == ["a", "c"]
    assert annotated_genomes(table, ["c"]) == ["c"]
    with pytest.raises(DnafmError, match="finetune.genomes: b not in the splits table or without an annotation"):
        annotated_genomes(table, ["b"])


@pytest.mark.slow
def test_compare_finetuning_trains_both_initialisations_and_prints_both(tmp_path, classification_tsv, capsys):
    import torch

    import dnafm_lib

    torch.manual_seed(0)
    dnafm_lib.save_model(dnafm_lib.load_model("tiny"), tmp_path / "pretrained")
    code = main(
        [
            "compare-finetuning",
            "--backbone",
            str(tmp_path / "pretrained"),
            "--data",
            str(classification_tsv),
            "--out-dir",
            str(tmp_path / "cmp"),
            "--max-epochs",
            "1",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    table = pd.read_csv(tmp_path / "cmp" / "comparison.tsv", sep="\t")
    assert list(table["initialisation"]) == ["pretrained", "scratch"]
    assert table["test_n"].tolist() == [16, 16]
    for name in ("pretrained", "scratch"):
        assert name in out
        metrics = json.loads((tmp_path / "cmp" / name / "metrics.json").read_text())
        assert metrics["test"]["accuracy"] == pytest.approx(
            table.set_index("initialisation").loc[name, "test_accuracy"], abs=1e-4
        )
    # the two runs start from different backbones, so they end differently
    assert table.loc[0, "test_loss"] != pytest.approx(table.loc[1, "test_loss"])


def test_compare_initialisations_starts_both_runs_from_the_same_head(tmp_path, classification_tsv, monkeypatch):
    import torch

    import dnafm_lib
    from dnafm_lib.finetune import comparison
    from dnafm_lib.finetune.data import DataConfig
    from dnafm_lib.finetune.trainer import TrainerConfig

    torch.manual_seed(0)
    dnafm_lib.save_model(dnafm_lib.load_model("tiny"), tmp_path / "pretrained")
    heads, backbones = [], []

    def record_and_skip(model, splits, batch_size, max_length, config, run_config=None):
        heads.append({k: v.clone() for k, v in model.head.state_dict().items()})
        backbones.append(model.backbone.embeddings.word_embeddings.weight.detach().clone())
        return {"test": {}, "epochs": 0}

    monkeypatch.setattr(comparison, "fit", record_and_skip)
    comparison.compare_initialisations(
        str(tmp_path / "pretrained"),
        DataConfig(path=str(classification_tsv)),
        TrainerConfig(out_dir=str(tmp_path / "cmp"), seed=3),
        {},
        tmp_path / "cmp",
    )
    assert all(torch.equal(heads[0][k], heads[1][k]) for k in heads[0])
    assert not torch.equal(backbones[0], backbones[1])
