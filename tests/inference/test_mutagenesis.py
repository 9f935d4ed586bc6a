"""In-silico mutagenesis and VCF scoring against a brute-force loop over single mutations."""

import numpy as np
import pandas as pd
import pyBigWig
import pysam
import pytest
import torch

import dnafm_lib
from dnafm_lib.cli import main
from dnafm_lib.model.tokenizer import ACGT_IDS, MASK_ID, encode_batch

FLANK_BP = 12
BASES = "ACGT"
COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}


@pytest.fixture(scope="module")
def model(model_dir):
    return dnafm_lib.load_model(model_dir).eval()


def brute_force_llr(model, contig, position, alt, flank_bp=FLANK_BP, strand="+"):
    """Build the mutant, mask the mutated base, and compare log p(alt) with log p(ref) there."""
    start, end = max(0, position - flank_bp), min(len(contig), position + flank_bp + 1)
    mutant = contig[:position] + alt + contig[position + 1 :]
    window, offset = mutant[start:end].upper(), position - start
    ref, alt_base = contig[position].upper(), alt
    if strand == "-":
        window = "".join(COMPLEMENT.get(b, "N") for b in reversed(window))
        offset = len(window) - 1 - offset
        ref, alt_base = COMPLEMENT[ref], COMPLEMENT[alt_base]
    ids, mask = encode_batch([window])
    ids[0, 1 + offset] = MASK_ID
    with torch.no_grad():
        logits = model(torch.from_numpy(ids), torch.from_numpy(mask)).logits[0, 1 + offset]
    log_probs = torch.log_softmax(logits[list(ACGT_IDS)].double(), dim=-1)
    return float(log_probs[BASES.index(alt_base)] - log_probs[BASES.index(ref)])


def run_ism(model_dir, genome_path, bed_text, out_dir, tmp_path):
    bed = tmp_path / "regions.bed"
    bed.write_text(bed_text)
    return main(
        [
            "ism",
            "--model",
            str(model_dir),
            "--fasta",
            str(genome_path),
            "--regions",
            str(bed),
            "--out-dir",
            str(out_dir),
            "--flank-bp",
            str(FLANK_BP),
            "--batch-size",
            "7",
        ]
    )


def test_ism_equals_a_brute_force_loop_over_single_mutations(model, model_dir, genome, tmp_path, monkeypatch):
    from dnafm_lib.inference import mutagenesis

    monkeypatch.setattr(mutagenesis, "POSITIONS_PER_CHUNK", 4)  # regions span several chunks
    genome_path, contigs = genome
    # contig starts and ends (clipped context), overlapping regions, soft-masked bases and Ns
    bed = "track name=test\nchr1\t0\t6\nchr1\t4\t9\nchr1\t74\t80\nchr2\t2\t9\n"
    assert run_ism(model_dir, genome_path, bed, tmp_path / "ism", tmp_path) == 0
    table = pd.read_csv(tmp_path / "ism" / "ism.tsv", sep="\t")
    expected = []
    for chrom, start, end in [("chr1", 0, 9), ("chr1", 74, 80), ("chr2", 2, 9)]:
        for position in range(start, end):
            ref = contigs[chrom][position].upper()
            if ref == "N":
                continue
            for alt in BASES:
                if alt != ref:
                    expected.append(
                        (chrom, position + 1, ref, alt, brute_force_llr(model, contigs[chrom], position, alt))
                    )
    expected = pd.DataFrame(expected, columns=["chrom", "pos", "ref", "alt", "llr"])
    assert len(table) == len(expected) == 3 * (9 + 6 + 5)  # each base once; chr2:4-5 are N
    assert table[["chrom", "pos", "ref", "alt"]].equals(expected[["chrom", "pos", "ref", "alt"]])
    np.testing.assert_allclose(table["llr"], expected["llr"], atol=1e-4)


def test_ism_tracks_hold_the_max_abs_and_per_base_llrs_and_skip_n(model_dir, genome, tmp_path):
    genome_path, contigs = genome
    assert run_ism(model_dir, genome_path, "chr2\t2\t9\n", tmp_path / "ism", tmp_path) == 0
    table = pd.read_csv(tmp_path / "ism" / "ism.tsv", sep="\t")
    for name in ["max_abs_llr", "llr_to_A", "llr_to_C", "llr_to_G", "llr_to_T"]:
        with pyBigWig.open(str(tmp_path / "ism" / f"{name}.bw")) as bigwig:
            assert bigwig.chroms() == {"chr1": 80, "chr2": 40}
            values = np.array(bigwig.values("chr2", 2, 9))
        assert np.isnan(values[2:4]).all()  # N bases are absent, not zero
        for position in [2, 3, 6, 7, 8]:
            rows = table[table["pos"] == position + 1]
            if name == "max_abs_llr":
                want = rows["llr"].abs().max()
            else:
                base = name[-1]
                want = 0.0 if contigs["chr2"][position].upper() == base else rows.loc[rows["alt"] == base, "llr"].item()
            assert values[position - 2] == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize(
    "bed, message",
    [
        ("chr1\t10\n", "line 1: expected at least 3 tab-separated columns"),
        ("chr1\t5\t10\nchrX\t0\t5\n", "line 2: contig 'chrX' is not in the FASTA"),
        ("chr1\t70\t90\n", "line 1: chr1:70-90 is empty or outside the contig (length 80)"),
        ("chr1\tten\t20\n", "line 1: start/end 'ten', '20' are not integers"),
    ],
)
def test_a_bad_bed_line_is_one_error_naming_the_line_and_no_output(model_dir, genome, tmp_path, capsys, bed, message):
    assert run_ism(model_dir, genome[0], bed, tmp_path / "ism", tmp_path) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"regions.bed: {message}" in err
    assert not (tmp_path / "ism").exists()


def _write_vcf(path, contigs, records):
    header = [
        "##fileformat=VCFv4.2",
        *(f"##contig=<ID={name},length={len(seq)}>" for name, seq in contigs.items()),
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
        '##INFO=<ID=GENE,Number=1,Type=String,Description="Gene">',
        '##FILTER=<ID=q10,Description="Quality below 10">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tsample1\tsample2",
    ]
    path.write_text("\n".join(header + ["\t".join(map(str, r)) for r in records]) + "\n")


def _variant_records(contigs):
    chr1, chr2 = contigs["chr1"], contigs["chr2"]
    other = lambda b: "G" if b.upper() != "G" else "T"  # noqa: E731
    return [
        ("chr1", 1, "rs1", chr1[0], other(chr1[0]), 50, "PASS", "DP=10;GENE=abc", "GT", "0/1", "1/1"),
        ("chr1", 40, ".", chr1[39], f"{other(chr1[39])},{chr1[39]}TT", ".", "q10", "DP=3", "GT", "1/2", "0/0"),
        ("chr1", 60, "del1", chr1[59:62], chr1[59], 12.5, "PASS", ".", "GT", "0/1", "./."),
        ("chr2", 3, ".", chr2[2].upper(), other(chr2[2]), ".", ".", "GENE=x", "GT", "0|1", "1|0"),
    ]


def test_score_variants_round_trips_the_vcf_and_adds_the_strand_averaged_llr(model, model_dir, genome, tmp_path):
    genome_path, contigs = genome
    records = _variant_records(contigs)
    vcf_in, vcf_out = tmp_path / "in.vcf", tmp_path / "out.vcf.gz"
    _write_vcf(vcf_in, contigs, records)
    assert (
        main(
            [
                "score-variants",
                "--model",
                str(model_dir),
                "--fasta",
                str(genome_path),
                "--vcf",
                str(vcf_in),
                "--out",
                str(vcf_out),
                "--flank-bp",
                str(FLANK_BP),
            ]
        )
        == 0
    )

    with pysam.VariantFile(str(vcf_in)) as before, pysam.VariantFile(str(vcf_out)) as after:
        assert "DNAFM_LLR" in after.header.info and after.header.info["DNAFM_LLR"].number == "A"
        assert list(after.header.samples) == ["sample1", "sample2"]
        pairs = list(zip(before, after, strict=True))
    for old, new in pairs:
        assert (new.chrom, new.pos, new.id, new.ref, new.alts, new.qual) == (
            old.chrom,
            old.pos,
            old.id,
            old.ref,
            old.alts,
            old.qual,
        )
        assert list(new.filter) == list(old.filter)
        assert {k: v for k, v in new.info.items() if k != "DNAFM_LLR"} == dict(old.info.items())
        assert [s["GT"] for s in new.samples.values()] == [s["GT"] for s in old.samples.values()]
        assert [s.phased for s in new.samples.values()] == [s.phased for s in old.samples.values()]

    for old, new in pairs:
        contig = contigs[old.chrom]
        if len(old.ref) != 1:
            assert "DNAFM_LLR" not in new.info  # a deletion is copied unscored
            continue
        values = new.info["DNAFM_LLR"]
        for alt, value in zip(old.alts, values):
            if len(alt) != 1:
                assert value is None  # an insertion allele of a multi-allelic record: missing
                continue
            forward = brute_force_llr(model, contig, old.pos - 1, alt, strand="+")
            reverse = brute_force_llr(model, contig, old.pos - 1, alt, strand="-")
            assert value == pytest.approx((forward + reverse) / 2, abs=1e-4)
            assert forward != pytest.approx(reverse, abs=1e-6)  # both strands really differ, so averaging matters


def test_a_ref_that_disagrees_with_the_fasta_is_one_error_and_no_output(model_dir, genome, tmp_path, capsys):
    genome_path, contigs = genome
    wrong = "A" if contigs["chr1"][9] != "A" else "C"
    vcf_in = tmp_path / "in.vcf"
    _write_vcf(
        vcf_in, contigs, [("chr1", 10, ".", wrong, "T" if wrong != "T" else "G", ".", ".", ".", "GT", "0/1", "0/1")]
    )
    code = main(
        [
            "score-variants",
            "--model",
            str(model_dir),
            "--fasta",
            str(genome_path),
            "--vcf",
            str(vcf_in),
            "--out",
            str(tmp_path / "out.vcf"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert f"in.vcf: line 9: record chr1:10: REF {wrong} but {genome_path} has {contigs['chr1'][9]}" in err
    assert not (tmp_path / "out.vcf").exists()
