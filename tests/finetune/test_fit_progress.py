"""`dnafm fit` says how far each epoch is in its log (stderr), with or without the progress bar."""

import re

from tests.finetune.test_cli import FAST, _composition_table, _fit


def test_each_epoch_and_evaluation_writes_progress_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DNAFM_PROGRESS_SECONDS", "0")  # a line at every batch: a big table's every 30 s
    path = tmp_path / "windows.tsv"
    _composition_table().to_csv(path, sep="\t", index=False)  # 64 training rows: 4 batches of 16

    code, out, err = _fit(
        ["--model", "SequenceClassification", *FAST, "--data.path", str(path), "--trainer.max_epochs", "2"]
        + ["--trainer.out_dir", str(tmp_path / "run")],
        capsys,
    )

    assert code == 0, err
    for epoch in (1, 2):
        done = re.findall(rf"^epoch {epoch}/2: (\d)/4 batches \(\d+%\), .* batches/s, elapsed .*, ETA ", err, re.M)
        assert done == ["1", "2", "3", "4"], err
    assert re.search(r"^eval val: 1/1 batches \(100%\)", err, re.M)
    assert "batches" not in out
