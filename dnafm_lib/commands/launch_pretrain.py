"""dnafm launch-pretrain: run `dnafm pretrain` here, or across a Slurm job's allocation with srun torchrun.

Takes every `dnafm pretrain` option. In a Slurm batch script (the pretraining rule under
profiles/slurm) it starts one torchrun agent per Slurm task with srun (c10d rendezvous at the
first node of the allocation, --nproc-per-node processes each) and, when the run is preempted
(scancel --signal=USR1, sbatch --signal=USR1@SECONDS, a requeue), lets the workers save a
checkpoint and requeues the job so that Slurm runs it again and training resumes from there.
Under Slurm with GPUs, one worker per allocated GPU (whatever --nproc-per-node says).
Anywhere else it is `dnafm pretrain`. Exit codes: 0 done, 1 error, 75 preempted (run again to resume).
"""

HELP = "pretrain here or across a Slurm allocation (srun torchrun); requeue the job when preempted"


def add_arguments(parser):
    from dnafm_lib.commands import pretrain

    pretrain.add_arguments(parser)


def run(args) -> int:
    import os

    from dnafm_lib.commands import pretrain
    from dnafm_lib.train import slurm_launch
    from dnafm_lib.train.config import TrainConfigError

    if not slurm_launch.in_batch_script(os.environ):
        # Inside a Slurm step that holds GPUs (a one-task job): one worker per GPU of the step.
        gpus = os.environ.get("SLURM_GPUS_ON_NODE", "")
        if gpus.isdigit() and int(gpus) > 0 and int(gpus) != args.nproc_per_node:
            print(f"launch-pretrain: {gpus} GPU(s) in this Slurm step: --nproc-per-node {gpus}", flush=True)
            args.nproc_per_node = int(gpus)
        return pretrain.run(args)
    if args.nproc_per_node < 1:
        raise TrainConfigError(f"--nproc-per-node must be at least 1, got {args.nproc_per_node}")
    config = pretrain.settings_from_args(args)
    return slurm_launch.run_in_allocation(config, args.nproc_per_node, os.environ)
