"""tracks.json says what made the tracks: model path, weights sha256, config, settings, versions, time."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json

import pytest

import dnafm_lib
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.inference.tracks.one_shot import run_genome
from tests.support.tracks import FAST, genome_with_gaps, save_tiny_model, write_fasta

SETTINGS = dataclasses.replace(FAST, embedding_layer=None)  # per-base tracks only: quick


@pytest.fixture()
def genome(tmp_path):
    return write_fasta(tmp_path / "genome.fa", genome_with_gaps()[1:3])


def test_tracks_json_records_the_model_its_weights_hash_and_every_setting(tmp_path, genome, monkeypatch):
    monkeypatch.setenv("DNAFM_CACHE_DIR", str(tmp_path / "cache"))
    model = save_tiny_model(tmp_path / "model")
    out = tmp_path / "tracks"
    run_genome(genome, str(model), out, SETTINGS, chunk_bp=1000, n_clusters=3, device="cpu")

    record = json.loads((out / "tracks.json").read_text())["provenance"]
    assert record["model"]["path"] == str(model.resolve())
    assert record["model"]["config"] == json.loads((model / "config.json").read_text())
    weights = (model / "model.safetensors").read_bytes()
    assert record["model"]["weights"] == [
        {"file": "model.safetensors", "bytes": len(weights), "sha256": hashlib.sha256(weights).hexdigest()}
    ]
    assert record["scoring"] == {
        "window_bp": 300,
        "stride_bp": 150,
        "passes": 3,
        "masking": "passes",
        "reverse_complement": False,
        "embedding_layer": None,
        "bin_bp": 50,
        "batch_size": 8,
        "seed": 0,
        "device": "cpu",
        "precision": "float32",
    }
    assert record["gather"] == {"n_clusters": 3, "seed": 0, "annotation": None}
    assert record["dnafm_version"] == dnafm_lib.__version__ and record["torch_version"]
    written = datetime.datetime.fromisoformat(record["written_at"])
    assert abs((datetime.datetime.now(datetime.timezone.utc) - written).total_seconds()) < 600
    assert record["scored_from"] <= record["scored_until"] <= record["written_at"]


def test_another_model_rescores_every_kept_chunk(tmp_path, genome, monkeypatch):
    monkeypatch.setenv("DNAFM_CACHE_DIR", str(tmp_path / "cache"))
    first, second = save_tiny_model(tmp_path / "first"), tmp_path / "second"
    import torch

    torch.manual_seed(1)
    dnafm_lib.save_model(dnafm_lib.load_model("tiny", seed=1), second)
    out = tmp_path / "tracks"
    run_genome(genome, str(first), out, SETTINGS, chunk_bp=1000, n_clusters=3, device="cpu")
    run_genome(genome, str(second), out, SETTINGS, chunk_bp=1000, n_clusters=3, device="cpu")
    record = json.loads((out / "tracks.json").read_text())["provenance"]
    assert record["model"]["path"] == str(second.resolve())  # no chunk of the first model was reused


def test_weights_changed_after_scoring_stop_the_gather(tmp_path, genome, monkeypatch):
    from dnafm_lib.inference.tracks.gather import gather_tracks

    monkeypatch.setenv("DNAFM_CACHE_DIR", str(tmp_path / "cache"))
    model = save_tiny_model(tmp_path / "model")
    out = tmp_path / "tracks"
    run_genome(genome, str(model), out, SETTINGS, chunk_bp=1000, n_clusters=3, device="cpu", keep_chunks=True)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes())  # same bytes, new modification time: not what scored
    with pytest.raises(DnafmError, match="model.safetensors: changed since the chunks were scored"):
        gather_tracks(
            sorted((out / "chunks").glob("chunk*.npz")), str(genome) + ".fai", out, n_clusters=3, fasta_path=genome
        )
