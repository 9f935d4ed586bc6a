"""The demo cohort's data stages run by Snakemake in a temporary copy: genomes, shards, manifests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyfaidx
import pytest

from dnafm_lib.data.fasta import read_fasta
from dnafm_lib.data.shards import open_split

REPO = Path(__file__).resolve().parents[2]
DATA_TARGETS = [f"results/shards/{split}.manifest.json" for split in ("train", "validation", "test")]


def workflow_copy(tmp_path: Path) -> Path:
    work = tmp_path / "workflow"
    work.mkdir()
    for name in ("Snakefile", "workflow", "config", "resources", "profiles", "envs"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, work / name)
        elif source.exists():
            shutil.copy2(source, work / name)
    return work


def snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def sheet_rows(work: Path) -> list[dict]:
    lines = (work / "config" / "genomes.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:] if line.strip()]


def expected_windows(length: int, window_nt: int, min_tail_nt: int) -> int:
    return length // window_nt + (length % window_nt >= min_tail_nt)


@pytest.mark.slow
def test_demo_cohort_data_stages_produce_genomes_shards_and_manifests(tmp_path):
    work = workflow_copy(tmp_path)
    done = snakemake(work, *DATA_TARGETS)
    assert done.returncode == 0, done.stderr[-3000:]

    rows = sheet_rows(work)
    import yaml

    shards_config = yaml.safe_load((work / "config" / "config.yaml").read_text())["shards"]
    window_nt, min_tail_nt = shards_config["window_nt"], shards_config["min_tail_nt"]
    windows_per_split = {"train": 0, "validation": 0, "test": 0}
    for row in rows:
        genome_dir = work / "results" / "genomes" / row["genome"]
        source = read_fasta(work / row["location"])
        indexed = pyfaidx.Fasta(str(genome_dir / "genome.fa.gz"))
        assert {name: str(indexed[name][:]).encode() for name in indexed.keys()} == source
        sizes = dict(line.split("\t") for line in (genome_dir / "chrom.sizes").read_text().splitlines())
        assert {name: int(length) for name, length in sizes.items()} == {n: len(s) for n, s in source.items()}
        provenance = json.loads((genome_dir / "provenance.json").read_text())
        assert provenance["source"] == "file" and provenance["location"] == row["location"]
        assert (genome_dir / "annotation.gff3").read_text() == (work / row["annotation"]).read_text()
        windows_per_split[row["split"]] += sum(
            expected_windows(len(s), window_nt, min_tail_nt) for s in source.values()
        )

    assert windows_per_split["validation"] > 0, "pretraining needs a validation set"
    for split, expected in windows_per_split.items():
        reader = open_split(work / "results" / "shards" / f"{split}.manifest.json")
        assert len(reader) == expected and reader.window == window_nt
        assert sorted(reader.genomes) == sorted(r["genome"] for r in rows if r["split"] == split)
        if expected:
            reader.verify()
            genome, contig, start, end = reader.locate(len(reader) - 1)
            tokens, length = reader[len(reader) - 1]
            assert length == end - start
            source = read_fasta(work / next(r["location"] for r in rows if r["genome"] == genome))[contig]
            from dnafm_lib.model.tokenizer import decode

            assert decode(tokens[:length]) == source[start:end].decode().upper()

    again = snakemake(work, "-n", *DATA_TARGETS)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_bad_genome_sheet_row_stops_the_workflow_naming_line_and_column(tmp_path):
    work = workflow_copy(tmp_path)
    sheet = work / "config" / "genomes.tsv"
    sheet.write_text(sheet.read_text() + "rat\tncbi\tRnor_6.0\t\ttrain\t\n")
    done = snakemake(work, "-n", *DATA_TARGETS)
    output = done.stdout + done.stderr  # snakemake reports to stdout when not on a terminal
    assert done.returncode != 0
    assert "config/genomes.tsv: line 5 (genome rat)" in output
    assert "'Rnor_6.0' is not an assembly accession" in output and "Traceback" not in output


@pytest.mark.slow
def test_wrong_type_in_shards_config_names_the_key_path(tmp_path):
    work = workflow_copy(tmp_path)
    (work / "bad.yaml").write_text("shards:\n  window_nt: big\n")
    done = snakemake(work, "-n", *DATA_TARGETS, "--configfile", "bad.yaml")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "bad.yaml: config shards.window_nt: 'big' is not of type 'integer'" in output
