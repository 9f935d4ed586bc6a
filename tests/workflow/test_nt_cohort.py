"""The paper's cohort (config/cohorts/nt_multispecies.yaml) plans from a fresh clone: no AIDO.DNA-7B
download needed, no fine-tuning stage that its unannotated genomes could never feed. Its splits
are built for real against the mock NCBI on 127.0.0.1 (the list and NCBI URLs are the only keys
a second --configfile changes), then the dry run of the whole cohort must plan."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import workflow as workflow_helpers
from tests.support.ncbi_server import FakeAssembly, FakeNcbi

REPO = workflow_helpers.REPO
NT = REPO / "config" / "cohorts" / "nt_multispecies.yaml"
RAT_OLD, RAT_NEW = "GCF_000001895.5", "GCF_015227675.2"  # the cohort's swap; tracks.genomes names the new one


@pytest.fixture
def ncbi():
    fake = FakeNcbi().start()
    yield fake
    fake.stop()


def snakemake(*args: str, configfiles: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args, "--configfile", *map(str, configfiles), "--cores", "2", "--nolock"],
        cwd=REPO,
        env=workflow_helpers.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def planned_jobs(run: subprocess.CompletedProcess) -> dict[str, int]:
    """{rule: count} from the dry run's job table (it ends at the first blank line)."""
    table = run.stdout.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]
    return {line.split()[0]: int(line.split()[1]) for line in table if not line.startswith("total")}


def test_the_nt_cohort_mines_only_its_own_export_and_asks_for_no_finetuning():
    cohort = yaml.safe_load(NT.read_text())
    assert cohort["tracks"]["models"] == {"dnafm_7b": "export"}  # AIDO.DNA-7B: opt-in, commented
    assert "# aido_dna_7b: resources/checkpoints/AIDO.DNA-7B" in NT.read_text()
    assert "finetune" not in cohort["stages"]


@pytest.mark.slow
def test_the_nt_cohort_plans_once_its_splits_exist(ncbi, tmp_path):
    # 103 listed genomes, as the NT rule needs 50 validation + 50 test + train ones: the
    # suppressed rat (swapped for mRatBN7.2 by the cohort's replacements) and 102 others.
    listed = [RAT_OLD, *(f"GCA_{n:09d}.1" for n in range(1, 103))]
    ncbi.add(FakeAssembly(RAT_OLD, "Rnor_6.0", status="suppressed", current_accession=RAT_NEW))
    ncbi.add(FakeAssembly(RAT_NEW, "mRatBN7.2"))
    for accession in listed[1:]:
        ncbi.add(FakeAssembly(accession, "asm1"))
    ncbi.static["urls.txt"] = "".join(f"{accession}\n" for accession in listed).encode()
    results = tmp_path / "results"
    local = tmp_path / "local.yaml"
    local.write_text(
        yaml.safe_dump(
            {
                "results_dir": str(results),
                "logs_dir": str(tmp_path / "logs"),
                "splits": {"nt_list": ncbi.static_url("urls.txt")},
                "ncbi": {"ftp_url": ncbi.ftp_url, "api_url": ncbi.api_url},
            }
        )
    )
    configfiles = [NT, local]

    splits = snakemake(str(results / "splits" / "genomes.tsv"), configfiles=configfiles)
    assert splits.returncode == 0, (splits.stdout + splits.stderr)[-3000:]

    plan = snakemake("-n", configfiles=configfiles)
    output = plan.stdout + plan.stderr
    assert plan.returncode == 0, output[-3000:]
    jobs = planned_jobs(plan)
    assert jobs["download_genome"] == 103  # the rat swapped in, every other listed genome
    assert jobs["prepare_genome_batch"] == 26  # 4 genomes per job
    assert {"pretrain_model", "export_model", "split_genome_chunks"} <= set(jobs)
    assert not set(jobs) & {"build_cds_windows", "compare_finetuning"}
    assert "AIDO.DNA-7B" not in output
