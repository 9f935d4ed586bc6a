"""Tracks stage: paths, settings and the input/param functions its rules (tracks.smk) use."""

import shlex

from dnafm_lib.tracks.catalog import PER_BASE_FILES

TRACKS_DIR = RESULTS / "tracks"
TRACKS = config["tracks"]
TRACK_FILES = list(PER_BASE_FILES)  # loss, entropy, P(A..T) and the four logo tracks
EMBEDDING_FILES = ["embedding_pc1.bw", "embedding_pc2.bw", "embedding_pc3.bw", "segments.bed",
                   "embeddings_f16.npy", "embedding_bins.bed"]
IGV_JS = TRACKS.get("igv_js") or str(RESULTS / "browser" / "igv.min.js")



def track_genomes():
    """Genome names to mine: config tracks.genomes, or every genome of the splits table."""
    wanted = TRACKS.get("genomes", "all")
    known = list(genomes_table().index)
    if wanted == "all":
        return known
    unknown = [g for g in wanted if g not in known]
    if unknown:
        raise ValueError(f"config tracks.genomes: {', '.join(unknown)} not in {checkpoints.build_splits.get().output.genomes}")
    return list(wanted)


def model_source(model):
    source = TRACKS["models"][model]
    if source == "export":
        return RESULTS / "models" / config.get("pretrain", {}).get("run", "demo")
    return Path(source)


def model_inputs(wildcards):
    """The export rule's outputs for the workflow's own model; a user's checkpoint's config.json otherwise."""
    if TRACKS["models"][wildcards.model] == "export":
        return expand(rules.export_model.output, run=config.get("pretrain", {}).get("run", "demo"))
    return [model_source(wildcards.model) / "config.json"]


def scoring_args():
    layer = TRACKS.get("layer", -1)
    args = [
        "--window-bp", TRACKS["window_bp"], "--stride-bp", TRACKS["stride_bp"], "--passes", TRACKS["passes"],
        "--layer", "none" if layer is None else layer, "--bin-bp", TRACKS["bin_bp"],
        "--batch-size", TRACKS["batch_size"], "--seed", TRACKS["seed"], "--device", TRACKS["device"],
    ]
    return args + (["--reverse-complement"] if TRACKS["reverse_complement"] else [])


def chunk_files(wildcards):
    """The chunk files of one genome × model, in plan (.fai) order: known once the plan exists."""
    plan = checkpoints.split_genome_chunks.get(genome=wildcards.genome).output.plan
    from dnafm_lib.tracks.pipeline import read_chunk_plan

    return [TRACKS_DIR / wildcards.genome / wildcards.model / "chunks" / f"{chunk}.npz" for chunk in read_chunk_plan(plan)]


def annotation_args(wildcards):
    """--annotation for genomes whose row names a GFF3 (prepare_genome copies it next to the FASTA)."""
    if genome_row(wildcards.genome)["annotation"]:
        return f"--annotation {shlex.quote(str(GENOMES_DIR / wildcards.genome / 'annotation.gff3'))}"
    return ""


def hub_args(wildcards):
    row = genome_row(wildcards.genome)
    assembly = row.get("accession") or wildcards.genome
    return f"--assembly {shlex.quote(assembly)} --hub-email {shlex.quote(TRACKS.get('hub_email', ''))}"


def tracks_targets(wildcards):
    return [
        TRACKS_DIR / genome / model / name
        for genome in track_genomes()
        for model in TRACKS["models"]
        for name in ("tracks.json", "igv_session.xml", "igv.html", "hub")
    ]
