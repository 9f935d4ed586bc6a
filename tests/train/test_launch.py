"""dnafm launch-pretrain without a cluster: reading an allocation, the srun torchrun command, the fallback.

The launcher under a real Slurm (2 ranks, USR1, requeue, resume) is tested in test_slurm.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from dnafm_lib.train import slurm_launch
from dnafm_lib.train.slurm_launch import Allocation, SlurmLaunchError

# `scontrol show job -o` of a 2-task job on this project's test cluster (Slurm 22.05).
RECORD = (
    "JobId=14 JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901746 Nice=0 Account=dnafm "
    "QOS=normal JobState=RUNNING Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 "
    "ExitCode=0:0 RunTime=00:00:01 TimeLimit=UNLIMITED TimeMin=N/A Partition=main AllocNode:Sid=localhost:2293 "
    "ReqNodeList=(null) ExcNodeList=(null) NodeList=vm BatchHost=vm NumNodes=1 NumCPUs=2 NumTasks=2 CPUs/Task=1 "
    "ReqB:S:C:T=0:0:*:* TRES=cpu=2,mem=2G,node=1,billing=2 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* "
    "WorkDir=/work/main StdOut=/work/main/slurm-14.out Power="
)


def test_job_record_fields_are_read_from_scontrol_output():
    record = slurm_launch.parse_job_record(RECORD)
    assert record["NodeList"] == "vm" and record["NumTasks"] == "2" and record["Requeue"] == "1"
    assert record["TRES"] == "cpu=2,mem=2G,node=1,billing=2"
    assert record["AllocNode:Sid"] == "localhost:2293"


def test_allocation_splits_the_job_cpus_over_its_tasks():
    record = slurm_launch.parse_job_record(RECORD.replace("NumCPUs=2 NumTasks=2", "NumCPUs=128 NumTasks=2"))
    allocation = slurm_launch.allocation_from_record("14", record, ["gpu07", "gpu08"])
    assert allocation == Allocation(
        job_id="14", hosts=("gpu07", "gpu08"), num_tasks=2, cpus_per_task=64, requeueable=True
    )


def test_allocation_without_tasks_or_hosts_is_a_clear_error():
    with pytest.raises(SlurmLaunchError, match="NumTasks"):
        slurm_launch.allocation_from_record("9", {"NodeList": "vm"}, ["vm"])
    with pytest.raises(SlurmLaunchError, match="empty node list"):
        slurm_launch.allocation_from_record("9", slurm_launch.parse_job_record(RECORD), [])


def test_srun_starts_one_torchrun_per_task_with_rendezvous_at_the_first_node():
    allocation = Allocation(
        job_id="4242", hosts=("gpu07", "gpu08", "gpu09"), num_tasks=3, cpus_per_task=64, requeueable=True
    )
    command = slurm_launch.srun_torchrun_command(allocation, 8, ["--config-json", "{}"], port=24242)
    assert command[:6] == [
        "srun",
        "--nodes=3",
        "--ntasks=3",
        "--cpus-per-task=64",
        "--kill-on-bad-exit=1",
        "--export=ALL",
    ]
    torchrun = command[command.index("torch.distributed.run") + 1 :]
    assert torchrun[:6] == [
        "--nnodes=3",
        "--nproc-per-node=8",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=gpu07:24242",
        "--rdzv-id=4242",
        "--max-restarts=0",
    ]
    assert torchrun[6:] == ["-m", "dnafm_lib.cli", "pretrain", "--config-json", "{}"]
    # torchrun itself must survive USR1 (the workers save on it): the shell ignores it before exec.
    wrapper = command[6:10]
    assert wrapper[:2] == ["bash", "-c"] and 'trap "" USR1' in wrapper[2]


def test_the_wrapper_makes_torchrun_ignore_usr1_but_lets_a_handler_catch_it():
    """The ignore is inherited through exec; a worker's own handler still receives the signal."""
    probe = (
        "import os, signal, sys\n"
        "inherited = signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN\n"
        "got = []\n"
        "signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"
        "print(inherited, got == [signal.SIGUSR1])\n"
    )
    allocation = Allocation(job_id="1", hosts=("vm",), num_tasks=1, cpus_per_task=1, requeueable=False)
    wrapper = slurm_launch.srun_torchrun_command(allocation, 1, [], port=1)[6:10]
    result = subprocess.run([*wrapper, sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["True", "True"], result.stderr


def test_rendezvous_port_comes_from_the_job_id_unless_set():
    assert slurm_launch.rendezvous_port("123456", {}) == 20000 + 123456 % 20000
    assert slurm_launch.rendezvous_port("123456_7", {}) == 20000 + 1234567 % 20000  # array jobs
    assert slurm_launch.rendezvous_port("123456", {"DNAFM_RDZV_PORT": "29501"}) == 29501


def test_only_a_batch_script_launches_srun():
    assert slurm_launch.in_batch_script({"SLURM_JOB_ID": "5"})
    assert not slurm_launch.in_batch_script({"SLURM_JOB_ID": "5", "SLURM_STEP_ID": "0"})  # inside srun
    assert not slurm_launch.in_batch_script({})


def test_preemption_marker_counts_only_when_written_by_this_launch(tmp_path):
    marker = tmp_path / "preempted.json"
    marker.write_text('{"step": 7, "signal": 10}')
    assert slurm_launch.preempted_since(tmp_path, started=marker.stat().st_mtime) == {"step": 7, "signal": 10}
    assert slurm_launch.preempted_since(tmp_path, started=marker.stat().st_mtime + 60) is None
    assert slurm_launch.preempted_since(tmp_path / "missing", started=0) is None


@pytest.mark.parametrize(
    "tres, gpus",
    [("gres:gpu:8", 8), ("gres/gpu:a100:4", 4), ("gres/gpu=2", 2), ("gres:gpu:h100:8,gres:nic:1", 8), ("", 0)],
)
def test_gpus_per_node_are_read_from_the_job_record(tres, gpus):
    record = slurm_launch.parse_job_record(RECORD + (f" TresPerNode={tres}" if tres else ""))
    assert slurm_launch.gpus_per_node(record) == gpus


def test_each_torchrun_agent_gets_its_share_of_the_node_gpus():
    record = slurm_launch.parse_job_record(RECORD + " TresPerNode=gres:gpu:8")
    one_per_node = slurm_launch.allocation_from_record("14", {**record, "NumTasks": "2"}, ["gpu01", "gpu02"])
    two_per_node = slurm_launch.allocation_from_record("14", {**record, "NumTasks": "4"}, ["gpu01", "gpu02"])
    assert (one_per_node.gpus_per_task, two_per_node.gpus_per_task) == (8, 4)
