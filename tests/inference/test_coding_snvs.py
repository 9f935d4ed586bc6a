"""Coding SNVs of GFF3 CDS, labelled against Biopython: each mutated genome's CDS re-extracted
(SeqFeature locations, joins and strands done by Biopython) and translated whole."""

from __future__ import annotations

import numpy as np
import pytest
from Bio.Seq import Seq
from Bio.SeqFeature import CompoundLocation, FeatureLocation

from dnafm_lib.data.gff import GffError
from dnafm_lib.inference.coding_snvs import auroc, coding_snvs, read_coding_sequences, snv_llrs

BASES = "ACGT"


def _genome():
    rng = np.random.default_rng(2)
    return "".join(rng.choice(list(BASES), 120))


GFF = (
    "##gff-version 3\n"
    "c\tt\tCDS\t4\t15\t.\t+\t0\tID=plus\n"  # 12 bp, one segment
    "c\tt\tCDS\t21\t29\t.\t+\t0\tID=joined\n"  # two segments, 9 + 6 bp
    "c\tt\tCDS\t41\t46\t.\t+\t0\tID=joined\n"
    "c\tt\tCDS\t61\t78\t.\t-\t0\tID=minus\n"  # 18 bp on the minus strand
    "c\tt\tCDS\t81\t89\t.\t-\t0\tParent=m2\n"  # a joined minus-strand gene
    "c\tt\tCDS\t95\t100\t.\t-\t0\tParent=m2\n"
    "c\tt\tgene\t1\t120\t.\t+\t.\tID=g\n"
)
LOCATIONS = {
    "plus": FeatureLocation(3, 15, strand=1),
    "joined": CompoundLocation([FeatureLocation(20, 29, strand=1), FeatureLocation(40, 46, strand=1)]),
    "minus": FeatureLocation(60, 78, strand=-1),
    "m2": CompoundLocation([FeatureLocation(94, 100, strand=-1), FeatureLocation(80, 89, strand=-1)]),
}


def test_every_coding_snv_is_labelled_as_biopython_translates_the_mutated_cds(tmp_path):
    genome = _genome()
    gff = tmp_path / "a.gff3"
    gff.write_text(GFF)
    sequences = read_coding_sequences(gff)
    assert sorted(s.name for s in sequences) == ["joined", "m2", "minus", "plus"]
    snvs = coding_snvs(sequences, lambda contig, start, end: genome[start:end])
    expected = {}
    for location in LOCATIONS.values():
        protein = str(location.extract(Seq(genome)).translate())
        for position in sorted(set(int(p) for p in location)):
            for alt in BASES:
                if alt == genome[position]:
                    continue
                mutated = Seq(genome[:position] + alt + genome[position + 1 :])
                expected[(position, BASES.index(alt))] = str(location.extract(mutated).translate()) == protein
    got = {(int(p), int(a)): bool(s) for p, a, s in zip(snvs.position, snvs.alt, snvs.synonymous)}
    assert got == expected
    assert 0 < snvs.synonymous.sum() < len(snvs)
    assert all(BASES[r] == genome[p] for p, r in zip(snvs.position, snvs.ref))


def test_phase_skips_bases_before_the_first_codon(tmp_path):
    genome = "GGATGTTATAAGG"
    gff = tmp_path / "p.gff3"
    gff.write_text("c\tt\tCDS\t2\t11\t.\t+\t1\tID=p\n")  # phase 1: codons ATG TTA TAA from base 3
    snvs = coding_snvs(read_coding_sequences(gff), lambda contig, start, end: genome[start:end])
    assert sorted(set(snvs.position.tolist())) == list(range(2, 11))
    # TTA (Leu) → CTA (Leu) is synonymous, TTA → TCA (Ser) is not
    assert snvs.synonymous[(snvs.position == 5) & (snvs.alt == BASES.index("C"))].tolist() == [True]
    assert snvs.synonymous[(snvs.position == 6) & (snvs.alt == BASES.index("C"))].tolist() == [False]


def test_a_cds_without_a_strand_is_one_error_naming_the_line(tmp_path):
    gff = tmp_path / "bad.gff3"
    gff.write_text("c\tt\tCDS\t2\t11\t.\t+\t0\tID=a\nc\tt\tCDS\t2\t11\t.\t.\t0\tID=b\n")
    with pytest.raises(GffError, match=r"bad.gff3: line 2: CDS needs strand \+ or -"):
        read_coding_sequences(gff)


def test_auroc_counts_ties_half_and_llrs_read_alt_minus_ref(tmp_path):
    assert auroc(np.array([3.0, 2.0, 1.0, 0.0]), np.array([True, True, False, False])) == 1.0
    assert auroc(np.array([1.0, 1.0]), np.array([True, False])) == 0.5
    genome = "ATGAAATAA"
    gff = tmp_path / "x.gff3"
    gff.write_text("c\tt\tCDS\t1\t9\t.\t+\t0\tID=x\n")
    snvs = coding_snvs(read_coding_sequences(gff), lambda contig, start, end: genome[start:end])
    log_probs = np.log(np.array([0.1, 0.2, 0.3, 0.4]))
    llrs = snv_llrs(snvs, lambda contig, positions: np.tile(log_probs, (positions.size, 1)))
    np.testing.assert_allclose(llrs, log_probs[snvs.alt] - log_probs[snvs.ref])
