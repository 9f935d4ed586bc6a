"""Pretraining stage: masked-LM pretraining on the train split's shards, then export.

  {results}/pretrain/{run}/   rule pretrain_model: checkpoints/step_*/ (torch.distributed.checkpoint),
                              metrics.csv, tensorboard/, curves.png, summary.json
  {results}/models/{run}/     rule export_model: config.json + model.safetensors (AIDO.DNA layout)

`dnafm launch-pretrain` trains in one process, starts torchrun for pretrain.nproc_per_node > 1,
and under profiles/slurm runs `srun torchrun` across the allocation (and requeues on
preemption). A re-run resumes from the latest checkpoint, so metrics.csv and the checkpoints
are not outputs: Snakemake must not delete them before a retry. Config `pretrain`: run,
nproc_per_node, nodes, runtime_min, mem_mb and the training settings under `train`.
"""

import json
import os

PRETRAIN = config["pretrain"]
STAGE_TARGETS["pretrain"] += [
    *expand(PRETRAIN_OUTPUTS["curves"], run=PRETRAIN_RUN),
    *expand(EXPORT_OUTPUTS["config"], run=PRETRAIN_RUN),
]


rule pretrain_model:
    input:
        train=LAYOUT.split_manifest("train"),
        validation=LAYOUT.split_manifest("validation"),
    output:
        summary=PRETRAIN_OUTPUTS["summary"],
        curves=report(
            PRETRAIN_OUTPUTS["curves"],
            caption="../report/training_curves.rst",
            category="Pretraining",
        ),
    log:
        LOGS / "pretrain_model" / "{run}.log",
    benchmark:
        LOGS / "pretrain_model" / "{run}.benchmark.tsv"
    conda:
        "../../envs/dnafm.yaml"
    # All of this machine's cores (Snakemake caps them at --cores); workflow.cores would fail
    # under profiles/slurm, which has no --cores and sets the job's CPUs and threads itself.
    threads: os.cpu_count() or 1
    resources:
        nodes=PRETRAIN["nodes"],
        tasks=PRETRAIN["nodes"],
        runtime=PRETRAIN["runtime_min"],
        mem_mb=PRETRAIN["mem_mb"],
    params:
        run_dir=lambda wildcards: Path(str(PRETRAIN_RUN_DIR).format(run=wildcards.run)),
        settings=json.dumps(PRETRAIN["train"]),
        nproc_per_node=PRETRAIN["nproc_per_node"],
    shell:
        "dnafm launch-pretrain --config-json {params.settings:q} --train-manifest {input.train:q} "
        "--validation-manifest {input.validation:q} --run-dir {params.run_dir:q} "
        "--nproc-per-node {params.nproc_per_node} > {log:q} 2>&1"


rule export_model:
    input:
        summary=PRETRAIN_OUTPUTS["summary"],
    output:
        **EXPORT_OUTPUTS,
    log:
        LOGS / "export_model" / "{run}.log",
    conda:
        "../../envs/dnafm.yaml"
    resources:
        mem_mb=4000,
    params:
        run_dir=lambda wildcards: Path(str(PRETRAIN_RUN_DIR).format(run=wildcards.run)),
        out_dir=lambda wildcards: Path(str(EXPORT_DIR).format(run=wildcards.run)),
    shell:
        "dnafm export --run-dir {params.run_dir:q} --out {params.out_dir:q} > {log:q} 2>&1"
