# Shared by every stage: config layering and validation, the stages asked for, paths, and the
# final targets per stage.
from pathlib import Path

import yaml
from snakemake.common.configfile import load_configfile
from snakemake.utils import validate

from dnafm_lib import cohort
from dnafm_lib.errors import DnafmError

# Snakemake merged the cohort (each --configfile, then --config) recursively into
# config/config.yaml; layer them again so that each layer's own maps and lists (tracks.models,
# stages, …) replace the ones below it.
_layers = [load_configfile(path) for path in workflow.config_settings.configfiles]
_layers += [dict(workflow.config_settings.config)] if workflow.config_settings.config else []
if _layers:
    # config/config.yaml was read, and --replace-workflow-config did not discard it
    _has_defaults = (
        len(workflow.configfiles) > len(workflow.overwrite_configfiles)
        and not workflow.config_settings.replace_workflow_config
    )
    with open(Path(workflow.current_basedir) / "../schemas/config.schema.yaml") as _schema:
        _layered = cohort.layer_configs(
            load_configfile(workflow.configfiles[-1]) if _has_defaults else {}, _layers, yaml.safe_load(_schema)
        )
    config.clear()
    config.update(_layered)

validate(config, schema="../schemas/config.schema.yaml")
STAGES = cohort.selected_stages(config)
# Everything that needs only the config and the sheet is checked now, not when a job runs.
try:
    cohort.check_stage_needs(config, STAGES, _layers)
    cohort.check_model_directories(config, STAGES)
    if "pretrain" in STAGES:
        cohort.check_pretrain_batch(config)
except DnafmError as error:
    raise WorkflowError(str(error))

# The cohort's genome sheet: one row per genome, checked per row by the schema, then across rows.
from dnafm_lib.genomes import check_genome_sheet, read_genome_sheet, sheet_line
from dnafm_lib.splits import GENOME_ID_PATTERN  # the {genome} wildcard of every genome rule

GENOME_SHEET = None
if "genome_sheet" in config:
    GENOME_SHEET = read_genome_sheet(config["genome_sheet"])
    for index in GENOME_SHEET.index:  # row by row, to name the line
        try:
            validate(GENOME_SHEET.loc[[index]], schema="../schemas/genomes.schema.yaml")
        except WorkflowError as error:
            raise WorkflowError(
                f"{config['genome_sheet']}: line {sheet_line(index)} (genome {GENOME_SHEET.loc[index, 'genome']}): "
                "does not match workflow/schemas/genomes.schema.yaml",
                error,
            )
    check_genome_sheet(GENOME_SHEET, config["genome_sheet"])
    try:
        cohort.check_sheet_has_genomes(list(GENOME_SHEET["genome"]), config["genome_sheet"])
        cohort.check_genome_names(config, STAGES, list(GENOME_SHEET["genome"]))
    except DnafmError as error:
        raise WorkflowError(str(error))

RESULTS = Path(config["results_dir"])
LOGS = Path(config["logs_dir"])  # the schema's default (logs) is filled in by validate
# Each stage's .smk appends the outputs `rule all` asks for; `rule all` takes those of STAGES.
STAGE_TARGETS = {stage: [] for stage in cohort.STAGES}


def selected_targets():
    return [target for stage in STAGES for target in STAGE_TARGETS[stage]]


# Input functions shared by the genome stages (they read the splits table after its checkpoint).
import os
import shlex

import pandas as pd

# The table every genome job reads (the splits stage's genomes.tsv) or, without that stage,
# the genome sheet itself (rows need no split then).
GENOME_TABLE = RESULTS / "splits" / "genomes.tsv" if "splits" in STAGES else Path(config["genome_sheet"])
_GENOMES_TABLES = {}  # path → (mtime, table): input functions ask for it once per job, 10^4+ times


def genomes_table():
    """One row per genome (genome, accession, source, location, split, annotation, assembly_name, status).

    Read once per version of the file (callers must not modify it)."""
    if "splits" not in STAGES:
        if "sheet" not in _GENOMES_TABLES:
            table = GENOME_SHEET.fillna("").assign(assembly_name="", status="")
            _GENOMES_TABLES["sheet"] = table.set_index("genome", drop=False)
        return _GENOMES_TABLES["sheet"]
    table = checkpoints.build_splits.get().output.genomes
    stamp = os.stat(table).st_mtime_ns
    cached = _GENOMES_TABLES.get(table)
    if cached is None or cached[0] != stamp:
        frame = pd.read_csv(table, sep="\t", dtype=str, keep_default_na=False).set_index("genome", drop=False)
        cached = _GENOMES_TABLES[table] = (stamp, frame)
    return cached[1]


def genome_row(genome):
    table = genomes_table()
    if genome not in table.index:
        raise ValueError(f"genome {genome!r} is not in {GENOME_TABLE}")
    return table.loc[genome]


def prepare_genome_inputs(wildcards):
    row = genome_row(wildcards.genome)
    inputs = {}
    if row["source"] == "file":
        inputs["fasta"] = row["location"]
    else:
        inputs["record"] = DOWNLOADS_DIR / wildcards.genome / "download.json"
    if row["annotation"]:
        inputs["annotation"] = row["annotation"]
    return inputs


def prepare_genome_args(wildcards, input):
    """The dnafm prepare-genome options for one row, each value shell-quoted."""
    row = genome_row(wildcards.genome)
    options = {
        "--fasta": input.get("fasta"),
        "--download-record": input.get("record"),
        "--annotation": input.get("annotation"),
        "--source": row["source"],
        "--location": row["location"],
        "--accession": row["accession"],
        "--assembly-name": row.get("assembly_name", ""),
        "--assembly-status": row.get("status", ""),
    }
    return " ".join(f"{flag} {shlex.quote(str(value))}" for flag, value in options.items() if value)


def genomes_in_split(split):
    table = genomes_table()
    return [genome for genome in table["genome"] if table.loc[genome, "split"] == split]


# What the run tells on the terminal: a line with the key number of each finished pretraining,
# scoring, gathering and fine-tuning job (from its outputs), and the tracks summary at the end.
import logging

from snakemake.logging import LogEvent

from dnafm_lib import run_summary


class _FinishedJobLines(logging.Handler):
    """Remembers each job's rule and outputs (JOB_INFO) and, when it finishes, logs its line."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.jobs = {}

    def emit(self, record):
        event = getattr(record, "event", None)
        if event == LogEvent.JOB_INFO:
            self.jobs[record.jobid] = (record.rule_name, record.output, record.wildcards)
        elif event == LogEvent.JOB_FINISHED and record.job_id in self.jobs:
            line = run_summary.job_line(*self.jobs.pop(record.job_id))
            if line:
                logger.info(line)


if not workflow.dryrun:
    logger.addHandler(_FinishedJobLines())


def log_tracks_summary():
    """At the end of a successful run (Snakefile onsuccess): where the tracks are, how to open them."""
    if "tracks" not in STAGES or not TRACKS_DIR.is_dir():
        return
    from snakemake.exceptions import IncompleteCheckpointException

    try:  # this run's genomes × models only: TRACKS_DIR may hold folders of other runs
        genomes = track_genomes()
    except IncompleteCheckpointException:
        return  # the splits table was not part of this run, so neither were tracks
    folders = [TRACKS_DIR / genome / model for genome in sorted(genomes) for model in TRACKS["models"]]
    summary = run_summary.tracks_summary(RESULTS, folders)
    if summary:
        logger.info(summary)


def annotated_genomes(table, wanted):
    """dnafm_lib.tasks.cds_windows.annotated_genomes (finetune.smk), imported on first use:
    dnafm_lib.tasks imports torch (seconds and ~300 MB), which every Snakemake process would pay
    at parse time, the one started for each job inside a Slurm job too."""
    from dnafm_lib.tasks.cds_windows import annotated_genomes as select

    return select(table, wanted)
