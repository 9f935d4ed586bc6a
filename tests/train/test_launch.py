"""The one launcher without a cluster: torchrun commands, the rendezvous port, reading an allocation.

The launcher under a real Slurm (2 ranks, USR1, requeue, resume) is tested in test_slurm.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from dnafm_lib.train import launch
from dnafm_lib.train.launch import Allocation, SlurmLaunchError, first_host, needs_torchrun, node_torchrun_command
from dnafm_lib.train.preemption import preempted_since

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
    record = launch.parse_job_record(RECORD)
    assert record["NodeList"] == "vm" and record["NumTasks"] == "2" and record["Requeue"] == "1"
    assert record["TRES"] == "cpu=2,mem=2G,node=1,billing=2"
    assert record["AllocNode:Sid"] == "localhost:2293"


def test_allocation_splits_the_job_cpus_over_its_tasks():
    record = launch.parse_job_record(RECORD.replace("NumCPUs=2 NumTasks=2", "NumCPUs=128 NumTasks=2"))
    allocation = launch.allocation_from_record("14", record, ["gpu07", "gpu08"])
    assert allocation == Allocation(
        job_id="14", hosts=("gpu07", "gpu08"), num_tasks=2, cpus_per_task=64, requeueable=True
    )


def test_allocation_without_tasks_or_hosts_is_a_clear_error():
    with pytest.raises(SlurmLaunchError, match="NumTasks"):
        launch.allocation_from_record("9", {"NodeList": "vm"}, ["vm"])
    with pytest.raises(SlurmLaunchError, match="empty node list"):
        launch.allocation_from_record("9", launch.parse_job_record(RECORD), [])


def test_srun_starts_one_torchrun_per_task_with_rendezvous_at_the_first_node():
    allocation = Allocation(
        job_id="4242", hosts=("gpu07", "gpu08", "gpu09"), num_tasks=3, cpus_per_task=64, requeueable=True
    )
    command = launch.srun_torchrun_command(allocation, 8, ["--config-json", "{}"], port=24242)
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
    wrapper = launch.srun_torchrun_command(allocation, 1, [], port=1)[6:10]
    result = subprocess.run([*wrapper, sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["True", "True"], result.stderr


def test_rendezvous_port_comes_from_the_job_id_unless_set():
    assert launch.rendezvous_port("123456", {}) == 20000 + 123456 % 20000
    assert launch.rendezvous_port("123456_7", {}) == 20000 + 1234567 % 20000  # array jobs
    assert launch.rendezvous_port("123456", {"DNAFM_RDZV_PORT": "29501"}) == 29501


def test_only_a_batch_script_launches_srun():
    assert launch.in_batch_script({"SLURM_JOB_ID": "5"})
    assert not launch.in_batch_script({"SLURM_JOB_ID": "5", "SLURM_STEP_ID": "0"})  # inside srun
    assert not launch.in_batch_script({})


def test_preemption_marker_counts_only_when_written_by_this_launch(tmp_path):
    marker = tmp_path / "preempted.json"
    marker.write_text('{"step": 7, "signal": 10}')
    assert preempted_since(tmp_path, started=marker.stat().st_mtime) == {"step": 7, "signal": 10}
    assert preempted_since(tmp_path, started=marker.stat().st_mtime + 60) is None
    assert preempted_since(tmp_path / "missing", started=0) is None


@pytest.mark.parametrize(
    "tres, gpus",
    [("gres:gpu:8", 8), ("gres/gpu:a100:4", 4), ("gres/gpu=2", 2), ("gres:gpu:h100:8,gres:nic:1", 8), ("", 0)],
)
def test_gpus_per_node_are_read_from_the_job_record(tres, gpus):
    record = launch.parse_job_record(RECORD + (f" TresPerNode={tres}" if tres else ""))
    assert launch.gpus_per_node(record) == gpus


def test_each_torchrun_agent_gets_its_share_of_the_node_gpus():
    record = launch.parse_job_record(RECORD + " TresPerNode=gres:gpu:8")
    one_per_node = launch.allocation_from_record("14", {**record, "NumTasks": "2"}, ["gpu01", "gpu02"])
    two_per_node = launch.allocation_from_record("14", {**record, "NumTasks": "4"}, ["gpu01", "gpu02"])
    assert (one_per_node.gpus_per_task, two_per_node.gpus_per_task) == (8, 4)


def test_first_host_of_slurm_node_lists():
    assert first_host("gpu[07-09,12],cpu1") == "gpu07"
    assert first_host("node12") == "node12"
    assert first_host("a-1,b-2") == "a-1"


def test_torchrun_on_one_of_several_slurm_nodes_meets_at_the_first_host_on_the_job_s_port():
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_NNODES": "4", "SLURM_JOB_NODELIST": "gpu[03-06]"}
    command = node_torchrun_command(["--config-json", "{}"], nproc_per_node=8, env=slurm)
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert {
        "--nproc-per-node=8",
        "--nnodes=4",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=gpu03:{20000 + 4242}",
        "--rdzv-id=4242",
    } <= set(command)
    assert command[-5:] == ["-m", "dnafm_lib.cli", "pretrain", "--config-json", "{}"]
    local = node_torchrun_command([], nproc_per_node=2, env={})
    assert "--standalone" in local and "--nproc-per-node=2" in local and not any("rdzv" in a for a in local)


def test_two_jobs_on_one_node_get_two_ports_and_both_launch_paths_the_same_one():
    def endpoint(command):
        return next(arg for arg in command if arg.startswith("--rdzv-endpoint="))

    def in_srun_step(job_id):  # srun --ntasks-per-node=1 dnafm pretrain …
        env = {"SLURM_JOB_ID": job_id, "SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "gpu[01-02]"}
        return endpoint(node_torchrun_command([], nproc_per_node=4, env=env))

    def from_batch_script(job_id):  # dnafm launch-pretrain in the job's batch script
        allocation = Allocation(job_id=job_id, hosts=("gpu01", "gpu02"), num_tasks=2, cpus_per_task=8, requeueable=True)
        return endpoint(launch.srun_torchrun_command(allocation, 4, [], port=launch.rendezvous_port(job_id, {})))

    assert in_srun_step("5001") != in_srun_step("5002")
    assert in_srun_step("5001") == from_batch_script("5001") == "--rdzv-endpoint=gpu01:25001"


def test_launcher_trains_in_process_when_one_process_is_asked_for():
    assert not needs_torchrun(1, {})
    assert needs_torchrun(2, {})
    assert needs_torchrun(1, {"SLURM_NNODES": "2"})
    assert not needs_torchrun(4, {"RANK": "0", "WORLD_SIZE": "4"})  # already a torchrun worker
