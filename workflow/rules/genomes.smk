"""Genomes stage: one validated, indexed genome directory per row of the splits table.

Output per genome (results/genomes/{genome}/): genome.fa.gz (bgzip) with .fai and .gzi,
chrom.sizes, provenance.json, and annotation.gff3 when the row names one. file rows read their
local FASTA; ncbi and url rows read the download step's record (results/downloads/{genome}/).
"""

from dnafm_lib.data import genomes as genome_layout

GENOMES_DIR = RESULTS / "genomes"
# Above 1, workflow/rules/genome_batches.smk prepares (and shards) this many genomes per job
# instead of the two one-genome rules here and in shards.smk.
GENOMES_PER_JOB = config["prepare"]["genomes_per_job"]
# What a genome's folder holds, for prepare_genome and (batched) adopt_batched_genome alike.
GENOME_OUTPUTS = {
    "fasta": GENOMES_DIR / "{genome}" / genome_layout.FASTA_NAME,
    "fai": GENOMES_DIR / "{genome}" / f"{genome_layout.FASTA_NAME}.fai",
    "gzi": GENOMES_DIR / "{genome}" / f"{genome_layout.FASTA_NAME}.gzi",
    "sizes": GENOMES_DIR / "{genome}" / genome_layout.SIZES_NAME,
    "provenance": GENOMES_DIR / "{genome}" / genome_layout.PROVENANCE_NAME,
}


if GENOMES_PER_JOB == 1:

    rule prepare_genome:
        input:
            unpack(prepare_genome_inputs),
        output:
            **GENOME_OUTPUTS,
        log:
            LOGS / "prepare_genome" / "{genome}.log",
        benchmark:
            LOGS / "prepare_genome" / "{genome}.benchmark.tsv"
        wildcard_constraints:
            genome=GENOME_ID_PATTERN,
        conda:
            "../../envs/dnafm.yaml"
        resources:
            mem_mb=1000,
        params:
            out_dir=lambda wildcards: GENOMES_DIR / wildcards.genome,
            options=prepare_genome_args,
        shell:
            "dnafm prepare-genome --genome {wildcards.genome:q} --out-dir {params.out_dir:q} {params.options} > {log:q} 2>&1"
