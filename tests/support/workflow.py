"""Running the real workflow from the tests: Snakemake in this repository with the venv on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def env(**extra: str) -> dict[str, str]:
    """The environment of a workflow run from the tests: the venv on PATH, no NCBI key (tests stay
    offline), plus `extra`."""
    variables = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **extra}
    variables.pop("NCBI_API_KEY", None)
    return variables


def snakemake(config_path, *targets, timeout: float = 1200) -> subprocess.CompletedProcess:
    """``snakemake TARGETS --configfile CONFIG --cores 2`` from the repository root (no NCBI key: tests stay offline)."""
    command = [sys.executable, "-m", "snakemake", *map(str, targets), "--configfile", str(config_path)]
    return subprocess.run(
        [*command, "--cores", "2", "--nolock", "--quiet"],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
