"""Shards stage: tokenized training windows, one job per genome, one light manifest per split.

results/shards/{genome}/: tokens.npy (uint8 rows of shards.window_nt), softmask.npy, index.npy,
metadata.json. results/shards/{split}.manifest.json: the split's genomes, counts and checksums,
read by dnafm_lib.data.shards.open_split (pretraining). A split with no genomes gets an empty manifest.
Config `shards`: window_nt (nucleotides per row; the model adds [CLS]/[EOS]), min_tail_nt (keep
a contig's shorter last window from this length).
"""

if config["shards"]["min_tail_nt"] > config["shards"]["window_nt"]:
    raise WorkflowError(
        f"config shards.min_tail_nt ({config['shards']['min_tail_nt']}) must be at most "
        f"shards.window_nt ({config['shards']['window_nt']})"
    )
from dnafm_lib.data.genome_sheet import SPLITS as SPLIT_NAMES  # train, validation, test

STAGE_TARGETS["pretrain"] += [LAYOUT.split_manifest(split) for split in SPLIT_NAMES]


localrules:
    index_shards,


if GENOMES_PER_JOB == 1:

    rule shard_genome:
        input:
            fasta=GENOME_OUTPUTS["fasta"],
        output:
            **SHARD_OUTPUTS,
        log:
            LOGS / "shard_genome" / "{genome}.log",
        benchmark:
            LOGS / "shard_genome" / "{genome}.benchmark.tsv"
        wildcard_constraints:
            genome=GENOME_ID_PATTERN,
        conda:
            "../../envs/dnafm.yaml"
        resources:
            mem_mb=1000,
        params:
            out_dir=lambda wildcards: SHARDS_DIR / wildcards.genome,
            window_nt=config["shards"]["window_nt"],
            min_tail_nt=config["shards"]["min_tail_nt"],
        shell:
            "dnafm shard --fasta {input.fasta:q} --genome {wildcards.genome:q} --out-dir {params.out_dir:q} "
            "--window-nt {params.window_nt} --min-tail-nt {params.min_tail_nt} > {log:q} 2>&1"


rule index_shards:
    input:
        lambda wildcards: [
            genome_file(SHARD_OUTPUTS["metadata"], genome) for genome in genomes_in_split(wildcards.split)
        ],
    output:
        SPLIT_MANIFEST,
    log:
        LOGS / "index_shards" / "{split}.log",
    wildcard_constraints:
        split="|".join(SPLIT_NAMES),
    conda:
        "../../envs/dnafm.yaml"
    params:
        shard_dirs=lambda wildcards: [SHARDS_DIR / genome for genome in genomes_in_split(wildcards.split)],
        window_nt=config["shards"]["window_nt"],
    shell:
        "dnafm index-shards --split {wildcards.split} --out {output:q} --window-nt {params.window_nt} "
        "{params.shard_dirs:q} > {log:q} 2>&1"
