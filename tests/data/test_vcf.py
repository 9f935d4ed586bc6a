"""VCF input: the allele classifier every scorer uses, and the line check before htslib reads a file."""

import gzip

import pysam
import pytest

from dnafm_lib.cli import main
from dnafm_lib.data.vcf import AlleleKind, VcfError, check_vcf, classify_allele
from tests.inference.test_mutagenesis import FLANK_BP, _write_vcf  # the fixtures model_dir and genome: conftest.py


@pytest.mark.parametrize(
    "ref, alt, kind",
    [
        ("A", "G", AlleleKind.SNV),
        ("c", "t", AlleleKind.SNV),
        ("A", "AC", AlleleKind.INSERTION),
        ("A", "ACGT", AlleleKind.INSERTION),
        ("G", "CG", AlleleKind.INSERTION),  # not anchored, still longer than REF
        ("AC", "A", AlleleKind.DELETION),
        ("ACG", "C", AlleleKind.DELETION),
        ("AC", "GT", AlleleKind.MNV),
        ("A", "<DEL>", AlleleKind.SYMBOLIC),
        ("A", "<INS:ME:ALU>", AlleleKind.SYMBOLIC),
        ("A", "A[chr2:100[", AlleleKind.SYMBOLIC),
        ("A", "*", AlleleKind.SYMBOLIC),
        ("A", ".", AlleleKind.SYMBOLIC),
        ("A", None, AlleleKind.SYMBOLIC),
        ("A", "N", AlleleKind.OTHER),
        ("R", "A", AlleleKind.OTHER),
        ("N", "A", AlleleKind.OTHER),
        ("A", "A", AlleleKind.OTHER),
    ],
)
def test_each_allele_gets_its_kind_and_only_single_base_changes_are_snvs(ref, alt, kind):
    assert classify_allele(ref, alt) is kind


HEADER = [
    "##fileformat=VCFv4.2",
    "##contig=<ID=chr1,length=80>",
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
]


def _vcf(tmp_path, *records, header=HEADER, name="in.vcf"):
    path = tmp_path / name
    path.write_text("\n".join([*header, *records]) + "\n")
    return path


BAD_RECORDS = [
    ("chr1\t10\t.\tA\tG\t.\t.\tXX=1", "line 7 (chr1:10): INFO tag 'XX' is not declared in the header"),
    ("chr1\t0\t.\tA\tG\t.\t.\t.", "line 7: POS '0' is not a position ≥ 1"),
    ("chr1\tten\t.\tA\tG\t.\t.\t.", "line 7: POS 'ten' is not a position ≥ 1"),
    ("chr1\t10\t.\tA", "line 7: 4 tab-separated fields, but the #CHROM line has 8"),
    ("chr1 10 . A G . . .", "line 7: 1 tab-separated fields, but the #CHROM line has 8"),
    ("chr1\t10\t.\tA\tG\t.\tlowq\t.", "line 7 (chr1:10): FILTER 'lowq' is not declared"),
    ("chr1\t10\t.\tA\tG\tbad\t.\t.", "line 7 (chr1:10): QUAL 'bad' is not a number"),
    ("chr1\t10\t.\tA\tG<\t.\t.\t.", "line 7 (chr1:10): ALT allele 'G<' is not bases"),
    ("chr1\t10\t.\tA-\tG\t.\t.\t.", "line 7 (chr1:10): REF 'A-' is not a run of bases"),
]


@pytest.mark.parametrize("record, message", BAD_RECORDS)
def test_a_bad_record_is_one_error_naming_the_file_and_line(tmp_path, record, message):
    path = _vcf(tmp_path, "chr1\t5\t.\tA\tG\t.\t.\tDP=3", record)
    with pytest.raises(VcfError) as error:
        check_vcf(path)
    assert str(error.value).startswith(f"{path}: {message}")


def test_bgzip_vcf_is_checked_and_a_truncated_one_names_the_file(tmp_path):
    plain = _vcf(tmp_path, "chr1\t5\t.\tA\tG\t.\t.\tDP=3", "chr1\t6\t.\tA\t<DEL>\t.\t.\t.")
    pysam.tabix_compress(str(plain), str(tmp_path / "in.vcf.gz"))
    assert check_vcf(tmp_path / "in.vcf.gz").records == 2
    data = (tmp_path / "in.vcf.gz").read_bytes()
    (tmp_path / "cut.vcf.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(VcfError, match="cut.vcf.gz: truncated or corrupt gzip"):
        check_vcf(tmp_path / "cut.vcf.gz")


def test_blank_lines_among_records_are_skipped(tmp_path):
    assert check_vcf(_vcf(tmp_path, "chr1\t5\t.\tA\tG\t.\t.\tDP=3", "", "chr1\t6\t.\tA\tT\t.\t.\t.", "")).records == 2


def test_text_that_is_not_a_vcf_or_not_utf8_is_named(tmp_path):
    with pytest.raises(VcfError, match="line 1: expected '##fileformat=VCFv4.x'"):
        check_vcf(_vcf(tmp_path, header=["chr1\t5"]))
    with pytest.raises(VcfError, match="no '#CHROM' column header line"):
        check_vcf(_vcf(tmp_path, header=HEADER[:2]))
    path = tmp_path / "latin1.vcf"
    path.write_bytes(("\n".join(HEADER) + "\nchr1\t5\tr\xe9\tA\tG\t.\t.\t.\n").encode("latin-1"))
    with pytest.raises(VcfError, match=r"latin1.vcf: line 6: byte 0xe9 at column 9 is not UTF-8"):
        check_vcf(path)


# --------------------------------------------------------------------- through score-variants


def _score(model_dir, genome_path, vcf_in, out):
    return main(
        [
            "score-variants",
            "--model",
            str(model_dir),
            "--fasta",
            str(genome_path),
            "--vcf",
            str(vcf_in),
            "--out",
            str(out),
            "--flank-bp",
            str(FLANK_BP),
        ]
    )


def test_insertions_and_symbolic_alleles_get_the_missing_value_and_snvs_beside_them_a_score(
    model_dir, genome, tmp_path
):
    genome_path, contigs = genome
    chr1 = contigs["chr1"]
    base = lambda i: chr1[i - 1]  # noqa: E731  (1-based)
    other = lambda b: "G" if b != "G" else "T"  # noqa: E731
    records = [
        ("chr1", 30, ".", base(30), f"{base(30)}C", ".", ".", ".", "GT", "0/1", "0/1"),  # A→AC
        ("chr1", 31, ".", base(31), f"{base(31)}CGT", ".", ".", ".", "GT", "0/1", "0/1"),  # A→ACGT
        ("chr1", 32, ".", base(32), f"C{base(32)}", ".", ".", ".", "GT", "0/1", "0/1"),  # G→CG
        ("chr1", 33, ".", base(33), "<DEL>", ".", ".", ".", "GT", "0/1", "0/1"),
        ("chr1", 34, ".", base(34), f"{base(34)}T,{other(base(34))}", ".", ".", ".", "GT", "1/2", "0/1"),
        ("chr1", 35, ".", base(35) + base(36), other(base(35)) + other(base(36)), ".", ".", ".", "GT", "0/1", "0/1"),
    ]
    vcf_in = tmp_path / "in.vcf"
    _write_vcf(vcf_in, contigs, records)
    assert _score(model_dir, genome_path, vcf_in, tmp_path / "out.vcf") == 0
    with pysam.VariantFile(str(tmp_path / "out.vcf")) as scored:
        info = [(r.pos, r.info.get("DNAFM_LLR")) for r in scored]
    assert [pos for pos, _ in info] == [30, 31, 32, 33, 34, 35]
    for pos, llr in info:
        if pos == 34:
            assert llr[0] is None and isinstance(llr[1], float)  # insertion missing, SNV beside it scored
        else:
            assert llr is None  # no SNV allele: the record is copied unscored
    assert "DNAFM_LLR=" not in (tmp_path / "out.vcf").read_text().split("\n#CHROM")[1].split("\n")[1]


@pytest.mark.parametrize("record, message", BAD_RECORDS[:5])
def test_score_variants_stops_at_a_bad_vcf_line_with_one_message_and_no_file(
    model_dir, genome, tmp_path, capsys, record, message
):
    genome_path, _ = genome
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    vcf_in = _vcf(tmp_path, "chr1\t5\t.\tA\tG\t.\t.\tDP=3", record)
    code = _score(model_dir, genome_path, vcf_in, out_dir / "scored.vcf.gz")
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and f"{vcf_in}: {message}" in err
    assert list(out_dir.iterdir()) == []  # no output, no .tmp-*


def test_symbolic_alt_and_gzip_vcf_round_trip_through_score_variants(model_dir, genome, tmp_path):
    genome_path, contigs = genome
    vcf_in = tmp_path / "in.vcf"
    _write_vcf(vcf_in, contigs, [("chr1", 5, ".", contigs["chr1"][4], "<DEL>", ".", ".", ".", "GT", "0/1", "0/1")])
    assert _score(model_dir, genome_path, vcf_in, tmp_path / "out.vcf.gz") == 0
    with gzip.open(tmp_path / "out.vcf.gz", "rt") as handle:
        body = [line for line in handle if not line.startswith("#")]
    assert body[0].split("\t")[4] == "<DEL>" and "DNAFM_LLR" not in body[0]
    pysam.tabix_index(str(tmp_path / "out.vcf.gz"), preset="vcf")  # real BGZF: tabix indexes it
    assert (tmp_path / "out.vcf.gz.tbi").exists()
