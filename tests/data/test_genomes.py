"""Genome directories: bgzip FASTA that pyfaidx and pysam read, sizes, provenance, annotation."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys

import pyfaidx
import pysam
import pytest

from dnafm_lib.data.fasta import FastaFormatError, read_fasta
from dnafm_lib.data.genomes import GenomeError, file_md5, prepare_genome
from dnafm_lib.data.gff import GffError


def random_dna(length, seed, alphabet="ACGTacgtN"):
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


RECORDS = {"chr1": random_dna(10_001, 1), "chr2": random_dna(80, 2), "plasmid": random_dna(333, 3)}


def write_fasta(path, records=RECORDS, line_nt=70, newline="\n"):
    text = "".join(
        f">{name} a description{newline}" + "".join(seq[i : i + line_nt] + newline for i in range(0, len(seq), line_nt))
        for name, seq in records.items()
    )
    path.write_bytes(gzip.compress(text.encode()) if path.suffix == ".gz" else text.encode())
    return path


def test_prepared_fasta_is_bgzip_and_pyfaidx_reads_every_record(tmp_path):
    source = write_fasta(tmp_path / "in.fa.gz")
    prepare_genome("g", tmp_path / "g", fasta=source)
    fasta = tmp_path / "g" / "genome.fa.gz"
    assert (tmp_path / "g" / "genome.fa.gz.fai").exists() and (tmp_path / "g" / "genome.fa.gz.gzi").exists()
    indexed = pyfaidx.Fasta(str(fasta))
    assert list(indexed.keys()) == list(RECORDS)
    for name, sequence in RECORDS.items():
        assert str(indexed[name][:]) == sequence  # case (soft-masking) kept
    assert str(indexed["chr1"][5000:5100]) == RECORDS["chr1"][5000:5100]
    with pysam.FastaFile(str(fasta)) as faidx:
        assert faidx.fetch("plasmid", 10, 20) == RECORDS["plasmid"][10:20]


def test_chrom_sizes_lists_records_in_file_order(tmp_path):
    prepare_genome("g", tmp_path / "g", fasta=write_fasta(tmp_path / "in.fa"))
    assert (tmp_path / "g" / "chrom.sizes").read_text() == "chr1\t10001\nchr2\t80\nplasmid\t333\n"


def test_provenance_records_source_md5_and_time(tmp_path):
    source = write_fasta(tmp_path / "in.fa.gz")
    prepare_genome("g", tmp_path / "g", fasta=source, source="file", location=str(source), accession="GCF_000001405.40")
    provenance = json.loads((tmp_path / "g" / "provenance.json").read_text())
    assert provenance["source"] == "file" and provenance["location"] == str(source)
    assert provenance["input_md5"] == file_md5(source)
    assert provenance["accession"] == "GCF_000001405.40"
    assert provenance["total_nt"] == 10_001 + 80 + 333 and provenance["n_records"] == 3
    assert provenance["prepared_at"].endswith("+00:00")


def test_download_record_supplies_fasta_url_and_assembly_status(tmp_path):
    downloads = tmp_path / "downloads" / "g"
    downloads.mkdir(parents=True)
    fasta = write_fasta(downloads / "genomic.fna.gz")
    record = {
        "accession": "GCF_015227675.2",
        "assembly_name": "mRatBN7.2",
        "assembly_status": "current",
        "fasta_path": str(fasta),
        "url": "https://ftp.ncbi.nlm.nih.gov/genomes/all/GCF/015/227/675/x_genomic.fna.gz",
        "md5": file_md5(fasta),
        "retrieved_at": "2026-01-01T00:00:00+00:00",
        "source": "ftp",
    }
    (downloads / "download.json").write_text(json.dumps(record))
    prepare_genome("g", tmp_path / "g", download_record=downloads / "download.json", source="ncbi")
    provenance = json.loads((tmp_path / "g" / "provenance.json").read_text())
    assert provenance["url"] == record["url"] and provenance["location"] == record["url"]
    assert provenance["assembly_status"] == "current" and provenance["assembly_name"] == "mRatBN7.2"
    assert provenance["input_md5"] == record["md5"] and provenance["download"] == record
    assert read_fasta(tmp_path / "g" / "genome.fa.gz") == {k: v.encode() for k, v in RECORDS.items()}


def test_annotation_is_copied_when_given(tmp_path):
    gff = tmp_path / "a.gff3"
    gff.write_text(
        "##gff-version 3\nchr1\tx\tgene\t10\t200\t.\t+\t.\tName=g1\nplasmid\tx\tCDS\t1\t333\t.\t-\t0\tName=p\n"
    )
    prepare_genome("g", tmp_path / "g", fasta=write_fasta(tmp_path / "in.fa"), annotation=gff)
    assert (tmp_path / "g" / "annotation.gff3").read_text() == gff.read_text()
    assert json.loads((tmp_path / "g" / "provenance.json").read_text())["annotation_features"] == 2


def test_annotation_of_another_assembly_is_an_error_naming_both_files_and_writes_nothing(tmp_path):
    gff = tmp_path / "a.gff3"
    gff.write_text("##gff-version 3\nNC_1\tx\tgene\t10\t200\t.\t+\t.\tName=g1\nNC_2\tx\tgene\t1\t5\t.\t+\t.\tName=x\n")
    fasta = write_fasta(tmp_path / "in.fa")
    with pytest.raises(
        GffError,
        match=rf"^{gff}: no seqid of the annotation is a record of {fasta} \(annotation: 'NC_1', 'NC_2'; FASTA: 'chr1'",
    ):
        prepare_genome("g", tmp_path / "out", fasta=fasta, annotation=gff)
    assert not (tmp_path / "out").exists()


def test_annotation_partly_on_other_contigs_is_copied_with_a_counted_warning(tmp_path):
    gff = tmp_path / "a.gff3"
    gff.write_text("##gff-version 3\nchr1\tx\tgene\t10\t200\t.\t+\t.\tName=g1\nchrX\tx\tgene\t1\t5\t.\t+\t.\tName=x\n")
    fasta = write_fasta(tmp_path / "in.fa")
    provenance = prepare_genome("g", tmp_path / "out", fasta=fasta, annotation=gff)
    assert provenance["annotation_features"] == 1
    assert provenance["annotation_warning"] == (
        f"{gff}: 1 of 2 seqids are not records of {fasta}, their features are left out: 'chrX'"
    )


def test_a_feature_beyond_its_contig_is_an_error_naming_the_line(tmp_path):
    gff = tmp_path / "a.gff3"
    gff.write_text("##gff-version 3\nchr1\tx\tgene\t10\t9999999\t.\t+\t.\tName=g1\n")
    with pytest.raises(GenomeError, match=r"a\.gff3: line 2: end 9999999 is beyond 'chr1'"):
        prepare_genome("g", tmp_path / "out", fasta=write_fasta(tmp_path / "in.fa"), annotation=gff)
    assert not (tmp_path / "out").exists()


def test_windows_line_endings_give_the_same_genome(tmp_path):
    prepare_genome("u", tmp_path / "u", fasta=write_fasta(tmp_path / "u.fa"))
    prepare_genome("w", tmp_path / "w", fasta=write_fasta(tmp_path / "w.fa", newline="\r\n"))
    assert read_fasta(tmp_path / "u" / "genome.fa.gz") == read_fasta(tmp_path / "w" / "genome.fa.gz")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty FASTA file"),
        (b"ACGT\n", "line 1: text before the first '>' header"),
        (b">a\nAC\n>a\nGT\n", "duplicate record name 'a'"),
        (b">a\nACGT\nAC!GT\n", r"record 'a', offset 6: unexpected character '!'"),
    ],
)
def test_bad_fasta_is_one_error_and_leaves_no_genome_directory(tmp_path, content, message):
    source = tmp_path / "bad.fa"
    source.write_bytes(content)
    with pytest.raises(FastaFormatError, match=message):
        prepare_genome("g", tmp_path / "out", fasta=source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.fa"]


def test_bad_fasta_keeps_an_earlier_good_directory(tmp_path):
    prepare_genome("g", tmp_path / "g", fasta=write_fasta(tmp_path / "good.fa"))
    bad = tmp_path / "bad.fa.gz"
    bad.write_bytes(gzip.compress(b">a\nACGT\n" * 1000)[:-20])
    with pytest.raises(FastaFormatError, match="truncated gzip"):
        prepare_genome("g", tmp_path / "g", fasta=bad)
    assert list(pyfaidx.Fasta(str(tmp_path / "g" / "genome.fa.gz")).keys()) == list(RECORDS)


def test_cli_reports_a_bad_fasta_in_one_line(tmp_path):
    source = tmp_path / "dup.fa"
    source.write_bytes(b">a\nAC\n>a\nGT\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dnafm_lib",
            "prepare-genome",
            "--genome",
            "g",
            "--fasta",
            str(source),
            "--out-dir",
            str(tmp_path / "g"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"dnafm prepare-genome: error: {source}: duplicate record name 'a' (records 1 and 2)"
    ]


def test_genome_spanning_many_bgzf_blocks_is_fetched_exactly(tmp_path):
    big = {"chrA": random_dna(300_000, 7), "chrB": random_dna(70_000, 8)}
    prepare_genome("g", tmp_path / "g", fasta=write_fasta(tmp_path / "big.fa.gz", big))
    fasta = str(tmp_path / "g" / "genome.fa.gz")
    indexed = pyfaidx.Fasta(fasta)
    rng = random.Random(9)
    with pysam.FastaFile(fasta) as faidx:
        for _ in range(50):
            name = rng.choice(list(big))
            start = rng.randrange(len(big[name]) - 1000)
            end = start + rng.randrange(1, 1000)
            assert faidx.fetch(name, start, end) == big[name][start:end]
            assert str(indexed[name][start:end]) == big[name][start:end]


def test_bgzf_writer_output_is_plain_gzip_too_even_for_incompressible_bytes(tmp_path):
    from dnafm_lib.data.genomes import BgzfWriter

    payload = random.Random(10).randbytes(200_000) + b"ACGT" * 50_000
    with BgzfWriter(tmp_path / "x.gz") as writer:
        for start in range(0, len(payload), 70_001):
            writer.write(payload[start : start + 70_001])
    assert gzip.decompress((tmp_path / "x.gz").read_bytes()) == payload
