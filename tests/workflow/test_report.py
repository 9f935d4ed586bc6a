"""`snakemake --report` of a finished run: what each result is, the fine-tuning result, and
where each genome's igv.html is."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.support.tracks import random_bases, save_tiny_model, write_fasta
from tests.support.workflow import snakemake


def annotated_genome(tmp_path: Path) -> tuple[Path, Path]:
    """24 kb of random sequence whose every other kb is a CDS."""
    rng = np.random.default_rng(5)
    fasta = write_fasta(tmp_path / "coding.fa", [("chrC", "".join(random_bases(rng, 24_000)))])
    gff = tmp_path / "coding.gff3"
    gff.write_text(
        "##gff-version 3\n"
        + "".join(
            f"chrC\ttest\tCDS\t{start + 1}\t{start + 1000}\t.\t+\t0\tID=cds{start}\n"
            for start in range(0, 24_000, 2000)
        )
    )
    return fasta, gff


def caption_text(html: str) -> str:
    """The report's captions as a reader sees them: tags dropped, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", "", html.replace("\\n", " ").replace('\\"', '"')).split())


def embedded_texts(html: str) -> str:
    """The report embeds each result file base64-encoded; decode the ones that are text."""
    texts = []
    for blob in re.findall(r"base64,([A-Za-z0-9+/=]{16,})", html):
        try:
            texts.append(base64.b64decode(blob).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
    return "\n".join(texts)


@pytest.mark.slow
def test_report_holds_the_fine_tuning_result_and_the_address_of_each_genomes_igv_html(tmp_path):
    fasta, gff = annotated_genome(tmp_path)
    sheet = tmp_path / "genomes.tsv"
    sheet.write_text(
        "genome\tsource\taccession\tlocation\tsplit\tannotation\n"
        f"coding\tfile\tGCA_000000002.1\t{fasta}\ttrain\t{gff}\n"
    )
    model = save_tiny_model(tmp_path / "tiny")
    stand_in_js = tmp_path / "igv.min.js"
    stand_in_js.write_text("/* igv.js stand-in: the browser test loads the real one */")
    results = tmp_path / "results"
    config = {
        "cohort": "report_test",
        "results_dir": str(results),
        "logs_dir": str(tmp_path / "logs"),
        "genome_sheet": str(sheet),
        "splits": {"nt_list": None, "validation_genomes": 0, "test_genomes": 0, "replacements": {}},
        "tracks": {
            "genomes": ["coding"],
            "models": {"tiny": str(model)},
            "chunk_bp": 12_000,
            "window_bp": 300,
            "stride_bp": 150,
            "passes": 2,
            "batch_size": 16,
            "threads": 1,
            "n_clusters": 3,
            "igv_js": str(stand_in_js),
            "device": "cpu",
        },
        "finetune": {
            "genomes": ["coding"],
            "model": str(model),
            "window_bp": 60,
            "block_bp": 1000,
            "val_fraction": 0.2,
            "test_fraction": 0.2,
            "pooling": "mean",
            "strategy": "full",
            "max_epochs": 1,
            "patience": 1,
            "lr": 0.0005,
            "batch_size": 32,
            "seed": 0,
            "device": "cpu",
            "threads": 1,
            "gpus_per_job": 0,
            "mem_mb": 2000,
            "runtime_min": 10,
        },
    }
    config_path = tmp_path / "cohort.yaml"
    config_path.write_text(yaml.safe_dump(config))
    tracks = results / "tracks" / "coding" / "tiny"
    targets = [tracks / "tracks.json", tracks / "igv.html", results / "finetune" / "cds" / "comparison.tsv"]
    run = snakemake(config_path, *targets)
    assert run.returncode == 0, run.stderr[-4000:]
    # the end-of-run summary finds this run's genomes through the splits table
    assert "http://localhost:8000/tracks/coding/tiny/igv.html" in run.stdout + run.stderr, run.stderr[-4000:]

    report = tmp_path / "report.html"
    made = snakemake(config_path, "--report", report, *targets)
    assert made.returncode == 0, made.stderr[-4000:]
    html = report.read_text()
    text = caption_text(html)
    # The tracks entry links the page's address under the served results directory, and names the session.
    assert 'href=\\"http://localhost:8000/tracks/coding/tiny/igv.html\\"' in html
    assert f"python3 -m http.server -d {results} 8000" in text
    assert f"{results}/tracks/coding/tiny/igv_session.xml" in text
    # The fine-tuning result is in the report: its caption names the config keys with their values,
    # and the comparison table itself is embedded.
    assert "Fine-tuning" in html
    assert "finetune.max_epochs = 1" in text and "finetune.strategy = full" in text
    comparison = (results / "finetune" / "cds" / "comparison.tsv").read_text()
    assert comparison.startswith("initialisation\t") and "pretrained" in comparison and "scratch" in comparison
    assert comparison in embedded_texts(html)
