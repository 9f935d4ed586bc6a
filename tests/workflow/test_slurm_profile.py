"""profiles/slurm as users and cluster admins meet it: `snakemake --profile slurm` from the repo root,
plain values, the partition file, and per-genome jobs grouped. No cluster needed (dry runs)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.slurm import repo_copy

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
GENOMES = REPO / "resources" / "demo"


def snakemake(work: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout
    )


def leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, str(key)))
    else:
        yield path, node


def test_slurm_at_the_repo_root_is_the_profiles_slurm_folder():
    assert (REPO / "slurm").is_symlink()
    assert (REPO / "slurm").resolve() == (REPO / "profiles" / "slurm").resolve()


def test_profile_values_are_plain_numbers_and_names_not_expressions():
    settings = yaml.safe_load(PROFILE.read_text())
    for path, value in leaves(settings):
        if isinstance(value, str):
            # No $VARIABLES and nothing Snakemake would evaluate as Python (calls, conditionals, operators).
            assert "$" not in value and not re.search(r"[()']|\bif\b|\belse\b", value), (path, value)
        else:
            assert isinstance(value, (int, float, bool)), (path, value)


def test_pretraining_asks_each_node_for_the_gpus_the_nt_cohort_trains_on():
    settings = yaml.safe_load(PROFILE.read_text())
    cohort = yaml.safe_load((REPO / "config" / "cohorts" / "nt_multispecies.yaml").read_text())
    pretrain = settings["set-resources"]["pretrain_model"]
    assert pretrain["gres"] == f"gpu:{cohort['pretrain']['nproc_per_node']}"
    assert pretrain["mpi"] == "srun" and "--requeue" in pretrain["slurm_extra"]


def test_partition_file_is_read_by_the_slurm_plugin():
    from snakemake_executor_plugin_slurm.partitions import read_partition_file

    partitions = {p.name: p for p in read_partition_file(REPO / "profiles" / "slurm" / "partitions.yaml")}
    assert partitions["gpu"].limits.max_gpu > 0 and partitions["cpu"].limits.max_gpu == 0
    assert "profiles/slurm/partitions.yaml" in PROFILE.read_text()  # named (commented) where it is switched on


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_snakemake_profile_slurm_dry_run_passes_from_the_repo_root(tmp_path):
    work = repo_copy(tmp_path)
    run = snakemake(work, "--profile", "slurm", "-n")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Using profile slurm" in run.stdout + run.stderr
    assert re.search(r"^pretrain_model\s+1$", run.stdout, flags=re.MULTILINE), run.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_prepare_and_shard_of_each_genome_are_one_slurm_job(tmp_path):
    """20 genomes: 40 per-genome steps become ceil(20 / group-components) group jobs, both steps of a
    genome in the same job."""
    work = repo_copy(tmp_path)
    fasta = GENOMES / "yersinia_plasmid_pPCP1_NC_005816.1.fna.gz"
    names = [f"g{index:02d}" for index in range(20)]
    sheet = "genome\tsource\taccession\tlocation\tsplit\tannotation\n" + "".join(
        f"{name}\tfile\t\t{fasta}\ttrain\t\n" for name in names
    )
    (work / "many.tsv").write_text(sheet)
    (work / "many.yaml").write_text(yaml.safe_dump({"genome_sheet": "many.tsv"}))
    splits = snakemake(work, "results/splits/genomes.tsv", "--cores", "1", "--configfile", "many.yaml")
    assert splits.returncode == 0, splits.stderr[-3000:]

    run = snakemake(work, "results/shards/train.manifest.json", "--profile", "slurm", "-n", "--configfile", "many.yaml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    per_group = yaml.safe_load(PROFILE.read_text())["group-components"]["genome"]
    # Each "Group job genome" block lists its jobs (rule name, then its wildcards); both steps of a
    # genome are in the same block.
    groups = []
    for block in run.stdout.split("Group job genome (jobs in lexicogr. order):")[1:]:
        steps, rule = {"prepare_genome": set(), "shard_genome": set()}, None
        for line in block.splitlines():
            stripped = line.strip()
            if stripped.startswith(("rule ", "localrule ", "checkpoint ")):
                rule = stripped.split()[1].rstrip(":")
                if rule not in steps:
                    break  # the group's listing ended
            elif stripped.startswith("wildcards: genome=") and rule in steps:
                steps[rule].add(stripped.removeprefix("wildcards: genome="))
        assert steps["prepare_genome"] == steps["shard_genome"]
        groups.append(steps["prepare_genome"])
    # Snakemake forms groups of `per_group` genomes (with more than 1 it merges them further while it runs).
    first_grouping = {frozenset(group) for group in groups if 0 < len(group) <= per_group}
    assert len(first_grouping) == math.ceil(len(names) / per_group)
    assert set().union(*first_grouping) == set(names)
    assert re.search(r"^prepare_genome\s+20$", run.stdout, flags=re.MULTILINE)
    assert re.search(r"^shard_genome\s+20$", run.stdout, flags=re.MULTILINE)


def test_a_score_job_asks_for_its_gpus_and_runs_one_rank_on_each(tmp_path):
    """tracks.gpus_per_job: 4 → each score_chunk job asks Slurm for 4 GPUs (resources gpu, the plugin's
    --gpus) and runs `dnafm tracks score --ranks 4`; batch_size auto reaches the command as it is."""
    work = repo_copy(tmp_path)
    (work / "gpus.yaml").write_text(yaml.safe_dump({"tracks": {"gpus_per_job": 4, "batch_size": "auto"}}))
    chunk = "results/tracks/arabidopsis_chloroplast/demo/chunks/chunk00000.npz"
    run = snakemake(work, chunk, "--profile", "slurm", "-n", "--configfile", "gpus.yaml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    job = run.stdout.split("rule score_chunk:")[1].split("Job stats:")[0]
    resources = re.search(r"resources: (.*)", job).group(1).split(", ")
    assert "gpu=4" in resources and "cpus_per_gpu=8" in resources
    command = re.search(r"Shell command: (dnafm tracks score .*)", job).group(1)
    assert "--ranks 4 " in command and "--batch-size auto " in command
