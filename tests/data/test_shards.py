"""Shards: windows, N handling, the tail rule, the reader contract, manifests and checksums."""

from __future__ import annotations

import gzip
import json
import random

import numpy as np
import pytest

from dnafm_lib.data.fasta import FastaFormatError
from dnafm_lib.data.shards import (
    ShardError,
    open_split,
    verify_shard_dir,
    write_genome_shards,
    write_manifest,
)
from dnafm_lib.model.tokenizer import N_ID, PAD_ID, decode, encode


def write_fasta(path, records, line_nt=60, opener=open):
    with opener(path, "wt") as handle:
        for name, sequence in records.items():
            handle.write(f">{name} some description\n")
            for start in range(0, len(sequence), line_nt):
                handle.write(sequence[start : start + line_nt] + "\n")
    return path


def random_dna(length, seed, alphabet="ACGT"):
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


def write_manifest_path(tmp_path, dirs, split="train"):
    path = tmp_path / f"{split}.manifest.json"
    write_manifest(split, dirs, path)
    return path


def test_windows_are_non_overlapping_per_contig_and_hold_the_sequence(tmp_path):
    chr1, chr2 = random_dna(250, 1), random_dna(130, 2)
    fasta = write_fasta(tmp_path / "g.fa", {"chr1": chr1, "chr2": chr2}, line_nt=7)
    write_genome_shards(fasta, tmp_path / "g", "g", window_nt=50, min_tail_nt=10)
    reader = open_split(write_manifest_path(tmp_path, [tmp_path / "g"]))

    assert reader.window == 50
    assert len(reader) == 5 + 3  # chr2: 50 + 50 + a 30-nt tail
    for i in range(len(reader)):
        genome, contig, start, end = reader.locate(i)
        tokens, length = reader[i]
        source = {"chr1": chr1, "chr2": chr2}[contig]
        assert genome == "g"
        assert decode(tokens[:length]) == source[start:end]
    assert [reader.locate(i)[2:] for i in range(5, 8)] == [(0, 50), (50, 100), (100, 130)]


def test_rows_are_padded_beyond_their_length(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", {"c": random_dna(70, 3)})
    write_genome_shards(fasta, tmp_path / "g", "g", window_nt=50, min_tail_nt=5)
    reader = open_split(write_manifest_path(tmp_path, [tmp_path / "g"]))
    tokens, length = reader[1]
    assert tokens.dtype == np.uint8 and tokens.shape == (50,)
    assert length == 20
    assert (tokens[20:] == PAD_ID).all() and (tokens[:20] != PAD_ID).all()


def test_tail_shorter_than_min_tail_is_dropped_and_counted(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", {"long_tail": random_dna(130, 4), "short_tail": random_dna(109, 5)})
    metadata = write_genome_shards(fasta, tmp_path / "g", "g", window_nt=50, min_tail_nt=10)
    assert [c["windows"] for c in metadata["contigs"]] == [3, 2]
    assert metadata["dropped_tail_windows"] == 1 and metadata["dropped_tail_nt"] == 9
    assert metadata["n_nt"] == 130 + 100


def test_all_n_windows_are_dropped_and_counted_but_partly_n_windows_kept(tmp_path):
    sequence = random_dna(50, 6) + "N" * 100 + "n" * 10 + random_dna(40, 7) + "N" * 20
    fasta = write_fasta(tmp_path / "g.fa", {"c": sequence})
    metadata = write_genome_shards(fasta, tmp_path / "g", "g", window_nt=50, min_tail_nt=10)
    reader = open_split(write_manifest_path(tmp_path, [tmp_path / "g"]))
    # windows: [0,50) ACGT, [50,100) N, [100,150) N, [150,200) 10 n + 40 ACGT, [200,220) all-N tail
    assert metadata["dropped_all_n_windows"] == 3
    assert [reader.locate(i)[2] for i in range(len(reader))] == [0, 150]
    tokens, length = reader[1]
    assert (tokens[:10] == N_ID).all() and length == 50


def test_iupac_codes_become_n_and_lower_case_is_kept_as_softmask(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", {"c": "ACGTRYacgtnK"})
    write_genome_shards(fasta, tmp_path / "g", "g", window_nt=12, min_tail_nt=1)
    reader = open_split(write_manifest_path(tmp_path, [tmp_path / "g"]))
    tokens, length = reader[0]
    assert decode(tokens) == "ACGTNNACGTNN"
    assert reader.softmask(0).tolist() == [False] * 6 + [True] * 5 + [False]
    assert reader.softmask(0).dtype == np.bool_


def test_windows_span_reader_blocks_unchanged(tmp_path):
    sequence = random_dna(5000, 8, "ACGTacgtN")
    fasta = write_fasta(tmp_path / "g.fa.gz", {"c": sequence}, line_nt=61, opener=gzip.open)
    write_genome_shards(fasta, tmp_path / "small", "g", window_nt=97, min_tail_nt=1, block_bytes=256)
    write_genome_shards(fasta, tmp_path / "large", "g", window_nt=97, min_tail_nt=1)
    small = np.load(tmp_path / "small" / "tokens.npy")
    assert np.array_equal(small, np.load(tmp_path / "large" / "tokens.npy"))
    assert np.array_equal(np.load(tmp_path / "small" / "softmask.npy"), np.load(tmp_path / "large" / "softmask.npy"))
    ids = encode(sequence)
    assert np.array_equal(small[:51].reshape(-1), ids[: 51 * 97])


def test_global_ids_run_across_genomes_in_manifest_order(tmp_path):
    dirs = []
    for number, length in enumerate([120, 45, 200]):
        fasta = write_fasta(tmp_path / f"g{number}.fa", {f"c{number}": random_dna(length, number)})
        write_genome_shards(fasta, tmp_path / f"g{number}", f"g{number}", window_nt=40, min_tail_nt=5)
        dirs.append(tmp_path / f"g{number}")
    manifest = write_manifest("train", dirs, tmp_path / "train.manifest.json")
    reader = open_split(tmp_path / "train.manifest.json")
    assert len(reader) == manifest["n_windows"] == 3 + 2 + 5
    assert [reader.locate(i)[0] for i in range(len(reader))] == ["g0"] * 3 + ["g1"] * 2 + ["g2"] * 5
    assert reader.locate(-1) == ("g2", "c2", 160, 200)
    with pytest.raises(IndexError):
        reader[len(reader)]


def test_reader_maps_rows_from_disk_and_opens_only_the_genomes_it_reads(tmp_path):
    dirs = []
    for number in range(2):
        fasta = write_fasta(tmp_path / f"g{number}.fa", {"c": random_dna(100, number)})
        write_genome_shards(fasta, tmp_path / f"g{number}", f"g{number}", window_nt=50, min_tail_nt=5)
        dirs.append(tmp_path / f"g{number}")
    reader = open_split(write_manifest_path(tmp_path, dirs))
    (tmp_path / "g1" / "tokens.npy").unlink()  # never touched when reading g0
    tokens_file = np.load(tmp_path / "g0" / "tokens.npy", mmap_mode="r+")
    tokens_file[1, 0] = N_ID  # a change on disk shows in the reader: rows are memory-mapped
    tokens_file.flush()
    assert reader[1][0][0] == N_ID
    with pytest.raises(ShardError, match="tokens.npy"):
        reader[2]


def test_order_is_a_deterministic_permutation_per_seed_and_epoch(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", {"c": random_dna(1000, 9)})
    write_genome_shards(fasta, tmp_path / "g", "g", window_nt=10, min_tail_nt=5)
    reader = open_split(write_manifest_path(tmp_path, [tmp_path / "g"]))
    again = open_split(tmp_path / "train.manifest.json")
    order = reader.order(seed=7, epoch=0)
    assert order.dtype == np.int64
    assert sorted(order.tolist()) == list(range(100))
    assert np.array_equal(order, again.order(7, 0))
    assert not np.array_equal(order, reader.order(7, 1))
    assert not np.array_equal(order, reader.order(8, 0))


def test_manifest_records_checksums_that_detect_a_corrupted_shard(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", {"c": random_dna(300, 10)})
    write_genome_shards(fasta, tmp_path / "g", "g", window_nt=50, min_tail_nt=5)
    manifest = write_manifest("validation", [tmp_path / "g"], tmp_path / "validation.manifest.json", verify=True)
    on_disk = json.loads((tmp_path / "validation.manifest.json").read_text())
    assert on_disk == manifest
    assert set(on_disk["genomes"][0]["files"]) == {"tokens.npy", "softmask.npy", "index.npy"}
    assert on_disk["vocab"][0] == "[PAD]" and on_disk["window_nt"] == 50 and on_disk["n_windows"] == 6
    open_split(tmp_path / "validation.manifest.json").verify()

    tokens = np.load(tmp_path / "g" / "tokens.npy", mmap_mode="r+")
    tokens[3, 7] = (tokens[3, 7] % 4) + 5 if tokens[3, 7] != 5 else 6
    tokens.flush()
    with pytest.raises(ShardError, match=r"tokens\.npy: sha256"):
        open_split(tmp_path / "validation.manifest.json").verify()
    with pytest.raises(ShardError, match=r"tokens\.npy: sha256"):
        verify_shard_dir(tmp_path / "g")


def test_manifest_paths_are_relative_so_a_moved_results_dir_still_opens(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", {"c": random_dna(100, 11)})
    write_genome_shards(fasta, tmp_path / "results" / "shards" / "g", "g", window_nt=50, min_tail_nt=5)
    write_manifest(
        "train", [tmp_path / "results" / "shards" / "g"], tmp_path / "results" / "shards" / "train.manifest.json"
    )
    (tmp_path / "results").rename(tmp_path / "moved")
    reader = open_split(tmp_path / "moved" / "shards" / "train.manifest.json")
    assert reader.locate(1) == ("g", "c", 50, 100)


def test_manifest_rejects_genomes_with_different_windows(tmp_path):
    for name, window in [("a", 50), ("b", 40)]:
        fasta = write_fasta(tmp_path / f"{name}.fa", {"c": random_dna(100, 12)})
        write_genome_shards(fasta, tmp_path / name, name, window_nt=window, min_tail_nt=5)
    with pytest.raises(ShardError, match="window_nt 40"):
        write_manifest("train", [tmp_path / "a", tmp_path / "b"], tmp_path / "train.manifest.json")
    assert not (tmp_path / "train.manifest.json").exists()


def test_empty_split_manifest_needs_a_window_and_reads_as_empty(tmp_path):
    with pytest.raises(ShardError, match="window_nt must be given"):
        write_manifest("test", [], tmp_path / "test.manifest.json")
    write_manifest("test", [], tmp_path / "test.manifest.json", window_nt=3998)
    reader = open_split(tmp_path / "test.manifest.json")
    assert len(reader) == 0 and reader.window == 3998 and reader.order(0, 0).size == 0


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty FASTA"),
        (b"ACGT\nACGT\n", "line 1: text before the first '>' header"),
        (b">a\nACGT\n>b\nAC\n>a\nGG\n", "duplicate record name 'a'"),
        (b">a\nACGT\n>b\nACGTAC*GT\n", "record 'b', offset 6: unexpected character '\\*'"),
    ],
)
def test_bad_fasta_gives_one_clear_error_and_no_shard_output(tmp_path, content, message):
    fasta = tmp_path / "bad.fa"
    fasta.write_bytes(content)
    with pytest.raises(FastaFormatError, match=message) as caught:
        write_genome_shards(fasta, tmp_path / "out", "g", window_nt=4, min_tail_nt=1)
    assert str(fasta) in str(caught.value)
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == [fasta]  # no temporary leftovers either


def test_truncated_gzip_gives_a_clear_error_and_no_shard_output(tmp_path):
    whole = tmp_path / "whole.fa.gz"
    write_fasta(whole, {"c": random_dna(20000, 13)}, opener=gzip.open)
    cut = tmp_path / "cut.fa.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(FastaFormatError, match="truncated gzip"):
        write_genome_shards(cut, tmp_path / "out", "g", window_nt=50, min_tail_nt=1)
    assert not (tmp_path / "out").exists()


def test_windows_line_endings_give_the_same_shards(tmp_path):
    sequence = random_dna(333, 14)
    unix = write_fasta(tmp_path / "unix.fa", {"c": sequence})
    windows = tmp_path / "windows.fa"
    windows.write_bytes(unix.read_bytes().replace(b"\n", b"\r\n"))
    write_genome_shards(unix, tmp_path / "u", "g", window_nt=50, min_tail_nt=1)
    write_genome_shards(windows, tmp_path / "w", "g", window_nt=50, min_tail_nt=1)
    assert np.array_equal(np.load(tmp_path / "u" / "tokens.npy"), np.load(tmp_path / "w" / "tokens.npy"))


def test_reader_pickles_small_for_dataloader_workers_and_reads_the_same(tmp_path):
    import pickle

    fasta = write_fasta(tmp_path / "g.fa", {"c": random_dna(50_000, 15)})
    write_genome_shards(fasta, tmp_path / "g", "g", window_nt=100, min_tail_nt=5)
    reader = open_split(write_manifest_path(tmp_path, [tmp_path / "g"]))
    before = reader[123]  # maps the genome's arrays
    payload = pickle.dumps(reader)
    assert len(payload) < 10_000  # the 50 kB of tokens are not in it
    copy = pickle.loads(payload)
    after = copy[123]
    assert np.array_equal(before[0], after[0]) and before[1] == after[1]
    assert copy.locate(123) == reader.locate(123)


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"format": "dnafm-shard-man', "not valid JSON"),
        ("[1, 2]", "format 'list', expected 'dnafm-shard-manifest/1'"),
        ('{"format": "dnafm-shard-manifest/0"}', "format 'dnafm-shard-manifest/0', expected 'dnafm-shard-manifest/1'"),
    ],
)
def test_unreadable_manifest_is_one_error_naming_the_file(tmp_path, content, message):
    (tmp_path / "train.manifest.json").write_text(content)
    with pytest.raises(ShardError, match=rf"train\.manifest\.json: {message}"):
        open_split(tmp_path / "train.manifest.json")
    with pytest.raises(ShardError, match=r"missing\.manifest\.json: no such shard manifest"):
        open_split(tmp_path / "missing.manifest.json")


def test_manifest_of_a_folder_that_is_not_a_shard_directory_names_it(tmp_path):
    (tmp_path / "g").mkdir()
    with pytest.raises(ShardError, match=rf"{tmp_path / 'g'}: not a shard directory \(no metadata.json\)"):
        write_manifest("train", [tmp_path / "g"], tmp_path / "train.manifest.json")
    assert not (tmp_path / "train.manifest.json").exists()
