"""Outputs never replace what they did not make (issue 21): through the command line, a command
writes its output directory only when it is absent, empty or that command's earlier output, and
refuses one that holds its inputs; each refusal is one line naming the directory, with nothing touched.
"""

from __future__ import annotations

import pytest

import dnafm_lib
from dnafm_lib.cli import main
from dnafm_lib.core.output_dir import MARKER_NAME, OutputDirError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FASTA = ">chr1\n" + "ACGTTGCA" * 10 + "\n"


def listing(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"dnafm {command}: error: ")
    return lines[0]


@pytest.fixture
def user_data(tmp_path):
    """A user's folder: a FASTA, a BED and notes."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "g.fa").write_text(FASTA)
    (data / "r.bed").write_text("chr1\t2\t6\n")
    (data / "notes.txt").write_text("do not lose me")
    return data


def test_ism_into_the_folder_of_its_inputs_is_refused_and_deletes_nothing(user_data, tmp_path, capsys):
    before = listing(tmp_path)
    code = main(
        ["ism", "--model", "tiny", "--fasta", str(user_data / "g.fa"), "--regions", str(user_data / "r.bed")]
        + ["--out-dir", str(user_data), "--flank-bp", "4"]
    )
    assert code == 1
    line = one_error_line(capsys, "ism")
    assert f"{user_data / 'g.fa'}: an input inside the output directory {user_data}" in line
    assert listing(tmp_path) == before
    assert (user_data / "notes.txt").read_text() == "do not lose me"


def test_ism_into_a_folder_of_someone_elses_files_is_refused(user_data, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.tsv").write_text("precious\n")
    code = main(
        ["ism", "--model", "tiny", "--fasta", str(user_data / "g.fa"), "--regions", str(user_data / "r.bed")]
        + ["--out-dir", str(other), "--flank-bp", "4"]
    )
    assert code == 1
    assert f"{other}: not empty and not an earlier output of dnafm ism (holds results.tsv" in one_error_line(
        capsys, "ism"
    )
    assert listing(other) == ["results.tsv"]


def test_ism_rewrites_its_own_earlier_output(user_data, tmp_path, capsys):
    out = tmp_path / "ism"
    argv = ["ism", "--model", "tiny", "--fasta", str(user_data / "g.fa"), "--regions", str(user_data / "r.bed")]
    argv += ["--out-dir", str(out), "--flank-bp", "4"]
    assert main(argv) == 0
    first = (out / "ism.tsv").read_text()
    assert main(argv) == 0
    assert (out / "ism.tsv").read_text() == first
    assert MARKER_NAME in listing(out)


@pytest.mark.parametrize("command", ["prepare-genome", "shard"])
def test_prepare_genome_and_shard_into_a_users_folder_are_refused(user_data, tmp_path, capsys, command):
    fasta = tmp_path / "in.fa"
    fasta.write_text(FASTA)
    before = listing(tmp_path)
    assert main([command, "--genome", "g", "--fasta", str(fasta), "--out-dir", str(user_data)]) == 1
    assert f"{user_data}: not empty and not an earlier output of dnafm {command}" in one_error_line(capsys, command)
    assert listing(tmp_path) == before


def test_a_prepared_genome_is_not_replaced_by_shards(tmp_path, capsys):
    fasta = tmp_path / "in.fa"
    fasta.write_text(FASTA)
    out = tmp_path / "g"
    assert main(["prepare-genome", "--genome", "g", "--fasta", str(fasta), "--out-dir", str(out)]) == 0
    before = listing(out)
    capsys.readouterr()
    assert main(["shard", "--genome", "g", "--fasta", str(fasta), "--out-dir", str(out)]) == 1
    assert f"{out}: holds the output of dnafm prepare-genome, not of dnafm shard" in one_error_line(capsys, "shard")
    assert listing(out) == before


def test_a_symlinked_out_dir_is_written_through_twice_and_leaves_no_old_directory(tmp_path, capsys):
    fasta = tmp_path / "in.fa"
    fasta.write_text(FASTA)
    (tmp_path / "store").mkdir()
    link = tmp_path / "g"
    link.symlink_to(tmp_path / "store" / "g")
    for _ in range(2):
        assert main(["prepare-genome", "--genome", "g", "--fasta", str(fasta), "--out-dir", str(link)]) == 0
    assert link.is_symlink()
    assert (link / "genome.fa.gz").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g", "in.fa", "store"]
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["g"]


def test_save_model_does_not_replace_a_folder_it_did_not_write(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    model = dnafm_lib.load_model("tiny")
    with pytest.raises(OutputDirError, match=rf"^{folder}: not empty and not an earlier output of dnafm save_model"):
        dnafm_lib.save_model(model, folder)
    assert listing(folder) == ["notes.txt"]
    dnafm_lib.save_model(model, tmp_path / "m")
    dnafm_lib.save_model(model, tmp_path / "m")  # its own output: replaced
    assert dnafm_lib.load_model(tmp_path / "m") is not None


def test_score_variants_refuses_to_write_over_its_input_vcf(tmp_path, capsys):
    fasta = tmp_path / "g.fa"
    fasta.write_text(FASTA)
    vcf = tmp_path / "calls.vcf"
    text = "##fileformat=VCFv4.2\n##contig=<ID=chr1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t3\t.\tG\tA\t.\t.\t.\n"
    vcf.write_text(text)
    argv = ["score-variants", "--model", "tiny", "--fasta", str(fasta), "--vcf", str(vcf), "--out", str(vcf)]
    assert main(argv) == 1
    assert "the output is also an input" in one_error_line(capsys, "score-variants")
    assert vcf.read_text() == text


def test_one_shot_tracks_into_a_users_folder_are_refused(user_data, tmp_path, capsys):
    before = listing(tmp_path)
    argv = ["tracks", "--fasta", str(tmp_path / "data" / "g.fa"), "--model", "tiny", "--out-dir", str(user_data)]
    assert main(argv) == 1
    assert "an input inside the output directory" in one_error_line(capsys, "tracks")
    assert listing(tmp_path) == before
