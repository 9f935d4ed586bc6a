"""Writers cannot leave a truncated file (issue 21 item 4): on a full disk (a small tmpfs) a
bigWig, a text output and a command's output directory end in one error naming the output, and
nothing is left, under its final name or a temporary one."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from dnafm_lib.cli import main
from dnafm_lib.core.atomic import atomic_open
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.inference.tracks import writers
from dnafm_lib.inference.tracks.writers import BigWigWriter, check_bigwig

SIZES = [("chr1", 2_000_000), ("chr2", 5_000)]


def write_values(path, n_values):
    rng = np.random.default_rng(0)  # random values compress badly: n_values * ~4 bytes of file
    with BigWigWriter(path, SIZES) as writer:
        writer.add_bases("chr1", 0, rng.random(n_values))


def test_a_bigwig_that_does_not_fit_is_an_error_naming_it_and_leaves_nothing(small_disk, capfd):
    with pytest.raises(DnafmError, match=rf"^{small_disk / 'scores.bw'}: no space left on device"):
        write_values(small_disk / "scores.bw", 60_000)
    assert capfd.readouterr().err == ""  # no libBigWig noise besides the one error
    assert list(small_disk.iterdir()) == []


def test_a_bigwig_cut_short_at_close_is_caught_by_reading_it_back(small_disk, monkeypatch, capfd):
    # The data fits but the index and zoom levels written at close do not: libBigWig only prints.
    monkeypatch.setattr(writers, "MIN_FREE_BYTES", -(1 << 30))  # no early stop
    with pytest.raises(DnafmError, match=rf"^{small_disk / 'scores.bw'}: the bigWig was cut short") as caught:
        write_values(small_disk / "scores.bw", 40_000)
    assert "libBigWig said: [bwClose]" in str(caught.value)
    assert capfd.readouterr().err == ""  # its message is in the error, not on the terminal
    assert list(small_disk.iterdir()) == []


def test_a_whole_bigwig_passes_the_check_and_every_truncation_of_it_fails(tmp_path):
    path = tmp_path / "whole.bw"
    write_values(path, 5_000)
    check_bigwig(path, SIZES, 5_000)
    data = path.read_bytes()
    for keep in (10, 64, len(data) // 2, len(data) - 40):
        cut = tmp_path / f"cut{keep}.bw"
        cut.write_bytes(data[:keep])
        with pytest.raises(DnafmError, match="cut short"):
            check_bigwig(cut, SIZES, 5_000)


def test_a_bigwig_of_only_gaps_is_whole(tmp_path):
    with BigWigWriter(tmp_path / "gaps.bw", SIZES) as writer:
        writer.add_bases("chr1", 0, np.full(10, np.nan))
    check_bigwig(tmp_path / "gaps.bw", SIZES, 0)


def test_a_text_output_on_a_full_disk_names_the_output(small_disk):
    with pytest.raises(DnafmError, match=rf"^{small_disk / 'ism.tsv'}: no space left on device while writing it"):
        with atomic_open(small_disk / "ism.tsv") as handle:
            for _ in range(400):
                handle.write("x" * 1024)
    assert list(small_disk.iterdir()) == []


@pytest.mark.parametrize("command", ["prepare-genome", "shard"])
def test_prepare_genome_and_shard_on_a_full_disk_name_their_directory(small_disk, tmp_path, capsys, command):
    rng = np.random.default_rng(1)
    fasta = tmp_path / "big.fa"
    fasta.write_text(">chr1\n" + "".join(rng.choice(list("ACGT"), 1_500_000)) + "\n")
    assert main([command, "--genome", "g", "--fasta", str(fasta), "--out-dir", str(small_disk / "g")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"dnafm {command}: error: {small_disk / 'g'}: no space left on device while writing it; nothing was written"
    ]
    assert list(small_disk.iterdir()) == []


def test_ism_on_a_full_disk_is_one_line_naming_the_output_and_leaves_nothing(small_disk, tmp_path, capsys):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">chr1\n" + "ACGTTGCA" * 10 + "\n")
    (tmp_path / "r.bed").write_text("chr1\t2\t30\n")
    shutil.copy(fasta, tmp_path / "copy.fa")
    argv = ["ism", "--model", "tiny", "--fasta", str(fasta), "--regions", str(tmp_path / "r.bed")]
    assert main([*argv, "--out-dir", str(small_disk / "ism"), "--flank-bp", "4"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"dnafm ism: error: {small_disk / 'ism'}/"), lines
    assert "no space left on device" in lines[0]
    assert list(small_disk.iterdir()) == []
