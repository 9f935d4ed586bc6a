"""Exact single-site scoring (``masking: exact``): each base masked alone in its window.

Checked against brute force: one model call per base, the window framed by hand with only that
base masked (and, with reverse complement, the reverse-complemented window with the mirrored
mask), the probabilities read at that position. Also: exact differs from the pass shortcut, the
setting and flag are checked, and the cost model counts one forward per base.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dnafm_lib
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.inference.tracks.scoring import ScoringSettings, WindowScorer
from dnafm_lib.inference.tracks.tiling import Region, forward_tokens_per_bp, windows_for_region
from dnafm_lib.model.tokenizer import ACGT_IDS, MASK_ID, N_ID, encode, frame

pytestmark = pytest.mark.usefixtures("one_torch_thread")

COMPLEMENT = {a: b for a, b in zip(ACGT_IDS, ACGT_IDS[::-1])}


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(11)
    return dnafm_lib.load_model("tiny").eval()


def brute_force(model, sequence: str, settings: ScoringSettings) -> np.ndarray:
    """(n, 4) A/C/G/T probabilities, one model call per base and strand; NaN for N."""
    ids = encode(sequence)
    out = np.full((ids.size, 4), np.nan)
    for window in windows_for_region(Region("c", 0, ids.size), ids.size, settings.window_bp, settings.stride_bp):
        window_ids = ids[window.start : window.end]
        for position in range(window.keep_start, window.keep_end):
            offset = position - window.start
            if window_ids[offset] == N_ID:
                continue
            masked = window_ids.copy()
            masked[offset] = MASK_ID
            with torch.inference_mode():
                logits = model(torch.from_numpy(frame(masked)[None].astype(np.int64))).logits[0, 1 + offset]
            probs = torch.softmax(logits[list(ACGT_IDS)].float(), -1).numpy()
            if settings.reverse_complement:
                reverse = np.array([COMPLEMENT.get(t, t) for t in window_ids[::-1]], dtype=np.uint8)
                mirrored = window_ids.size - 1 - offset
                reverse[mirrored] = MASK_ID
                with torch.inference_mode():
                    rc_logits = model(torch.from_numpy(frame(reverse)[None].astype(np.int64))).logits[0, 1 + mirrored]
                rc_probs = torch.softmax(rc_logits[list(ACGT_IDS)].float(), -1).numpy()[::-1]  # A↔T, C↔G
                probs = (probs + rc_probs) / 2
            out[position] = probs
    return out


@pytest.mark.parametrize("reverse_complement", [False, True])
def test_exact_scoring_equals_masking_each_base_alone_by_brute_force(tiny_model, reverse_complement):
    rng = np.random.default_rng(5)
    sequence = "".join(rng.choice(list("ACGT"), 45)) + "NN" + "".join(rng.choice(list("ACGTacgt"), 20))
    settings = ScoringSettings(
        window_bp=24,
        stride_bp=10,
        masking="exact",
        reverse_complement=reverse_complement,
        embedding_layer=None,
        batch_size=7,  # batches cut across windows and strands
    )
    (scores,) = WindowScorer(tiny_model, settings).score_regions(
        [Region("c", 0, len(sequence))], lambda contig, start, end: sequence[start:end], {"c": len(sequence)}
    )
    expected = brute_force(tiny_model, sequence, settings)
    assert np.isnan(scores.probs[45:47]).all()  # N is never scored
    np.testing.assert_allclose(scores.probs, expected, rtol=1e-5, atol=1e-6)
    truth = np.array([ACGT_IDS.index(t) if t in ACGT_IDS else -1 for t in encode(sequence)])
    scored = truth >= 0
    np.testing.assert_allclose(scores.loss_nats[scored], -np.log(expected[scored, truth[scored]]), rtol=1e-5, atol=1e-6)


def test_exact_scoring_differs_from_the_pass_shortcut_and_ignores_passes(tiny_model):
    rng = np.random.default_rng(6)
    sequence = "".join(rng.choice(list("ACGT"), 40))
    fetch = lambda contig, start, end: sequence[start:end]  # noqa: E731
    region = [Region("c", 0, len(sequence))]

    def probs(**fields):
        settings = ScoringSettings(window_bp=20, stride_bp=10, embedding_layer=None, **fields)
        return WindowScorer(tiny_model, settings).score_regions(region, fetch, {"c": len(sequence)})[0].probs

    exact = probs(masking="exact", passes=2)
    np.testing.assert_array_equal(exact, probs(masking="exact", passes=9))
    assert np.abs(exact - probs(masking="passes", passes=2)).max() > 1e-4  # half the window masked is not one base


def test_masking_setting_is_checked_and_named():
    with pytest.raises(DnafmError, match="tracks.masking must be one of passes, exact, got 'alone'"):
        ScoringSettings.from_mapping({"masking": "alone"}, "cohort.yaml: tracks").validate()


def test_exact_costs_a_window_per_base_and_strand():
    assert forward_tokens_per_bp(254, 127, 7, False, False, "exact") == 256
    assert forward_tokens_per_bp(254, 127, 7, True, True, "exact") == 2 * 256 + 256 / 127
    assert forward_tokens_per_bp(254, 127, 7, False, True) == 256 * 8 / 127  # passes: unchanged


def test_tracks_cli_scores_exactly_with_masking_exact_one_shot_and_as_the_score_step(tmp_path):
    import json

    import pyBigWig

    from dnafm_lib.cli import main
    from tests.support.tracks import save_tiny_model, write_fasta

    rng = np.random.default_rng(8)
    sequence = "".join(rng.choice(list("ACGT"), 70))
    fasta = write_fasta(tmp_path / "g.fa", [("c", sequence)])
    model = save_tiny_model(tmp_path / "tiny")
    flags = ["--window-bp", "30", "--stride-bp", "15", "--layer", "none", "--device", "cpu", "--masking", "exact"]
    out = tmp_path / "tracks"
    assert main(["tracks", "--fasta", str(fasta), "--model", str(model), "--out-dir", str(out), *flags]) == 0
    assert json.loads((out / "tracks.json").read_text())["provenance"]["scoring"]["masking"] == "exact"
    settings = ScoringSettings(window_bp=30, stride_bp=15, masking="exact", embedding_layer=None)
    expected = brute_force(dnafm_lib.load_model(str(model)).eval(), sequence, settings)
    truth = np.array([ACGT_IDS.index(t) for t in encode(sequence)])
    with pyBigWig.open(str(out / "mlm_loss.bw")) as bw:
        loss = bw.values("c", 0, len(sequence), numpy=True)
    np.testing.assert_allclose(loss, -np.log(expected[np.arange(truth.size), truth]), rtol=1e-5, atol=1e-5)

    plan = tmp_path / "chunks.tsv"
    assert main(["tracks", "plan", "--fai", f"{fasta}.fai", "--chunk-bp", "1000", "--out", str(plan)]) == 0
    chunk = tmp_path / "chunk00000.npz"
    score = ["tracks", "score", "--fasta", str(fasta), "--plan", str(plan), "--chunk", "chunk00000"]
    assert main([*score, "--model", str(model), "--out", str(chunk), *flags]) == 0
    from dnafm_lib.inference.tracks.chunk_arrays import load_chunk

    assert load_chunk(chunk).settings["masking"] == "exact"
