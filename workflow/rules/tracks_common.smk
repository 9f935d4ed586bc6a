"""Tracks stage: paths, settings and the input/param functions its rules (tracks.smk) use."""

import shlex

from dnafm_lib.inference.tracks import catalog

# The per-base outputs the cohort chose (tracks.outputs; default all): bigWigs and the SNV table.
TRACK_OUTPUTS = TRACKS.get("outputs", list(catalog.DEFAULT_OUTPUTS))  # optional in the schema
TRACK_FILES = catalog.output_files(TRACK_OUTPUTS)
EMBEDDING_FILES = [
    *(spec.filename for spec in catalog.EMBEDDING_TRACKS),
    catalog.SEGMENTS_BED,
    *catalog.EMBEDDING_STORE_FILES[TRACKS.get("embeddings", "full")],  # optional in the schema
    catalog.EMBEDDING_BINS_BED,
]
# Cluster × annotation feature type (empty without a GFF3): made with the embeddings.
ENRICHMENT_FILES = [catalog.ENRICHMENT_PNG, catalog.ENRICHMENT_TSV]
if TRACKS["layer"] is None:  # no embeddings
    EMBEDDING_FILES, ENRICHMENT_FILES = [], []
HUB_DIR = "hub"  # the UCSC hub folder `dnafm tracks browser` writes
BROWSER_FILES = [catalog.IGV_SESSION_XML, catalog.IGV_HTML, IGV_JS_DIST, HUB_DIR]
IGV_JS = TRACKS["igv_js"] or str(IGV_JS_INSTALLED)

from dnafm_lib.workflow.chunk_size import configured_chunk_bp, ranks_per_job

# Processes per score_chunk job: one per GPU it asks for (tracks.gpus_per_job), at least one.
SCORE_RANKS = ranks_per_job(TRACKS)
# bp per score_chunk job: from tracks.target_job_minutes and tracks.tokens_per_second (per GPU,
# times the job's ranks), or tracks.chunk_bp.
try:
    CHUNK_BP = configured_chunk_bp(TRACKS)
except DnafmError as error:
    raise WorkflowError(str(error))


def chunk_output(path):
    return path if TRACKS.get("keep_chunks", False) else temp(path)  # optional in the schema


# Windows longer than a model's pretraining context: warned once, at start (each job warns in its log too).
if "tracks" in STAGES:
    from dnafm_lib.model.trained_context import FRAME_TOKENS, context_warning, trained_context_tokens

    for _name, _source in TRACKS["models"].items():
        _context = (
            config["shards"]["window_nt"] + FRAME_TOKENS
            if _source == layout.EXPORT
            else trained_context_tokens(_source)
        )
        _message = context_warning(f"tracks.models {_name}", TRACKS["window_bp"], _context)
        if _message:
            logger.warning(f"warning: {_message}")


def model_source(model):
    return model_dir(TRACKS["models"][model])


def model_inputs(wildcards):
    """The export rule's outputs for the workflow's own model; a user's checkpoint's config.json otherwise."""
    if TRACKS["models"][wildcards.model] == layout.EXPORT:
        return expand(rules.export_model.output, run=PRETRAIN_RUN)
    return [model_source(wildcards.model) / "config.json"]


def scoring_args():
    layer = TRACKS["layer"]
    args = [
        "--window-bp",
        TRACKS["window_bp"],
        "--stride-bp",
        TRACKS["stride_bp"],
        "--passes",
        TRACKS["passes"],
        "--masking",
        TRACKS["masking"],
        "--layer",
        "none" if layer is None else layer,
        "--bin-bp",
        TRACKS["bin_bp"],
        "--batch-size",
        TRACKS["batch_size"],
        "--seed",
        TRACKS["seed"],
        "--device",
        TRACKS["device"],
    ]
    return args + (["--reverse-complement"] if TRACKS["reverse_complement"] else [])


def chunk_files(wildcards):
    """The chunk files of one genome × model, in plan (.fai) order: known once the plan exists."""
    plan = checkpoints.split_genome_chunks.get(genome=wildcards.genome).output.plan
    from dnafm_lib.inference.tracks.plan import read_chunk_plan

    return [
        Path(str(CHUNK_FILE).format(genome=wildcards.genome, model=wildcards.model, chunk=chunk))
        for chunk in read_chunk_plan(plan)
    ]


def annotation_args(wildcards):
    """--annotation for genomes whose row names a GFF3 (prepare_genome copies it next to the FASTA)."""
    if genome_row(wildcards.genome)["annotation"]:
        return f"--annotation {shlex.quote(str(genome_file(GENOME_ANNOTATION, wildcards.genome)))}"
    return ""


def hub_args(wildcards):
    row = genome_row(wildcards.genome)
    assembly = row.get("accession") or wildcards.genome
    return f"--assembly {shlex.quote(assembly)} --hub-email {shlex.quote(TRACKS['hub_email'])}"


def genome_tracks_files(genome, model):
    """Every file gather_tracks and write_browser_files make for one genome × model."""
    names = [catalog.SUMMARY_JSON, *TRACK_FILES, *EMBEDDING_FILES, *ENRICHMENT_FILES, *BROWSER_FILES]
    return [TRACKS_DIR / genome / model / name for name in names]  # GENOME_TRACKS_DIR's files


def tracks_targets(wildcards):
    """Every tracks file of every genome × model, so a missing one is made again, genome by genome.

    A genome whose chunk plan (checkpoint split_genome_chunks) is not known yet stands for its plan
    until it is. All plans are named at once, as checkpoint targets: Snakemake then resolves them
    here, one level below this function. Left to gather_tracks' input function (two checkpoints
    deep: the genome list comes from build_splits), a plan that already exists is never resolved,
    and gather_tracks runs with its input "<TBD>" (snakemake/snakemake#3862).
    """
    from snakemake.exceptions import IncompleteCheckpointException

    targets = []
    for genome in track_genomes():
        try:
            checkpoints.split_genome_chunks.get(genome=genome)
        except IncompleteCheckpointException as pending:
            targets.append(pending.targetfile)  # the plan, flagged as a checkpoint target
            continue
        targets += [path for model in TRACKS["models"] for path in genome_tracks_files(genome, model)]
    return targets
