# Shared by every stage: config layering and validation, the stages asked for, the genome sheet,
# every folder and file name (from dnafm_lib.workflow.layout), and the final targets per stage.
# Stage files (included after this one) hold only their rules and their own input functions.
from pathlib import Path

import yaml
from snakemake.common.configfile import load_configfile
from snakemake.utils import validate

from dnafm_lib.workflow import cohort
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.genome_batches import batch_of, batch_runtime_minutes, genome_batches

# Snakemake merged the cohort (each --configfile, then --config) recursively into
# config/config.yaml; layer them again so that each layer's own maps and lists (tracks.models,
# stages, …) replace the ones below it.
_named_layers = [(str(path), load_configfile(path)) for path in workflow.config_settings.configfiles]
_named_layers += [("--config", dict(workflow.config_settings.config))] if workflow.config_settings.config else []
_layers = [layer for _, layer in _named_layers]
with open(Path(workflow.current_basedir) / "../schemas/config.schema.yaml") as _schema:
    CONFIG_SCHEMA = yaml.safe_load(_schema)
# config/config.yaml was read, and --replace-workflow-config did not discard it
_has_defaults = bool(workflow.configfiles) and (
    len(workflow.configfiles) > len(workflow.overwrite_configfiles)
    and not workflow.config_settings.replace_workflow_config
)
_defaults = [(str(workflow.configfiles[-1]), load_configfile(workflow.configfiles[-1]))] if _has_defaults else []
if _layers:
    config.clear()
    config.update(cohort.layer_configs(_defaults[0][1] if _defaults else {}, _layers, CONFIG_SCHEMA))

# One line naming the file (and, for a misspelled key, the nearest valid one), not the schema and
# the whole config; then Snakemake's validate fills in the schema's defaults.
try:
    cohort.check_config(config, CONFIG_SCHEMA, _defaults + _named_layers)
except DnafmError as error:
    raise WorkflowError(str(error))
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

# The cohort's genome sheet: one row per genome, every rule checked (dnafm_lib.data.genome_sheet).
from dnafm_lib.data.genome_sheet import GENOME_ID_PATTERN, read_genome_sheet  # the {genome} wildcard

GENOME_SHEET = None
if "genome_sheet" in config:
    try:
        GENOME_SHEET = read_genome_sheet(config["genome_sheet"]).frame()
        cohort.check_genome_names(config, STAGES, list(GENOME_SHEET["genome"]))
    except DnafmError as error:
        raise WorkflowError(str(error))
# The fine-tuning example takes the genomes with a GFF3; say how many (the sheet is their source
# unless the splits come from the NT list, whose genomes have none).
try:
    _finetune_note = cohort.finetune_genomes(
        config,
        STAGES,
        (
            dict(zip(GENOME_SHEET["genome"], GENOME_SHEET["annotation"]))
            if GENOME_SHEET is not None and not config["splits"]["nt_list"]
            else None
        ),
    )
except DnafmError as error:
    raise WorkflowError(str(error))
if _finetune_note and workflow.is_main_process:  # not again in each job's own Snakemake
    (logger.warning if _finetune_note.startswith("warning:") else logger.info)(_finetune_note)

RESULTS = Path(config["results_dir"])
LOGS = Path(config["logs_dir"])  # the schema's default (logs) is filled in by validate
# Each stage's .smk appends the outputs `rule all` asks for; `rule all` takes those of STAGES.
STAGE_TARGETS = {stage: [] for stage in cohort.STAGES}

# Every folder and file name of the workflow (dnafm_lib.workflow.layout); stage files use these.
from dnafm_lib.inference.tracks.igv import IGV_JS_DIST
from dnafm_lib.workflow import layout

LAYOUT = layout.Layout(RESULTS)
SPLITS_DIR = LAYOUT.splits
DOWNLOADS_DIR = LAYOUT.downloads
GENOMES_DIR = LAYOUT.genomes
SHARDS_DIR = LAYOUT.shards
BATCHES_DIR = LAYOUT.genome_batches
PRETRAIN_DIR = LAYOUT.pretrain
MODELS_DIR = LAYOUT.models
TRACKS_DIR = LAYOUT.tracks
FINETUNE_DIR = LAYOUT.finetune
SPLITS_OUTPUTS = {key: SPLITS_DIR / name for key, name in layout.SPLITS_FILES.items()}
DOWNLOAD_OUTPUTS = {key: DOWNLOADS_DIR / "{genome}" / name for key, name in layout.DOWNLOAD_FILES.items()}
# What a genome's folder holds, for prepare_genome and (batched) adopt_batched_genome alike.
GENOME_OUTPUTS = {key: GENOMES_DIR / "{genome}" / name for key, name in layout.GENOME_FILES.items()}
GENOME_ANNOTATION = GENOMES_DIR / "{genome}" / layout.GENOME_ANNOTATION
# What a genome's shard folder holds, for shard_genome and (batched) adopt_batched_genome alike.
SHARD_OUTPUTS = {key: SHARDS_DIR / "{genome}" / name for key, name in layout.SHARD_FILES.items()}
SPLIT_MANIFEST = LAYOUT.split_manifest("{split}")
PRETRAIN_RUN_DIR = PRETRAIN_DIR / "{run}"  # checkpoints/, metrics.csv, tensorboard/ (not outputs: resumed)
PRETRAIN_OUTPUTS = {"summary": PRETRAIN_RUN_DIR / "summary.json", "curves": PRETRAIN_RUN_DIR / "curves.png"}
EXPORT_DIR = MODELS_DIR / "{run}"  # = model_dir("export") for the cohort's pretrain.run
EXPORT_OUTPUTS = {"config": EXPORT_DIR / "config.json", "weights": EXPORT_DIR / "model.safetensors"}
CHUNK_PLAN = TRACKS_DIR / "{genome}" / "chunks.tsv"  # one per genome, shared by its models
GENOME_TRACKS_DIR = TRACKS_DIR / "{genome}" / "{model}"
CHUNK_FILE = GENOME_TRACKS_DIR / "chunks" / "{chunk}.npz"
IGV_JS_INSTALLED = LAYOUT.browser / IGV_JS_DIST  # rule install_igv_js, when tracks.igv_js is null
# The pretrain stage's run: its export is the model that tracks.models / finetune.model "export" names.
PRETRAIN_RUN = config["pretrain"]["run"]


def genome_file(template, genome):
    """One genome's file from a {genome} template above (GENOME_OUTPUTS[...], GENOME_ANNOTATION)."""
    return Path(str(template).format(genome=genome))


def model_dir(source):
    """The model directory of a tracks.models / finetune.model value."""
    return LAYOUT.model_dir(source, PRETRAIN_RUN)


# Above 1, workflow/rules/genome_batches.smk prepares (and shards) this many genomes per job
# instead of the two one-genome rules of genomes.smk and shards.smk.
GENOMES_PER_JOB = config["prepare"]["genomes_per_job"]
TRACKS = config["tracks"]


def selected_targets():
    return [target for stage in STAGES for target in STAGE_TARGETS[stage]]


# Input functions shared by the genome stages (they read the splits table after its checkpoint).
import json
import os
import shlex

import pandas as pd

# The table every genome job reads (the splits stage's genomes.tsv) or, without that stage,
# the genome sheet itself (rows need no split then).
GENOME_TABLE = SPLITS_OUTPUTS["genomes"] if "splits" in STAGES else Path(config["genome_sheet"])
_GENOMES_TABLES = {}  # path → (mtime, table): input functions ask for it once per job, 10^4+ times


def genomes_table():
    """One row per genome (genome, accession, source, location, split, annotation, assembly_name, status).

    Read once per version of the file (callers must not modify it)."""
    if "splits" not in STAGES:
        if "sheet" not in _GENOMES_TABLES:
            table = GENOME_SHEET.assign(assembly_name="", status="")
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


def genome_inputs(genome):
    """The files dnafm prepare-genome reads for one row, by its keyword (fasta or download_record,
    annotation)."""
    row = genome_row(genome)
    inputs = {}
    if row["source"] == "file":
        inputs["fasta"] = row["location"]
    else:
        inputs["download_record"] = str(genome_file(DOWNLOAD_OUTPUTS["record"], genome))
    if row["annotation"]:
        inputs["annotation"] = row["annotation"]
    return inputs


def genome_settings(genome):
    """dnafm_lib.data.genomes.prepare_genome's keyword arguments for one row (empty ones left out)."""
    row = genome_row(genome)
    settings = {
        "genome": genome,
        **genome_inputs(genome),
        "source": row["source"],
        "location": row["location"],
        "accession": row["accession"],
        "assembly_name": row.get("assembly_name", ""),
        "assembly_status": row.get("status", ""),
    }
    return {key: str(value) for key, value in settings.items() if value}


def prepare_genome_inputs(wildcards):
    return genome_inputs(wildcards.genome)


def prepare_genome_args(wildcards, input):
    """The dnafm prepare-genome options for one row, each value shell-quoted."""
    settings = genome_settings(wildcards.genome)
    del settings["genome"]
    return " ".join(f"--{key.replace('_', '-')} {shlex.quote(value)}" for key, value in settings.items())


# Batches of genomes (prepare.genomes_per_job above 1; workflow/rules/genome_batches.smk).
# A batch job shards too only where something reads shards (pretraining).
BATCH_SHARDS = "pretrain" in STAGES


def genome_batch(genome):
    return batch_of(genome, genomes_table()["genome"], GENOMES_PER_JOB)


def batch_genomes(batch):
    batches = genome_batches(list(genomes_table()["genome"]), GENOMES_PER_JOB)
    if batch not in batches:
        raise ValueError(f"{batch} is not a batch of {GENOME_TABLE} ({len(batches)} batches)")
    return batches[batch]


def batch_inputs(wildcards):
    files = [path for genome in batch_genomes(wildcards.batch) for path in genome_inputs(genome).values()]
    return sorted(set(files))


def batch_args(wildcards):
    settings = [genome_settings(genome) for genome in batch_genomes(wildcards.batch)]
    shard = (
        f" --window-nt {config['shards']['window_nt']} --min-tail-nt {config['shards']['min_tail_nt']}"
        if BATCH_SHARDS
        else ""
    )
    return shlex.quote(json.dumps(settings, separators=(",", ":"))) + shard


def track_genomes():
    """Genome names to mine: config tracks.genomes, or every genome of the genome table (splits table or sheet)."""
    wanted = TRACKS["genomes"]
    known = list(genomes_table().index)
    if wanted == "all":
        return known
    unknown = [g for g in wanted if g not in known]
    if unknown:
        raise ValueError(f"config tracks.genomes: {', '.join(unknown)} not in {GENOME_TABLE}")
    return list(wanted)


def genomes_in_split(split):
    table = genomes_table()
    return [genome for genome in table["genome"] if table.loc[genome, "split"] == split]


# What the run tells on the terminal: a line with the key number of each finished pretraining,
# scoring, gathering and fine-tuning job (from its outputs), and the tracks summary at the end.
import logging

from snakemake.logging import LogEvent

from dnafm_lib.workflow import run_summary


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
    """dnafm_lib.finetune.cds_windows.annotated_genomes (finetune.smk), imported on first use:
    dnafm_lib.finetune imports torch (seconds and ~300 MB), which every Snakemake process would pay
    at parse time, the one started for each job inside a Slurm job too."""
    from dnafm_lib.finetune.cds_windows import annotated_genomes as select

    return select(table, wanted)
