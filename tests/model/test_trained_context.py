"""The pretraining context: recorded by export, read back (4000 for published configs), warned about."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from dnafm_lib.model.trained_context import (
    CONTEXT_FIELD,
    context_warning,
    trained_context_tokens,
    warn_if_longer,
)
from tests.support.tracks import save_tiny_model


def test_a_published_config_without_the_field_counts_as_4000_tokens(tmp_path):
    model = save_tiny_model(tmp_path / "aido")
    assert CONTEXT_FIELD not in json.loads((model / "config.json").read_text())
    assert trained_context_tokens(model) == 4000
    assert trained_context_tokens("tiny") is None  # a preset is untrained: nothing to compare


def test_longer_windows_than_the_trained_context_warn_once_naming_both_numbers(tmp_path, caplog):
    model = save_tiny_model(tmp_path / "demo")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, CONTEXT_FIELD: 256}))
    with caplog.at_level(logging.WARNING):
        message = warn_if_longer(model, 3998)
        warn_if_longer(model, 3998)
    assert message == (
        f"{model}: scoring 3998-nt windows (4000 tokens) with a model pretrained on 256-token inputs "
        "(254 nt); positions beyond its training context may score poorly (window_bp at most 254 "
        "matches it)"
    )
    assert [r.getMessage() for r in caplog.records] == [f"warning: {message}"]
    assert warn_if_longer(model, 254) is None
    assert context_warning("m", 3998, 4000) is None


@pytest.mark.slow
def test_export_records_the_context_of_the_training_shards(tmp_path):
    from dnafm_lib.train.config import TrainConfig
    from dnafm_lib.train.loop import train
    from tests.support.train import REPO, WINDOW_NT, env, settings, write_demo_shards

    run_dir = tmp_path / "run"
    train(
        TrainConfig.from_mapping(
            settings(*write_demo_shards(tmp_path / "shards"), run_dir, max_steps=2, validate_every_steps=2)
        )
    )
    out = tmp_path / "model"
    exported = subprocess.run(
        [sys.executable, "-m", "dnafm_lib.cli", "export", "--run-dir", str(run_dir), "--out", str(out)],
        env=env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert exported.returncode == 0, exported.stderr
    assert json.loads((out / "config.json").read_text())[CONTEXT_FIELD] == WINDOW_NT + 2
    assert trained_context_tokens(out) == WINDOW_NT + 2
    assert f"pretrained on {WINDOW_NT + 2}-token inputs" in exported.stdout
