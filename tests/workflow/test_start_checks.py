"""Every workflow start check ends in one WorkflowError line naming the culprit: no Python
traceback, no schema dump (issue 21). Each test is a real ``snakemake -n``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.tracks import save_tiny_model
from tests.support.workflow import snakemake

HEADER = "genome\tsource\taccession\tlocation\tsplit\tannotation\n"


def cohort(tmp_path: Path, *, rows: list[str] | None = None, models=None, **extra) -> Path:
    """A tracks-only cohort of one small local genome and a tiny checkpoint."""
    fasta = tmp_path / "g.fa"
    fasta.write_text(">c1\n" + "ACGT" * 500 + "\n")
    sheet = tmp_path / "genomes.tsv"
    sheet.write_text(HEADER + "".join(row + "\n" for row in (rows or [f"g\tfile\t\t{fasta}\t\t"])))
    config = {
        "results_dir": str(tmp_path / "results"),
        "logs_dir": str(tmp_path / "logs"),
        "genome_sheet": str(sheet),
        "stages": ["tracks"],
        "tracks": {"models": models or {"tiny": str(save_tiny_model(tmp_path / "checkpoint"))}, "device": "cpu"},
        **extra,
    }
    path = tmp_path / "cohort.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_error(config: Path) -> str:
    """The dry run's output, checked to be a refusal of a few lines with no trace into the code."""
    run = snakemake(config, "-n", timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "Traceback" not in output and "dnafm_lib/" not in output, output[-3000:]
    assert "$schema" not in output and "On instance" not in output, output[-3000:]  # no schema or config dump
    error = output[output.index("WorkflowError") :].strip().splitlines()
    # "WorkflowError in file common.smk, line N:", the sentence, Snakemake's "File common.smk" line
    assert len(error) <= 3, output[-3000:]
    assert not (config.parent / "results").exists()
    return error[1]


@pytest.mark.slow
def test_a_misspelled_top_level_key_names_the_cohort_file_and_the_nearest_key(tmp_path):
    config = cohort(tmp_path)
    text = config.read_text().replace("stages:", "stagse:")
    config.write_text(text)
    assert start_error(config) == f"{config}: unknown config key stagse (did you mean stages?)"


@pytest.mark.slow
def test_a_value_of_the_wrong_type_names_the_file_and_the_key(tmp_path):
    config = cohort(tmp_path, shards={"window_nt": "big"})
    assert start_error(config) == f"{config}: config shards.window_nt: 'big' is not of type 'integer'"


@pytest.mark.slow
def test_a_duplicate_genome_id_is_the_sentence_only(tmp_path):
    fasta = tmp_path / "g.fa"
    rows = [f"g\tfile\t\t{fasta}\t\t", f"h\tfile\t\t{fasta}\t\t", f"g\tfile\t\t{fasta}\t\t"]
    config = cohort(tmp_path, rows=rows)
    assert start_error(config) == f"{tmp_path / 'genomes.tsv'}: line 4 (genome g): genome id already used on line 2"


@pytest.mark.slow
def test_a_missing_local_file_is_the_sentence_only(tmp_path):
    config = cohort(tmp_path, rows=[f"g\tfile\t\t{tmp_path / 'nonesuch.fa'}\t\t"])
    assert start_error(config) == (
        f"{tmp_path / 'genomes.tsv'}: line 2 (genome g): location {tmp_path / 'nonesuch.fa'} does not exist"
    )


@pytest.mark.slow
def test_a_checkpoint_directory_without_weights_is_refused_at_start(tmp_path):
    checkpoint = save_tiny_model(tmp_path / "checkpoint")
    (Path(checkpoint) / "model.safetensors").unlink()  # a download cut short: config.json only
    config = cohort(tmp_path, models={"tiny": str(checkpoint)})
    assert start_error(config).startswith(f"config tracks.models: tiny: {checkpoint} has a config.json but no weights")


@pytest.mark.slow
def test_the_finetune_example_says_how_many_genomes_it_takes(tmp_path):
    fasta = tmp_path / "g.fa"
    (tmp_path / "g.gff3").write_text("##gff-version 3\nc1\tt\tCDS\t11\t400\t.\t+\t0\tID=x\n")
    rows = [f"g\tfile\t\t{fasta}\t\t{tmp_path / 'g.gff3'}", f"h\tfile\t\t{fasta}\t\t"]
    checkpoint = str(save_tiny_model(tmp_path / "checkpoint"))
    config = cohort(tmp_path, rows=rows, models={"tiny": checkpoint}, finetune={"model": checkpoint})
    settings = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**settings, "stages": ["tracks", "finetune"]}))
    run = snakemake(config, "-n", timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert (
        "finetune: 1 of 2 genomes have an annotation (GFF3) and make the example's windows: g"
        in run.stdout + run.stderr
    )


@pytest.mark.slow
def test_without_an_annotated_genome_the_finetune_stage_is_a_warning_and_other_targets_still_plan(tmp_path):
    checkpoint = str(save_tiny_model(tmp_path / "checkpoint"))
    config = cohort(tmp_path, models={"tiny": checkpoint}, finetune={"model": checkpoint})
    settings = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**settings, "stages": ["tracks", "finetune"]}))
    run = snakemake(config, "-n", "tracks_all", timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert (
        f"warning: finetune: no genome of the genome sheet {tmp_path / 'genomes.tsv'} has an annotation (GFF3)"
        in output
    )
