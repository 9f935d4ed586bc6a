"""Output directories: written only when absent, empty or the same command's earlier output."""

import os

import pytest

from dnafm_lib.core.atomic import atomic_dir
from dnafm_lib.core.output_dir import MARKER_NAME, OutputDirError, check_output_file, claim_output_dir


def listing(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_a_directory_of_user_files_is_refused_and_kept(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match=rf"^{data}: not empty and not an earlier output of dnafm ism"):
        with atomic_dir(data, kind="ism") as tmp:
            (tmp / "ism.tsv").write_text("x")
    assert listing(tmp_path) == ["data", "data/notes.txt"]


def test_an_earlier_output_of_the_same_kind_is_replaced_and_of_another_kind_refused(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out, kind="ism") as tmp:
        (tmp / "a").write_text("1")
    with atomic_dir(out, kind="ism") as tmp:
        (tmp / "b").write_text("2")
    assert listing(out) == [MARKER_NAME, "b"]
    with pytest.raises(OutputDirError, match=rf"^{out}: holds the output of dnafm ism, not of dnafm shard"):
        with atomic_dir(out, kind="shard"):
            pass
    assert listing(out) == [MARKER_NAME, "b"]


def test_an_empty_directory_is_written(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with atomic_dir(out, kind="ism") as tmp:
        (tmp / "a").write_text("1")
    assert (out / "a").read_text() == "1"


def test_an_input_inside_the_output_directory_is_refused_before_the_work(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "g.fa").write_text(">a\nACGT\n")
    ran = []
    with pytest.raises(OutputDirError, match=rf"^{data / 'g.fa'}: an input inside the output directory {data}"):
        with atomic_dir(data, kind="ism", inputs=[data / "g.fa"]):
            ran.append(True)
    assert not ran
    assert listing(tmp_path) == ["data", "data/g.fa"]


def test_an_input_that_is_the_output_directory_itself_is_refused(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(OutputDirError, match="an input inside the output directory"):
        claim_output_dir(tmp_path / "model", "tracks", inputs=[tmp_path / "model"])


def test_a_symlinked_output_directory_writes_its_target_and_leaves_no_old_directory(tmp_path):
    target = tmp_path / "real"
    link = tmp_path / "link"
    link.symlink_to(target)  # dangling first: the target is created
    for value in ("1", "2"):
        with atomic_dir(link, kind="ism") as tmp:
            (tmp / "a").write_text(value)
    assert link.is_symlink() and (link / "a").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_a_directory_claimed_for_file_by_file_writing_is_recognised_on_a_rerun(tmp_path):
    out = tmp_path / "tracks"
    (out / "chunks").mkdir(parents=True)  # earlier jobs' inputs, allowed
    claim_output_dir(out, "tracks", allowed=("chunks",))
    (out / "scores.bw").write_text("x")
    claim_output_dir(out, "tracks", allowed=("chunks",))
    with pytest.raises(OutputDirError, match="holds the output of dnafm tracks, not of dnafm ism"):
        claim_output_dir(out, "ism")


def test_an_output_file_that_is_an_input_is_refused(tmp_path):
    vcf = tmp_path / "calls.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n")
    os.symlink(vcf, tmp_path / "alias.vcf")
    with pytest.raises(OutputDirError, match="the output is also an input"):
        check_output_file(tmp_path / "alias.vcf", inputs=[vcf])
    check_output_file(tmp_path / "scored.vcf", inputs=[vcf])


def test_a_writer_killed_while_marking_leaves_a_temporary_the_rerun_accepts_and_sweeps(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "tracks"
    (out / "chunks").mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    temp = out / f".tmp-{MARKER_NAME}.{socket.gethostname()}.{int(gone.stdout)}.abc_12"
    temp.write_text("")  # what a SIGKILL between the marker's write and its rename leaves
    claim_output_dir(out, "tracks", allowed=("chunks",))
    assert listing(out) == [MARKER_NAME, "chunks"]
