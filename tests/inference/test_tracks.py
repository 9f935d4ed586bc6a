"""Tracks: tiling, complementary masks, scoring, bigWig/BED output, chunking, browser files."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyBigWig
import pytest
import torch

import dnafm_lib
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.indexed_fasta import open_fasta
from dnafm_lib.inference.tracks import catalog
from dnafm_lib.inference.tracks.browser import write_browser_files
from dnafm_lib.inference.tracks.chunk_arrays import load_chunk
from dnafm_lib.inference.tracks.embeddings import enrichment_table
from dnafm_lib.inference.tracks.gather import gather_tracks
from dnafm_lib.inference.tracks.one_shot import run_genome
from dnafm_lib.inference.tracks.score import score_chunk
from dnafm_lib.inference.tracks.scoring import ScoringSettings, WindowScorer, mask_pass_of_position
from dnafm_lib.inference.tracks.tiling import Region, contig_windows, plan_chunks
from dnafm_lib.model.tokenizer import ACGT_IDS, MASK_ID, N_ID, encode, frame
from tests.support.tracks import FAST, genome_with_gaps, many_short_contigs, save_tiny_model, write_fasta

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def gapped_genome(tmp_path_factory):
    root = tmp_path_factory.mktemp("genome")
    records = genome_with_gaps()
    fasta = write_fasta(root / "genome.fa", records)
    open_fasta(fasta)  # writes the .fai
    return fasta, dict(records)


@pytest.fixture(scope="module")
def gapped_run(tmp_path_factory, gapped_genome, model_dir):
    fasta, _ = gapped_genome
    out = tmp_path_factory.mktemp("run") / "tracks"
    summary = run_genome(fasta, str(model_dir), out, FAST, chunk_bp=1000, n_clusters=4, device="cpu", keep_chunks=True)
    return out, summary


def chunk_values(out: Path, key: str) -> dict[str, np.ndarray]:
    """Per-base arrays of every contig, stitched from the chunk files."""
    values: dict[str, list[np.ndarray]] = {}
    for path in sorted((out / "chunks").glob("chunk*.npz")):
        chunk = load_chunk(path)
        for i, region in enumerate(chunk.regions):
            values.setdefault(region.contig, []).append(chunk.per_base[key][chunk.offsets[i] : chunk.offsets[i + 1]])
    return {contig: np.concatenate(parts) for contig, parts in values.items()}


# --------------------------------------------------------------------------- tiling


@pytest.mark.parametrize("contig_bp", [1, 299, 300, 301, 449, 450, 1000, 3333])
@pytest.mark.parametrize("stride_bp", [150, 97, 300])
def test_each_base_is_kept_by_exactly_one_window_the_one_whose_centre_is_nearest(contig_bp, stride_bp):
    windows = contig_windows("c", contig_bp, window_bp=300, stride_bp=stride_bp)
    kept = np.zeros(contig_bp, dtype=int)
    for w in windows:
        assert w.start <= w.keep_start < w.keep_end <= w.end <= contig_bp
        assert w.end - w.start == min(300, contig_bp)
        kept[w.keep_start : w.keep_end] += 1
    assert (kept == 1).all()
    assert all(a.keep_end == b.keep_start for a, b in zip(windows, windows[1:]))  # kept centres abut
    for w in windows:
        for base in (w.keep_start, w.keep_end - 1):
            mine = abs(2 * base + 1 - (w.start + w.end))
            covering = [abs(2 * base + 1 - (o.start + o.end)) for o in windows if o.start <= base < o.end]
            assert mine == min(covering)


def test_a_contig_shorter_than_a_window_is_one_window_over_the_whole_contig():
    (window,) = contig_windows("short", 120, window_bp=3998, stride_bp=1999)
    assert (window.start, window.end, window.keep_start, window.keep_end) == (0, 120, 0, 120)


def test_chunks_cover_every_base_once_and_cut_long_contigs_at_bin_boundaries():
    sizes = [("chr2", 1050), ("chr1", 30), ("chr3", 20), ("chr4", 3000)]
    chunks = plan_chunks(sizes, chunk_bp=400, bin_bp=100)
    covered = {name: np.zeros(length, int) for name, length in sizes}
    for regions in chunks:
        for r in regions:
            covered[r.contig][r.start : r.end] += 1
            assert r.start % 100 == 0 and (r.end % 100 == 0 or r.end == dict(sizes)[r.contig])
    assert all((c == 1).all() for c in covered.values())
    flat = [(r.contig, r.start) for regions in chunks for r in regions]
    assert [c for c, _ in flat] == sorted([c for c, _ in flat], key=[n for n, _ in sizes].index)  # .fai order
    assert max(sum(r.length for r in regions) for regions in chunks) <= 400 + 100


# --------------------------------------------------------------------------- masks and scoring


def test_complementary_masks_cover_each_base_exactly_once_about_15_percent_per_pass():
    ids = encode("ACGTN" * 200 + "ACGT" * 500)
    pass_of = mask_pass_of_position(ids, passes=7, seed=0, contig="c", start=0)
    scored = ids != N_ID
    assert (pass_of[~scored] == -1).all()
    assert ((pass_of[scored] >= 0) & (pass_of[scored] < 7)).all()  # exactly one pass each
    sizes = np.bincount(pass_of[scored], minlength=7)
    assert sizes.max() - sizes.min() <= 1
    assert 0.13 < sizes.mean() / scored.sum() < 0.16
    again = mask_pass_of_position(ids, passes=7, seed=0, contig="c", start=0)
    other_window = mask_pass_of_position(ids, passes=7, seed=0, contig="c", start=1)
    assert (again == pass_of).all() and not (other_window == pass_of).all()


def test_each_base_takes_the_prediction_of_the_pass_that_masked_it(model_dir):
    model = dnafm_lib.load_model(str(model_dir)).eval()
    seq = "ACGTTGCANNNACGGTACCA" * 6
    settings = ScoringSettings(window_bp=len(seq), stride_bp=len(seq), passes=4, embedding_layer=None)
    (scores,) = WindowScorer(model, settings).score_regions(
        [Region("c", 0, len(seq))], lambda c, s, e: seq[s:e], {"c": len(seq)}
    )
    ids = encode(seq)
    pass_of = mask_pass_of_position(ids, 4, settings.seed, "c", 0)
    expected = np.full((len(seq), 4), np.nan, dtype=np.float32)
    with torch.no_grad():
        for p in range(4):
            masked = pass_of == p
            logits = model(torch.from_numpy(frame(np.where(masked, MASK_ID, ids)))[None]).logits[0, 1:-1]
            probs = torch.softmax(logits[:, list(ACGT_IDS)], dim=-1).numpy()
            expected[masked] = probs[masked]
    np.testing.assert_allclose(scores.probs, expected, rtol=1e-4, atol=1e-6, equal_nan=True)
    truth = np.array(["ACGT".find(b) for b in seq])
    scored = truth >= 0
    np.testing.assert_allclose(scores.loss_nats[scored], -np.log(expected[scored, truth[scored]]), rtol=1e-4)
    entropy = -(expected[scored] * np.log(expected[scored])).sum(axis=1)
    np.testing.assert_allclose(scores.entropy_nats[scored], entropy, rtol=1e-4)
    assert np.isnan(scores.loss_nats[~scored]).all()


def test_reverse_complement_averaging_is_strand_symmetric(model_dir):
    model = dnafm_lib.load_model(str(model_dir)).eval()
    rng = np.random.default_rng(3)
    seq = "".join(rng.choice(list("ACGT"), 120))
    rc = seq[::-1].translate(str.maketrans("ACGT", "TGCA"))
    # One pass masks every base, so both strands see the same masks.
    settings = ScoringSettings(window_bp=120, stride_bp=120, passes=1, reverse_complement=True, embedding_layer=None)
    scorer = WindowScorer(model, settings)
    fwd = scorer.score_regions([Region("f", 0, 120)], lambda c, s, e: seq[s:e], {"f": 120})[0]
    rev = scorer.score_regions([Region("r", 0, 120)], lambda c, s, e: rc[s:e], {"r": 120})[0]
    np.testing.assert_allclose(fwd.probs, rev.probs[::-1, ::-1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fwd.loss_nats, rev.loss_nats[::-1], rtol=1e-4, atol=1e-6)
    plain = WindowScorer(model, dataclasses.replace(settings, reverse_complement=False))
    single = plain.score_regions([Region("f", 0, 120)], lambda c, s, e: seq[s:e], {"f": 120})[0]
    assert not np.allclose(single.probs, fwd.probs)  # averaging changed something


# --------------------------------------------------------------------------- bigWig and BED


def test_bigwig_values_equal_the_per_base_arrays_the_model_produced(gapped_run, gapped_genome):
    out, _ = gapped_run
    _, records = gapped_genome
    for spec in catalog.PER_BASE_TRACKS:
        arrays = chunk_values(out, spec.key)
        with pyBigWig.open(str(out / spec.filename)) as bw:
            for contig, seq in records.items():
                values = bw.values(contig, 0, len(seq), numpy=True)
                np.testing.assert_array_equal(values, arrays[contig].astype(np.float32), err_msg=f"{spec.key} {contig}")


def test_n_positions_are_absent_and_every_other_base_is_present_once(gapped_run, gapped_genome):
    out, summary = gapped_run
    _, records = gapped_genome
    with pyBigWig.open(str(out / "mlm_loss.bw")) as bw:
        assert bw.chroms() == {name: len(seq) for name, seq in records.items()}
        for contig, seq in records.items():
            count = np.zeros(len(seq), int)
            for start, end, _ in bw.intervals(contig) or ():
                count[start:end] += 1
            is_n = np.array([b in "Nn" for b in seq])
            assert (count[is_n] == 0).all(), contig
            assert (count[~is_n] == 1).all(), contig
    assert summary["scored_bp"] == sum(sum(b not in "Nn" for b in s) for s in records.values())


def test_chunked_and_unchunked_runs_give_identical_tracks(tmp_path, gapped_run, gapped_genome, model_dir):
    chunked, _ = gapped_run
    fasta, records = gapped_genome
    whole = tmp_path / "whole"
    run_genome(fasta, str(model_dir), whole, FAST, chunk_bp=10**7, n_clusters=4, device="cpu", keep_chunks=True)
    assert len(list((whole / "chunks").glob("*.npz"))) == 1 < len(list((chunked / "chunks").glob("*.npz")))
    for spec in catalog.PER_BASE_TRACKS:
        with pyBigWig.open(str(chunked / spec.filename)) as a, pyBigWig.open(str(whole / spec.filename)) as b:
            for contig, seq in records.items():
                np.testing.assert_allclose(
                    a.values(contig, 0, len(seq), numpy=True),
                    b.values(contig, 0, len(seq), numpy=True),
                    rtol=1e-5,
                    atol=1e-6,
                    equal_nan=True,
                )
    np.testing.assert_allclose(
        np.load(chunked / catalog.EMBEDDINGS_NPY).astype(np.float32),
        np.load(whole / catalog.EMBEDDINGS_NPY).astype(np.float32),
        rtol=1e-2,
        atol=1e-3,
    )
    assert (chunked / catalog.EMBEDDING_BINS_BED).read_text() == (whole / catalog.EMBEDDING_BINS_BED).read_text()


def test_a_genome_of_many_short_contigs_with_n_runs_is_scored_base_for_base(tmp_path, model_dir):
    records = many_short_contigs()
    fasta = write_fasta(tmp_path / "scaffolds.fa", records)
    out = tmp_path / "out"
    run_genome(fasta, str(model_dir), out, FAST, chunk_bp=1500, n_clusters=3, device="cpu")
    with pyBigWig.open(str(out / "mlm_loss.bw")) as bw:
        for name, seq in records:
            values = bw.values(name, 0, len(seq), numpy=True)
            is_n = np.array([b == "N" for b in seq])
            assert np.isnan(values[is_n]).all() and np.isfinite(values[~is_n]).all(), name


def test_segments_are_valid_sorted_bed9_with_item_rgb(gapped_run):
    import pybedtools

    out, _ = gapped_run
    bed = pybedtools.BedTool(str(out / catalog.SEGMENTS_BED))
    rows = [interval.fields for interval in bed]
    assert rows and all(len(fields) == 9 for fields in rows)
    for fields in rows:
        start, end, thick_start, thick_end = map(int, (fields[1], fields[2], fields[6], fields[7]))
        assert start < end and (thick_start, thick_end) == (start, end)
        rgb = [int(x) for x in fields[8].split(",")]
        assert len(rgb) == 3 and all(0 <= x <= 255 for x in rgb)
        assert fields[3].startswith("cluster_")
    assert [i.fields for i in bed.sort()] == rows  # bedtools sort changes nothing
    # Adjacent segments of one contig never share a cluster (runs were merged).
    for a, b in zip(rows, rows[1:]):
        if a[0] == b[0] and a[2] == b[1]:
            assert a[3] != b[3]


def test_enrichment_counts_observed_over_expected_bp():
    import pandas as pd

    segments = [("c", 0, 100, "cluster_0"), ("c", 100, 400, "cluster_1")]
    features = pd.DataFrame(
        [("c", 0, 50, "exon"), ("c", 20, 80, "exon"), ("c", 300, 400, "exon"), ("c", 0, 400, "region")],
        columns=["Chromosome", "Start", "End", "Feature"],
    )
    table = enrichment_table(segments, features).set_index(["cluster", "feature_type"])
    # exon bp: 80 (merged 0-80) in cluster_0, 100 in cluster_1; 180 of 400 bp overall.
    assert table.loc[("cluster_0", "exon"), "observed_bp"] == 80
    assert table.loc[("cluster_0", "exon"), "expected_bp"] == pytest.approx(100 * 180 / 400)
    assert table.loc[("cluster_1", "exon"), "obs_exp"] == pytest.approx(100 / (300 * 180 / 400))
    assert table.loc[("cluster_1", "region"), "obs_exp"] == pytest.approx(1.0)


def test_gather_refuses_chunks_that_leave_a_contig_uncovered(gapped_run, gapped_genome, tmp_path):
    out, _ = gapped_run
    fasta, _ = gapped_genome
    chunks = sorted((out / "chunks").glob("chunk*.npz"))
    with pytest.raises(DnafmError, match="does not follow|do not cover"):
        gather_tracks(chunks[:1] + chunks[2:], str(fasta) + ".fai", tmp_path / "gathered", fasta_path=fasta)
    assert not (tmp_path / "gathered" / "mlm_loss.bw").exists()


def test_scoring_a_region_outside_the_fasta_is_a_clear_error(gapped_genome, model_dir, tmp_path):
    fasta, _ = gapped_genome
    model = dnafm_lib.load_model(str(model_dir))
    with pytest.raises(DnafmError, match=r"chrB:0-999 is not in the FASTA"):
        score_chunk(fasta, [Region("chrB", 0, 999)], model, FAST, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_finished_chunks_are_not_rescored_after_a_failure(tmp_path, gapped_genome, model_dir):
    fasta, _ = gapped_genome
    out = tmp_path / "out"
    run_genome(fasta, str(model_dir), out, FAST, chunk_bp=1000, n_clusters=2, device="cpu", keep_chunks=True)
    chunks = sorted((out / "chunks").glob("chunk*.npz"))
    before = {p: p.stat().st_mtime_ns for p in chunks}
    chunks[1].unlink()  # as if its job had died
    run_genome(fasta, str(model_dir), out, FAST, chunk_bp=1000, n_clusters=2, device="cpu", keep_chunks=True)
    assert chunks[1].exists()
    assert all(p.stat().st_mtime_ns == t for p, t in before.items() if p != chunks[1])


def test_chunk_files_are_removed_after_a_successful_gather_unless_kept(tmp_path, gapped_genome, gapped_run, model_dir):
    fasta, _ = gapped_genome
    out = tmp_path / "out"
    run_genome(fasta, str(model_dir), out, FAST, chunk_bp=1000, n_clusters=4, device="cpu")
    assert not (out / "chunks").exists()
    kept, _ = gapped_run
    # Removing them changes no output byte.
    for spec in catalog.PER_BASE_TRACKS:
        assert (out / spec.filename).read_bytes() == (kept / spec.filename).read_bytes(), spec.filename
    assert (out / catalog.EMBEDDINGS_NPY).read_bytes() == (kept / catalog.EMBEDDINGS_NPY).read_bytes()


def test_chunk_files_hold_embedding_bins_as_float16_and_per_base_values_as_float32(gapped_run):
    out, _ = gapped_run
    chunk = load_chunk(sorted((out / "chunks").glob("chunk*.npz"))[0])
    assert chunk.bin_mean.dtype == np.float16 and chunk.bin_mean.size
    assert all(values.dtype == np.float32 for values in chunk.per_base.values())


# --------------------------------------------------------------------------- browser files


def test_igv_session_and_hub_point_at_existing_files_by_relative_paths(gapped_run, gapped_genome, tmp_path):
    out, _ = gapped_run
    fasta, _ = gapped_genome
    igv_js = tmp_path / "igv.min.js"
    igv_js.write_text("/* stand-in for the igv.js dist file */")
    write_browser_files(out, fasta, "gapped", "tiny", igv_js, assembly="GCF_000000001.1")
    session = ET.parse(out / "igv_session.xml").getroot()
    assert not Path(session.get("genome")).is_absolute()
    assert (out / session.get("genome")).resolve() == fasta.resolve()
    paths = [r.get("path") for r in session.iter("Resource")]
    assert all(not Path(p).is_absolute() and (out / p).exists() for p in paths)
    assert set(paths) >= {s.filename for s in catalog.PER_BASE_TRACKS + catalog.EMBEDDING_TRACKS}
    assert set(paths) >= {s.filename for s in catalog.LOGO_TRACKS}

    hub = out / "hub"
    assert "genomesFile genomes.txt" in (hub / "hub.txt").read_text()
    assert "trackDb GCF_000000001.1/trackDb.txt" in (hub / "genomes.txt").read_text()
    stanzas = [
        dict(line.strip().split(" ", 1) for line in block.strip().splitlines())
        for block in (hub / "GCF_000000001.1" / "trackDb.txt").read_text().split("\n\n")
    ]
    container = [s for s in stanzas if s.get("container") == "multiWig"]
    assert len(container) == 1
    children = [s for s in stanzas if s.get("parent") == container[0]["track"]]
    assert [c["track"] for c in children] == ["logo_A", "logo_C", "logo_G", "logo_T"]
    for stanza in stanzas:
        if "bigDataUrl" in stanza:
            assert (hub / "GCF_000000001.1" / stanza["bigDataUrl"]).resolve().exists()
            assert len(stanza["shortLabel"]) <= 17
    page = (out / "igv.html").read_text()
    assert '<script src="igv.min.js">' in page and (out / "igv.min.js").exists()
    assert "http://" not in page and "https://" not in page


def test_one_shot_cli_without_inputs_names_what_is_missing(capsys):
    from dnafm_lib.cli import main

    assert main(["tracks", "--out-dir", "x"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--fasta" in err and "--model" in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--passes", "0"], "--passes must be at least 1, got 0"),
        (["--window-bp", "5000"], "--window-bp must be between 1 and 3998, got 5000"),
        (["--window-bp", "100", "--stride-bp", "101"], "--stride-bp must be between 1 and window_bp (100), got 101"),
        (["--layer", "top"], "--layer must be an integer or null, got 'top'"),
    ],
)
def test_one_shot_cli_names_a_bad_scoring_flag_and_writes_nothing(tmp_path, capsys, flags, message):
    from dnafm_lib.cli import main

    fasta = tmp_path / "g.fa"
    fasta.write_text(">c\nACGTACGTAC\n")
    out = tmp_path / "out"
    assert main(["tracks", "--fasta", str(fasta), "--model", "tiny", "--out-dir", str(out), *flags]) == 1
    assert capsys.readouterr().err == f"dnafm tracks: error: {message}\n"
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["g.fa"]


def test_summary_records_settings_and_scored_bases(gapped_run):
    out, summary = gapped_run
    on_disk = json.loads((out / catalog.SUMMARY_JSON).read_text())
    assert on_disk["settings"]["passes"] == FAST.passes and on_disk["scored_bp"] == summary["scored_bp"]


def test_binned_embeddings_are_the_mean_hidden_state_of_the_non_n_bases_of_each_bin(model_dir):
    model = dnafm_lib.load_model(str(model_dir)).eval()
    seq = "ACGTTGCANNNACGGTACCAGGTTACAN" * 5  # 140 bp, N runs inside bins
    settings = ScoringSettings(window_bp=len(seq), stride_bp=len(seq), passes=2, embedding_layer=-1, bin_bp=30)
    (scores,) = WindowScorer(model, settings).score_regions(
        [Region("c", 0, len(seq))], lambda c, s, e: seq[s:e], {"c": len(seq)}
    )
    ids = encode(seq)
    with torch.no_grad():
        hidden = model(torch.from_numpy(frame(ids))[None]).last_hidden_state[0, 1:-1].double().numpy()
    bins = np.arange(len(seq)) // 30
    keep = ids != N_ID
    for b in range(scores.bin_counts.size):
        in_bin = (bins == b) & keep
        assert scores.bin_counts[b] == in_bin.sum()
        np.testing.assert_allclose(scores.bin_sums[b] / in_bin.sum(), hidden[in_bin].mean(axis=0), rtol=1e-4, atol=1e-5)


def test_windows_of_a_region_are_those_of_the_whole_contig_that_meet_it():
    """windows_for_region builds only the windows near a chunk; they must be exactly the contig's."""
    import random

    from dnafm_lib.inference.tracks.tiling import windows_for_region

    rng = random.Random(3)
    for _ in range(400):
        window_bp = rng.choice([1, 7, 254, 300, 3998])
        stride_bp = rng.randint(1, window_bp)
        contig_bp = rng.choice([1, window_bp, window_bp + 1, rng.randint(1, 20_000)])
        start = rng.randrange(contig_bp)
        region = Region("c", start, rng.randint(start + 1, contig_bp))
        expected = []
        for window in contig_windows("c", contig_bp, window_bp, stride_bp):
            keep_start, keep_end = max(window.keep_start, region.start), min(window.keep_end, region.end)
            if keep_end > keep_start:
                expected.append((window.start, window.end, keep_start, keep_end))
        got = [
            (w.start, w.end, w.keep_start, w.keep_end)
            for w in windows_for_region(region, contig_bp, window_bp, stride_bp)
        ]
        assert got == expected, (contig_bp, window_bp, stride_bp, region)


def test_windows_of_a_chunk_of_a_chromosome_scale_contig_are_built_without_the_whole_contig():
    from dnafm_lib.inference.tracks.tiling import windows_for_region

    windows = windows_for_region(Region("chr1", 240_000_000, 240_020_000), 250_000_000, 254, 200)
    assert 100 <= len(windows) <= 102
    assert windows[0].keep_start == 240_000_000 and windows[-1].keep_end == 240_020_000


def test_one_shot_cli_on_a_plain_gzip_fasta_keeps_its_indexed_copy_inside_the_out_dir(tmp_path, capsys):
    # a plain gzip cannot be indexed as it is: the one-shot copies it into OUT_DIR/genome, and its
    # own gather must not take that copy (or its .fai) for a user's input inside the output folder
    import gzip

    from dnafm_lib.cli import main

    records = genome_with_gaps()
    fasta = tmp_path / "genome.fa.gz"
    fasta.write_bytes(gzip.compress("".join(f">{name}\n{seq}\n" for name, seq in records).encode()))
    out = tmp_path / "tracks"
    args = ["tracks", "--fasta", str(fasta), "--model", "tiny", "--out-dir", str(out), "--device", "cpu"]
    args += ["--window-bp", "126", "--stride-bp", "63", "--passes", "2"]
    assert main(args) == 0, capsys.readouterr().err
    assert (out / "mlm_loss.bw").exists() and (out / catalog.SNV_TABLE).exists()
    first = (out / catalog.SNV_TABLE).read_bytes()
    assert main(args) == 0, capsys.readouterr().err  # and a rerun over its own output
    assert (out / catalog.SNV_TABLE).read_bytes() == first


def test_each_step_takes_its_own_options_beside_the_one_shot_ones(tmp_path, capsys):
    # the one-shot's --out-dir and --outputs must not swallow a step's --out
    from dnafm_lib.cli import main

    fasta = write_fasta(tmp_path / "g.fa", genome_with_gaps())
    open_fasta(fasta)
    plan = tmp_path / "chunks.tsv"
    assert main(["tracks", "plan", "--fai", f"{fasta}.fai", "--chunk-bp", "1000", "--out", str(plan)]) == 0
    assert plan.read_text().count("chunk") >= 2, capsys.readouterr().err
