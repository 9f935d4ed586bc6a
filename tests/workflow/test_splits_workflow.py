"""Snakemake runs build_splits and download_genome for real against the fake NCBI server."""

import csv
import gzip
import json

import pytest
import yaml

from tests.support.ncbi_server import FakeAssembly, FakeNcbi, synthetic_fasta
from tests.support.workflow import snakemake

RAT_OLD, RAT_NEW = "GCF_000001895.5", "GCF_015227675.2"


@pytest.fixture
def ncbi():
    fake = FakeNcbi().start()
    yield fake
    fake.stop()


@pytest.mark.slow
def test_workflow_builds_nt_splits_and_downloads_a_verified_genome(ncbi, tmp_path):
    ncbi.add(FakeAssembly(RAT_OLD, "Rnor_6.0", status="suppressed", current_accession=RAT_NEW))
    ncbi.add(FakeAssembly(RAT_NEW, "mRatBN7.2", fasta=synthetic_fasta(seed=5)))
    listed = [f"GCA_{n:09d}.1" for n in range(1, 6)]
    for accession in listed:
        ncbi.add(FakeAssembly(accession, "asm v1", fasta=synthetic_fasta(seed=len(accession))))
    ncbi.add(FakeAssembly("GCA_000000099.1", "gone", status="retired"))
    ncbi.static["list.txt"] = "\n".join([RAT_OLD, "GCA_000000099.1", *listed]).encode() + b"\n"
    results = tmp_path / "results"
    config = {
        "cohort": "fake_nt",
        "results_dir": str(results),
        "logs_dir": str(tmp_path / "logs"),
        "splits": {
            "nt_list": ncbi.static_url("list.txt"),
            "validation_genomes": 1,
            "test_genomes": 2,
            "replacements": {RAT_OLD: RAT_NEW},
        },
        "ncbi": {"ftp_url": ncbi.ftp_url, "api_url": ncbi.api_url, "source": "ftp", "max_concurrent_jobs": 2},
    }
    config_path = tmp_path / "cohort.yaml"
    config_path.write_text(yaml.safe_dump(config))

    run = snakemake(
        config_path,
        results / "splits" / "genomes.tsv",
        results / "downloads" / RAT_NEW / "download.json",
        results / "downloads" / "GCA_000000004.1" / "download.json",
    )

    assert run.returncode == 0, run.stderr[-3000:]
    with open(results / "splits" / "genomes.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [(r["genome"], r["split"]) for r in rows] == [
        (RAT_NEW, "train"),
        ("GCA_000000001.1", "train"),
        ("GCA_000000002.1", "train"),
        ("GCA_000000003.1", "validation"),
        ("GCA_000000004.1", "test"),
        ("GCA_000000005.1", "test"),
    ]
    summary = json.loads((results / "splits" / "summary.json").read_text())
    assert summary["removed"] == 2 and summary["per_split"] == {"train": 3, "validation": 1, "test": 2}
    record = json.loads((results / "downloads" / RAT_NEW / "download.json").read_text())
    assert record["assembly_name"] == "mRatBN7.2" and record["assembly_status"] == "current"
    with gzip.open(results / "downloads" / RAT_NEW / "genomic.fna.gz") as handle:
        assert handle.read() == synthetic_fasta(seed=5)
    # "asm v1" has a space: the FTP directory name replaces it with "_"
    assert json.loads((results / "downloads" / "GCA_000000004.1" / "download.json").read_text())["url"].endswith(
        "GCA_000000004.1_asm_v1/GCA_000000004.1_asm_v1_genomic.fna.gz"
    )
