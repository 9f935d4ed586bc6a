"""Batches of genomes (prepare.genomes_per_job above 1): one job prepares, and when pretraining
is a stage shards, N consecutive genomes of the genome table into
results/genome_batches/{batch}/ (a temporary folder); a local step per genome hard-links its
files to results/genomes/{genome}/ and results/shards/{genome}/, the same files the one-genome
rules write. Logic: dnafm_lib.data.genome_batches.
"""

if GENOMES_PER_JOB > 1:
    from dnafm_lib.data.genome_batches import adopt_batched_genome

    localrules:
        adopt_batched_genome,

    rule prepare_genome_batch:
        input:
            batch_inputs,
        output:
            temp(directory(BATCHES_DIR / "{batch}")),
        log:
            LOGS / "prepare_genome_batch" / "{batch}.log",
        benchmark:
            LOGS / "prepare_genome_batch" / "{batch}.benchmark.tsv"
        wildcard_constraints:
            batch=r"batch\d{5}",
        conda:
            "../../envs/dnafm.yaml"
        resources:
            mem_mb=1000,
            # Minutes: grows with the batch's FASTA sizes (a batch can hold vertebrate genomes).
            runtime=lambda wildcards: batch_runtime_minutes(
                genome_settings(genome) for genome in batch_genomes(wildcards.batch)
            ),
        params:
            genomes_dir=GENOMES_DIR,
            options=batch_args,
        shell:
            "dnafm prepare-batch --out-dir {output:q} --genomes-dir {params.genomes_dir:q} "
            "--genomes-json {params.options} > {log:q} 2>&1"

    rule adopt_batched_genome:
        input:
            batch=lambda wildcards: BATCHES_DIR / genome_batch(wildcards.genome),
        output:
            **GENOME_OUTPUTS,
            **(SHARD_OUTPUTS if BATCH_SHARDS else {}),
        wildcard_constraints:
            genome=GENOME_ID_PATTERN,
        run:
            adopt_batched_genome(
                input.batch,
                wildcards.genome,
                GENOMES_DIR / wildcards.genome,
                SHARDS_DIR / wildcards.genome if BATCH_SHARDS else None,
            )
