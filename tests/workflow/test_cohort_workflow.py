"""Cohorts that name their stages: a tracks-only cohort of new genomes through the default target,
and the config mistakes that must stop a run at start (a dry run), not when a job runs.

Each test starts Snakemake (a dry run takes seconds): all are marked slow. The rules behind
them are tested in-process in tests/workflow/test_cohort.py."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyBigWig
import pytest
import yaml

from tests.support import workflow as workflow_helpers
from tests.support.tracks import (
    genome_with_gaps,
    many_short_contigs,
    random_bases,
    save_tiny_model,
)

REPO = Path(__file__).resolve().parents[2]


def snakemake(config_path: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = workflow_helpers.env(DNAFM_CACHE_DIR=str(config_path.parent / "cache"))  # the weights' sha256 cache
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--configfile", str(config_path), "--cores", "2", "--nolock", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_gzip_fasta(path: Path, records: list[tuple[str, str]]) -> Path:
    """Plain gzip (not bgzip), as NCBI serves genomes."""
    with gzip.open(path, "wt") as handle:
        for name, seq in records:
            handle.write(f">{name} a description\n")
            handle.writelines(seq[i : i + 70] + "\n" for i in range(0, len(seq), 70))
    return path


def new_cohort(tmp_path: Path, *, models: dict[str, str], stages=("tracks",), sheet_rows=None, **tracks) -> Path:
    """A cohort file of three genomes the project never saw: one with a GFF3, one with N runs,
    one of many small contigs, all plain-gzip FASTA, and no split column values."""
    rng = np.random.default_rng(7)
    annotated = [("ctg1", "".join(random_bases(rng, 3000)))]
    genomes = {
        "annotated": (write_gzip_fasta(tmp_path / "annotated.fna.gz", annotated), tmp_path / "annotated.gff3"),
        "gapped": (write_gzip_fasta(tmp_path / "gapped.fna.gz", genome_with_gaps()), None),
        "scaffolds": (write_gzip_fasta(tmp_path / "scaffolds.fna.gz", many_short_contigs(n=30)), None),
    }
    (tmp_path / "annotated.gff3").write_text(
        "##gff-version 3\n"
        "ctg1\ttest\tgene\t101\t1400\t.\t+\t.\tID=g1\n"
        "ctg1\ttest\tCDS\t101\t1400\t.\t+\t0\tID=c1;Parent=g1\n"
        "ctg1\ttest\tgene\t2001\t2900\t.\t-\t.\tID=g2\n"
    )
    sheet = tmp_path / "genomes.tsv"
    rows = (
        sheet_rows
        if sheet_rows is not None
        else [f"{name}\tfile\t\t{fasta}\t\t{gff or ''}" for name, (fasta, gff) in genomes.items()]
    )
    sheet.write_text("genome\tsource\taccession\tlocation\tsplit\tannotation\n" + "".join(r + "\n" for r in rows))
    igv_js = tmp_path / "igv.min.js"
    igv_js.write_text("/* igv.js stand-in: the browser test loads the real one */")
    config = {
        "cohort": "mine_test",
        "results_dir": str(tmp_path / "results"),
        "logs_dir": str(tmp_path / "logs"),
        "genome_sheet": str(sheet),
        "stages": list(stages),
        "tracks": {
            "models": models,
            "chunk_bp": 100000,
            "window_bp": 300,
            "stride_bp": 150,
            "passes": 2,
            "batch_size": 16,
            "threads": 1,
            "n_clusters": 3,
            "igv_js": str(igv_js),
            "device": "cpu",
            **tracks,
        },
    }
    path = tmp_path / "cohort.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_tracks_only_cohort_mines_new_genomes_with_a_checkpoint_and_nothing_else(tmp_path):
    model = save_tiny_model(tmp_path / "checkpoint")
    config = new_cohort(tmp_path, models={"tiny": str(model)})
    stale = tmp_path / "results" / "tracks" / "old_run_genome" / "tiny"  # another run's tracks
    stale.mkdir(parents=True)
    for name in ("tracks.json", "igv.html", "igv_session.xml"):
        (stale / name).write_text("{}")

    run = snakemake(config)  # the default target

    assert run.returncode == 0, run.stderr[-4000:]
    results = tmp_path / "results"
    assert sorted(p.name for p in results.iterdir()) == ["genomes", "tracks"]
    for stage_dir in ("splits", "shards", "pretrain", "models", "finetune"):
        assert not (results / stage_dir).exists(), stage_dir
    sources = {"annotated": None, "gapped": genome_with_gaps(), "scaffolds": many_short_contigs(n=30)}
    for genome in sources:
        out = results / "tracks" / genome / "tiny"
        assert (out / "igv.html").exists() and (out / "igv_session.xml").exists()
        fasta = results / "genomes" / genome / "genome.fa.gz"
        import pysam

        with pysam.FastaFile(str(fasta)) as reference, pyBigWig.open(str(out / "mlm_loss.bw")) as bw:
            assert bw.chroms() == dict(zip(reference.references, reference.lengths))
            for contig, length in zip(reference.references, reference.lengths):
                seq = reference.fetch(contig)
                is_base = np.array([b not in "Nn" for b in seq])
                intervals = bw.intervals(contig) or ()
                covered = np.zeros(length, dtype=int)
                for start, end, _ in intervals:
                    covered[start:end] += 1
                # every non-N base once, no N base at all
                assert (covered[is_base] == 1).all() and (covered[~is_base] == 0).all(), (genome, contig)
    assert "enrichment" in (results / "tracks" / "annotated" / "tiny" / "tracks.json").read_text()

    # The terminal tells what was made: a line per scoring/gather job, then where to look.
    told = run.stdout + run.stderr
    assert "prepared scaffolds: 30 records" in told
    assert "scored gapped/tiny chunk00000:" in told and "mean MLM loss" in told
    assert "tracks annotated/tiny: 3,000 bases scored" in told
    assert f"python3 -m http.server -d {results} 8000" in told
    assert "http://localhost:8000/tracks/annotated/tiny/igv.html" in told
    assert f"{results}/tracks/scaffolds/tiny/igv_session.xml" in told
    assert "old_run_genome" not in told  # only this run's genomes are listed


def dry_run(config: Path) -> subprocess.CompletedProcess:
    return snakemake(config, "-n", timeout=300)


def planned_jobs(run: subprocess.CompletedProcess) -> set[str]:
    """Rule names in the dry run's job table."""
    lines = run.stdout.split("Job stats:")[1].splitlines()[3:]
    return {line.split()[0] for line in lines if line.strip() and not line.startswith("total")}


@pytest.mark.slow
def test_tracks_only_cohort_plans_no_splits_pretraining_or_finetuning(tmp_path):
    config = new_cohort(tmp_path, models={"aido": str(save_tiny_model(tmp_path / "checkpoint"))})
    run = dry_run(config)
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = planned_jobs(run)
    assert "prepare_genome" in jobs and "split_genome_chunks" in jobs
    assert not jobs & {
        "build_splits",
        "shard_genome",
        "index_shards",
        "pretrain_model",
        "export_model",
        "build_cds_windows",
        "compare_finetuning",
    }


@pytest.mark.slow
def test_a_cohorts_models_replace_the_defaults_models(tmp_path):
    # config/config.yaml lists `demo: export`; a cohort naming its own model must not inherit it
    # (it would need the pretrain stage, which this cohort does not ask for).
    config = new_cohort(tmp_path, models={"aido": str(save_tiny_model(tmp_path / "checkpoint"))})
    run = dry_run(config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "/demo" not in run.stdout and "/models/" not in run.stdout
    assert not planned_jobs(run) & {"pretrain_model", "export_model"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(models={"demo": "export"}), "config tracks.models: demo: 'export' is the model of the pretrain stage"),
        (dict(stages=("pretrain", "tracks")), "add splits to stages"),
        (dict(sheet_rows=[]), "has a header but no genomes"),
        (dict(genomes=["annotated", "nonesuch"]), "config tracks.genomes: nonesuch not in the genome sheet"),
        (
            dict(models={"aido": "no/such/AIDO.DNA-7B"}),
            "config tracks.models: aido: no/such/AIDO.DNA-7B is not a checkpoint",
        ),
        (dict(target_job_minutes=30), "config tracks.target_job_minutes needs tracks.tokens_per_second"),
    ],
    ids=[
        "export-without-pretrain",
        "pretrain-without-splits",
        "header-only-sheet",
        "unknown-track-genome",
        "missing-checkpoint",
        "job-minutes-without-throughput",
    ],
)
def test_config_mistakes_stop_the_dry_run_with_one_line(tmp_path, change, message):
    change = dict(change)
    models = change.pop("models", {"aido": str(save_tiny_model(tmp_path / "checkpoint"))})
    config = new_cohort(tmp_path, models=models, **change)
    run = dry_run(config)
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert message in output, output[-3000:]
    assert "Traceback" not in output
    assert "dnafm_lib/" not in output, output[-3000:]  # a WorkflowError, not a trace into the package
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_an_nt_list_cohort_without_the_splits_stage_stops_instead_of_mining_the_demo_genomes(tmp_path):
    config = new_cohort(tmp_path, models={"aido": str(save_tiny_model(tmp_path / "checkpoint"))})
    cohort = yaml.safe_load(config.read_text())
    del cohort["genome_sheet"]  # config/config.yaml's demo sheet stays underneath
    cohort["splits"] = {"nt_list": str(tmp_path / "urls.txt")}
    config.write_text(yaml.safe_dump(cohort))
    run = dry_run(config)
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "config splits.nt_list: only the splits stage reads the NT list" in output, output[-3000:]
    assert "add splits to stages" in output and "Traceback" not in output
    assert "prepare_genome" not in output


@pytest.mark.slow
def test_a_global_batch_that_does_not_divide_stops_the_dry_run(tmp_path):
    config = new_cohort(tmp_path, models={"demo": "export"}, stages=("splits", "pretrain", "tracks"))
    cohort = yaml.safe_load(config.read_text())
    cohort["pretrain"] = {"nodes": 2, "nproc_per_node": 4, "train": {"global_batch_size": 36, "micro_batch_size": 2}}
    config.write_text(yaml.safe_dump(cohort))
    run = dry_run(config)
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "global_batch_size 36 is not divisible by micro_batch_size 2 × world size 8" in output, output[-3000:]
    assert "pretrain.nodes 2 × pretrain.nproc_per_node 4" in output


@pytest.mark.slow
def test_windows_longer_than_the_models_training_context_warn_at_start(tmp_path):
    import json

    model = save_tiny_model(tmp_path / "checkpoint")
    config_json = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config_json, "dnafm_pretraining_context_tokens": 256}))
    run = dry_run(new_cohort(tmp_path, models={"short": str(model)}, window_bp=300))
    assert run.returncode == 0, run.stderr[-3000:]
    told = run.stdout + run.stderr
    assert (
        "warning: tracks.models short: scoring 300-nt windows (302 tokens) with a model pretrained on 256-token "
        "inputs (254 nt)"
    ) in told
    assert told.count("warning: tracks.models short") == 1
