"""Tracks stage: masked-LM and embedding tracks of each genome × model, with browser files.

  {results}/tracks/{genome}/chunks.tsv              checkpoint split_genome_chunks (chunk contig start end)
  {results}/tracks/{genome}/{model}/chunks/{chunk}.npz   rule score_chunk: per-base arrays + bin means
                                    (temporary: removed after the gather unless tracks.keep_chunks)
  {results}/tracks/{genome}/{model}/*.bw, segments.bed, embeddings_f16.npy, embedding_bins.bed,
                                    enrichment.tsv/.png (empty without a GFF), tracks.json   rule gather_tracks
  {results}/tracks/{genome}/{model}/igv_session.xml, igv.html, igv.min.js, hub/   rule write_browser_files
Models come from config tracks.models: name → "export" (this workflow's results/models/{pretrain.run})
or a checkpoint directory in the AIDO.DNA layout.
"""


include: "tracks_common.smk"


wildcard_constraints:
    chunk=r"chunk\d+",


# `snakemake tracks_all`: every genome × model's tracks. No flag file: each genome's own files
# decide what is missing, so a deleted track or genome folder is made again.
rule tracks_all:
    input:
        tracks_targets,


# "export" models need rule export_model (workflow/rules/pretrain.smk, included before this file).
if layout.EXPORT not in TRACKS["models"].values() or hasattr(rules, "export_model"):
    STAGE_TARGETS["tracks"] += [tracks_targets]
else:
    logger.warning(
        "tracks: no rule export_model in this workflow, so the tracks of tracks.models "
        "'export' are not part of `all`; include workflow/rules/pretrain.smk before tracks.smk"
    )


checkpoint split_genome_chunks:
    input:
        fai=GENOME_OUTPUTS["fai"],
    output:
        plan=CHUNK_PLAN,
    log:
        LOGS / "split_genome_chunks" / "{genome}.log",
    conda:
        "../../envs/dnafm.yaml"
    params:
        chunk_bp=CHUNK_BP,
        bin_bp=TRACKS["bin_bp"],
    shell:
        "dnafm tracks plan --fai {input.fai:q} --chunk-bp {params.chunk_bp} --bin-bp {params.bin_bp} "
        "--out {output.plan:q} > {log:q} 2>&1"


rule score_chunk:
    input:
        fasta=GENOME_OUTPUTS["fasta"],
        fai=GENOME_OUTPUTS["fai"],
        gzi=GENOME_OUTPUTS["gzi"],
        plan=CHUNK_PLAN,
        model=model_inputs,
    output:
        # Temporary: removed once gather_tracks has written the tracks (tracks.keep_chunks keeps them).
        chunk_output(CHUNK_FILE),
    log:
        LOGS / "score_chunk" / "{genome}" / "{model}" / "{chunk}.log",
    benchmark:
        LOGS / "score_chunk" / "{genome}" / "{model}" / "{chunk}.benchmark.tsv"
    conda:
        "../../envs/dnafm.yaml"
    threads: TRACKS["threads"]
    resources:
        gpu=TRACKS["gpus_per_job"],
        mem_mb=TRACKS["mem_mb"],
        runtime=TRACKS["runtime_min"],
    params:
        model=lambda wildcards: model_source(wildcards.model),
        scoring=scoring_args(),
        # one rank per GPU of the job (torchrun inside the job); CPU-only: one process
        ranks=SCORE_RANKS,
    shell:
        "dnafm tracks score --fasta {input.fasta:q} --plan {input.plan:q} --chunk {wildcards.chunk:q} "
        "--model {params.model:q} --out {output:q} --ranks {params.ranks} --threads {threads} "
        "{params.scoring:q} > {log:q} 2>&1"


rule gather_tracks:
    input:
        chunks=chunk_files,
        sizes=GENOME_OUTPUTS["sizes"],
        # the reference bases of the SNV table and the min-LLR track
        fasta=GENOME_OUTPUTS["fasta"],
        fai=GENOME_OUTPUTS["fai"],
        gzi=GENOME_OUTPUTS["gzi"],
        # params read the genome's row of the splits table (its annotation); ancient: a rebuilt
        # table alone does not redo the tracks.
        genomes=ancient(GENOME_TABLE),
    output:
        summary=report(
            GENOME_TRACKS_DIR / catalog.SUMMARY_JSON,
            caption="../report/track_summary.rst",
            category="Tracks",
            subcategory="{genome}",
            labels={"genome": "{genome}", "model": "{model}"},
        ),
        tracks=[GENOME_TRACKS_DIR / name for name in TRACK_FILES],
        embeddings=[GENOME_TRACKS_DIR / name for name in EMBEDDING_FILES],
        enrichment=[
            report(
                GENOME_TRACKS_DIR / name,
                caption="../report/cluster_enrichment.rst",
                category="Cluster enrichment",
                subcategory="{genome}",
                labels={"genome": "{genome}", "model": "{model}", "file": name},
            )
            for name in ENRICHMENT_FILES
        ],
    log:
        LOGS / "gather_tracks" / "{genome}" / "{model}.log",
    benchmark:
        LOGS / "gather_tracks" / "{genome}" / "{model}.benchmark.tsv"
    conda:
        "../../envs/dnafm.yaml"
    resources:
        mem_mb=TRACKS["mem_mb"],
    params:
        out_dir=lambda wildcards: TRACKS_DIR / wildcards.genome / wildcards.model,
        annotation=annotation_args,
        n_clusters=TRACKS["n_clusters"],
        seed=TRACKS["seed"],
        embeddings=TRACKS.get("embeddings", "full"),  # optional in the schema
        outputs=",".join(TRACK_OUTPUTS),
    shell:
        "dnafm tracks gather {input.chunks:q} --chrom-sizes {input.sizes:q} --out-dir {params.out_dir:q} "
        "--n-clusters {params.n_clusters} --seed {params.seed} --embeddings {params.embeddings} {params.annotation} "
        "--outputs {params.outputs} --fasta {input.fasta:q} --model-name {wildcards.model} > {log:q} 2>&1"


rule install_igv_js:
    output:
        IGV_JS_INSTALLED,
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
        summary=GENOME_TRACKS_DIR / catalog.SUMMARY_JSON,
        fasta=GENOME_OUTPUTS["fasta"],
        igv_js=IGV_JS,
        genomes=ancient(GENOME_TABLE),
    output:
        session=GENOME_TRACKS_DIR / catalog.IGV_SESSION_XML,
        page=GENOME_TRACKS_DIR / catalog.IGV_HTML,
        igv_js=GENOME_TRACKS_DIR / IGV_JS_DIST,
        hub=directory(GENOME_TRACKS_DIR / HUB_DIR),
    log:
        LOGS / "write_browser_files" / "{genome}" / "{model}.log",
    conda:
        "../../envs/dnafm.yaml"
    params:
        out_dir=lambda wildcards: TRACKS_DIR / wildcards.genome / wildcards.model,
        model=lambda wildcards: wildcards.model,
        annotation=annotation_args,
        hub=hub_args,
    shell:
        "dnafm tracks browser --out-dir {params.out_dir:q} --fasta {input.fasta:q} --genome {wildcards.genome:q} "
        "--model-name {params.model:q} --igv-js {input.igv_js:q} {params.annotation} {params.hub} > {log:q} 2>&1"
