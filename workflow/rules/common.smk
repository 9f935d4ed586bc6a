# Shared by every stage: config validation, paths, and the list of final targets.
from pathlib import Path

from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

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

RESULTS = Path(config["results_dir"])
LOGS = Path(config.get("logs_dir", "logs"))
# Each stage's .smk appends the outputs `rule all` asks for.
ALL_TARGETS = []


# Input functions shared by the genome stages (they read the splits table after its checkpoint).
import os
import shlex

import pandas as pd


_GENOMES_TABLES = {}  # path → (mtime, table): input functions ask for it once per job, 10^4+ times


def genomes_table():
    """The splits table (genome, accession, source, location, split, annotation, assembly_name, status).

    Read once per version of the file (callers must not modify it)."""
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
        raise ValueError(f"genome {genome!r} is not in {checkpoints.build_splits.get().output.genomes}")
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


def annotated_genomes(table, wanted):
    """dnafm_lib.tasks.cds_windows.annotated_genomes (finetune.smk), imported on first use:
    dnafm_lib.tasks imports torch (seconds and ~300 MB), which every Snakemake process would pay
    at parse time, the one started for each job inside a Slurm job too."""
    from dnafm_lib.tasks.cds_windows import annotated_genomes as select

    return select(table, wanted)
