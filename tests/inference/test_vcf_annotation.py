"""dnafm annotate-vcf: every SNV allele gets the table's values; bcftools reads the result."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pysam
import pytest

from dnafm_lib.cli import main
from dnafm_lib.inference.snv_table import RegionProbs, write_snv_table

needs_bcftools = pytest.mark.skipif(shutil.which("bcftools") is None, reason="needs Debian's bcftools")

GENOME = {"chr1": "ACGTACGGTTCAGCATGCAA" * 5, "chr2": "TTGACCAGTA" * 4}


def write_table(path, model="demo", seed=0):
    rng = np.random.default_rng(seed)
    regions = [
        RegionProbs(contig, 0, seq.encode(), rng.dirichlet([1, 1, 1, 1], len(seq)).astype(np.float32))
        for contig, seq in GENOME.items()
    ]
    write_snv_table(lambda: iter(regions), path, {"model": model, "settings": {"passes": 7}})
    return path


def table_values(path) -> dict[tuple[str, int, str], tuple[str, str]]:
    with pysam.TabixFile(str(path)) as table:
        rows = [line.split("\t") for contig in table.contigs for line in table.fetch(contig)]
    return {(r[0], int(r[1]), r[3]): (r[4], r[5]) for r in rows}


def ref(contig, pos):
    return GENOME[contig][pos - 1]


def other(base, k=0):
    return [b for b in "ACGT" if b != base][k]


def write_vcf(path, records):
    header = [
        "##fileformat=VCFv4.2",
        *(f"##contig=<ID={c},length={len(s)}>" for c, s in GENOME.items()),
        "##contig=<ID=chr3,length=1000>",
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2\ts3",
    ]
    lines = [f"{c}\t{p}\t.\t{r}\t{a}\t50\tPASS\t{info}\tGT\t0/1\t1/2\t0/0" for c, p, r, a, info in records]
    path.write_text("\n".join(header + lines) + "\n")
    return path


def records():
    a, b, c = ref("chr1", 3), ref("chr1", 10), ref("chr1", 20)
    return [
        ("chr1", 3, a, other(a), "DP=10"),  # one SNV
        ("chr1", 10, b, f"{other(b, 0)},{other(b, 2)}", "."),  # multi-allelic SNVs
        ("chr1", 20, c, f"{other(c)},{c}T", "DP=3"),  # an SNV and an insertion
        ("chr1", 21, ref("chr1", 21) + ref("chr1", 22), ref("chr1", 21), "."),  # a deletion only
        ("chr1", 30, ref("chr1", 30), f"{other(ref('chr1', 30))},*", "."),  # an SNV and '*'
        ("chr2", 7, ref("chr2", 7), other(ref("chr2", 7), 1), "."),
        ("chr3", 5, "A", "G", "."),  # no table holds chr3
    ]


def query(path, fields="%INFO/DNAFM_LLR\t%INFO/DNAFM_LLR_Z"):
    out = subprocess.run(
        ["bcftools", "query", "-f", f"%CHROM\t%POS\t%REF\t%ALT\t{fields}\n", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines()]


@needs_bcftools
def test_every_snv_allele_gets_the_tables_values_and_bcftools_reads_it(tmp_path, capsys):
    table = write_table(tmp_path / "snv_scores.tsv.bgz")
    vcf = write_vcf(tmp_path / "in.vcf", records())
    out = tmp_path / "out.vcf.gz"
    assert main(["annotate-vcf", "--vcf", str(vcf), "--table", str(table), "--out", str(out)]) == 0
    assert "annotated alleles: 6" in capsys.readouterr().err
    assert (tmp_path / "out.vcf.gz.tbi").exists()
    subprocess.run(["bcftools", "view", "-H", str(out)], check=True, capture_output=True)  # htslib reads it
    values = table_values(table)
    rows = query(out)
    assert len(rows) == len(records())
    for chrom, pos, ref_base, alts, llr, z in rows:
        expected = [
            values.get((chrom, int(pos), alt), (".", ".")) if len(ref_base) == 1 else (".", ".")
            for alt in alts.split(",")
        ]
        if all(e == (".", ".") for e in expected):
            assert (llr, z) == (".", ".")
        else:
            assert llr.split(",") == [e[0] for e in expected]
            assert z.split(",") == [e[1] for e in expected]
    # samples and other INFO fields untouched
    samples = subprocess.run(
        ["bcftools", "query", "-f", "[%GT ]%INFO/DP\n", str(out)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert samples[0] == "0/1 1/2 0/0 10" and samples[2] == "0/1 1/2 0/0 3"
    header = subprocess.run(["bcftools", "view", "-h", str(out)], capture_output=True, text=True).stdout
    assert "ID=DNAFM_LLR,Number=A,Type=Float" in header and "model demo" in header


@needs_bcftools
def test_bcftools_annotate_with_the_table_gives_the_same_values_for_biallelic_snvs(tmp_path):
    table = write_table(tmp_path / "snv_scores.tsv.bgz")
    biallelic = [r for r in records() if "," not in r[3] and len(r[2]) == 1 and r[0] != "chr3"]
    vcf = write_vcf(tmp_path / "in.vcf", biallelic)
    ours = tmp_path / "ours.vcf"
    assert main(["annotate-vcf", "--vcf", str(vcf), "--table", str(table), "--out", str(ours)]) == 0
    header = tmp_path / "h.txt"
    header.write_text(
        '##INFO=<ID=DNAFM_LLR,Number=A,Type=Float,Description="llr">\n'
        '##INFO=<ID=DNAFM_LLR_Z,Number=A,Type=Float,Description="llr_z">\n'
    )
    theirs = tmp_path / "theirs.vcf"
    subprocess.run(
        [
            "bcftools",
            "annotate",
            "-a",
            str(table),
            "-c",
            "CHROM,POS,REF,ALT,INFO/DNAFM_LLR,INFO/DNAFM_LLR_Z",
            "-h",
            str(header),
            "-o",
            str(theirs),
            str(vcf),
        ],
        check=True,
        capture_output=True,
    )
    assert query(ours) == query(theirs)


def test_a_ref_that_differs_from_the_table_is_one_error_naming_the_record(tmp_path, capsys):
    table = write_table(tmp_path / "snv_scores.tsv.bgz")
    wrong = other(ref("chr1", 3))
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", 3, wrong, ref("chr1", 3), ".")])
    out = tmp_path / "out.vcf"
    assert main(["annotate-vcf", "--vcf", str(vcf), "--table", str(table), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"line 8: record chr1:3: REF {wrong} but the demo table has {ref('chr1', 3)}" in err
    assert not out.exists()
    assert (
        main(["annotate-vcf", "--vcf", str(vcf), "--table", str(table), "--out", str(out), "--allow-ref-mismatch"]) == 0
    )
    assert "ref mismatches: 1" in capsys.readouterr().err
    assert "DNAFM_LLR=" not in out.read_text().splitlines()[-1]


def test_tables_of_two_models_give_each_model_its_own_fields(tmp_path):
    first = write_table(tmp_path / "a.tsv.bgz", model="small")
    second = write_table(tmp_path / "b.tsv.bgz", model="big-7b", seed=1)
    vcf = write_vcf(tmp_path / "in.vcf", records()[:1])
    out = tmp_path / "out.vcf"
    assert (
        main(["annotate-vcf", "--vcf", str(vcf), "--table", str(first), "--table", str(second), "--out", str(out)]) == 0
    )
    last = out.read_text().splitlines()[-1]
    chrom, pos, alt = "chr1", 3, other(ref("chr1", 3))
    assert f"DNAFM_LLR_small={table_values(first)[(chrom, pos, alt)][0]}" in last
    assert f"DNAFM_LLR_big_7b={table_values(second)[(chrom, pos, alt)][0]}" in last


def test_a_file_that_is_not_a_table_is_refused_by_name(tmp_path, capsys):
    vcf = write_vcf(tmp_path / "in.vcf", records()[:1])
    bogus = tmp_path / "bogus.tsv.bgz"
    bogus.write_text("not a table\n")
    assert main(["annotate-vcf", "--vcf", str(vcf), "--table", str(bogus), "--out", str(tmp_path / "o.vcf")]) == 1
    assert f"{bogus}: not a tabix-indexed SNV table" in capsys.readouterr().err
