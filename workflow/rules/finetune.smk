"""Fine-tuning example: windows inside vs outside CDS, pretrained backbone vs the same from scratch.

{results}/finetune/cds_windows.tsv                  rule build_cds_windows (genome, chrom, start, end, split, label, sequence)
{results}/finetune/cds/{pretrained,scratch}/        rule compare_finetuning: best/, history.tsv, metrics.json, predictions.tsv
{results}/finetune/cds/comparison.tsv, .txt         both runs' test metrics side by side (.txt is what it prints)
"""

FINETUNE = config["finetune"]
# "export": this workflow's pretrained model; otherwise a checkpoint directory of the user's
FINETUNE_MODEL = model_dir(FINETUNE["model"])


rule build_cds_windows:
    input:
        fasta=lambda wildcards: [
            genome_file(GENOME_OUTPUTS["fasta"], g) for g in annotated_genomes(genomes_table(), FINETUNE["genomes"])
        ],
        fai=lambda wildcards: [
            genome_file(GENOME_OUTPUTS["fai"], g) for g in annotated_genomes(genomes_table(), FINETUNE["genomes"])
        ],
    output:
        FINETUNE_DIR / "cds_windows.tsv",
    log:
        LOGS / "build_cds_windows.log",
    conda:
        "../../envs/dnafm.yaml"
    params:
        # prepare_genome copies each row's GFF3 next to its FASTA as annotation.gff3
        gff=lambda wildcards: [
            genome_file(GENOME_ANNOTATION, g) for g in annotated_genomes(genomes_table(), FINETUNE["genomes"])
        ],
        names=lambda wildcards: annotated_genomes(genomes_table(), FINETUNE["genomes"]),
        window_bp=FINETUNE["window_bp"],
        block_bp=FINETUNE["block_bp"],
        val_fraction=FINETUNE["val_fraction"],
        test_fraction=FINETUNE["test_fraction"],
        seed=FINETUNE["seed"],
    shell:
        "dnafm cds-windows --fasta {input.fasta:q} --gff {params.gff:q} --names {params.names:q} "
        "--window-bp {params.window_bp} --block-bp {params.block_bp} --val-fraction {params.val_fraction} --test-fraction {params.test_fraction} "
        "--seed {params.seed} --out {output:q} > {log:q} 2>&1"


rule compare_finetuning:
    input:
        data=FINETUNE_DIR / "cds_windows.tsv",
        model=lambda wildcards: (
            expand(rules.export_model.output, run=PRETRAIN_RUN)
            if FINETUNE["model"] == layout.EXPORT
            else [FINETUNE_MODEL / "config.json"]
        ),
    output:
        table=report(
            FINETUNE_DIR / "cds" / "comparison.tsv",
            caption="../report/finetune_comparison.rst",
            category="Fine-tuning",
        ),
        summary=FINETUNE_DIR / "cds" / "comparison.txt",
        metrics=[FINETUNE_DIR / "cds" / run / "metrics.json" for run in ("pretrained", "scratch")],
    log:
        LOGS / "compare_finetuning.log",
    benchmark:
        LOGS / "compare_finetuning.benchmark.tsv"
    conda:
        "../../envs/dnafm.yaml"
    threads: FINETUNE["threads"]
    resources:
        gpu=FINETUNE["gpus_per_job"],
        mem_mb=FINETUNE["mem_mb"],
        runtime=FINETUNE["runtime_min"],
    params:
        model=FINETUNE_MODEL,
        out_dir=FINETUNE_DIR / "cds",
        pooling=FINETUNE["pooling"],
        strategy=FINETUNE["strategy"],
        max_epochs=FINETUNE["max_epochs"],
        patience=FINETUNE["patience"],
        lr=FINETUNE["lr"],
        batch_size=FINETUNE["batch_size"],
        seed=FINETUNE["seed"],
        device=FINETUNE["device"],
    shell:
        "OMP_NUM_THREADS={threads} dnafm compare-finetuning --backbone {params.model:q} --data {input.data:q} "
        "--out-dir {params.out_dir:q} --pooling {params.pooling} --strategy {params.strategy} "
        "--max-epochs {params.max_epochs} --patience {params.patience} --lr {params.lr} "
        "--batch-size {params.batch_size} --seed {params.seed} --device {params.device:q} --no-progress "
        "2> {log:q} | tee {output.summary:q}"


STAGE_TARGETS["finetune"] += [FINETUNE_DIR / "cds" / "comparison.tsv"]
