"""bgzip FASTA past 4 GB: 64-bit offsets in .fai and .gzi, read by the tracks' FASTA reader (pyfaidx) and pysam.

Genomes bigger than 4 GB (wheat, axolotl, lungfish) put both the uncompressed offsets (in .fai and
.gzi) and the compressed ones (the block starts in .gzi, shifted into BGZF virtual offsets) past
2**32. Neither case needs 4 GB written:

- uncompressed: one 64-KiB block of bases compresses to a few hundred bytes; the same block repeated
  66,000 times is 4.3 GB of FASTA in ~15 MB of file, indexed by htslib (pysam.faidx) as
  prepare_genome does;
- compressed: a sparse file whose second record's block starts 4.5 GB into the file (a hole before
  it takes no disk), with the .fai and .gzi that say so.
"""

from __future__ import annotations

import random
import struct
import zlib

import pytest

from dnafm_lib.data.genomes import BgzfWriter, _deflate_raw
from dnafm_lib.data.indexed_fasta import open_fasta

FOUR_GB = 2**32
LINE = b"ACGT" * 20 + b"\n"  # 80 nt per line, as prepare_genome writes
LINES_PER_BLOCK = 809  # 809 × 81 bytes = 65,529: one BGZF block (at most 65,536 uncompressed bytes)


def bgzf_block(data: bytes) -> bytes:
    compressed = _deflate_raw(data, 1)
    header = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00" + struct.pack("<H", len(compressed) + 25)
    return header + compressed + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data))


def read_gzi(path) -> list[tuple[int, int]]:
    data = path.read_bytes()
    (count,) = struct.unpack_from("<Q", data)
    values = struct.unpack_from(f"<{2 * count}Q", data, 8)
    return list(zip(values[0::2], values[1::2]))


def tail_record(seed: int, length: int) -> bytes:
    rng = random.Random(seed)
    seq = "".join(rng.choice("ACGT") for _ in range(length)).encode()
    return seq


def wrapped(seq: bytes) -> bytes:
    return b"".join(seq[i : i + 80] + b"\n" for i in range(0, len(seq), 80))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_records_past_4_gb_of_sequence_are_indexed_and_read_at_the_right_bases(tmp_path):
    import pysam

    path = tmp_path / "genome.fa.gz"
    repeats = FOUR_GB // (LINES_PER_BLOCK * len(LINE)) + 200  # chr1 ends ~13 MB past 4 GiB
    chr2 = tail_record(5, 5_000)
    repeated = bgzf_block(LINE * LINES_PER_BLOCK)
    with open(path, "wb") as handle:
        handle.write(bgzf_block(b">chr1\n"))
        for _ in range(repeats):
            handle.write(repeated)
        handle.write(bgzf_block(b">chr2\n" + wrapped(chr2)))
        handle.write(BgzfWriter.EOF_BLOCK)
    assert path.stat().st_size < 50_000_000  # 4.3 GB of FASTA, a few MB on disk

    pysam.faidx(str(path))  # what prepare_genome runs: writes .fai and .gzi

    chr1_nt = repeats * LINES_PER_BLOCK * 80
    fai = [line.split("\t") for line in (tmp_path / "genome.fa.gz.fai").read_text().splitlines()]
    assert [(name, int(length)) for name, length, *_ in fai] == [("chr1", chr1_nt), ("chr2", len(chr2))]
    assert int(fai[1][2]) > FOUR_GB  # chr2's first base, uncompressed offset
    assert max(u for _, u in read_gzi(tmp_path / "genome.fa.gz.gzi")) > FOUR_GB

    fasta = open_fasta(path)  # the tracks' reader (pyfaidx with the .gzi)
    assert fasta["chr2"][1234:1434] == chr2[1234:1434].decode()
    assert fasta["chr1"][chr1_nt - 8 : chr1_nt] == "ACGTACGT"
    with pysam.FastaFile(str(path)) as reader:
        assert reader.fetch("chr2", 4000, 4100) == chr2[4000:4100].decode()


def test_a_record_whose_block_starts_past_4_gb_of_file_is_read_through_the_gzi(tmp_path):
    import pysam

    path = tmp_path / "genome.fa.gz"
    chr1 = tail_record(1, 800)
    chr2 = tail_record(2, 3_000)
    first = bgzf_block(b">chr1\n" + wrapped(chr1))
    second_text = b">chr2\n" + wrapped(chr2)
    block_start = FOUR_GB + 2**28  # 4.5 GB into the file
    with open(path, "wb") as handle:
        handle.write(first)
        # The bytes between are a hole: no reader that follows the index goes there.
        handle.seek(block_start)
        handle.write(bgzf_block(second_text))
        handle.write(BgzfWriter.EOF_BLOCK)
    assert path.stat().st_size > FOUR_GB and path.stat().st_blocks * 512 < 10_000_000  # sparse

    # Uncompressed, chr2's header starts where chr1's text ends: the .gzi maps that to block_start.
    uncompressed_start = len(b">chr1\n" + wrapped(chr1))
    (tmp_path / "genome.fa.gz.gzi").write_bytes(
        struct.pack("<5Q", 2, len(first), uncompressed_start, block_start, uncompressed_start)
    )
    (tmp_path / "genome.fa.gz.fai").write_text(
        f"chr1\t{len(chr1)}\t6\t80\t81\nchr2\t{len(chr2)}\t{uncompressed_start + 6}\t80\t81\n"
    )

    fasta = open_fasta(path)
    assert fasta["chr2"][0:100] == chr2[:100].decode()
    assert fasta["chr2"][2900:3000] == chr2[2900:3000].decode()
    assert fasta["chr1"][700:800] == chr1[700:800].decode()
    with pysam.FastaFile(str(path)) as reader:
        assert reader.fetch("chr2", 1500, 1600) == chr2[1500:1600].decode()
