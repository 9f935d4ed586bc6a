import gzip

import pytest

from dnafm_lib.data.gff import GffError, match_annotation, read_features

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


@pytest.mark.parametrize("kind", ["xz", "bzip2", "zstd"])
def test_xz_bzip2_and_zstd_annotations_read_like_plain_ones(tmp_path, kind):
    import bz2
    import lzma

    import zstandard

    compress = {"xz": lzma.compress, "bzip2": bz2.compress, "zstd": zstandard.ZstdCompressor().compress}[kind]
    path = tmp_path / f"a.gff3.{kind}"
    path.write_bytes(compress(GFF.encode()))
    assert [(f.seqid, f.start, f.end) for f in read_features(path)] == [("chr1", 0, 30), ("chr1", 4, 4)]
    path.write_bytes(compress(GFF.encode())[:-8])
    with pytest.raises(GffError, match=rf"^{path}: (truncated|corrupt) {kind}"):
        list(read_features(path))


def test_a_truncated_gzip_annotation_is_one_error_naming_it(tmp_path):
    path = tmp_path / "a.gff3.gz"
    path.write_bytes(gzip.compress((GFF * 200).encode())[:-30])
    with pytest.raises(GffError, match=rf"^{path}: truncated gzip file"):
        list(read_features(path))


def test_an_annotation_matching_no_contig_is_one_error_naming_both_files_and_some_names(tmp_path):
    path = tmp_path / "a.gff3"
    path.write_text("".join(f"NC_{i}\tsrc\tgene\t1\t30\t.\t+\t.\t.\n" for i in range(8)))
    with pytest.raises(GffError) as raised:
        match_annotation(path, "g.fa", ["chr1", "chr2"])
    message = str(raised.value)
    assert message.startswith(f"{path}: no seqid of the annotation is a record of g.fa")
    assert "'NC_0', 'NC_1', 'NC_2', 'NC_3', 'NC_4', … (8 in all)" in message and "FASTA: 'chr1', 'chr2'" in message


def test_an_annotation_partly_on_the_genome_gives_a_counted_warning_and_one_all_on_it_none(tmp_path):
    path = tmp_path / "a.gff3"
    path.write_text(GFF.replace("chr1\tsrc\tCDS", "chrUn\tsrc\tCDS"))
    assert match_annotation(path, "g.fa", ["chr1"]) == (
        f"{path}: 1 of 2 seqids are not records of g.fa, their features are left out: 'chrUn'"
    )
    assert match_annotation(path, "g.fa", ["chr1", "chrUn"]) is None


def test_an_annotation_without_features_is_an_error(tmp_path):
    path = tmp_path / "a.gff3"
    path.write_text("##gff-version 3\n# nothing\n")
    with pytest.raises(GffError, match=rf"^{path}: no feature lines"):
        match_annotation(path, "g.fa", ["chr1"])
