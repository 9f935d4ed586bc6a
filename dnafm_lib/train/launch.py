"""Start training: in this process, under torchrun on one node, or across a Slurm allocation.

``dnafm pretrain`` calls ``launch``. Already inside torchrun (RANK set) it trains. Otherwise,
with one process per node and one node it trains in this process; with more it runs
``python -m torch.distributed.run`` (torchrun) on this node:

- one node: ``--standalone`` (a free local port);
- a Slurm allocation of several nodes (``srun --ntasks-per-node=1 dnafm pretrain …``): one
  launcher per node, ``--nnodes=$SLURM_NNODES``, c10d rendezvous at the allocation's first
  host (``$SLURM_JOB_NODELIST``) on port ``$DNAFM_RDZV_PORT`` (default 29500), rendezvous
  id ``$SLURM_JOB_ID``.

SIGTERM/SIGUSR1 reaching the launcher are passed to torchrun as SIGTERM, which passes them to
the workers; they save and exit. The launcher then exits with PREEMPTED_EXIT_CODE (75) when
the run was preempted (the loop leaves ``preempted.json`` in the run directory), so a Slurm
job script or requeue hook sees the same code as with one process.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from typing import Mapping, Sequence

from dnafm_lib.train.checkpointer import PREEMPTED_EXIT_CODE, PREEMPTION_SIGNALS, preempted_since

DEFAULT_RDZV_PORT = 29500


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


def torchrun_command(worker_args: Sequence[str], *, nproc_per_node: int, env: Mapping[str, str]) -> list[str]:
    """The torchrun command line for this node."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc_per_node}"]
    nodes = slurm_nodes(env)
    if nodes > 1:
        host = first_host(env["SLURM_JOB_NODELIST"])
        port = env.get("DNAFM_RDZV_PORT", str(DEFAULT_RDZV_PORT))
        command += [
            f"--nnodes={nodes}",
            "--rdzv_backend=c10d",
            f"--rdzv_endpoint={host}:{port}",
            f"--rdzv_id={env.get('SLURM_JOB_ID', 'dnafm')}",
        ]
    else:
        command += ["--standalone", "--nnodes=1"]
    return command + ["-m", "dnafm_lib.cli", "pretrain", *worker_args]


def needs_torchrun(nproc_per_node: int, env: Mapping[str, str]) -> bool:
    if "RANK" in env and "WORLD_SIZE" in env:  # we are a worker already
        return False
    return nproc_per_node > 1 or slurm_nodes(env) > 1


def run_torchrun(command: Sequence[str], run_dir: str | os.PathLike) -> int:
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
