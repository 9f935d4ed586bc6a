"""The bidirectional k-mer baselines: composition at k = 0, planted context rules, brute-force counts."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.indexed_fasta import open_fasta
from dnafm_lib.inference.kmer_baseline import (
    best_order,
    count_contexts,
    fasta_contig_chunks,
    fit_baselines,
    orders_until_no_gain,
)


def chunked(sequence: str, size: int):
    return (sequence[start : start + size] for start in range(0, len(sequence), size))


def random_sequence(rng, length: int, alphabet: str = "ACGT") -> str:
    return "".join(rng.choice(list(alphabet), length))


def test_order_zero_is_the_base_composition_entropy():
    # 50% A, 20% C, 20% G, 10% T in a shuffled sequence
    rng = np.random.default_rng(0)
    sequence = "".join(rng.permutation(list("A" * 500 + "C" * 200 + "G" * 200 + "T" * 100)))
    composition = fit_baselines([[sequence]], [0], pseudocount=1e-9)[0]
    by_hand = -(0.5 * math.log(0.5) + 2 * 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    assert np.nanmean(composition.loss_nats(sequence)) == pytest.approx(by_hand, abs=1e-6)
    # add-one smoothing: P(T) = (100 + 1) / (1000 + 4), whatever the neighbours
    smoothed = fit_baselines([[sequence]], [0])[0]
    assert smoothed.loss_nats("GTA")[1] == pytest.approx(-math.log(101 / 1004))


def planted_blocks(rng, blocks: int) -> tuple[str, np.ndarray]:
    """Blocks ``r1 r2 X r3 r4 N`` of random bases r with X = (r1 + r2 + r3 + r4) mod 4; the X positions.

    The N ends every other 2-and-2 context, so at k = 2 the rule holds wherever a context is whole."""
    codes = rng.integers(0, 4, size=(blocks, 6))
    codes[:, 2] = (codes[:, 0] + codes[:, 1] + codes[:, 3] + codes[:, 4]) % 4
    codes[:, 5] = 4
    sequence = "".join(np.array(list("ACGTN"))[codes.ravel()])
    return sequence, np.arange(blocks) * 6 + 2


def test_a_planted_two_sided_rule_is_predicted_perfectly_by_k2_and_not_by_k1():
    rng = np.random.default_rng(1)
    train, _ = planted_blocks(rng, 40_000)
    held_out, planted = planted_blocks(rng, 2_000)
    baselines = fit_baselines([chunked(train, 4096)], [0, 1, 2], pseudocount=1e-6)
    loss = {k: baselines[k].loss_nats(held_out)[planted] for k in baselines}
    assert not np.isnan(loss[2]).any()
    assert loss[2].max() < 1e-3  # the rule needs two bases on each side
    assert loss[1].mean() > 1.3  # one base each side leaves X uniform: ln 4 = 1.386
    assert loss[0].mean() > 1.3


def brute_force_loss(train_contigs: list[str], held_out: str, k: int, pseudocount: float) -> np.ndarray:
    """Count (left k, right k, centre) strings where all are A/C/G/T; score ``held_out`` from them."""
    acgt = set("ACGT")
    counts: Counter = Counter()
    for contig in train_contigs:
        contig = contig.upper()
        for i in range(k, len(contig) - k):
            window = contig[i - k : i + k + 1]
            if set(window) <= acgt:
                counts[(window[:k], window[k + 1 :], window[k])] += 1
    held = held_out.upper()
    out = np.full(len(held), np.nan)
    for i in range(k, len(held) - k):
        window = held[i - k : i + k + 1]
        if set(window) <= acgt:
            left, right, base = window[:k], window[k + 1 :], window[k]
            total = sum(counts[(left, right, b)] for b in "ACGT")
            out[i] = -math.log((counts[(left, right, base)] + pseudocount) / (total + 4 * pseudocount))
    return out


@pytest.mark.parametrize("chunk_bp", [1, 7, 100_000])
def test_held_out_loss_equals_a_brute_force_count(chunk_bp):
    rng = np.random.default_rng(2)
    # soft-masked and N bases, several contigs, some shorter than the context
    train = [
        random_sequence(rng, 3000, "ACGTacgt"),
        random_sequence(rng, 400) + "NNNN" + random_sequence(rng, 300, "ACGTN"),
        "ACG",
        "T",
    ]
    held_out = "NN" + random_sequence(rng, 500, "ACGTacgtN") + "acgT"
    baselines = fit_baselines([chunked(contig, chunk_bp) for contig in train], [0, 1, 2, 3], pseudocount=0.5)
    for k, baseline in baselines.items():
        np.testing.assert_allclose(
            baseline.loss_nats(held_out), brute_force_loss(train, held_out, k, 0.5), rtol=1e-12, equal_nan=True
        )


def test_streamed_fasta_counts_equal_counts_of_the_whole_contigs(tmp_path):
    rng = np.random.default_rng(4)
    contigs = {"chr1": random_sequence(rng, 5000, "ACGTacgtN"), "chr2": random_sequence(rng, 1234)}
    path = tmp_path / "genome.fa"
    path.write_text("".join(f">{name}\n{sequence}\n" for name, sequence in contigs.items()))
    streamed = count_contexts(fasta_contig_chunks(open_fasta(path), chunk_bp=333), [0, 2, 4])
    whole = count_contexts([[sequence] for sequence in contigs.values()], [0, 2, 4])
    for k in (0, 2, 4):
        np.testing.assert_array_equal(streamed[k], whole[k])
    # every A/C/G/T base is counted once at k = 0
    assert streamed[0].sum() == sum(sum(base in "ACGTacgt" for base in sequence) for sequence in contigs.values())


def test_orders_stop_at_the_first_that_does_not_improve():
    losses = {0: 1.38, 1: 1.30, 2: 1.28, 3: 1.29, 4: 1.20}
    assert orders_until_no_gain(losses) == [0, 1, 2, 3]
    assert best_order(losses) == 2
    assert orders_until_no_gain({0: 1.3, 1: 1.2}) == [0, 1]


def test_orders_beyond_the_table_limit_are_refused():
    with pytest.raises(DnafmError, match=r"0\.\.5"):
        count_contexts([["ACGT"]], [6])


REPO = Path(__file__).resolve().parents[2]


def run_science(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(REPO / "benchmarks" / "science.py"), *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_science_smoke_shows_an_untrained_model_losing_to_composition(model_dir, tmp_path):
    out = tmp_path / "science.md"
    done = run_science("--model", str(model_dir), "--smoke", "--tables", "loss", "--out", str(out))
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    header = next(line for line in lines if line.startswith("| genome"))
    row = next(line for line in lines if line.startswith("| yersinia_pPCP1"))
    cells = dict(zip(_cells(header), _cells(row)))
    assert cells["split"] == "validation"
    assert int(cells["positions"].replace(",", "")) > 1000
    composition = float(cells["k=0 (composition)"])
    assert 1.2 < composition < math.log(4)
    # random weights predict about uniform (ln 4 = 1.386): worse than the composition of the train genomes
    assert float(cells["model"]) > composition
    assert float(cells["model − best"]) > 0
    assert done.stdout == out.read_text()


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_science_names_a_model_directory_that_is_not_one(tmp_path):
    done = run_science("--model", str(tmp_path / "missing"), "--smoke")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"science.py: error: {tmp_path / 'missing'}: not a checkpoint directory (no readable config.json)"
    ]
