"""Genomes stage: one validated, indexed genome directory per row of the splits table.

Output per genome (results/genomes/{genome}/): genome.fa.gz (bgzip) with .fai and .gzi,
chrom.sizes, provenance.json, and annotation.gff3 when the row names one. file rows read their
local FASTA; ncbi and url rows read the download step's record (results/downloads/{genome}/).
"""

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
