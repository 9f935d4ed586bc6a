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
    from dnafm_lib.train import launch

    config = pretrain.settings_from_args(args)
    return launch.launch(config, args.nproc_per_node, os.environ, use_slurm_allocation=True)
