"""Invariants of the tracks stage (tiling, complementary masks, scoring, segments), on tiny inputs.

Tiling (``tracks.tiling``), for every contig length, window and stride:
  T1. windows lie inside the contig and are ``min(window_bp, contig_bp)`` long;
  T2. kept parts abut and cover ``[0, contig_bp)``: every base is kept by exactly one window;
  T3. a base is kept by a window whose centre is nearest to it among the windows holding it;
  T4. away from contig ends a kept base has at least ``(window_bp - stride_bp) // 2`` bases of
      context on each side;
  T5. windows depend on the contig only: cutting a contig into regions keeps exactly the
      contig's windows, with kept parts clipped to the region;
  T6. chunks cover every base once, in .fai order, cut long contigs only at bin boundaries, and
      every chunk but the last holds ``chunk_bp`` (less than one bin more).
Masks (``scoring.mask_pass_of_position``), for every N layout:
  M1. N is never masked (pass −1); every other base is masked in exactly one pass;
  M2. pass sizes differ by at most one base; the draw is a pure function of (seed, contig, start).
Scoring (``scoring.WindowScorer``), with and without reverse-complement averaging:
  S1. every non-N base gets four probabilities that sum to 1; N bases stay NaN;
  S2. every non-N base is scored once, from its keeping window and by the pass that masked it
      (with reverse complement: the mean of both strands under the same mask);
  S3. loss = −log p(reference base), 0 ≤ entropy ≤ log 4.
  S4. settings out of range are one error naming the setting;
  E1. a bin's embedding is the mean hidden state of its non-N bases, each from its keeping window.
Segments (``embeddings.segment_rows``):
  G1. a segment never spans a bin without a scored base (N-only bins break runs);
  G2. segments are the maximal runs of adjacent, same-cluster bins of one contig;
  G3. GFF3 features are read 0-based half-open; enrichment counts observed/expected bp from them.
Files (``writers.BigWigWriter``, ``hub.write_hub``):
  B1. a bigWig that fails midway leaves nothing behind; a whole one reads back its values;
  H1. the UCSC hub is a valid trackDb: every bigWig typed ``bigWig``, each catalog group stacked
      in one multiWig container, labels within UCSC's 17 characters.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dnafm_lib
from dnafm_lib.inference.tracks.chunk_arrays import load_chunk, save_chunk
from dnafm_lib.inference.tracks.embeddings import BinIndex, segment_rows
from dnafm_lib.inference.tracks.scoring import (
    ScoringSettings,
    WindowScorer,
    mask_pass_of_position,
)
from dnafm_lib.inference.tracks.tiling import (
    Region,
    contig_windows,
    plan_chunks,
    windows_for_region,
)
from dnafm_lib.model.tokenizer import ACGT_IDS, MASK_ID, N_ID, encode, frame

# Derandomized: CI sees the same examples every run; each property runs in well under a second.
FAST_PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield dnafm_lib.load_model("tiny").eval()
    torch.set_num_threads(before)


@st.composite
def geometries(draw):
    window_bp = draw(st.integers(1, 400))
    stride_bp = draw(st.integers(1, window_bp))
    contig_bp = draw(st.integers(1, 5 * window_bp + 7))
    return contig_bp, window_bp, stride_bp


@st.composite
def sequences_with_n_runs(draw, min_size=1, max_size=300):
    """A/C/G/T with N runs at random places (possibly at the ends, possibly all N)."""
    size = draw(st.integers(min_size, max_size))
    bases = draw(st.lists(st.sampled_from("ACGT"), min_size=size, max_size=size))
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.integers(0, size - 1))
        length = draw(st.integers(1, max(1, size // 3)))
        bases[start : start + length] = "N" * len(bases[start : start + length])
    return "".join(bases)


# --------------------------------------------------------------------------- tiling


@FAST_PROPERTY
@given(geometries())
def test_windows_tile_every_contig_with_abutting_kept_parts_nearest_the_centre(geometry):
    contig_bp, window_bp, stride_bp = geometry
    windows = contig_windows("c", contig_bp, window_bp, stride_bp)
    kept = np.zeros(contig_bp, dtype=int)
    for w in windows:
        assert 0 <= w.start <= w.keep_start < w.keep_end <= w.end <= contig_bp  # T1
        assert w.end - w.start == min(window_bp, contig_bp)  # T1
        kept[w.keep_start : w.keep_end] += 1
    assert (kept == 1).all()  # T2
    assert windows[0].keep_start == 0 and windows[-1].keep_end == contig_bp
    assert all(a.keep_end == b.keep_start for a, b in zip(windows, windows[1:]))
    # T3: |2b+1 − (start+end)| is twice the distance of base b to a window's centre.
    bases = np.arange(contig_bp)
    best = np.full(contig_bp, np.iinfo(np.int64).max)
    for w in windows:
        inside = (bases >= w.start) & (bases < w.end)
        best[inside] = np.minimum(best[inside], np.abs(2 * bases[inside] + 1 - (w.start + w.end)))
    for w in windows:
        mine = np.abs(2 * bases[w.keep_start : w.keep_end] + 1 - (w.start + w.end))
        assert (mine == best[w.keep_start : w.keep_end]).all()
    # T4: context on both sides of every kept base, except where the contig ends first.
    need = (window_bp - stride_bp) // 2
    for w in windows:
        if w.start > 0:
            assert w.keep_start - w.start >= need
        if w.end < contig_bp:
            assert w.end - w.keep_end >= need


@FAST_PROPERTY
@given(geometries(), st.data())
def test_a_region_keeps_the_contig_s_windows_clipped_to_it(geometry, data):
    contig_bp, window_bp, stride_bp = geometry
    start = data.draw(st.integers(0, contig_bp - 1))
    end = data.draw(st.integers(start + 1, contig_bp))
    whole = contig_windows("c", contig_bp, window_bp, stride_bp)
    part = windows_for_region(Region("c", start, end), contig_bp, window_bp, stride_bp)
    # T5: same windows (start, end) as the contig's, kept parts clipped, covering the region once.
    by_start = {(w.start, w.end): w for w in whole}
    kept = np.zeros(end - start, dtype=int)
    for w in part:
        original = by_start[(w.start, w.end)]
        assert (w.keep_start, w.keep_end) == (max(original.keep_start, start), min(original.keep_end, end))
        kept[w.keep_start - start : w.keep_end - start] += 1
    assert (kept == 1).all()


@FAST_PROPERTY
@given(
    st.lists(st.integers(1, 2000), min_size=1, max_size=12),
    st.integers(1, 300),
    st.integers(1, 6),
)
def test_chunks_cover_every_base_once_in_fai_order_cut_at_bins(lengths, bin_bp, bins_per_chunk):
    sizes = [(f"contig{i}", n) for i, n in enumerate(lengths)]
    chunk_bp = bin_bp * bins_per_chunk
    chunks = plan_chunks(sizes, chunk_bp=chunk_bp, bin_bp=bin_bp)
    flat = [r for regions in chunks for r in regions]
    # T6: read in order, the regions are the contigs in .fai order, each cut into abutting pieces.
    expected_start = {name: 0 for name, _ in sizes}
    order = []
    for r in flat:
        assert r.start == expected_start[r.contig] and r.end > r.start
        expected_start[r.contig] = r.end
        assert r.start % bin_bp == 0 and (r.end % bin_bp == 0 or r.end == dict(sizes)[r.contig])
        if not order or order[-1] != r.contig:
            order.append(r.contig)
    assert order == [name for name, _ in sizes]
    assert expected_start == dict(sizes)
    assert all(regions for regions in chunks)
    # T6: as few jobs as the size allows — every chunk but the last is full, none overshoots a bin.
    totals = [sum(r.length for r in regions) for regions in chunks]
    assert all(chunk_bp <= t for t in totals[:-1]) and all(t < chunk_bp + bin_bp for t in totals)


# --------------------------------------------------------------------------- masks


@FAST_PROPERTY
@given(sequences_with_n_runs(), st.integers(1, 9), st.integers(0, 2**31 - 1), st.integers(0, 10**6))
def test_each_non_n_base_is_masked_in_exactly_one_pass_and_n_never(sequence, passes, seed, start):
    ids = encode(sequence)
    pass_of = mask_pass_of_position(ids, passes, seed, "chr1", start)
    scored = ids != N_ID
    assert (pass_of[~scored] == -1).all()  # M1
    assert ((pass_of[scored] >= 0) & (pass_of[scored] < passes)).all()  # M1
    sizes = np.bincount(pass_of[scored], minlength=passes)
    assert sizes.max() - sizes.min() <= 1  # M2
    assert (mask_pass_of_position(ids, passes, seed, "chr1", start) == pass_of).all()  # M2


# --------------------------------------------------------------------------- scoring


def _brute_force_probs(model, sequence: str, settings_: ScoringSettings) -> np.ndarray:
    """What S2 says a base's probabilities are: its keeping window, the pass that masked it,
    and with reverse complement the mean with the mirrored masks on the other strand."""
    ids = encode(sequence)
    complement = np.arange(256, dtype=np.int64)
    for base, comp in zip(ACGT_IDS, ACGT_IDS[::-1]):
        complement[base] = comp
    expected = np.full((len(sequence), 4), np.nan)
    for w in contig_windows("c", len(sequence), settings_.window_bp, settings_.stride_bp):
        window_ids = ids[w.start : w.end]
        pass_of = mask_pass_of_position(window_ids, settings_.passes, settings_.seed, "c", w.start)
        for p in range(settings_.passes):
            masked = pass_of == p
            if not masked.any():
                continue
            with torch.no_grad():
                logits = model(
                    torch.from_numpy(frame(np.where(masked, MASK_ID, window_ids)).astype(np.int64))[None]
                ).logits
                forward = torch.softmax(logits[0, 1:-1][:, list(ACGT_IDS)], dim=-1).numpy()
                if settings_.reverse_complement:
                    rc_ids = np.where(masked, MASK_ID, complement[window_ids])[::-1].copy()
                    rc_logits = model(torch.from_numpy(frame(rc_ids).astype(np.int64))[None]).logits
                    reverse = torch.softmax(rc_logits[0, 1:-1][:, list(ACGT_IDS)], dim=-1).numpy()
                    forward = (forward + reverse[::-1, ::-1]) / 2  # back to forward positions, A↔T, C↔G
            keep = np.zeros(w.end - w.start, dtype=bool)
            keep[w.keep_start - w.start : w.keep_end - w.start] = True
            take = masked & keep
            expected[w.start + np.flatnonzero(take)] = forward[take]
    return expected


@pytest.mark.parametrize("reverse_complement", [False, True], ids=["forward", "reverse-complement"])
def test_probabilities_sum_to_one_and_come_from_the_pass_that_masked_each_base(tiny_model, reverse_complement):
    rng = np.random.default_rng(5)
    bases = rng.choice(list("ACGT"), 170)
    bases[40:55] = "N"
    bases[:3] = "N"
    bases[-2:] = "N"
    sequence = "".join(bases)
    settings_ = ScoringSettings(
        window_bp=64, stride_bp=30, passes=3, reverse_complement=reverse_complement, embedding_layer=None, batch_size=5
    )
    (scores,) = WindowScorer(tiny_model, settings_).score_regions(
        [Region("c", 0, len(sequence))], lambda c, s, e: sequence[s:e], {"c": len(sequence)}
    )
    scored = bases != "N"
    # S1: rows of scored bases sum to 1 (a base scored twice, or strands summed, sums to 2).
    np.testing.assert_allclose(scores.probs[scored].sum(axis=1), 1.0, rtol=1e-5)
    assert np.isnan(scores.probs[~scored]).all() and np.isnan(scores.loss_nats[~scored]).all()
    # S2: the pass that masked it, from the window that keeps it.
    expected = _brute_force_probs(tiny_model, sequence, settings_)
    np.testing.assert_allclose(scores.probs, expected, rtol=1e-4, atol=1e-6, equal_nan=True)
    # S3
    truth = np.array(["ACGT".find(b) for b in bases])
    np.testing.assert_allclose(scores.loss_nats[scored], -np.log(scores.probs[scored, truth[scored]]), rtol=1e-5)
    assert (scores.entropy_nats[scored] >= 0).all() and (scores.entropy_nats[scored] <= math.log(4) + 1e-6).all()


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(sequences_with_n_runs(min_size=1, max_size=120), st.integers(8, 40), st.data())
def test_every_scored_row_sums_to_one_over_random_n_layouts_and_geometries(tiny_model, sequence, window_bp, data):
    stride_bp = data.draw(st.integers(1, window_bp))
    reverse_complement = data.draw(st.booleans())
    settings_ = ScoringSettings(
        window_bp=window_bp,
        stride_bp=stride_bp,
        passes=data.draw(st.integers(1, 4)),
        reverse_complement=reverse_complement,
        embedding_layer=None,
        batch_size=16,
    )
    (scores,) = WindowScorer(tiny_model, settings_).score_regions(
        [Region("c", 0, len(sequence))], lambda c, s, e: sequence[s:e], {"c": len(sequence)}
    )
    scored = np.array([b != "N" for b in sequence])
    assert not np.isnan(scores.probs[scored]).any()  # every non-N base scored
    np.testing.assert_allclose(scores.probs[scored].sum(axis=1), 1.0, rtol=1e-5)  # once, normalised
    assert np.isnan(scores.probs[~scored]).all()


def test_binned_embeddings_average_each_base_from_its_keeping_window_across_window_edges(tiny_model):
    """E1. a bin's embedding is the mean hidden state of its non-N bases, each taken from the
    window that keeps it — also for bins that straddle two windows' kept parts."""
    rng = np.random.default_rng(9)
    bases = rng.choice(list("ACGT"), 150)
    bases[33:41] = "N"
    sequence = "".join(bases)
    settings_ = ScoringSettings(window_bp=60, stride_bp=25, passes=2, embedding_layer=-1, bin_bp=16)
    (scores,) = WindowScorer(tiny_model, settings_).score_regions(
        [Region("c", 0, 150)], lambda c, s, e: sequence[s:e], {"c": 150}
    )
    ids = encode(sequence)
    per_base = np.zeros((150, tiny_model.config.hidden_size))
    windows = contig_windows("c", 150, 60, 25)
    assert any(w.keep_end % 16 for w in windows[:-1])  # some bins straddle two windows
    for w in windows:
        with torch.no_grad():
            hidden = tiny_model(torch.from_numpy(frame(ids[w.start : w.end]).astype(np.int64))[None]).last_hidden_state
        per_base[w.keep_start : w.keep_end] = (
            hidden[0, 1 + w.keep_start - w.start : 1 + w.keep_end - w.start].double().numpy()
        )
    scored = bases != "N"
    for b in range(scores.bin_counts.size):
        in_bin = scored & (np.arange(150) // 16 == b)
        assert scores.bin_counts[b] == in_bin.sum()
        np.testing.assert_allclose(
            scores.bin_sums[b] / in_bin.sum(), per_base[in_bin].mean(axis=0), rtol=1e-4, atol=1e-5
        )


# --------------------------------------------------------------------------- segments


@st.composite
def bin_layouts(draw):
    """Bins of a few contigs with gaps (bins without a scored base are absent) and clusters."""
    contigs, starts, ends = [], [], []
    bin_bp = draw(st.integers(1, 50))
    for c in range(draw(st.integers(1, 3))):
        n_bins = draw(st.integers(1, 25))
        present = draw(st.lists(st.booleans(), min_size=n_bins, max_size=n_bins))
        for b, here in enumerate(present):
            if here:
                contigs.append(f"chr{c}")
                starts.append(b * bin_bp)
                ends.append((b + 1) * bin_bp)
    clusters = draw(st.lists(st.integers(0, 2), min_size=len(starts), max_size=len(starts)))
    return BinIndex(np.array(contigs, dtype=str), np.array(starts, np.int64), np.array(ends, np.int64)), np.array(
        clusters, np.int32
    )


@FAST_PROPERTY
@given(bin_layouts())
def test_segments_are_maximal_same_cluster_runs_that_never_span_a_missing_bin(layout):
    bins, clusters = layout
    rows = segment_rows(bins, clusters, 3)
    covered = 0
    for contig, start, end, name, *_ in rows:
        inside = (bins.contig == contig) & (bins.start >= start) & (bins.end <= end)
        # G1: the bins inside the segment tile it without a gap.
        assert int((bins.end[inside] - bins.start[inside]).sum()) == end - start
        assert set(clusters[inside]) == {int(name.removeprefix("cluster_"))}  # one cluster
        covered += int(inside.sum())
    assert covered == len(bins)  # every bin in exactly one segment
    # G2: maximal — two consecutive segments that touch on one contig differ in cluster.
    for a, b in zip(rows, rows[1:]):
        if a[0] == b[0] and a[2] == b[1]:
            assert a[3] != b[3]


def test_segments_from_a_scored_chunk_skip_n_only_bins(tiny_model, tmp_path):
    rng = np.random.default_rng(2)
    bases = rng.choice(list("ACGT"), 400)
    bases[100:230] = "N"  # bins 100-200 are all N; 200-230 partly
    sequence = "".join(bases)
    settings_ = ScoringSettings(window_bp=80, stride_bp=40, passes=2, embedding_layer=-1, bin_bp=50)
    scores = WindowScorer(tiny_model, settings_).score_regions(
        [Region("c", 0, 250), Region("c", 250, 400)], lambda c, s, e: sequence[s:e], {"c": 400}
    )
    save_chunk(tmp_path / "chunk.npz", scores, {"bin_bp": 50})
    chunk = load_chunk(tmp_path / "chunk.npz")
    bins = BinIndex(chunk.bin_contig, chunk.bin_start, chunk.bin_end)
    assert list(zip(bins.start.tolist(), bins.end.tolist())) == [
        (0, 50),
        (50, 100),
        (200, 250),
        (250, 300),
        (300, 350),
        (350, 400),
    ]
    # One cluster everywhere: the worst case for merging across the gap.
    rows = segment_rows(bins, np.zeros(len(bins), np.int32), 1)
    assert [(r[1], r[2]) for r in rows] == [(0, 100), (200, 400)]
    for _, start, end, *_ in rows:
        assert (bases[start:end] != "N").any()


# --------------------------------------------------------------------------- the UCSC hub


def _stanzas(text: str) -> list[dict[str, str]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        indented = all(line.startswith("    ") for line in lines)
        fields = dict(line.strip().split(" ", 1) for line in lines)
        out.append({**fields, "_indented": str(indented)})
    return out


@pytest.mark.parametrize("email", ["", "lab@example.org"])
def test_the_hub_is_a_valid_ucsc_trackdb_with_stacked_multiwig_containers(tmp_path, email):
    """H1. every bigWig is a track of UCSC ``type bigWig``; the tracks of a catalog group are
    subtracks of one stacked multiWig container; top-level tracks are visible and scaled (auto, or
    fixed with viewLimits); labels fit UCSC's 17 characters."""
    from dnafm_lib.inference.tracks import catalog
    from dnafm_lib.inference.tracks.hub import write_hub

    specs = {
        spec.key: spec
        for spec in (*catalog.PER_BASE_TRACKS, *getattr(catalog, "LOGO_TRACKS", ()), *catalog.EMBEDDING_TRACKS)
    }
    for spec in specs.values():
        (tmp_path / spec.filename).write_bytes(b"")
    hub_txt = write_hub(tmp_path, "toy_genome_with_a_long_name", "GCA_000000001.1", "tiny", email=email)
    hub = dict(line.split(" ", 1) for line in hub_txt.read_text().splitlines())
    assert hub["email"] == (email or "unknown") and len(hub["shortLabel"]) <= 17
    assert hub["shortLabel"].startswith("dnafm toy_genome")
    stanzas = _stanzas((tmp_path / "hub" / "GCA_000000001.1" / "trackDb.txt").read_text())
    by_track = {s["track"]: s for s in stanzas}
    groups = {spec.group for spec in specs.values() if spec.group}
    assert groups  # the catalog stacks some tracks
    for group in groups:
        container = by_track[group]
        assert (container["container"], container["aggregate"]) == ("multiWig", "stacked")
        assert container["type"].split()[0] == "bigWig" and container["_indented"] == "False"
    for spec in specs.values():
        stanza = by_track[spec.key]
        assert (tmp_path / "hub" / "GCA_000000001.1" / stanza["bigDataUrl"]).resolve() == (
            tmp_path / spec.filename
        ).resolve()
        assert stanza["type"].split()[0] == "bigWig" and len(stanza["shortLabel"]) <= 17
        if spec.group:
            assert stanza["parent"] == spec.group and stanza["_indented"] == "True"
            assert "visibility" not in stanza
        else:
            assert "parent" not in stanza and stanza["_indented"] == "False"
            assert stanza["visibility"] == "full" and stanza["autoScale"] in ("on", "off")
            assert stanza["autoScale"] == "on" or "viewLimits" in stanza


@pytest.mark.parametrize(
    "field, value", [("passes", 0), ("batch_size", 0), ("bin_bp", 0), ("window_bp", 0), ("stride_bp", 0)]
)
def test_scoring_settings_out_of_range_are_one_error_naming_the_setting(field, value):
    from dnafm_lib.core.settings import SettingsError

    with pytest.raises(SettingsError, match=rf"^tracks\.{field} must be"):
        ScoringSettings.from_mapping({field: value})


def test_a_bigwig_that_fails_midway_leaves_nothing_behind(tmp_path):
    """B1. a track written out of .fai order stops with an error naming the place, and neither
    the bigWig nor a temporary file is left in its folder; a whole one reads back its values."""
    import pyBigWig

    from dnafm_lib.core.errors import DnafmError
    from dnafm_lib.inference.tracks.writers import BigWigWriter

    sizes = [("chr2", 50), ("chr1", 40)]
    with pytest.raises(DnafmError, match=r"chr2:0 written out of \.fai order"):
        with BigWigWriter(tmp_path / "bad.bw", sizes) as writer:
            writer.add_bases("chr1", 0, np.ones(40))
            writer.add_bases("chr2", 0, np.ones(50))
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    values = np.arange(50, dtype=np.float32)
    values[10:20] = np.nan
    with BigWigWriter(tmp_path / "good.bw", sizes) as writer:
        writer.add_bases("chr2", 0, values)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.bw"]
    with pyBigWig.open(str(tmp_path / "good.bw")) as bw:
        np.testing.assert_array_equal(np.array(bw.values("chr2", 0, 50)), values)


def test_gff_features_for_the_enrichment_are_zero_based_half_open(tmp_path):
    """G3. the enrichment reads GFF3 (1-based, inclusive) as 0-based half-open intervals, and the
    bp a cluster shares with a feature type are counted from those intervals."""
    from dnafm_lib.inference.tracks.embeddings import enrichment_table, read_gff_features

    gff = tmp_path / "a.gff3"
    gff.write_text("##gff-version 3\nchr1\tt\tgene\t11\t30\t.\t+\t.\tID=g1\nchr1\tt\tCDS\t21\t30\t.\t+\t0\tID=c1\n")
    features = read_gff_features(gff)
    assert features[["Chromosome", "Start", "End", "Feature"]].values.tolist() == [
        ["chr1", 10, 30, "gene"],
        ["chr1", 20, 30, "CDS"],
    ]
    segments = [
        ("chr1", 0, 20, "cluster_0", 0, ".", 0, 20, "0,0,0"),
        ("chr1", 20, 40, "cluster_1", 0, ".", 20, 40, "0,0,0"),
    ]
    table = enrichment_table(segments, features).set_index(["cluster", "feature_type"])
    assert table.loc[("cluster_0", "gene"), "observed_bp"] == 10  # bases 10-20
    assert table.loc[("cluster_1", "gene"), "observed_bp"] == 10  # bases 20-30
    assert table.loc[("cluster_0", "CDS"), "observed_bp"] == 0
    # CDS: 10 of 40 scored bp; cluster_1 holds 20 bp, so 5 expected, 10 observed.
    assert table.loc[("cluster_1", "CDS"), "expected_bp"] == 5 and table.loc[("cluster_1", "CDS"), "obs_exp"] == 2
