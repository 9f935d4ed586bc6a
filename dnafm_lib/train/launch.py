"""Start training: in this process, under torchrun on this node, or across a Slurm job's allocation.

``launch`` is the one entry (``dnafm pretrain`` and ``dnafm launch-pretrain`` call it):

- inside torchrun already (RANK set), or one process on one node: train in this process;
- several processes, or several Slurm nodes each running ``srun --ntasks-per-node=1 dnafm
  pretrain …``: run torchrun on this node (``run_on_this_node``);
- ``dnafm launch-pretrain`` in a Slurm batch script (the pretraining rule under profiles/slurm):
  ``srun`` starts one torchrun agent per Slurm task (``run_in_allocation``). The allocation is
  read from ``scontrol show job $SLURM_JOB_ID`` (node list, tasks, CPUs, GPUs per node): the
  Snakemake job-step executor strips ``SLURM_*`` variables other than the job id. Under Slurm
  with GPUs there is one worker per allocated GPU, whatever ``--nproc-per-node`` says.

Every torchrun command comes from ``torchrun_command``: ``--standalone`` on one node, else a
c10d rendezvous at the first host of the node list on ``rendezvous_port`` (derived from the job
id, so two jobs sharing a node do not collide; ``$DNAFM_RDZV_PORT`` overrides it), rendezvous id
= the job id.

Preemption (see preemption): SIGTERM/SIGUSR1 reach the workers (passed on as SIGTERM by the
local launcher; by Slurm itself to every process of an srun step); they save and exit, leaving
``preempted.json``. The launcher then exits with PREEMPTED_EXIT_CODE (75) — or, in a batch
script of a requeueable job, requeues it (``scontrol requeue``) so that Slurm runs it again and
training resumes from that checkpoint.
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
from dnafm_lib.train.preemption import PREEMPTED_EXIT_CODE, PREEMPTION_SIGNALS, preempted_since

# Rendezvous ports are spread over this range by job id, so jobs sharing a node do not collide.
RDZV_PORT_BASE = 20000
RDZV_PORT_SPAN = 20000
# After `scontrol requeue` Slurm kills this job within KillWait; wait at most this long for it.
REQUEUE_WAIT_S = 600


class SlurmLaunchError(DnafmError):
    """The Slurm allocation cannot be read or used."""


# ---------------------------------------------------------------------- the torchrun command


@dataclass(frozen=True)
class Rendezvous:
    """Where the torchrun agents of several nodes meet (c10d)."""

    host: str
    port: int
    run_id: str


def rendezvous_port(job_id: str, env: Mapping[str, str]) -> int:
    """$DNAFM_RDZV_PORT, else a port derived from the job id (array jobs: ``123_7`` → 1237)."""
    if env.get("DNAFM_RDZV_PORT"):
        return int(env["DNAFM_RDZV_PORT"])
    return RDZV_PORT_BASE + int(re.sub(r"\D", "", job_id) or 0) % RDZV_PORT_SPAN


def torchrun_command(
    worker_args: Sequence[str],
    *,
    nproc_per_node: int,
    nnodes: int = 1,
    rendezvous: Rendezvous | None = None,
    subcommand: Sequence[str] = ("pretrain",),
) -> list[str]:
    """``python -m torch.distributed.run … -m dnafm_lib.cli pretrain WORKER_ARGS`` (or another
    ``subcommand``: ``tracks score``); standalone without a rendezvous."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={nnodes}",
        f"--nproc-per-node={nproc_per_node}",
    ]
    if rendezvous is None:
        command.append("--standalone")  # one node: a free local port
    else:
        command += [
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={rendezvous.host}:{rendezvous.port}",
            f"--rdzv-id={rendezvous.run_id}",
        ]
    return command + ["--max-restarts=0", "-m", "dnafm_lib.cli", *subcommand, *worker_args]


def worker_args(config) -> list[str]:
    """Workers get the merged, validated settings as one JSON object."""
    return ["--config-json", json.dumps(config.to_dict())]


# ---------------------------------------------------------------------- one entry


def launch(config, nproc_per_node: int, env: Mapping[str, str], *, use_slurm_allocation: bool = False) -> int:
    """Train as the environment asks (see the module docstring); the exit status (0, 75 preempted, …)."""
    from dnafm_lib.train.config import TrainConfigError

    if use_slurm_allocation and not in_batch_script(env):
        # Inside a Slurm step that holds GPUs (a one-task job): one worker per GPU of the step.
        gpus = env.get("SLURM_GPUS_ON_NODE", "")
        if gpus.isdigit() and int(gpus) > 0 and int(gpus) != nproc_per_node:
            print(f"launch-pretrain: {gpus} GPU(s) in this Slurm step: --nproc-per-node {gpus}", flush=True)
            nproc_per_node = int(gpus)
    if nproc_per_node < 1:
        raise TrainConfigError(f"--nproc-per-node must be at least 1, got {nproc_per_node}")
    if use_slurm_allocation and in_batch_script(env):
        return run_in_allocation(config, nproc_per_node, env)
    return run_on_this_node(config, nproc_per_node, env)


# ---------------------------------------------------------------------- this node


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list: ``gpu[07-09,12],cpu1`` → ``gpu07``."""
    head = re.match(r"([^,\[]+)(\[([^\]]+)\])?", nodelist.strip())
    if not head:
        raise ValueError(f"cannot read a host from SLURM_JOB_NODELIST {nodelist!r}")
    prefix, ranges = head.group(1), head.group(3)
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def slurm_nodes(env: Mapping[str, str]) -> int:
    return int(env.get("SLURM_NNODES", env.get("SLURM_JOB_NUM_NODES", "1")) or 1)


def needs_torchrun(nproc_per_node: int, env: Mapping[str, str]) -> bool:
    if "RANK" in env and "WORLD_SIZE" in env:  # we are a worker already
        return False
    return nproc_per_node > 1 or slurm_nodes(env) > 1


def node_torchrun_command(worker_args: Sequence[str], *, nproc_per_node: int, env: Mapping[str, str]) -> list[str]:
    """This node's torchrun: standalone, or one agent of a multi-node ``srun … dnafm pretrain`` step."""
    nodes = slurm_nodes(env)
    if nodes == 1:
        return torchrun_command(worker_args, nproc_per_node=nproc_per_node)
    job_id = env.get("SLURM_JOB_ID", "")
    rendezvous = Rendezvous(first_host(env["SLURM_JOB_NODELIST"]), rendezvous_port(job_id, env), job_id or "dnafm")
    return torchrun_command(worker_args, nproc_per_node=nproc_per_node, nnodes=nodes, rendezvous=rendezvous)


def run_on_this_node(config, nproc_per_node: int, env: Mapping[str, str]) -> int:
    """Train in this process, or start torchrun on this node when more processes are asked for."""
    if not needs_torchrun(nproc_per_node, env):
        from dnafm_lib.train.loop import train

        result = train(config)
        return PREEMPTED_EXIT_CODE if result.preempted else 0
    # Fail before starting workers: the batch must split over every rank.
    config.check_world(nproc_per_node * slurm_nodes(env))
    command = node_torchrun_command(worker_args(config), nproc_per_node=nproc_per_node, env=env)
    return run_torchrun(command, config.run_dir)


def run_torchrun(command: Sequence[str], run_dir) -> int:
    """Run torchrun, forwarding preemption signals; map a preempted run to PREEMPTED_EXIT_CODE."""
    started = time.time()
    print("launching: " + shlex.join(command), file=sys.stderr, flush=True)
    child = subprocess.Popen(list(command))

    def forward(signum, frame):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)  # torchrun passes SIGTERM on to every worker

    previous = {signum: signal.signal(signum, forward) for signum in PREEMPTION_SIGNALS}
    try:
        returncode = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if returncode != 0 and preempted_since(run_dir, started) is not None:
        return PREEMPTED_EXIT_CODE
    return returncode


# ---------------------------------------------------------------------- a Slurm allocation


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


def srun_torchrun_command(
    allocation: Allocation, nproc_per_node: int, worker_args: Sequence[str], port: int
) -> list[str]:
    """``srun … torchrun … -m dnafm_lib.cli pretrain WORKER_ARGS``, one torchrun per Slurm task."""
    rendezvous = Rendezvous(allocation.hosts[0], port, allocation.job_id)
    torchrun = torchrun_command(
        worker_args, nproc_per_node=nproc_per_node, nnodes=allocation.num_tasks, rendezvous=rendezvous
    )
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
    command = srun_torchrun_command(allocation, nproc_per_node, worker_args(config), port)
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
