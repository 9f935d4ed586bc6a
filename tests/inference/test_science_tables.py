"""benchmarks/science.py tables 2 and 3 (--smoke, a random tiny model): the masking shortcut
against exact single-site scoring, and synonymous vs nonsynonymous coding SNVs."""

from __future__ import annotations

import math

import pytest

from dnafm_lib.inference.tracks.tiling import forward_tokens_per_bp
from tests.inference.test_kmer_baseline import _cells, run_science


@pytest.fixture(scope="module")
def smoke_tables(model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("science") / "science.md"
    done = run_science("--model", str(model_dir), "--smoke", "--tables", "masking,synonymous", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == out.read_text()
    return out.read_text().splitlines()


def _table(lines: list[str], first_header: str) -> list[dict[str, str]]:
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    header = _cells(lines[start])
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, _cells(line))))
    return rows


def test_masking_table_compares_every_shortcut_setting_with_exact_and_prices_it(smoke_tables):
    rows = _table(smoke_tables, "masking")
    shortcut = {(r["passes"], r["overlap"], r["reverse complement"]): r for r in rows if r["masking"] == "passes"}
    assert len(shortcut) == 5 * 3 * 2 and len(rows) == 31
    assert {p for p, _, _ in shortcut} == {"3", "5", "7", "10", "15"}
    assert {o for _, o, _ in shortcut} == {"1×", "1.33×", "2×"}
    window_bp = int(shortcut[("3", "1×", "off")]["stride"])  # no overlap: the stride is the window
    for (passes, _, reverse), row in shortcut.items():
        tokens = forward_tokens_per_bp(window_bp, int(row["stride"]), int(passes), reverse == "on", False)
        assert float(row["tokens/base"]) == pytest.approx(tokens, abs=0.05)
        for key in ("loss ρ", "LLR ρ"):
            assert -1 <= float(row[key]) <= 1
    (exact,) = [r for r in rows if r["masking"] == "exact"]
    assert float(exact["tokens/base"]) == 2 * (window_bp + 2)
    # fewer bases masked per forward comes closer to masking each alone
    few, many = shortcut[("3", "2×", "off")], shortcut[("15", "2×", "off")]
    assert float(many["loss mean abs Δ"]) < float(few["loss mean abs Δ"])


def test_synonymous_table_scores_every_snv_of_the_chosen_cds(smoke_tables):
    (row,) = _table(smoke_tables, "genome")
    assert row["genome"] == "yersinia_pPCP1" and row["split"] == "validation"
    cds_bp, snvs = int(row["CDS bp"].replace(",", "")), int(row["SNVs"].replace(",", ""))
    assert 300 <= cds_bp and 2.9 * cds_bp <= snvs <= 3 * cds_bp  # three alleles per codon base
    assert 0.15 < float(row["synonymous"].rstrip("%")) / 100 < 0.35  # the standard code's share
    for key in ("model, 2 passes", "model, exact", "k=0 (composition)", "k=3"):
        assert 0 <= float(row[key]) <= 1 and not math.isnan(float(row[key]))
