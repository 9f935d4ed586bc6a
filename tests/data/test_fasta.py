"""FASTA reading: records across blocks, compression kinds, and one clear error per bad input."""

from __future__ import annotations

import gzip
import random

import pytest
from Bio import bgzf

from dnafm_lib.data.fasta import FastaFormatError, iter_sequence_chunks, read_fasta, record_lengths


def random_dna(length, seed, alphabet="ACGTacgtN"):
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


def fasta_text(records, line_nt=60, newline="\n"):
    lines = []
    for name, sequence in records.items():
        lines.append(f">{name} description words")
        lines.extend(sequence[i : i + line_nt] for i in range(0, len(sequence), line_nt))
    return newline.join(lines) + newline


RECORDS = {"chr1": random_dna(3000, 1), "chr2": "", "chrM": random_dna(777, 2)}


@pytest.mark.parametrize("kind", ["plain", "gzip", "bgzip"])
def test_plain_gzip_and_bgzip_read_the_same_records(tmp_path, kind):
    text = fasta_text(RECORDS).encode()
    path = tmp_path / f"g.{kind}"
    if kind == "plain":
        path.write_bytes(text)
    elif kind == "gzip":
        path.write_bytes(gzip.compress(text))
    else:
        with bgzf.BgzfWriter(str(path), "wb") as writer:
            writer.write(text)
    assert read_fasta(path) == {name: seq.encode() for name, seq in RECORDS.items()}
    assert record_lengths(path) == [("chr1", 3000), ("chr2", 0), ("chrM", 777)]


def test_records_and_offsets_are_exact_when_lines_straddle_blocks(tmp_path):
    path = tmp_path / "g.fa.gz"
    path.write_bytes(gzip.compress(fasta_text(RECORDS, line_nt=71).encode()))
    rebuilt: dict[str, bytes] = {}
    for chunk in iter_sequence_chunks(path, block_bytes=50):
        assert chunk.offset == len(rebuilt.get(chunk.record, b""))
        rebuilt[chunk.record] = rebuilt.get(chunk.record, b"") + chunk.bases
    assert rebuilt == {name: seq.encode() for name, seq in RECORDS.items()}


@pytest.mark.parametrize("block_bytes", [1, 2, 3, 7, 64])
def test_headers_split_across_blocks_are_joined(tmp_path, block_bytes):
    path = tmp_path / "g.fa"
    path.write_bytes(fasta_text(RECORDS, line_nt=5, newline="\r\n").encode())
    chunks = list(iter_sequence_chunks(path, block_bytes=block_bytes))
    assert [c.record for c in chunks if c.offset == 0 and not c.bases] == list(RECORDS)
    rebuilt: dict[str, bytes] = {}
    for chunk in chunks:
        rebuilt[chunk.record] = rebuilt.get(chunk.record, b"") + chunk.bases
    assert rebuilt == {name: seq.encode() for name, seq in RECORDS.items()}


def test_header_sign_inside_a_line_is_an_unexpected_character(tmp_path):
    path = tmp_path / "g.fa"
    path.write_bytes(b">a\nACGT>ACGT\n")
    with pytest.raises(FastaFormatError, match="record 'a', offset 4: unexpected character '>'"):
        read_fasta(path)


def test_concatenated_gzip_members_are_read_whole(tmp_path):
    path = tmp_path / "g.fa.gz"
    path.write_bytes(gzip.compress(b">a\nACGT\n") + gzip.compress(b"ACGT\n>b\nTT\n"))
    assert read_fasta(path) == {"a": b"ACGTACGT", "b": b"TT"}


def test_windows_line_endings_are_accepted(tmp_path):
    path = tmp_path / "g.fa"
    path.write_bytes(fasta_text(RECORDS, newline="\r\n").encode())
    assert read_fasta(path) == {name: seq.encode() for name, seq in RECORDS.items()}


def test_empty_file_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "empty.fa"
    path.write_bytes(b"")
    with pytest.raises(FastaFormatError, match=rf"{path}: empty FASTA file"):
        read_fasta(path)


def test_blank_lines_only_count_as_empty(tmp_path):
    path = tmp_path / "blank.fa.gz"
    path.write_bytes(gzip.compress(b"\n\n  \n"))
    with pytest.raises(FastaFormatError, match="empty FASTA file"):
        read_fasta(path)


def test_sequence_without_header_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "noheader.fa"
    path.write_bytes(b"\n\nACGTACGT\n>a\nACGT\n")
    with pytest.raises(FastaFormatError, match=r"line 3: text before the first '>' header"):
        read_fasta(path)


def test_duplicate_record_names_are_an_error_naming_both_records(tmp_path):
    path = tmp_path / "dup.fa"
    path.write_bytes(b">chr1 first\nACGT\n>chr2\nA\n>chr1 again\nGG\n")
    with pytest.raises(FastaFormatError, match=r"duplicate record name 'chr1' \(records 1 and 3\)"):
        read_fasta(path)


def test_empty_record_name_is_an_error(tmp_path):
    path = tmp_path / "noname.fa"
    path.write_bytes(b">chr1\nACGT\n> \nACGT\n")
    with pytest.raises(FastaFormatError, match="record 2 has an empty name"):
        read_fasta(path)


@pytest.mark.parametrize(
    "line, offset, shown",
    [("ACGTACGT-A", 68, "'-'"), ("ACGU", 63, "'U'"), ("AC GT", 62, "' '"), ("ACG\x01", 63, "byte 0x01")],
)
def test_character_outside_iupac_is_an_error_naming_file_record_and_offset(tmp_path, line, offset, shown):
    path = tmp_path / "bad.fa.gz"
    path.write_bytes(gzip.compress(f">ok\nACGT\n>chr7 x\n{'A' * 60}\n{line}\n".encode()))
    with pytest.raises(FastaFormatError) as caught:
        read_fasta(path)
    assert str(caught.value).startswith(f"{path}: record 'chr7', offset {offset}: unexpected character {shown}")


def test_iupac_codes_and_lower_case_are_accepted(tmp_path):
    path = tmp_path / "iupac.fa"
    path.write_bytes(b">a\nACGTNRYSWKMBDHVacgtnryswkmbdhv\n")
    assert read_fasta(path)["a"] == b"ACGTNRYSWKMBDHVacgtnryswkmbdhv"


def test_truncated_gzip_is_a_clear_error(tmp_path):
    whole = gzip.compress(fasta_text({"a": random_dna(50_000, 3)}).encode())
    path = tmp_path / "cut.fa.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(FastaFormatError, match=rf"{path}: truncated gzip file"):
        read_fasta(path)


def test_corrupt_gzip_is_a_clear_error(tmp_path):
    whole = bytearray(gzip.compress(fasta_text({"a": random_dna(50_000, 4)}).encode()))
    whole[200:210] = b"\xff" * 10
    path = tmp_path / "corrupt.fa.gz"
    path.write_bytes(bytes(whole))
    with pytest.raises(FastaFormatError, match=rf"{path}: corrupt gzip data"):
        read_fasta(path)


def test_reader_stopped_early_releases_its_thread(tmp_path):
    import threading

    path = tmp_path / "g.fa.gz"
    path.write_bytes(gzip.compress(fasta_text({"a": random_dna(200_000, 5)}).encode()))
    before = threading.active_count()
    chunks = iter_sequence_chunks(path, block_bytes=1000)
    next(chunks)
    next(chunks)
    chunks.close()
    assert threading.active_count() == before


# ------------------------------------------------------------ xz, bzip2, zstd and old-Mac line ends


def _compress(kind: str, data: bytes) -> bytes:
    import bz2
    import lzma

    import zstandard

    if kind == "xz":
        return lzma.compress(data)
    if kind == "bzip2":
        return bz2.compress(data)
    return zstandard.ZstdCompressor().compress(data)


COMPRESSORS = ["xz", "bzip2", "zstd"]


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_xz_bzip2_and_zstd_read_the_same_records_in_small_blocks(tmp_path, kind):
    text = fasta_text(RECORDS).encode()
    path = tmp_path / f"g.fa.{kind}"
    # two streams/frames back to back, as pbzip2, pixz and `cat a.zst b.zst` write
    half = text.index(b">chrM")
    path.write_bytes(_compress(kind, text[:half]) + _compress(kind, text[half:]))
    expected = {name: seq.encode() for name, seq in RECORDS.items()}
    assert read_fasta(path) == expected
    chunks = list(iter_sequence_chunks(path, block_bytes=97))
    assert b"".join(c.bases for c in chunks if c.record == "chr1") == expected["chr1"]
    if kind != "zstd":  # zstd's decoder has no output cap (it is fed 2-KiB pieces instead)
        assert max(len(chunk.bases) for chunk in chunks) <= 97
    assert record_lengths(path) == [("chr1", 3000), ("chr2", 0), ("chrM", 777)]


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_truncated_xz_bzip2_and_zstd_are_a_clear_error(tmp_path, kind):
    whole = _compress(kind, fasta_text({"a": random_dna(50_000, 3)}).encode())
    path = tmp_path / f"cut.fa.{kind}"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(FastaFormatError, match=rf"^{path}: truncated {kind} file"):
        read_fasta(path)


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_corrupt_xz_bzip2_and_zstd_are_a_clear_error(tmp_path, kind):
    whole = bytearray(_compress(kind, fasta_text({"a": random_dna(50_000, 4)}).encode()))
    whole[40:60] = b"\xff" * 20
    path = tmp_path / f"corrupt.fa.{kind}"
    path.write_bytes(bytes(whole))
    with pytest.raises(FastaFormatError, match=rf"^{path}: corrupt {kind} data"):
        read_fasta(path)


@pytest.mark.parametrize("block_bytes", [5, 64, 1 << 22])
def test_old_mac_line_ends_read_like_unix_ones_and_are_flagged(tmp_path, block_bytes):
    path = tmp_path / "mac.fa"
    path.write_bytes(fasta_text(RECORDS, newline="\r").encode())
    flags: set[str] = set()
    chunks = list(iter_sequence_chunks(path, block_bytes=block_bytes, flags=flags))
    assert [c.record for c in chunks if c.offset == 0 and not c.bases] == list(RECORDS)
    assert read_fasta(path) == {name: seq.encode() for name, seq in RECORDS.items()}
    assert flags == {"cr-line-ends"}


def test_windows_line_ends_are_not_flagged_even_when_split_across_blocks(tmp_path):
    path = tmp_path / "win.fa"
    path.write_bytes(fasta_text(RECORDS, newline="\r\n").encode())
    for block_bytes in (2, 3, 61, 1 << 22):
        flags: set[str] = set()
        assert record_lengths(path) == [("chr1", 3000), ("chr2", 0), ("chrM", 777)]
        list(iter_sequence_chunks(path, block_bytes=block_bytes, flags=flags))
        assert flags == set(), block_bytes
