"""Tracks stage: masked-LM and embedding tracks of each genome × model, with browser files.

  {results}/tracks/{genome}/chunks.tsv              checkpoint split_genome_chunks (chunk contig start end)
  {results}/tracks/{genome}/{model}/chunks/{chunk}.npz   rule score_chunk: per-base arrays + bin means
  {results}/tracks/{genome}/{model}/*.bw, segments.bed, embeddings_f16.npy, embedding_bins.bed,
                                    enrichment.tsv/.png (with a GFF), tracks.json   rule gather_tracks
  {results}/tracks/{genome}/{model}/igv_session.xml, igv.html, igv.min.js, hub/   rule write_browser_files
Models come from config tracks.models: name → "export" (this workflow's results/models/{pretrain.run})
or a checkpoint directory in the AIDO.DNA layout.
"""

import shlex

TRACKS_DIR = RESULTS / "tracks"
TRACKS = config["tracks"]
TRACK_FILES = ["mlm_loss.bw", "entropy.bw", "prob_A.bw", "prob_C.bw", "prob_G.bw", "prob_T.bw"]
EMBEDDING_FILES = ["embedding_pc1.bw", "embedding_pc2.bw", "embedding_pc3.bw", "segments.bed",
                   "embeddings_f16.npy", "embedding_bins.bed"]
IGV_JS = TRACKS.get("igv_js") or str(RESULTS / "browser" / "igv.min.js")

wildcard_constraints:
    chunk=r"chunk\d+",


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
        return "--annotation " + shlex.quote(str(GENOMES_DIR / wildcards.genome / "annotation.gff3"))
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


rule tracks_all:
    input:
        tracks_targets,
    output:
        touch(TRACKS_DIR / "tracks.done"),
    log:
        LOGS / "tracks_all.log",


# "export" models need rule export_model (workflow/rules/pretrain.smk, included before this file).
if "export" not in TRACKS["models"].values() or hasattr(rules, "export_model"):
    ALL_TARGETS += [TRACKS_DIR / "tracks.done"]
else:
    logger.warning("tracks: no rule export_model in this workflow, so the tracks of tracks.models "
                   "'export' are not part of `all`; include workflow/rules/pretrain.smk before tracks.smk")


checkpoint split_genome_chunks:
    input:
        fai=GENOMES_DIR / "{genome}" / "genome.fa.gz.fai",
    output:
        plan=TRACKS_DIR / "{genome}" / "chunks.tsv",
    params:
        chunk_bp=TRACKS["chunk_bp"],
        bin_bp=TRACKS["bin_bp"],
    log:
        LOGS / "split_genome_chunks" / "{genome}.log",
    conda:
        "../../envs/dnafm.yaml"
    shell:
        "dnafm tracks plan --fai {input.fai:q} --chunk-bp {params.chunk_bp} --bin-bp {params.bin_bp} "
        "--out {output.plan:q} > {log:q} 2>&1"


rule score_chunk:
    input:
        fasta=GENOMES_DIR / "{genome}" / "genome.fa.gz",
        fai=GENOMES_DIR / "{genome}" / "genome.fa.gz.fai",
        gzi=GENOMES_DIR / "{genome}" / "genome.fa.gz.gzi",
        plan=TRACKS_DIR / "{genome}" / "chunks.tsv",
        model=model_inputs,
    output:
        TRACKS_DIR / "{genome}" / "{model}" / "chunks" / "{chunk}.npz",
    params:
        model=lambda wildcards: model_source(wildcards.model),
        scoring=scoring_args(),
    threads: TRACKS["threads"]
    resources:
        gpu=TRACKS["gpus_per_job"],
        mem_mb=TRACKS["mem_mb"],
        runtime=TRACKS["runtime_min"],
    log:
        LOGS / "score_chunk" / "{genome}" / "{model}" / "{chunk}.log",
    benchmark:
        LOGS / "score_chunk" / "{genome}" / "{model}" / "{chunk}.benchmark.tsv"
    conda:
        "../../envs/dnafm.yaml"
    shell:
        "dnafm tracks score --fasta {input.fasta:q} --plan {input.plan:q} --chunk {wildcards.chunk:q} "
        "--model {params.model:q} --out {output:q} --threads {threads} {params.scoring:q} > {log:q} 2>&1"


rule gather_tracks:
    input:
        chunks=chunk_files,
        sizes=GENOMES_DIR / "{genome}" / "chrom.sizes",
        # params read the genome's row of the splits table (its annotation); ancient: a rebuilt
        # table alone does not redo the tracks.
        genomes=ancient(SPLITS_DIR / "genomes.tsv"),
    output:
        summary=report(TRACKS_DIR / "{genome}" / "{model}" / "tracks.json", caption="../report/track_summary.rst",
                       category="Tracks", subcategory="{genome}", labels={"genome": "{genome}", "model": "{model}"}),
        tracks=[TRACKS_DIR / "{genome}" / "{model}" / name for name in TRACK_FILES],
        embeddings=[TRACKS_DIR / "{genome}" / "{model}" / name for name in (EMBEDDING_FILES if TRACKS.get("layer", -1) is not None else [])],
        # Cluster × annotation feature type (empty without a GFF3): with the embeddings only.
        enrichment=[
            report(TRACKS_DIR / "{genome}" / "{model}" / name, caption="../report/cluster_enrichment.rst",
                   category="Cluster enrichment", subcategory="{genome}",
                   labels={"genome": "{genome}", "model": "{model}", "file": name})
            for name in (["enrichment.png", "enrichment.tsv"] if TRACKS.get("layer", -1) is not None else [])
        ],
    params:
        out_dir=lambda wildcards: TRACKS_DIR / wildcards.genome / wildcards.model,
        annotation=annotation_args,
        n_clusters=TRACKS["n_clusters"],
        seed=TRACKS["seed"],
    resources:
        mem_mb=TRACKS["mem_mb"],
    log:
        LOGS / "gather_tracks" / "{genome}" / "{model}.log",
    benchmark:
        LOGS / "gather_tracks" / "{genome}" / "{model}.benchmark.tsv"
    conda:
        "../../envs/dnafm.yaml"
    shell:
        "dnafm tracks gather {input.chunks:q} --chrom-sizes {input.sizes:q} --out-dir {params.out_dir:q} "
        "--n-clusters {params.n_clusters} --seed {params.seed} {params.annotation} > {log:q} 2>&1"


rule install_igv_js:
    output:
        RESULTS / "browser" / "igv.min.js",
    log:
        LOGS / "install_igv_js.log",
    conda:
        "../../envs/dnafm.yaml"
    shell:
        "dnafm tracks install-igv --out {output:q} > {log:q} 2>&1"


# npm needs the internet, which cluster compute nodes often lack; the rest is light.
localrules:
    install_igv_js,
    write_browser_files,
    tracks_all,


rule write_browser_files:
    input:
        summary=TRACKS_DIR / "{genome}" / "{model}" / "tracks.json",
        fasta=GENOMES_DIR / "{genome}" / "genome.fa.gz",
        igv_js=IGV_JS,
        genomes=ancient(SPLITS_DIR / "genomes.tsv"),
    output:
        session=TRACKS_DIR / "{genome}" / "{model}" / "igv_session.xml",
        page=TRACKS_DIR / "{genome}" / "{model}" / "igv.html",
        igv_js=TRACKS_DIR / "{genome}" / "{model}" / "igv.min.js",
        hub=directory(TRACKS_DIR / "{genome}" / "{model}" / "hub"),
    params:
        out_dir=lambda wildcards: TRACKS_DIR / wildcards.genome / wildcards.model,
        model=lambda wildcards: wildcards.model,
        annotation=annotation_args,
        hub=hub_args,
    log:
        LOGS / "write_browser_files" / "{genome}" / "{model}.log",
    conda:
        "../../envs/dnafm.yaml"
    shell:
        "dnafm tracks browser --out-dir {params.out_dir:q} --fasta {input.fasta:q} --genome {wildcards.genome:q} "
        "--model-name {params.model:q} --igv-js {input.igv_js:q} {params.annotation} {params.hub} > {log:q} 2>&1"
