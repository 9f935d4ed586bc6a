"""Bad input and faults through the CLI: one line naming the culprit, exit status 1, nothing left behind.

Each test lists the output directory before and after, so a partial file or a ``.tmp-*``
leftover fails it.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import pyfaidx
import pytest

from dnafm_lib.cli import main
from dnafm_lib.core.atomic import atomic_dir, atomic_path, sweep_stale
from dnafm_lib.data.fasta import FastaFormatError, read_fasta
from dnafm_lib.data.genome_sheet import GenomeSheetError, read_genome_sheet, read_sheet_table
from dnafm_lib.data.genomes import GenomeError, prepare_genome
from dnafm_lib.data.shards import read_shard_metadata, write_genome_shards


def listing(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err


def one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"dnafm {command}: error: ")
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------------------- OS errors


def test_a_directory_as_fasta_is_one_line_naming_it(tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    (tmp_path / "out").mkdir()
    before = listing(tmp_path)
    code, err = run_cli(
        capsys,
        "prepare-genome",
        "--genome",
        "g",
        "--fasta",
        str(tmp_path / "adir"),
        "--out-dir",
        str(tmp_path / "out" / "g"),
    )
    assert code == 1
    assert one_error_line(err, "prepare-genome").endswith(f"{tmp_path / 'adir'}: is a directory")
    assert listing(tmp_path) == before


def test_a_missing_fasta_is_one_line_naming_it(tmp_path, capsys):
    code, err = run_cli(
        capsys, "shard", "--genome", "g", "--fasta", str(tmp_path / "nope.fa"), "--out-dir", str(tmp_path / "s")
    )
    assert code == 1
    assert one_error_line(err, "shard").endswith(f"{tmp_path / 'nope.fa'}: no such file or directory")
    assert listing(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_output_directory_is_one_line_naming_it(tmp_path, capsys):
    (tmp_path / "g.fa").write_text(">a\nACGT\n")
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        code, err = run_cli(
            capsys, "prepare-genome", "--genome", "g", "--fasta", str(tmp_path / "g.fa"), "--out-dir", str(out / "g")
        )
    finally:
        out.chmod(0o755)
    assert code == 1
    assert f"{out}" in one_error_line(err, "prepare-genome") and "permission denied" in err
    assert listing(out) == []


def test_a_file_where_the_output_parent_should_be_is_one_line_naming_it(tmp_path):
    """Root ignores permission bits (the test above is skipped under root): a file where a
    directory is needed is refused for every user, so this runs everywhere, as a real process."""
    (tmp_path / "g.fa").write_text(">a\nACGT\n")
    (tmp_path / "blocker").write_text("a file")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dnafm_lib",
            "prepare-genome",
            "--genome",
            "g",
            "--fasta",
            str(tmp_path / "g.fa"),
            "--out-dir",
            str(tmp_path / "blocker" / "g"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"dnafm prepare-genome: error: {tmp_path / 'blocker'}: is a file, so {tmp_path / 'blocker' / 'g'} "
        "cannot be created under it"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "g.fa"]


def test_an_unexpected_library_error_is_one_line_and_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.gff3.gz"
    bad.write_bytes(gzip.compress(b"c\t.\tgene\t1\t4\t.\t+\t.\tID=a\n" * 200)[:-30])
    (tmp_path / "g.fa").write_text(">c\nACGTACGTACGT\n")
    argv = [
        sys.executable,
        "-m",
        "dnafm_lib",
        "prepare-genome",
        "--genome",
        "g",
        "--fasta",
        str(tmp_path / "g.fa"),
        "--annotation",
        str(bad),
        "--out-dir",
        str(tmp_path / "out"),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"dnafm prepare-genome: error: {bad}: truncated gzip file "
        "(the compressed stream ends before its end marker); the download or copy was cut short"
    ]  # the same words as for a truncated FASTA: both read through data/compressed.py
    for debug_argv in (["--debug", *argv[3:]], [*argv[3:], "--debug"]):  # before or after the subcommand
        debug = subprocess.run([argv[0], "-m", "dnafm_lib", *debug_argv], capture_output=True, text=True, timeout=120)
        assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
        assert debug.stderr.strip().splitlines()[-1].startswith("dnafm prepare-genome: error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.gff3.gz", "g.fa"]


def test_the_error_boundary_names_the_type_of_an_exception_it_does_not_know(monkeypatch, capsys):
    import dnafm_lib.commands.model_info as model_info

    def broken(args):
        raise KeyError("hidden_size")

    monkeypatch.setattr(model_info, "run", broken)
    code, err = run_cli(capsys, "model-info", "--preset", "tiny")
    assert code == 1
    assert one_error_line(err, "model-info") == (
        "dnafm model-info: error: KeyError: 'hidden_size' (rerun with --debug for the traceback)"
    )


# ---------------------------------------------------------------------------- output paths


def test_an_existing_file_as_out_dir_is_an_error_and_is_kept(tmp_path, capsys):
    (tmp_path / "g.fa").write_text(">a\nACGT\n")
    (tmp_path / "out").write_text("precious")
    before = listing(tmp_path)
    code, err = run_cli(
        capsys, "prepare-genome", "--genome", "g", "--fasta", str(tmp_path / "g.fa"), "--out-dir", str(tmp_path / "out")
    )
    assert code == 1
    assert one_error_line(err, "prepare-genome").endswith(
        f"{tmp_path / 'out'}: exists and is not a directory; remove it or choose another output directory"
    )
    assert (tmp_path / "out").read_text() == "precious"
    assert listing(tmp_path) == before


def test_a_directory_as_an_output_file_is_an_error(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(Exception, match="is a directory, expected a file path"):
        with atomic_path(tmp_path / "x"):
            pass
    assert listing(tmp_path) == ["x"]


def test_temps_of_dead_writers_are_swept_and_live_ones_kept(tmp_path):
    import socket

    host = socket.gethostname()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    (tmp_path / f".tmp-out.{host}.{dead_pid}.abc123").mkdir()
    (tmp_path / f".tmp-out.{host}.{dead_pid}.abc123" / "big").write_bytes(b"x" * 1000)
    (tmp_path / f".old-out.{host}.{dead_pid}.zz").mkdir()
    (tmp_path / f".tmp-out.{host}.{os.getppid()}.live99").write_text("a live writer's")  # our parent lives
    (tmp_path / ".tmp-out.other-host.example.12.q").write_text("another host, recent")
    (tmp_path / ".tmp-outer.x").write_text("not ours")
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a").write_text("1")
    assert listing(tmp_path) == sorted(
        [
            "out",
            "out/.dnafm-output.json",
            "out/a",
            f".tmp-out.{host}.{os.getppid()}.live99",
            ".tmp-out.other-host.example.12.q",
            ".tmp-outer.x",
        ]
    )


def test_a_foreign_hosts_temp_is_swept_only_when_old(tmp_path):
    stale = tmp_path / ".tmp-out.node17.cluster.4242.k"
    stale.write_text("x")
    assert sweep_stale(tmp_path / "out") == []
    os.utime(stale, (0, 0))
    assert sweep_stale(tmp_path / "out") == [stale]


# ---------------------------------------------------------------------------- FASTA edge cases


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    (tmp_path / "bom.fa").write_bytes(b"\xef\xbb\xbf>chr1 desc\nACGT\n")
    assert read_fasta(tmp_path / "bom.fa") == {"chr1": b"ACGT"}


def test_a_non_utf8_header_is_an_error_naming_record_and_column(tmp_path, capsys):
    (tmp_path / "latin.fa").write_bytes(b">a\nAC\n>chr\xe92 x\nGT\n")
    (tmp_path / "out").mkdir()
    code, err = run_cli(
        capsys,
        "prepare-genome",
        "--genome",
        "g",
        "--fasta",
        str(tmp_path / "latin.fa"),
        "--out-dir",
        str(tmp_path / "out" / "g"),
    )
    assert code == 1
    assert one_error_line(err, "prepare-genome").endswith(
        f"{tmp_path / 'latin.fa'}: record 2 header, column 5: byte 0xe9 is not UTF-8 (header 'chr�2 x')"
    )
    assert listing(tmp_path / "out") == []


@pytest.mark.parametrize("where", ["last", "middle", "first"])
def test_zero_length_records_are_skipped_alike_by_prepare_and_shard(tmp_path, capsys, where):
    records = {
        "first": ">e\n>a\nACGTACGT\n>b\nGGCC\n",
        "middle": ">a\nACGTACGT\n>e\n>b\nGGCC\n",
        "last": ">a\nACGTACGT\n>b\nGGCC\n>e\n",
    }
    (tmp_path / "g.fa").write_text(records[where])
    code, err = run_cli(
        capsys,
        "prepare-genome",
        "--genome",
        "g",
        "--fasta",
        str(tmp_path / "g.fa"),
        "--out-dir",
        str(tmp_path / "genome"),
    )
    assert code == 0
    assert (
        err.strip() == f"dnafm prepare-genome: warning: {tmp_path / 'g.fa'}: skipped 1 zero-length record(s) "
        "(a header with no sequence): 'e'"
    )
    sizes = (tmp_path / "genome" / "chrom.sizes").read_text()
    fai = (tmp_path / "genome" / "genome.fa.gz.fai").read_text()
    assert sizes == "a\t8\nb\t4\n"
    assert [line.split("\t")[:2] for line in fai.splitlines()] == [["a", "8"], ["b", "4"]]
    assert list(pyfaidx.Fasta(str(tmp_path / "genome" / "genome.fa.gz")).keys()) == ["a", "b"]

    code, err = run_cli(
        capsys,
        "shard",
        "--genome",
        "g",
        "--fasta",
        str(tmp_path / "g.fa"),
        "--out-dir",
        str(tmp_path / "shard"),
        "--window-nt",
        "4",
        "--min-tail-nt",
        "1",
    )
    assert code == 0 and "warning" in err and "'e'" in err
    metadata = read_shard_metadata(tmp_path / "shard")
    assert [c["name"] for c in metadata["contigs"]] == ["a", "b"]
    assert metadata["skipped_empty_records"] == ["e"]


def test_a_fasta_of_only_empty_records_is_an_error_and_writes_nothing(tmp_path):
    (tmp_path / "g.fa").write_text(">a\n>b\n")
    with pytest.raises(GenomeError, match="no record has any sequence"):
        prepare_genome("g", tmp_path / "out", fasta=tmp_path / "g.fa")
    assert listing(tmp_path) == ["g.fa"]


def test_shard_of_a_directory_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "g.fa").write_text(">a\nACGT\n")
    (tmp_path / "s").write_text("x")
    with pytest.raises(Exception, match="exists and is not a directory"):
        write_genome_shards(tmp_path / "g.fa", tmp_path / "s", "g")
    assert listing(tmp_path) == ["g.fa", "s"]


# ---------------------------------------------------------------------------- genome sheet


SHEET_HEADER = "genome\tsource\taccession\tlocation\tsplit\tannotation\n"


@pytest.mark.parametrize(
    "row, message",
    [
        (
            "arabidopsis_chloroplast\tfile\tNC_1\tx.fa\ttrain\t\textra\n",
            "line 2: 7 tab-separated fields, but the header has 6",
        ),
        ("a\tfile\tNC_1\tx.fa\n", "line 2: 4 tab-separated fields, but the header has 6"),
    ],
)
def test_a_ragged_sheet_row_is_named_by_its_line(tmp_path, row, message):
    sheet = tmp_path / "genomes.tsv"
    sheet.write_text(SHEET_HEADER + row)
    with pytest.raises(GenomeSheetError) as error:
        read_genome_sheet(sheet)
    assert str(error.value).startswith(f"{sheet}: {message}")


def test_a_sheet_with_a_bom_and_crlf_reads_like_a_clean_one(tmp_path):
    clean = tmp_path / "clean.tsv"
    clean.write_text(SHEET_HEADER + "a\tfile\t\tx.fa\ttrain\t\n")
    windows = tmp_path / "windows.tsv"
    windows.write_bytes(b"\xef\xbb\xbf" + clean.read_bytes().replace(b"\n", b"\r\n"))
    assert read_sheet_table(windows).equals(read_sheet_table(clean))


def test_a_non_utf8_sheet_names_line_and_column(tmp_path):
    sheet = tmp_path / "genomes.tsv"
    sheet.write_bytes(SHEET_HEADER.encode() + b"caf\xe9\tfile\t\tx.fa\ttrain\t\n")
    with pytest.raises(GenomeSheetError, match=r"genomes.tsv: line 2, column 4: byte 0xe9 is not UTF-8"):
        read_genome_sheet(sheet)


@pytest.mark.parametrize(
    "location, message",
    [
        ("", "location is empty (a 'file' row needs the path of its FASTA)"),
        ("x" * 300, "location 'xxxxxxxxxx"),  # longer than a file name may be: the OS's reason follows
    ],
)
def test_a_file_row_with_an_empty_or_impossible_location_is_named(tmp_path, location, message):
    sheet = tmp_path / "genomes.tsv"
    sheet.write_text(SHEET_HEADER + f"g\tfile\t\t{location}\ttrain\t\n")
    with pytest.raises(GenomeSheetError) as error:
        read_genome_sheet(sheet, base_dir=tmp_path)
    assert str(error.value).startswith(f"{sheet}: line 2 (genome g): {message}")


@pytest.mark.parametrize("accession", ["../../../X", "TAIR10 chloroplast", "a/b"])
def test_a_sheet_accession_that_cannot_name_a_folder_is_named(tmp_path, accession):
    (tmp_path / "x.fa").write_text(">a\nACGT\n")
    sheet = tmp_path / "genomes.tsv"
    sheet.write_text(SHEET_HEADER + f"g\tfile\t{accession}\tx.fa\ttrain\t\n")
    with pytest.raises(GenomeSheetError) as error:
        read_genome_sheet(sheet, base_dir=tmp_path)
    assert str(error.value).startswith(f"{sheet}: line 2 (genome g): accession {accession!r}: not a valid name")


def test_a_gzip_sheet_is_refused_by_name(tmp_path):
    sheet = tmp_path / "genomes.tsv.gz"
    sheet.write_bytes(gzip.compress(SHEET_HEADER.encode()))
    with pytest.raises(GenomeSheetError, match="genomes.tsv.gz: is gzip-compressed; give the genome sheet as plain"):
        read_genome_sheet(sheet)


def test_fasta_errors_still_name_file_record_and_offset(tmp_path):
    (tmp_path / "x.fa").write_bytes(b">a\nAC*T\n")
    with pytest.raises(FastaFormatError, match=r"record 'a', offset 2: unexpected character '\*'"):
        read_fasta(tmp_path / "x.fa")


def test_os_errors_are_described_by_path_and_reason():
    from dnafm_lib.cli import describe_error

    assert describe_error(PermissionError(13, "Permission denied", "/data/out")) == "/data/out: permission denied"
    assert (
        describe_error(OSError(18, "Invalid cross-device link", "a", None, "b")) == "a → b: invalid cross-device link"
    )


# ------------------------------------------------ one validation for every FASTA entry point (issue 21)


def _one_genome_commands(tmp_path, fasta):
    """Every command that reads one genome at random, with inputs that would otherwise succeed."""
    (tmp_path / "r.bed").write_text("chr1\t0\t20\n")
    (tmp_path / "v.vcf").write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t5\t.\tA\tG\t.\t.\t.\n"
    )
    (tmp_path / "a.gff3").write_text("##gff-version 3\nchr1\tx\tCDS\t1\t90\t.\t+\t0\tID=c\n")
    out = tmp_path / "out"
    common = ["--model", "tiny", "--device", "cpu"]
    return {
        "prepare-genome": ["--genome", "g", "--fasta", str(fasta), "--out-dir", str(out / "g")],
        "tracks": [
            "--fasta",
            str(fasta),
            "--out-dir",
            str(out / "tracks"),
            "--window-bp",
            "64",
            "--stride-bp",
            "32",
            *common,
        ],
        "ism": ["--fasta", str(fasta), "--regions", str(tmp_path / "r.bed"), "--out-dir", str(out / "ism"), *common],
        "score-variants": [
            "--fasta",
            str(fasta),
            "--vcf",
            str(tmp_path / "v.vcf"),
            "--out",
            str(out / "s.vcf"),
            *common,
        ],
        "cds-windows": ["--fasta", str(fasta), "--gff", str(tmp_path / "a.gff3"), "--out", str(out / "w.tsv")],
        "generate": ["--fasta", str(fasta), "--region", "chr1:1-20", "--out", str(out / "g.fa"), *common],
    }


BAD_FASTA = {
    # two records whose names collide once the header is cut at its first space: faidx keeps one
    "twins": (
        ">chr1 maternal\n" + "ACGT" * 375 + "\n>chr1 paternal\n" + "TTGA" * 375 + "\n",
        "duplicate record name 'chr1' (records 1 and 2)",
    ),
    "stray": (
        ">chr1\n" + "ACGT" * 30 + "\nACGT#ACGT\n",
        "record 'chr1', offset 124: unexpected character '#' (expected A, C, G, T or an IUPAC code)",
    ),
    "no-header": ("ACGT\n>chr1\nACGT\n", "line 1: text before the first '>' header (not a FASTA file?)"),
    "bad-utf8": (b">chr1\xff\nACGT\n", "record 1 header, column 6: byte 0xff is not UTF-8 (header 'chr1\ufffd')"),
}


@pytest.mark.parametrize("case", list(BAD_FASTA))
def test_every_command_refuses_a_bad_fasta_with_the_same_line_and_writes_nothing(tmp_path, capsys, case):
    text, reason = BAD_FASTA[case]
    fasta = tmp_path / "in" / "g.fa"
    fasta.parent.mkdir()
    fasta.write_bytes(text if isinstance(text, bytes) else text.encode())
    commands = _one_genome_commands(tmp_path, fasta)
    (tmp_path / "out").mkdir()
    before = listing(tmp_path)
    for command, argv in commands.items():
        code, err = run_cli(capsys, command, *argv)
        assert code == 1, (command, err)
        assert one_error_line(err, command) == f"dnafm {command}: error: {fasta}: {reason}", command
        assert listing(tmp_path) == before, command  # no .fai beside the input, no output, no cache


@pytest.mark.parametrize("kind", ["xz", "bzip2", "zstd"])
def test_prepare_genome_reads_xz_bzip2_and_zstd_fasta(tmp_path, capsys, kind):
    import bz2
    import lzma

    import zstandard

    compress = {"xz": lzma.compress, "bzip2": bz2.compress, "zstd": zstandard.ZstdCompressor().compress}[kind]
    fasta = tmp_path / f"g.fna.{kind}"
    fasta.write_bytes(compress(b">chr1 one\nACGTACGTNN\n>chr2\nGGGCC\n"))
    code, err = run_cli(
        capsys, "prepare-genome", "--genome", "g", "--fasta", str(fasta), "--out-dir", str(tmp_path / "g")
    )
    assert code == 0, err
    assert read_fasta(tmp_path / "g" / "genome.fa.gz") == {"chr1": b"ACGTACGTNN", "chr2": b"GGGCC"}
    assert (tmp_path / "g" / "chrom.sizes").read_text() == "chr1\t10\nchr2\t5\n"


def test_generate_reads_a_region_of_an_old_mac_fasta(tmp_path, capsys):
    fasta = tmp_path / "mac.fa"
    fasta.write_bytes(b">chr1 desc\rACGTACGTAC\rGTACGTACGT\r>chr2\rTTTT\r")
    out = tmp_path / "g.fa"
    argv = ["--fasta", str(fasta), "--region", "chr1:3-18", "--mask-region", "chr1:5-6", "--out", str(out)]
    code, err = run_cli(capsys, "generate", *argv, "--model", "tiny", "--device", "cpu", "--seed", "1")
    assert code == 0, err
    sample = "".join(out.read_text().splitlines()[1:])
    template = "ACGTACGTACGTACGTACGT"[2:18]
    assert len(sample) == 16 and sample[:2] + sample[4:] == template[:2] + template[4:]


def _annotated(tmp_path, seqids):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">chr1\n" + "ACGT" * 100 + "\n>chr2\n" + "TTGCA" * 80 + "\n")
    gff = tmp_path / "a.gff3"
    gff.write_text("##gff-version 3\n" + "".join(f"{s}\tx\tCDS\t11\t90\t.\t+\t0\tID={s}\n" for s in seqids))
    return fasta, gff


def test_tracks_with_an_annotation_of_another_assembly_is_one_line_naming_both_files(tmp_path, capsys):
    fasta, gff = _annotated(tmp_path, ["NC_000001.11", "NC_000002.12"])
    out = tmp_path / "out"
    before = listing(tmp_path)
    code, err = run_cli(
        capsys, "tracks", "--fasta", str(fasta), "--annotation", str(gff), "--model", "tiny", "--out-dir", str(out)
    )
    assert code == 1
    line = one_error_line(err, "tracks")
    assert line == (
        f"dnafm tracks: error: {gff}: no seqid of the annotation is a record of {fasta} "
        "(annotation: 'NC_000001.11', 'NC_000002.12'; FASTA: 'chr1', 'chr2'); is it the annotation of another assembly?"
    )
    assert [p for p in listing(tmp_path) if p not in before and not p.endswith(".fai")] == []
    assert not out.exists()


def test_gather_and_cds_windows_check_the_annotation_too(tmp_path, capsys):
    fasta, gff = _annotated(tmp_path, ["NC_000001.11"])
    sizes = tmp_path / "chrom.sizes"
    sizes.write_text("chr1\t400\nchr2\t400\n")
    code, err = run_cli(
        capsys, "tracks", "gather", str(tmp_path / "none.npz"), "--chrom-sizes", str(sizes),
        "--annotation", str(gff), "--out-dir", str(tmp_path / "t"),
    )  # fmt: skip
    assert code == 1 and f"{gff}: no seqid of the annotation is a record of {sizes}" in one_error_line(err, "tracks")
    code, err = run_cli(
        capsys, "tracks", "browser", "--fasta", str(fasta), "--out-dir", str(tmp_path / "t"), "--genome", "g",
        "--model-name", "m", "--igv-js", str(gff), "--annotation", str(gff),
    )  # fmt: skip
    assert code == 1 and f"{gff}: no seqid of the annotation is a record of {fasta}" in one_error_line(err, "tracks")
    code, err = run_cli(
        capsys, "cds-windows", "--fasta", str(fasta), "--gff", str(gff), "--out", str(tmp_path / "w.tsv")
    )
    assert code == 1 and f"{gff}: no seqid of the annotation is a record of {fasta}" in one_error_line(
        err, "cds-windows"
    )
    assert not (tmp_path / "w.tsv").exists() and not (tmp_path / "t").exists()


def test_cds_windows_with_an_annotation_partly_on_the_genome_warns_and_counts(tmp_path, capsys):
    fasta, gff = _annotated(tmp_path, ["chr1", "chrUn_1", "chrUn_2"])
    code, err = run_cli(
        capsys, "cds-windows", "--fasta", str(fasta), "--gff", str(gff), "--out", str(tmp_path / "w.tsv"),
        "--window-bp", "20", "--block-bp", "100",
    )  # fmt: skip
    assert code == 0, err
    assert (
        f"dnafm cds-windows: warning: {gff}: 2 of 3 seqids are not records of {fasta}, "
        "their features are left out: 'chrUn_1', 'chrUn_2'"
    ) in err.splitlines()
    assert (tmp_path / "w.tsv").exists()
