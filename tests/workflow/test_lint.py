"""`snakemake --lint` finds nothing to complain about in the workflow (rules, logs, conda envs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_snakemake_lint_reports_nothing():
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--cores", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Lints for" not in output, output[-6000:]


def test_every_conda_env_a_rule_names_exists():
    """Each `conda:` directive points at a file under envs/ (relative to workflow/rules/)."""
    named = set()
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        lines = smk.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() == "conda:":
                named.add((smk.parent / lines[i + 1].strip().strip("\"'")).resolve())
    assert named, "no rule names a conda environment"
    assert all(path.is_file() and path.parent == REPO / "envs" for path in named), sorted(map(str, named))
