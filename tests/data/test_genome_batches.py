"""Many genomes per job (prepare.genomes_per_job): the batches, the batch command, and the workflow.

The batch path must leave exactly the files the one-genome rules write (only provenance's
prepared_at differs between any two runs), also after a SIGKILL mid-batch and a rerun.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from dnafm_lib.data.genome_batches import (
    RUNTIME_BASE_MIN,
    GenomeBatchError,
    adopt_batched_genome,
    batch_of,
    batch_runtime_minutes,
    genome_batches,
    prepare_batch,
)
from dnafm_lib.data.genomes import prepare_genome
from dnafm_lib.data.shards import write_genome_shards
from tests.support import workflow as workflow_helpers
from tests.support.tracks import write_fasta

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "resources" / "demo"
DEMO_FASTAS = {
    "arabidopsis_chloroplast": DEMO / "arabidopsis_chloroplast_NC_000932.1.fna.gz",
    "yersinia_pPCP1": DEMO / "yersinia_plasmid_pPCP1_NC_005816.1.fna.gz",
}


def tree(directory: Path) -> dict[str, bytes]:
    """Every file below `directory`, provenance's prepared_at left out (the one field two runs differ in)."""
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "provenance.json":
            record = json.loads(data)
            record.pop("prepared_at")
            data = json.dumps(record, sort_keys=True).encode()
        files[str(path.relative_to(directory))] = data
    return files


def test_batches_are_consecutive_runs_and_appending_a_genome_changes_only_the_last():
    names = [f"g{i}" for i in range(7)]
    batches = genome_batches(names, 3)
    assert batches == {"batch00000": ["g0", "g1", "g2"], "batch00001": ["g3", "g4", "g5"], "batch00002": ["g6"]}
    grown = genome_batches(names + ["g7"], 3)
    assert {k: v for k, v in grown.items() if k != "batch00002"} == {
        k: v for k, v in batches.items() if k != "batch00002"
    }
    assert batch_of("g4", names, 3) == "batch00001"
    assert all(batch_of(g, names, 3) == name for name, members in batches.items() for g in members)
    assert genome_batches(names, 1)["batch00006"] == ["g6"]
    with pytest.raises(GenomeBatchError, match="genome 'g9' is in no batch"):
        batch_of("g9", names, 3)
    with pytest.raises(GenomeBatchError, match="genomes_per_job must be at least 1, got 0"):
        genome_batches(names, 0)


def test_a_batch_put_in_place_holds_the_files_of_the_one_genome_path(tmp_path):
    genomes_dir = tmp_path / "batched" / "genomes"
    entries = [{"genome": name, "fasta": str(path), "source": "file"} for name, path in DEMO_FASTAS.items()]
    staging = tmp_path / "staging" / "batch00000"
    provenances = prepare_batch(entries, staging, genomes_dir=genomes_dir, window_nt=254, min_tail_nt=128)
    assert [p["genome"] for p in provenances] == list(DEMO_FASTAS)
    for name, fasta in DEMO_FASTAS.items():
        adopt_batched_genome(staging, name, genomes_dir / name, tmp_path / "batched" / "shards" / name)
        # The one-genome path, with the same final paths as the batch records.
        single = tmp_path / "single"
        prepare_genome(name, single / "genomes" / name, fasta=fasta, source="file")
        write_genome_shards(
            single / "genomes" / name / "genome.fa.gz",
            single / "shards" / name,
            name,
            window_nt=254,
            min_tail_nt=128,
            source_fasta_name=str(genomes_dir / name / "genome.fa.gz"),
        )
        for part in ("genomes", "shards"):
            assert tree(tmp_path / "batched" / part / name) == tree(single / part / name), (part, name)


def test_a_bad_genome_fails_the_batch_naming_its_file_and_leaves_no_staging(tmp_path):
    bad = tmp_path / "bad.fa"
    bad.write_text(">chr1\nACGTXYZ\n")
    entries = [
        {"genome": "good", "fasta": str(DEMO_FASTAS["yersinia_pPCP1"])},
        {"genome": "bad", "fasta": str(bad)},
    ]
    command = [
        sys.executable,
        "-m",
        "dnafm_lib",
        "prepare-batch",
        "--genomes-json",
        json.dumps(entries),
        "--out-dir",
        str(tmp_path / "staging" / "batch00000"),
        "--genomes-dir",
        str(tmp_path / "genomes"),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert str(bad) in done.stderr and "Traceback" not in done.stderr
    assert list((tmp_path / "staging").iterdir()) == []  # no staging folder, no temp


@pytest.mark.parametrize(
    "text, message",
    [
        ("[{", "--genomes-json: not JSON"),
        ("[]", "expected a non-empty JSON list"),
        ('[{"fasta": "x.fa"}]', "entry 1 is not an object with a genome name"),
        ('[{"genome": "a", "fasta": "a.fa"}, {"genome": "b", "fastq": "b.fq"}]', "entry 2 (b): unknown key(s) fastq"),
    ],
)
def test_bad_genomes_json_is_one_clear_error(tmp_path, text, message):
    command = [sys.executable, "-m", "dnafm_lib", "prepare-batch", "--genomes-json", text]
    command += ["--out-dir", str(tmp_path / "out"), "--genomes-dir", str(tmp_path / "genomes")]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- the workflow


@pytest.fixture(scope="module")
def sheet(tmp_path_factory) -> Path:
    """A 6-Mb genome first, so the kill can land inside the first batch, then two demo genomes."""
    root = tmp_path_factory.mktemp("batch_inputs")
    rng = np.random.default_rng(1)
    contigs = [(f"chr{i}", "".join(np.array(list("ACGTacgtN"))[rng.integers(0, 9, 3_000_000)])) for i in range(2)]
    big = write_fasta(root / "big.fa", contigs, width=80)
    rows = [("big", big, "train"), *((name, path, "train") for name, path in DEMO_FASTAS.items())]
    path = root / "genomes.tsv"
    path.write_text(
        "genome\tsource\taccession\tlocation\tsplit\tannotation\n"
        + "".join(f"{name}\tfile\t\t{location}\t{split}\t\n" for name, location, split in rows)
    )
    return path


def cohort(root: Path, sheet: Path, genomes_per_job: int) -> Path:
    config = {
        "cohort": "batch_test",
        "results_dir": str(root / "results"),
        "logs_dir": str(root / "logs"),
        "genome_sheet": str(sheet),
        "stages": ["splits", "pretrain"],
        "splits": {"nt_list": None, "validation_genomes": 0, "test_genomes": 0, "replacements": {}},
        "prepare": {"genomes_per_job": genomes_per_job},
    }
    path = root / "cohort.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake_command(config: Path) -> list[str]:
    target = str(config.parent / "results" / "shards" / "train.manifest.json")
    return [sys.executable, "-m", "snakemake", target, "--configfile", str(config), "--cores", "2", "--nolock"]


def environment() -> dict:
    return workflow_helpers.env()


def run_to_end(config: Path) -> str:
    done = subprocess.run(snakemake_command(config), cwd=REPO, env=environment(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stderr


def outputs(root: Path) -> dict[str, bytes]:
    """The genomes and shards folders, with the results path written as <results> (runs differ in it)."""
    files = {}
    for part in ("genomes", "shards"):
        for name, data in tree(root / "results" / part).items():
            files[f"{part}/{name}"] = data.replace(str(root / "results").encode(), b"<results>")
    return files


@pytest.mark.slow
def test_batched_workflow_writes_the_one_genome_files_and_survives_a_kill(tmp_path, sheet):
    single = tmp_path / "single"
    single.mkdir()
    run_to_end(cohort(single, sheet, 1))
    want = outputs(single)
    assert "shards/big/tokens.npy" in want and "genomes/yersinia_pPCP1/genome.fa.gz.fai" in want

    batched = tmp_path / "batched"
    batched.mkdir()
    config = cohort(batched, sheet, 2)
    staging = batched / "results" / "genome_batches"

    # SIGKILL Snakemake and its jobs while the first batch (big + chloroplast) is being written.
    process = subprocess.Popen(
        snakemake_command(config),
        cwd=REPO,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    try:
        while not (staging.is_dir() and any(staging.glob(".tmp-batch00000.*/big"))):
            assert process.poll() is None, f"the run ended (exit {process.returncode}) before the batch started"
            assert time.monotonic() < deadline, "the first batch never started"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert not (batched / "results" / "genomes" / "big").exists()

    log = run_to_end(config)
    assert "prepare_genome_batch" in log and "adopt_batched_genome" in log
    assert outputs(batched) == want
    # The staging folders are temporary, and the kill's temp was swept.
    assert not staging.exists() or list(staging.iterdir()) == []
    assert not (batched / "logs" / "prepare_genome").exists()  # no one-genome jobs ran


def test_a_batch_asks_for_minutes_by_its_fasta_sizes_and_plans_before_the_downloads(tmp_path):
    small = [{"genome": name, "fasta": str(path)} for name, path in DEMO_FASTAS.items()]
    big = tmp_path / "big.fa.gz"
    big.write_bytes(os.urandom(30_000_000))  # 30 MB of "gzip": ~2 more minutes at 4.2 s per MB
    assert batch_runtime_minutes(small) == RUNTIME_BASE_MIN + 1
    assert batch_runtime_minutes(small + [{"genome": "big", "fasta": str(big)}]) == RUNTIME_BASE_MIN + 3
    # Not downloaded yet (a dry run plans the batch before its downloads): counts nothing for now.
    later = {"genome": "later", "download_record": str(tmp_path / "downloads" / "later" / "download.json")}
    assert batch_runtime_minutes(small + [later]) == RUNTIME_BASE_MIN + 1


def test_a_batch_warns_of_empty_records_as_prepare_genome_does(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", [("chr1", "ACGT" * 50), ("empty", ""), ("chr2", "GGCC" * 40)])
    command = [sys.executable, "-m", "dnafm_lib", "prepare-batch", "--out-dir", str(tmp_path / "staging" / "b")]
    command += ["--genomes-dir", str(tmp_path / "genomes"), "--window-nt", "100", "--min-tail-nt", "10"]
    command += ["--genomes-json", json.dumps([{"genome": "g", "fasta": str(fasta)}])]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"warning: {fasta}" in done.stderr and "empty" in done.stderr
    assert (tmp_path / "staging" / "b" / "g" / "genome" / "chrom.sizes").read_text().split() == [
        "chr1",
        "200",
        "chr2",
        "160",
    ]
