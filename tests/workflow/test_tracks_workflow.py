"""Snakemake runs the tracks stage for real: plan checkpoint, one job per chunk, gather, browser files."""

from __future__ import annotations

import numpy as np
import pyBigWig
import pytest
import yaml

from tests.support.tracks import genome_with_gaps, save_tiny_model, write_fasta
from tests.support.workflow import snakemake


@pytest.mark.slow
def test_workflow_scores_a_genome_chunk_by_chunk_and_keeps_finished_chunks(tmp_path):
    records = genome_with_gaps()
    fasta = write_fasta(tmp_path / "gapped.fa", records)
    sheet = tmp_path / "genomes.tsv"
    sheet.write_text(
        f"genome\tsource\taccession\tlocation\tsplit\tannotation\ngapped\tfile\tGCA_000000001.1\t{fasta}\ttrain\t\n"
    )
    model = save_tiny_model(tmp_path / "tiny")
    stand_in_js = tmp_path / "igv.min.js"
    stand_in_js.write_text("/* igv.js stand-in: the browser test loads the real one */")
    results = tmp_path / "results"
    config = {
        "cohort": "tracks_test",
        "results_dir": str(results),
        "logs_dir": str(tmp_path / "logs"),
        "genome_sheet": str(sheet),
        "splits": {"nt_list": None, "validation_genomes": 0, "test_genomes": 0, "replacements": {}},
        "tracks": {
            "genomes": ["gapped"],
            "models": {"tiny": str(model)},
            "chunk_bp": 1000,
            "window_bp": 300,
            "stride_bp": 150,
            "passes": 3,
            "batch_size": 8,
            "threads": 1,
            "n_clusters": 3,
            "igv_js": str(stand_in_js),
            "device": "cpu",
            "keep_chunks": True,
        },
    }
    config_path = tmp_path / "cohort.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = results / "tracks" / "gapped" / "tiny"
    targets = [out / "tracks.json", out / "igv_session.xml", out / "igv.html", out / "hub"]

    run = snakemake(config_path, *targets)
    assert run.returncode == 0, run.stderr[-4000:]
    chunks = sorted((out / "chunks").glob("chunk*.npz"))
    plan_rows = (results / "tracks" / "gapped" / "chunks.tsv").read_text().splitlines()[1:]
    assert len(chunks) == len({row.split("\t")[0] for row in plan_rows}) > 1
    with pyBigWig.open(str(out / "mlm_loss.bw")) as bw:
        assert bw.chroms() == {name: len(seq) for name, seq in records}
        for name, seq in records:
            values = bw.values(name, 0, len(seq), numpy=True)
            is_n = np.array([b in "Nn" for b in seq])
            assert np.isnan(values[is_n]).all() and np.isfinite(values[~is_n]).all(), name
    assert (out / "hub" / "GCA_000000001.1" / "trackDb.txt").exists()

    # A run that stopped after some chunks (one chunk and the gathered tracks missing) scores
    # only the missing chunk again.
    before = {p: p.stat().st_mtime_ns for p in chunks}
    chunks[1].unlink()
    (out / "tracks.json").unlink()
    rerun = snakemake(config_path, *targets)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert chunks[1].exists()
    assert all(p.stat().st_mtime_ns == t for p, t in before.items() if p != chunks[1])
