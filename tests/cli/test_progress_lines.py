"""Long jobs say how far they are: `dnafm tracks` and `dnafm prepare-genome` write progress lines to stderr.

$DNAFM_PROGRESS_SECONDS=0 asks for a line at every update, so these small inputs show the lines a
big genome writes every 30 s; outputs (stdout, files) gain nothing.
"""

import re
import subprocess
import sys

from tests.support.tracks import genome_with_gaps, save_tiny_model, write_fasta
from tests.support.train import CHLOROPLAST, REPO, env

RATE_AND_TIMES = r"[\d.,]+ {unit}/s, elapsed \d+:\d\d:\d\d, ETA (\d+:\d\d:\d\d|unknown)"


def _line(label: str, done: str, total: str, unit: str, percent: str = r"\d+") -> str:
    return rf"^{label}: {done}/{total} {unit} \({percent}%\), " + RATE_AND_TIMES.format(unit=unit) + "$"


def _run(*argv: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "dnafm_lib.cli", *argv]
    return subprocess.run(
        command, env={**env(), "DNAFM_PROGRESS_SECONDS": "0"}, cwd=REPO, capture_output=True, text=True, timeout=600
    )


def test_one_shot_tracks_reports_scoring_per_chunk_and_the_gather(tmp_path):
    fasta = write_fasta(tmp_path / "genome.fa", genome_with_gaps())
    model = save_tiny_model(tmp_path / "model")
    result = _run(
        "tracks", "--fasta", str(fasta), "--model", str(model), "--out-dir", str(tmp_path / "out"),
        "--chunk-bp", "2000", "--window-bp", "300", "--stride-bp", "150", "--passes", "2", "--bin-bp", "50",
        "--batch-size", "8", "--device", "cpu", "--n-clusters", "2",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    chunks = [line for line in lines if re.search(r"scoring chunk\d+ \(", line)]
    scoring = [line for line in lines if line.startswith("scoring: ")]
    assert len(chunks) >= 2 and all(re.match(_line("scoring", r"[\d,]+", r"[\d,]+", "bases"), s) for s in scoring)
    finished = [line for line in scoring if "(100%)" in line]
    assert len(finished) == len(chunks) and len(scoring) > len(chunks)  # lines on the way, one end per chunk
    assert any(re.match(_line("gather", len(chunks), len(chunks), "chunks", "100"), line) for line in lines)
    assert "scoring:" not in result.stdout and "gather:" not in result.stdout


def test_prepare_genome_reports_the_bytes_of_the_fasta_read(tmp_path):
    size = f"{CHLOROPLAST.stat().st_size:,}"
    result = _run("prepare-genome", "--genome", "chl", "--fasta", str(CHLOROPLAST), "--out-dir", str(tmp_path / "g"))

    assert result.returncode == 0, result.stderr
    assert re.search(_line(f"preparing {CHLOROPLAST.name}", size, size, "bytes", "100"), result.stderr, re.M)
    assert result.stdout == f"chl: 1 records, 154478 nt → {tmp_path / 'g'}\n"
