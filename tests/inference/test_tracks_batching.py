"""`batch_size: auto` and the out-of-memory back-off of the tracks scorer, with the error injected.

A forward pre-hook on the real model raises ``torch.cuda.OutOfMemoryError`` for batches above a
limit (from the start, or only after some forward passes: an error mid-run), as a GPU does when
a batch does not fit; the scorer under test runs unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch

import dnafm_lib
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.indexed_fasta import fasta_lengths, open_fasta
from dnafm_lib.inference.tracks.chunk_arrays import load_chunk
from dnafm_lib.inference.tracks.one_shot import run_genome
from dnafm_lib.inference.tracks.score import score_chunk
from dnafm_lib.inference.tracks.scoring import ScoringSettings, WindowScorer
from dnafm_lib.inference.tracks.tiling import Region
from tests.support.tracks import FAST, genome_with_gaps, save_tiny_model, write_fasta

SETTINGS = dataclasses.replace(FAST, reverse_complement=True)


def _fits_at_most(model, limit: int, after_calls: int = 0):
    """Make ``model`` raise CUDA's out-of-memory error for batches above ``limit`` (after ``after_calls``)."""
    calls = []

    def hook(module, args):
        calls.append(args[0].shape[0])
        if len(calls) > after_calls and args[0].shape[0] > limit:
            raise torch.cuda.OutOfMemoryError(f"injected: batch {args[0].shape[0]} > {limit}")

    model.register_forward_pre_hook(hook)
    return calls


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    return write_fasta(tmp_path_factory.mktemp("genome") / "genome.fa", genome_with_gaps()[:2])


def _model():
    torch.manual_seed(0)
    return dnafm_lib.load_model("tiny").eval()


def _score(genome, settings, limit=None, after_calls=0):
    fasta = open_fasta(genome)
    lengths = fasta_lengths(fasta)
    model = _model()
    calls = _fits_at_most(model, limit, after_calls) if limit is not None else []
    scorer = WindowScorer(model, settings, "cpu")
    regions = [Region(name, 0, n) for name, n in lengths.items()]
    scores = scorer.score_regions(regions, lambda c, s, e: fasta[c][s:e], lengths)
    return scores, scorer.run_info, calls


def _same_scores(a, b):
    for x, y in zip(a, b, strict=True):
        assert x.region == y.region
        for name in ("probs", "loss_nats", "entropy_nats", "bin_sums", "bin_counts"):
            assert getattr(x, name).tobytes() == getattr(y, name).tobytes(), name


def test_auto_finds_the_largest_batch_that_fits_and_scores_as_that_batch_does(genome):
    auto, info, calls = _score(genome, dataclasses.replace(SETTINGS, batch_size="auto"), limit=4)
    at_four, _, _ = _score(genome, dataclasses.replace(SETTINGS, batch_size=4))
    assert info["batch_size"] == 4 and info["oom_backoffs"] == 0
    assert calls[:4] == [1, 2, 4, 8]  # the probe doubled until the device refused
    assert max(calls[4:]) == 4
    _same_scores(auto, at_four)


def test_an_out_of_memory_error_mid_run_halves_the_batch_and_gives_that_batch_s_scores(genome):
    backed_off, info, calls = _score(genome, dataclasses.replace(SETTINGS, batch_size=16), limit=4, after_calls=3)
    at_four, _, _ = _score(genome, dataclasses.replace(SETTINGS, batch_size=4))
    assert info["batch_size"] == 4 and info["oom_backoffs"] == 2  # 16 → 8 → 4
    assert calls[:3] == [16, 16, 16]  # three batches were done before the error
    _same_scores(backed_off, at_four)


def test_a_window_that_never_fits_is_one_error(genome):
    with pytest.raises(DnafmError, match="out of memory on cpu with one window"):
        _score(genome, dataclasses.replace(SETTINGS, batch_size=2), limit=0, after_calls=1)
    with pytest.raises(DnafmError, match="batch_size auto: one window of 300 nt does not fit"):
        _score(genome, dataclasses.replace(SETTINGS, batch_size="auto"), limit=0)


@pytest.mark.parametrize("value", ["big", 0, -3])
def test_batch_size_is_a_positive_integer_or_auto(value):
    with pytest.raises(DnafmError, match="batch_size"):
        ScoringSettings.from_mapping({"batch_size": value}, "cohort.yaml: tracks")


def test_the_chunk_records_its_throughput_and_the_found_batch_outside_the_compared_settings(tmp_path, genome):
    model = _model()
    _fits_at_most(model, 2)
    settings = dataclasses.replace(SETTINGS, batch_size="auto")
    lengths = fasta_lengths(open_fasta(genome))
    regions = [Region(name, 0, n) for name, n in lengths.items()]
    score_chunk(genome, regions, model, settings, tmp_path / "c.npz", "cpu", {"device": "cpu"})
    chunk = load_chunk(tmp_path / "c.npz")
    assert chunk.settings["batch_size"] == "auto"  # what gather compares: the same for every chunk
    info = chunk.provenance["throughput"]
    assert info["batch_size"] == 2 and info["ranks"] == 1 and info["device"] == "cpu"
    assert info["tokens"] > 0 and info["tokens_per_second"] > 0


def test_tracks_json_shows_the_batch_and_tokens_per_second(tmp_path, genome, monkeypatch):
    monkeypatch.setenv("DNAFM_CACHE_DIR", str(tmp_path / "cache"))
    model = save_tiny_model(tmp_path / "model")
    out = tmp_path / "tracks"
    settings = dataclasses.replace(SETTINGS, batch_size="auto", embedding_layer=None)
    run_genome(genome, str(model), out, settings, chunk_bp=2000, n_clusters=3, device="cpu")
    record = json.loads((out / "tracks.json").read_text())["provenance"]
    assert record["scoring"]["batch_size"] == "auto"
    throughput = record["throughput"]
    assert throughput["jobs"] >= 2  # several chunks, summed into one record
    assert throughput["batch_sizes"] == [32]  # the CPU probe's bound: nothing refused it
    assert throughput["ranks"] == [1] and throughput["devices"] == ["cpu"]
    per_gpu = throughput["tokens_per_second_per_gpu"]
    assert 0 < per_gpu["slowest"] <= per_gpu["median"] <= per_gpu["fastest"]
    assert throughput["tokens"] > 0


@pytest.mark.parametrize("text", ["big", "2.5", "0"])
def test_a_bad_batch_size_flag_is_one_line_naming_it(tmp_path, text):
    done = subprocess.run(
        [sys.executable, "-m", "dnafm_lib.cli", "tracks", "score", "--fasta", "g.fa", "--plan", "p.tsv"]
        + ["--chunk", "chunk00000", "--model", "tiny", "--out", "c.npz", "--batch-size", text],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        f"dnafm tracks: error: --batch-size must be {'at least 1' if text == '0' else 'a positive integer'} or 'auto', "
        f"got {text if text == '0' else repr(text)}"
    ]
    assert list(tmp_path.iterdir()) == []
