import gzip

import pytest

from dnafm_lib.data.gff import GffError, read_features

GFF = (
    "##gff-version 3\n"
    "chr1\tsrc\tgene\t1\t30\t.\t+\t.\tName=g1\n"
    "\n# a comment\n"
    "chr1\tsrc\tCDS\t5\t4\t.\t+\t0\tName=insertion\n"
    "##FASTA\n>chr1\nACGT\n"
)


def test_features_are_0_based_half_open_and_stop_at_the_fasta_section(tmp_path):
    plain = tmp_path / "a.gff3"
    plain.write_text(GFF)
    packed = tmp_path / "b.gff3.gz"
    packed.write_bytes(gzip.compress(GFF.encode()))
    for path in (plain, packed):
        features = list(read_features(path))
        assert [(f.line_number, f.seqid, f.type, f.start, f.end) for f in features] == [
            (2, "chr1", "gene", 0, 30),
            (5, "chr1", "CDS", 4, 4),
        ]


@pytest.mark.parametrize(
    "line, message",
    [
        ("chr1\tsrc\tgene\t1\t30\n", "line 2: expected 9 tab-separated GFF3 columns, found 5"),
        ("chr1\tsrc\tgene\tone\t30\t.\t+\t.\t.\n", "line 2: start/end 'one'/'30' are not integers"),
        ("chr1\tsrc\tgene\t10\t5\t.\t+\t.\t.\n", "line 2: bad interval 10..5"),
    ],
)
def test_a_malformed_feature_line_is_one_error_naming_the_line(tmp_path, line, message):
    path = tmp_path / "bad.gff3"
    path.write_text("##gff-version 3\n" + line)
    with pytest.raises(GffError, match=message):
        list(read_features(path))
