"""What a person sees in the browser files: one track per base, logo tracks in bits, fixed
scales, the segments' legend, and numbers in the enrichment heatmap."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pyBigWig
import pytest

from dnafm_lib.data.indexed_fasta import open_fasta
from dnafm_lib.inference.tracks import catalog
from dnafm_lib.inference.tracks.browser import write_browser_files
from dnafm_lib.inference.tracks.embeddings import enrichment_figure, enrichment_table
from dnafm_lib.inference.tracks.igv import BrowserInputs, igv_js_options
from dnafm_lib.inference.tracks.legend import read_segment_legend
from dnafm_lib.inference.tracks.logo import logo_heights_bits
from dnafm_lib.inference.tracks.one_shot import run_genome
from tests.support.tracks import FAST, genome_with_gaps, save_tiny_model, write_fasta

BASE_KEYS = [f"prob_{b}" for b in catalog.BASES]
LOGO_KEYS = [f"logo_{b}" for b in catalog.BASES]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


@pytest.fixture(scope="module")
def annotated_run(tmp_path_factory):
    """Tracks of a small genome with a GFF3, and its browser files."""
    root = tmp_path_factory.mktemp("readable")
    records = genome_with_gaps()
    fasta = write_fasta(root / "genome.fa", records)
    open_fasta(fasta)
    gff = root / "genes.gff3"
    gff.write_text(
        "##gff-version 3\n"
        "chrZ\ttest\tgene\t101\t1400\t.\t+\t.\tID=g1\n"
        "chrZ\ttest\tCDS\t101\t400\t.\t+\t0\tID=c1;Parent=g1\n"
        "chrA\ttest\ttRNA\t301\t380\t.\t-\t.\tID=t1\n"
    )
    model = save_tiny_model(root / "model")
    out = root / "tracks"
    run_genome(fasta, str(model), out, FAST, chunk_bp=1000, n_clusters=4, annotation=gff, device="cpu")
    igv_js = root / "igv.min.js"
    igv_js.write_text("/* stand-in for the igv.js dist file */")
    write_browser_files(out, fasta, "gapped", "tiny", igv_js, annotation=gff, assembly="GCF_000000001.1")
    return out, fasta, gff, dict(records)


# --------------------------------------------------------------------------- logo values


def test_logo_heights_are_probability_times_information_and_sum_to_at_most_two_bits():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(4, 0.3), size=1000)
    probs[0] = 0.25  # a guess: no information, no letters
    probs[1] = [0, 0, 1, 0]  # certain: one letter 2 bits tall
    probs[2] = np.nan  # an N base: no value
    heights = logo_heights_bits(probs)
    entropy_bits = -np.nansum(np.where(probs > 0, probs * np.log2(np.where(probs > 0, probs, 1)), 0), axis=1)
    information = 2 - entropy_bits
    np.testing.assert_allclose(heights[0], 0, atol=1e-6)
    np.testing.assert_allclose(heights[1], [0, 0, 2, 0], atol=1e-6)
    assert np.isnan(heights[2]).all()
    rows = np.arange(probs.shape[0]) != 2
    np.testing.assert_allclose(heights[rows].sum(axis=1), information[rows], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(heights[rows], probs[rows] * information[rows, None], rtol=1e-5, atol=1e-6)
    assert (heights[rows] >= 0).all() and (heights[rows].sum(axis=1) <= 2 + 1e-6).all()


def test_logo_bigwigs_sum_to_the_information_content_of_the_entropy_track(annotated_run):
    out, _, _, records = annotated_run
    for contig, seq in records.items():

        def values(key, contig=contig, length=len(seq)):
            with pyBigWig.open(str(out / f"{key}.bw")) as bw:
                return bw.values(contig, 0, length, numpy=True).astype(np.float64)

        entropy_nats = values("entropy")
        information = 2 - entropy_nats / math.log(2)
        logo = np.stack([values(k) for k in LOGO_KEYS], axis=1)
        probs = np.stack([values(k) for k in BASE_KEYS], axis=1)
        scored = ~np.isnan(entropy_nats)
        assert np.isnan(logo[~scored]).all(), contig  # N bases: no letters either
        np.testing.assert_allclose(logo[scored].sum(axis=1), information[scored], atol=1e-5, err_msg=contig)
        np.testing.assert_allclose(logo[scored], probs[scored] * information[scored, None], atol=1e-5, err_msg=contig)
        assert (logo[scored].sum(axis=1) <= 2 + 1e-5).all()


# --------------------------------------------------------------------------- IGV session, page, hub


def test_igv_session_gives_each_base_and_each_logo_letter_its_own_track_on_a_fixed_scale(annotated_run):
    out, *_ = annotated_run
    session = ET.parse(out / "igv_session.xml").getroot()
    assert not [t for t in session.iter("Track") if t.get("clazz") == "org.broad.igv.track.MergedTracks"]
    data = {t.get("id"): t for t in session.find("Panel[@name='DataPanel']").iter("Track")}
    expected = {"mlm_loss.bw": 2.77, "entropy.bw": 1.39, **{f"{k}.bw": 1.0 for k in BASE_KEYS}}
    for track_id, maximum in expected.items():
        track = data[track_id]
        assert track.get("autoScale") == "false", track_id
        data_range = track.find("DataRange")
        assert (float(data_range.get("minimum")), float(data_range.get("maximum"))) == (0.0, maximum), track_id
    assert [data[f"{k}.bw"].get("color") for k in BASE_KEYS] == [data[f"{k}.bw"].get("color") for k in LOGO_KEYS]
    assert len({data[f"{k}.bw"].get("color") for k in BASE_KEYS}) == 4  # one colour per base
    # The four letters share one autoscaled axis (IGV's group autoscale).
    assert {(data[f"{k}.bw"].get("autoScale"), data[f"{k}.bw"].get("autoscaleGroup")) for k in LOGO_KEYS} == {
        ("true", "1")
    }
    assert session.get("nextAutoscaleGroup") == "2"
    assert all(data[f"embedding_pc{i}.bw"].get("autoScale") == "true" for i in (1, 2, 3))
    names = [t.get("name") for t in data.values()]
    assert len(set(names)) == len(names) and all(len(name) <= 26 for name in names)  # IGV's name panel
    assert "nats" in data["mlm_loss.bw"].get("name") and "nats" in data["entropy.bw"].get("name")
    assert all("bits" in data[f"{k}.bw"].get("name") for k in LOGO_KEYS)
    segments = session.find(f".//Track[@id='{catalog.SEGMENTS_BED}']")
    assert segments.get("displayMode") == "EXPANDED"  # labels drawn under the segments


def test_igv_html_options_list_separate_fixed_scale_tracks(annotated_run):
    out, fasta, gff, _ = annotated_run
    options = igv_js_options(BrowserInputs(out, "gapped", "tiny", fasta, annotation=gff))
    tracks = {t.get("url"): t for t in options["tracks"]}
    assert all(t["type"] != "merged" for t in options["tracks"])
    for spec in catalog.PER_BASE_TRACKS:
        track = tracks[spec.filename]
        assert track["autoscale"] is False and (track["min"], track["max"]) == spec.view_range
        assert track["color"] == spec.hex_color
    for spec, base in zip(catalog.LOGO_TRACKS, catalog.PER_BASE_TRACKS[2:]):
        track = tracks[spec.filename]
        assert track["autoscale"] is True and track["autoscaleGroup"] == catalog.LOGO_GROUP
        assert track["color"] == base.hex_color  # the letter's colour is its probability's
    assert tracks["segments.bed"]["displayMode"] == "EXPANDED" and tracks["segments.bed"]["height"] >= 50


def test_hub_draws_the_logo_letters_from_a_stacked_multiwig_and_each_probability_alone(annotated_run):
    out, *_ = annotated_run
    hub = out / "hub" / "GCF_000000001.1"
    stanzas = [
        dict(line.strip().split(" ", 1) for line in block.strip().splitlines())
        for block in (hub / "trackDb.txt").read_text().split("\n\n")
    ]
    by_track = {s["track"]: s for s in stanzas}
    containers = [s for s in stanzas if s.get("container") == "multiWig"]
    assert len(containers) == 1
    logo = containers[0]
    assert logo["logo"] == "on" and logo["aggregate"] == "stacked"
    assert logo["type"] == "bigWig 0 2"
    assert [s["track"] for s in stanzas if s.get("parent") == logo["track"]] == LOGO_KEYS
    assert all(by_track[k]["type"] == "bigWig 0 2" for k in LOGO_KEYS)
    for key in BASE_KEYS:
        assert "parent" not in by_track[key] and by_track[key]["viewLimits"] == "0:1"
    assert by_track["mlm_loss"]["viewLimits"] == "0:2.77" and by_track["mlm_loss"]["autoScale"] == "off"
    assert by_track["entropy"]["viewLimits"] == "0:1.39"
    for stanza in stanzas:
        assert len(stanza["shortLabel"]) <= 17 and stanza["longLabel"].isascii()
        if "bigDataUrl" in stanza:
            assert (hub / stanza["bigDataUrl"]).resolve().exists()


# --------------------------------------------------------------------------- legend and heatmap


def test_the_page_has_a_legend_of_every_cluster_with_its_colour_and_top_feature(annotated_run):
    out, *_ = annotated_run
    page = (out / "igv.html").read_text()
    assert '<section id="legend">' in page
    bed = pd.read_csv(out / catalog.SEGMENTS_BED, sep="\t", header=None)
    table = pd.read_csv(out / catalog.ENRICHMENT_TSV, sep="\t")
    enriched = table[(table.obs_exp > 1) & (table.observed_bp > 0)]
    top = enriched.loc[enriched.groupby("cluster").obs_exp.idxmax()].set_index("cluster")
    assert not top.empty  # the GFF makes at least one cluster enriched in something
    for cluster, rgb in bed.groupby(3)[8].first().items():
        color = "#{:02x}{:02x}{:02x}".format(*map(int, rgb.split(",")))
        row = next(line for line in page.splitlines() if f"<td>{cluster}</td>" in line)
        assert f"background:{color}" in row
        if cluster in top.index:
            assert f"{top.loc[cluster, 'feature_type']} ({top.loc[cluster, 'obs_exp']:.2f}×)" in row
        else:
            assert "none above 1×" in row


def test_legend_shares_add_up_and_clusters_sort_by_number(tmp_path):
    bed = tmp_path / "segments.bed"
    bed.write_text(
        "".join(
            f"c\t{s}\t{e}\tcluster_{k}\t0\t.\t{s}\t{e}\t{k},0,0\n"
            for s, e, k in [(0, 100, 10), (100, 400, 2), (400, 500, 10), (500, 1000, 0)]
        )
    )
    legend = read_segment_legend(bed)
    assert [e.cluster for e in legend] == ["cluster_0", "cluster_2", "cluster_10"]
    assert [e.bp for e in legend] == [500, 300, 200] and sum(e.share for e in legend) == pytest.approx(1)
    assert legend[2].rgb == (10, 0, 0) and all(e.top_feature is None for e in legend)


def test_enrichment_heatmap_prints_observed_over_expected_in_every_cell():
    segments = [("c", 0, 100, "cluster_0"), ("c", 100, 400, "cluster_1")]
    features = pd.DataFrame(
        [("c", 0, 80, "exon"), ("c", 300, 400, "exon"), ("c", 0, 400, "region")],
        columns=["Chromosome", "Start", "End", "Feature"],
    )
    table = enrichment_table(segments, features)
    fig = enrichment_figure(table)
    cells = sorted(t.get_text() for t in fig.axes[0].texts)
    expected = sorted(f"{ratio:.2f}" for ratio in table.obs_exp)
    assert cells == expected and "1.78" in cells  # cluster_0 × exon: 80 / (100 × 180 / 400)
