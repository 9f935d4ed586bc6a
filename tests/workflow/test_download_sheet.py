"""Without the splits stage the download rule reads the genome sheet itself (tracks-only cohorts)."""

from __future__ import annotations

import gzip
import json

import pytest

from dnafm_lib import cli
from tests.support.ncbi_server import FakeAssembly, FakeNcbi, synthetic_fasta

ACCESSION = "GCF_015227675.2"


@pytest.fixture
def ncbi():
    fake = FakeNcbi().start()
    fake.add(FakeAssembly(ACCESSION, "mRatBN7.2", fasta=synthetic_fasta(seed=1)))
    yield fake
    fake.stop()


def test_url_and_ncbi_rows_of_a_genome_sheet_download_without_a_splits_table(ncbi, tmp_path):
    ncbi.static["plain.fa"] = synthetic_fasta(seed=9)
    sheet = tmp_path / "genomes.tsv"
    sheet.write_text(
        "genome\tsource\taccession\tlocation\tsplit\tannotation\n"
        f"web\turl\t\t{ncbi.static_url('plain.fa')}\t\t\n"
        f"rat\tncbi\t{ACCESSION}\t\t\t\n"
    )
    for genome in ("web", "rat"):
        code = cli.main(
            [
                "download",
                "--genomes-tsv",
                str(sheet),
                "--genome",
                genome,
                "--out-dir",
                str(tmp_path / genome),
                "--ncbi-ftp-url",
                ncbi.ftp_url,
                "--ncbi-api-url",
                ncbi.api_url,
            ]
        )
        assert code == 0, genome
    with gzip.open(tmp_path / "web" / "genomic.fna.gz", "rb") as handle:
        assert handle.read() == synthetic_fasta(seed=9)
    with gzip.open(tmp_path / "rat" / "genomic.fna.gz", "rb") as handle:
        assert handle.read() == synthetic_fasta(seed=1)
    record = json.loads((tmp_path / "rat" / "download.json").read_text())
    assert record["accession"] == ACCESSION and record["assembly_name"] == "mRatBN7.2"


def test_a_genome_missing_from_the_sheet_is_named(tmp_path, capsys):
    sheet = tmp_path / "genomes.tsv"
    sheet.write_text("genome\tsource\taccession\tlocation\tsplit\tannotation\nweb\turl\t\thttp://x/a.fa\t\t\n")
    assert (
        cli.main(["download", "--genomes-tsv", str(sheet), "--genome", "other", "--out-dir", str(tmp_path / "o")]) == 1
    )
    assert f"{sheet}: no genome 'other'" in capsys.readouterr().err
