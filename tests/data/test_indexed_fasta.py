"""Any FASTA in: plain, gzip (as NCBI serves it) and bgzip, for every command that reads at random."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pyfaidx
import pysam
import pytest

from dnafm_lib.cli import main
from dnafm_lib.data.fasta import FastaFormatError
from dnafm_lib.data.indexed_fasta import compression, ensure_indexed
from tests.support.tracks import genome_with_gaps, save_tiny_model, write_fasta

RECORDS = genome_with_gaps()


def plain(tmp_path):
    return write_fasta(tmp_path / "genome.fa", RECORDS)


def plain_gzip(tmp_path):
    path = tmp_path / "genome.fna.gz"
    with gzip.open(path, "wt") as handle:
        handle.writelines(f">{name} description\n{seq}\n" for name, seq in RECORDS)
    return path


def bgzip(tmp_path):
    path = tmp_path / "genome.fa.bgz"
    pysam.tabix_compress(str(plain(tmp_path)), str(path), force=True)
    return path


def sequences(path) -> dict[str, str]:
    fasta = pyfaidx.Fasta(str(path), sequence_always_upper=False, rebuild=False, as_raw=True)
    return {name: fasta[name][:] for name in fasta.keys()}


@pytest.mark.parametrize("make", [plain, plain_gzip, bgzip], ids=["plain", "gzip", "bgzip"])
def test_every_kind_of_fasta_reads_back_the_same_sequences(tmp_path, make):
    source = make(tmp_path)
    cache = tmp_path / "cache"
    ready = ensure_indexed(source, cache_dir=cache)
    assert sequences(ready) == dict(RECORDS)
    with pysam.FastaFile(str(ready)) as reference:
        assert list(reference.references) == [name for name, _ in RECORDS]


def test_plain_and_bgzip_are_indexed_in_place_and_plain_gzip_is_copied_once(tmp_path):
    assert [compression(make(tmp_path)) for make in (plain, plain_gzip, bgzip)] == ["plain", "gzip", "bgzip"]
    cache = tmp_path / "cache"
    for make in (plain, bgzip):
        source = make(tmp_path)
        assert ensure_indexed(source, cache_dir=cache) == source
        assert (tmp_path / f"{source.name}.fai").exists()
    assert not cache.exists()
    assert (tmp_path / "genome.fa.bgz.gzi").exists()

    source = plain_gzip(tmp_path)
    ready = ensure_indexed(source, cache_dir=cache)
    assert ready.parent.parent == cache and compression(ready) == "bgzip"
    assert {p.name for p in ready.parent.iterdir()} == {
        "genome.fa.gz",
        "genome.fa.gz.fai",
        "genome.fa.gz.gzi",
        "source.txt",
    }
    written = ready.stat().st_mtime_ns
    assert ensure_indexed(source, cache_dir=cache) == ready and ready.stat().st_mtime_ns == written
    assert len(list(cache.iterdir())) == 1  # no temporary folder left

    # A changed input is a new copy, not the stale one.
    with gzip.open(source, "wt") as handle:
        handle.write(">only\nACGT\n")
    again = ensure_indexed(source, cache_dir=cache)
    assert again != ready and sequences(again) == {"only": "ACGT"}


def test_a_stale_index_beside_a_plain_fasta_is_rebuilt(tmp_path):
    source = plain(tmp_path)
    ensure_indexed(source)
    write_fasta(source, [("new", "ACGTACGT")])
    fai = tmp_path / "genome.fa.fai"
    os.utime(fai, ns=(fai.stat().st_atime_ns, source.stat().st_mtime_ns - 10**10))  # older than the FASTA
    assert sequences(ensure_indexed(source)) == {"new": "ACGTACGT"}


@pytest.mark.parametrize("make", [plain, bgzip], ids=["plain", "bgzip"])
def test_index_temps_of_a_dead_writer_beside_the_fasta_are_swept_by_the_next_one(tmp_path, make):
    import sys

    source = make(tmp_path)
    indexes = [f"{source}.fai"] + ([f"{source}.gzi"] if make is bgzip else [])
    # a writer that dies holding temporary index files, named as every writer names them
    code = (
        "import sys, tempfile; from dnafm_lib.core.atomic import temp_prefix\n"
        "for index in sys.argv[1:]: tempfile.mkstemp(prefix=temp_prefix(index), dir=sys.argv[1].rsplit('/', 1)[0])"
    )
    subprocess.run([sys.executable, "-c", code, *indexes], check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    leftovers = sorted(p.name for p in tmp_path.glob(".tmp-*"))
    assert len(leftovers) == len(indexes)
    ensure_indexed(source)
    assert not list(tmp_path.glob(".tmp-*")), leftovers
    assert all(Path(index).stat().st_size > 0 for index in indexes)


def test_a_bad_gzip_fasta_is_one_error_and_leaves_no_copy(tmp_path):
    path = tmp_path / "bad.fna.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(">chr1\nACGT*ACGT\n")
    cache = tmp_path / "cache"
    with pytest.raises(FastaFormatError, match=r"bad.fna.gz: record 'chr1', offset 4: unexpected character '\*'"):
        ensure_indexed(path, cache_dir=cache)
    assert not cache.exists()


def test_a_missing_fasta_or_a_directory_is_named(tmp_path, capsys):
    assert (
        main(
            [
                "ism",
                "--model",
                "tiny",
                "--fasta",
                str(tmp_path / "nope.fa"),
                "--regions",
                "x.bed",
                "--out-dir",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    assert f"{tmp_path / 'nope.fa'}: no such FASTA file" in capsys.readouterr().err
    assert main(["tracks", "--fasta", str(tmp_path), "--model", "tiny", "--out-dir", str(tmp_path / "o")]) == 1
    assert f"{tmp_path}: a directory, not a FASTA file" in capsys.readouterr().err


@pytest.mark.slow
def test_one_shot_tracks_take_a_plain_gzip_fasta(tmp_path, capsys):
    source = plain_gzip(tmp_path)
    model = save_tiny_model(tmp_path / "model")
    out = tmp_path / "tracks"
    code = main(
        [
            "tracks",
            "--fasta",
            str(source),
            "--model",
            str(model),
            "--out-dir",
            str(out),
            "--window-bp",
            "300",
            "--stride-bp",
            "150",
            "--passes",
            "2",
            "--layer",
            "none",
            "--device",
            "cpu",
        ]
    )
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "tracks.json").read_text())
    assert summary["scored_bp"] == sum(sum(b not in "Nn" for b in seq) for _, seq in RECORDS)
    prepared = list((out / "genome").glob("*/genome.fa.gz"))
    assert len(prepared) == 1 and sequences(prepared[0]) == dict(RECORDS)
    assert np.isfinite(summary["scored_bp"])
    assert source.exists() and not (tmp_path / "genome.fna.gz.fai").exists()  # the input is left as it was


@pytest.mark.slow
def test_ism_takes_a_plain_gzip_fasta(tmp_path):
    source = plain_gzip(tmp_path)
    bed = tmp_path / "r.bed"
    bed.write_text("chrA\t10\t20\n")
    run = subprocess.run(
        [
            "dnafm",
            "ism",
            "--model",
            "tiny",
            "--fasta",
            str(source),
            "--regions",
            str(bed),
            "--out-dir",
            str(tmp_path / "ism"),
            "--flank-bp",
            "20",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DNAFM_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert run.returncode == 0, run.stderr
    assert len((tmp_path / "ism" / "ism.tsv").read_text().splitlines()) == 1 + 10 * 3
    assert list((tmp_path / "cache" / "fasta").glob("genome-*/genome.fa.gz"))


@pytest.mark.slow
def test_a_conversion_killed_midway_leaves_no_copy_and_the_rerun_writes_the_same_bytes(tmp_path):
    import signal
    import sys
    import time

    rng = np.random.default_rng(3)
    source = tmp_path / "big.fna.gz"
    with gzip.open(source, "wt", compresslevel=1) as handle:
        for i in range(8):
            handle.write(f">chr{i}\n")
            bases = np.array(list("ACGT"))[rng.integers(0, 4, 2_000_000)]
            handle.write("\n".join("".join(bases[j : j + 80]) for j in range(0, bases.size, 80)) + "\n")
    reference = ensure_indexed(source, cache_dir=tmp_path / "reference")
    cache = tmp_path / "cache"
    script = (
        "import sys; from dnafm_lib.data.indexed_fasta import ensure_indexed; "
        "ensure_indexed(sys.argv[1], cache_dir=sys.argv[2])"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(source), str(cache)], env={**os.environ, "PYTHONPATH": os.getcwd()}
    )
    deadline = time.monotonic() + 60
    while not list(cache.glob(".tmp-*/genome.fa.gz")) and time.monotonic() < deadline:
        time.sleep(0.02)  # kill it while it writes the bgzip copy
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not list(cache.glob("big-*/genome.fa.gz"))  # nothing half-built looks finished
    assert list(cache.glob(".tmp-*"))  # the dead run's temporary folder

    again = ensure_indexed(source, cache_dir=cache)
    for suffix in ("", ".fai", ".gzi"):
        assert Path(f"{again}{suffix}").read_bytes() == Path(f"{reference}{suffix}").read_bytes()
    assert [p.name for p in cache.iterdir()] == [again.parent.name]  # the dead run's temp swept


# ------------------------------------------------- one validation and every compression, in place or copied


def test_records_whose_names_collide_after_the_cut_are_refused_before_indexing(tmp_path):
    source = tmp_path / "twins.fa"
    source.write_text(">chr1 maternal\n" + "ACGT" * 375 + "\n>chr1 paternal\n" + "TTGA" * 375 + "\n")
    cache = tmp_path / "cache"
    with pytest.raises(FastaFormatError, match=rf"^{source}: duplicate record name 'chr1' \(records 1 and 2\)$"):
        ensure_indexed(source, cache_dir=cache)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["twins.fa"]  # no .fai, no cache


@pytest.mark.parametrize(
    "text, message",
    [
        (">a\nACGT\nAC!T\n", r"record 'a', offset 6: unexpected character '!'"),
        ("ACGT\n>a\nACGT\n", r"line 1: text before the first '>' header"),
        ("", r"empty FASTA file"),
    ],
)
def test_a_bad_plain_fasta_is_the_validators_error_naming_the_file(tmp_path, text, message):
    source = tmp_path / "bad.fa"
    source.write_text(text)
    with pytest.raises(FastaFormatError, match=rf"^{source}: {message}"):
        ensure_indexed(source, cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.fa"]


def _write_compressed(path: Path, kind: str, text: str) -> Path:
    import bz2
    import lzma

    import zstandard

    compress = {"xz": lzma.compress, "bzip2": bz2.compress, "zstd": zstandard.ZstdCompressor().compress}[kind]
    path.write_bytes(compress(text.encode()))
    return path


@pytest.mark.parametrize("kind", ["xz", "bzip2", "zstd"])
def test_xz_bzip2_and_zstd_fasta_are_read_through_an_indexed_copy(tmp_path, kind):
    text = "".join(f">{name} description\n{seq}\n" for name, seq in RECORDS)
    source = _write_compressed(tmp_path / f"genome.fna.{kind}", kind, text)
    assert compression(source) == kind
    ready = ensure_indexed(source, cache_dir=tmp_path / "cache")
    assert compression(ready) == "bgzip" and sequences(ready) == dict(RECORDS)


def test_a_truncated_xz_fasta_names_the_file_not_a_temporary_one(tmp_path):
    text = "".join(f">{name}\n{seq}\n" for name, seq in RECORDS)
    source = _write_compressed(tmp_path / "genome.fna.xz", "xz", text)
    source.write_bytes(source.read_bytes()[:-40])
    with pytest.raises(FastaFormatError, match=rf"^{source}: truncated xz file"):
        ensure_indexed(source, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    "name, text",
    [
        ("mac.fa", ">a first\rACGTACGT\rACG\r>b\rTTTT\r"),  # old-Mac line ends
        ("ragged.fa", ">a\nACGTAC\nGT\nACG\n>b\nTT\nTT\n"),  # lines of different lengths: faidx refuses them
    ],
)
def test_valid_fasta_that_faidx_cannot_index_as_it_is_is_read_through_a_copy(tmp_path, name, text):
    source = tmp_path / name
    source.write_bytes(text.encode())
    ready = ensure_indexed(source, cache_dir=tmp_path / "cache")
    assert ready != source and sequences(ready) == {"a": "ACGTACGTACG", "b": "TTTT"}
    assert ensure_indexed(source, cache_dir=tmp_path / "cache") == ready


def test_a_valid_fasta_is_validated_once_per_path_size_and_mtime(tmp_path):
    source = plain(tmp_path)
    cache = tmp_path / "cache"
    assert ensure_indexed(source, cache_dir=cache) == source
    # The same size and mtime: taken as the file already validated, not read again (what keeps
    # every scoring job of a large genome from re-reading it whole).
    stat = source.stat()
    data = bytearray(source.read_bytes())
    data[data.index(b"A", 20)] = ord("!")
    source.write_bytes(bytes(data))
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert ensure_indexed(source, cache_dir=cache) == source
    # A new mtime is a new file: validated again, and refused.
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(FastaFormatError, match=r"unexpected character '!'"):
        ensure_indexed(source, cache_dir=cache)


def test_a_cache_that_cannot_be_written_costs_a_validation_not_the_command(tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder would go\n")
    monkeypatch.setenv("DNAFM_CACHE_DIR", str(blocker / "cache"))
    source = plain(tmp_path)
    assert ensure_indexed(source) == source and sequences(source) == dict(RECORDS)
    assert ensure_indexed(source) == source  # validated again (nothing remembered), still fine


def test_a_prepared_genome_is_not_validated_again(tmp_path, monkeypatch):
    from dnafm_lib.data.genomes import prepare_genome

    monkeypatch.setenv("DNAFM_CACHE_DIR", str(tmp_path / "cache"))
    prepare_genome("g", tmp_path / "g", fasta=plain(tmp_path))
    fasta = tmp_path / "g" / "genome.fa.gz"
    assert ensure_indexed(fasta) == fasta and sequences(fasta) == dict(RECORDS)
    assert not (tmp_path / "cache").exists()  # the scoring jobs of a workflow do not re-read the genome
    ensure_indexed(plain(tmp_path))
    assert len(list((tmp_path / "cache" / "validated").iterdir())) == 1  # a plain input is remembered there
