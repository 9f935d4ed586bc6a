"""Preemption: the signals that ask a run to stop, the flag the loop polls, and the marker launchers read.

Contract (Slurm's requeue): on SIGTERM or SIGUSR1 a rank sets a flag; at the next step
boundary all ranks agree (the flag rides on the step's first all-reduce), save a checkpoint of
the last completed step, leave ``preempted.json`` in the run directory and exit with
``PREEMPTED_EXIT_CODE`` (75, EX_TEMPFAIL: "try again"). A launcher sees only torchrun's or
srun's exit status, so it reads the marker (``preempted_since``) and exits 75 too, or requeues
the Slurm job. Run the same command again and it resumes.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

PREEMPTED_EXIT_CODE = 75
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
# Left in the run directory by a preempted run: launchers see only torchrun's/srun's exit status.
PREEMPTED_MARKER = "preempted.json"


def preempted_since(run_dir: str | os.PathLike, started: float) -> dict | None:
    """The preemption marker's content when a run launched at ``started`` (Unix time) wrote it, else None."""
    marker = Path(run_dir) / PREEMPTED_MARKER
    try:
        if marker.stat().st_mtime >= started - 1:  # 1 s: coarse file-system timestamps
            return json.loads(marker.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return None


class PreemptionFlag:
    """Set by SIGTERM/SIGUSR1; the loop polls it at step boundaries."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    def _handle(self, signum, frame) -> None:
        self.signal_number = signum

    def install(self) -> "PreemptionFlag":
        for signum in PREEMPTION_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
