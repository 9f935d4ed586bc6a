"""The Slurm side of pretraining: ``srun torchrun`` across the job's allocation, and requeue.

A pretraining job's batch script (the Snakemake rule under profiles/slurm) runs
``dnafm launch-pretrain``, which:

1. reads the allocation from ``scontrol show job $SLURM_JOB_ID`` (node list, nodes, tasks, CPUs per
   task) — the Snakemake job-step executor strips ``SLURM_*`` variables other than the job id, so
   the environment alone is not enough;
2. starts one torchrun agent per Slurm task with ``srun``: ``--nnodes`` = tasks (one per node on a
   real cluster; two on one node in the CI test), ``--nproc-per-node`` = GPUs per node, c10d
   rendezvous at the first host of the node list (MASTER_ADDR) on a port derived from the job id,
   rendezvous id = the job id; each worker runs ``dnafm pretrain`` with the merged settings;
3. on preemption — ``scancel --signal=USR1`` (or ``sbatch --signal=USR1@600`` before the time
   limit) reaches every process of the step; the workers save a checkpoint and exit, leaving
   ``preempted.json`` in the run directory — it requeues the job (``scontrol requeue``) when the
   job is requeueable, so Slurm runs the batch script again and training resumes from that
   checkpoint. Outside Slurm, or when the job cannot be requeued, it exits with
   PREEMPTED_EXIT_CODE (75) like ``dnafm pretrain``.

Outside a Slurm batch script (a workstation, or inside a step that Snakemake's job-step executor
already started with ``srun``) it runs ``dnafm pretrain`` itself, which starts torchrun on this
node when asked for several processes.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.train.checkpointer import PREEMPTED_EXIT_CODE, PREEMPTION_SIGNALS, preempted_since

# Rendezvous ports are spread over this range by job id, so jobs sharing a node do not collide.
RDZV_PORT_BASE = 20000
RDZV_PORT_SPAN = 20000
# After `scontrol requeue` Slurm kills this job within KillWait; wait at most this long for it.
REQUEUE_WAIT_S = 600


class SlurmLaunchError(DnafmError):
    """The Slurm allocation cannot be read or used."""


@dataclass(frozen=True)
class Allocation:
    job_id: str
    hosts: tuple[str, ...]
    num_tasks: int
    cpus_per_task: int
    requeueable: bool
    gpus_per_node: int = 0

    @property
    def gpus_per_task(self) -> int:
        return self.gpus_per_node // max(1, self.num_tasks // len(self.hosts))


def gpus_per_node(record: Mapping[str, str]) -> int:
    """GPUs per node from TresPerNode (``gres:gpu:8``, ``gres/gpu:a100:8``); 0 when none."""
    match = re.search(r"gpu(?:[:/=][A-Za-z0-9_.-]+)*?[:=](\d+)(?:,|$)", record.get("TresPerNode", ""))
    return int(match.group(1)) if match else 0


def parse_job_record(text: str) -> dict[str, str]:
    """``scontrol show job -o`` output (KEY=VALUE words) as a dict; values may hold spaces only at the end."""
    fields: dict[str, str] = {}
    for match in re.finditer(r"(\S+?)=(\S*)", text):
        fields.setdefault(match.group(1), match.group(2))
    return fields


def _scontrol(*args: str) -> str:
    try:
        return subprocess.run(["scontrol", *args], check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        raise SlurmLaunchError("scontrol is not on PATH: cannot read the Slurm allocation") from None
    except subprocess.CalledProcessError as exc:
        raise SlurmLaunchError(f"scontrol {' '.join(args)} failed: {exc.stderr.strip()}") from None


def allocation_from_record(job_id: str, record: Mapping[str, str], hosts: Sequence[str]) -> Allocation:
    """The allocation from a parsed job record and its expanded host list."""
    try:
        num_tasks = int(record.get("NumTasks", "") or record["NumNodes"])
        # Every CPU of the allocation goes to the torchrun agents (a GPU job may ask per GPU).
        num_cpus = int(record.get("NumCPUs", "") or 0)
        cpus_per_task = max(1, num_cpus // num_tasks) if num_cpus else int(record.get("CPUs/Task", "1") or 1)
    except (KeyError, ValueError, ZeroDivisionError):
        raise SlurmLaunchError(f"job {job_id}: cannot read NumTasks/NumNodes/NumCPUs from scontrol show job") from None
    if not hosts:
        raise SlurmLaunchError(f"job {job_id}: empty node list (NodeList={record.get('NodeList')!r})")
    return Allocation(
        job_id=job_id,
        hosts=tuple(hosts),
        num_tasks=num_tasks,
        cpus_per_task=cpus_per_task,
        requeueable=record.get("Requeue") == "1",
        gpus_per_node=gpus_per_node(record),
    )


def read_allocation(job_id: str) -> Allocation:
    record = parse_job_record(_scontrol("show", "job", "-o", job_id))
    hosts = _scontrol("show", "hostnames", record.get("NodeList", "")).split()
    return allocation_from_record(job_id, record, hosts)


def rendezvous_port(job_id: str, env: Mapping[str, str]) -> int:
    """$DNAFM_RDZV_PORT, else a port derived from the job id."""
    if env.get("DNAFM_RDZV_PORT"):
        return int(env["DNAFM_RDZV_PORT"])
    return RDZV_PORT_BASE + int(re.sub(r"\D", "", job_id) or 0) % RDZV_PORT_SPAN


def srun_torchrun_command(
    allocation: Allocation, nproc_per_node: int, worker_args: Sequence[str], port: int
) -> list[str]:
    """``srun … torchrun … -m dnafm_lib.cli pretrain WORKER_ARGS``, one torchrun per Slurm task."""
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={allocation.num_tasks}",
        f"--nproc-per-node={nproc_per_node}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={allocation.hosts[0]}:{port}",
        f"--rdzv-id={allocation.job_id}",
        "--max-restarts=0",
        "-m",
        "dnafm_lib.cli",
        "pretrain",
        *worker_args,
    ]
    # torchrun dies on SIGUSR1 (Python's default) and would leave its workers to be killed while
    # they save: it ignores USR1 (inherited through exec), the workers install their own handler.
    ignore_usr1 = ["bash", "-c", 'trap "" USR1; exec "$@"', "torchrun"]
    return [
        "srun",
        f"--nodes={len(allocation.hosts)}",
        f"--ntasks={allocation.num_tasks}",
        f"--cpus-per-task={allocation.cpus_per_task}",
        "--kill-on-bad-exit=1",
        "--export=ALL",
        *ignore_usr1,
        *torchrun,
    ]


def in_batch_script(env: Mapping[str, str]) -> bool:
    """Inside a Slurm job but not inside an srun step (where a nested srun would not get resources)."""
    return bool(env.get("SLURM_JOB_ID")) and env.get("SLURM_STEP_ID", "batch") in ("batch", "4294967294")


def run_in_allocation(config, nproc_per_node: int, env: Mapping[str, str]) -> int:
    """Train across this job's allocation with srun torchrun; requeue the job when preempted."""
    allocation = read_allocation(env["SLURM_JOB_ID"])
    nproc_per_node = _processes_per_agent(allocation, nproc_per_node)
    world_size = allocation.num_tasks * nproc_per_node
    config.check_world(world_size)
    port = rendezvous_port(allocation.job_id, env)
    command = srun_torchrun_command(allocation, nproc_per_node, ["--config-json", json.dumps(config.to_dict())], port)
    print(
        f"launch-pretrain: job {allocation.job_id}: {allocation.num_tasks} torchrun agent(s) on "
        f"{','.join(allocation.hosts)}, {nproc_per_node} process(es) each (world size {world_size}), "
        f"rendezvous {allocation.hosts[0]}:{port}",
        file=sys.stderr,
        flush=True,
    )
    print("launching: " + shlex.join(command), file=sys.stderr, flush=True)
    started = time.time()
    returncode = _run_noting_signals(command)
    if returncode == 0:
        return 0
    return _after_failed_step(config, allocation, returncode, started)


def _processes_per_agent(allocation: Allocation, nproc_per_node: int) -> int:
    if allocation.gpus_per_task and allocation.gpus_per_task != nproc_per_node:
        # The allocation is the truth on a cluster: one worker per GPU it holds.
        print(
            f"launch-pretrain: {allocation.gpus_per_task} GPU(s) per task in job {allocation.job_id}: "
            f"{allocation.gpus_per_task} process(es) per torchrun agent (not {nproc_per_node})",
            file=sys.stderr,
            flush=True,
        )
        return allocation.gpus_per_task
    return nproc_per_node


def _run_noting_signals(command: list[str]) -> int:
    """Run ``command`` to its end and return its exit status, with preemption signals only noted meanwhile."""
    received: list[int] = []
    # A signal for the batch step (scancel --batch/--full) must not kill the launcher before srun
    # returns: srun and the workers get their own; the launcher only notes it.
    previous = {
        signum: signal.signal(signum, lambda signum, frame: received.append(signum)) for signum in PREEMPTION_SIGNALS
    }
    try:
        return subprocess.Popen(command).wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _after_failed_step(config, allocation: Allocation, returncode: int, started: float) -> int:
    """The launcher's exit status after srun failed: requeue the job when the run was preempted and can be."""
    marker = preempted_since(config.run_dir, started)
    if marker is None:
        print(f"launch-pretrain: srun exited with {returncode}", file=sys.stderr, flush=True)
        return returncode if returncode > 0 else 1
    step = marker.get("step")
    if not allocation.requeueable:
        print(
            f"launch-pretrain: preempted at step {step}; job {allocation.job_id} is not requeueable: "
            f"exit {PREEMPTED_EXIT_CODE}",
            file=sys.stderr,
            flush=True,
        )
        return PREEMPTED_EXIT_CODE
    print(
        f"launch-pretrain: preempted at step {step} (checkpoint saved): requeueing job {allocation.job_id}",
        file=sys.stderr,
        flush=True,
    )
    _scontrol("requeue", allocation.job_id)
    # Slurm now ends this run of the job (SIGTERM, then SIGKILL) and starts the batch script
    # again later; exiting first would end the job as failed instead.
    time.sleep(REQUEUE_WAIT_S)
    return PREEMPTED_EXIT_CODE
