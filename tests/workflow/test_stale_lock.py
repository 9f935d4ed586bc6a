"""The lock of a SIGKILLed Snakemake run is released before `make demo`/`make run` start, and only then."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dnafm_lib.workflow.stale_lock import release_stale_lock

REPO = Path(__file__).resolve().parents[2]


def lock(directory: Path) -> list[Path]:
    locks = directory / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    paths = [locks / "0.input.lock", locks / "0.output.lock"]
    for path in paths:
        path.write_text(str(directory / "results" / "x") + "\n")
    return paths


def test_a_lock_nobody_holds_is_released(tmp_path):
    paths = lock(tmp_path)
    assert "released the lock" in release_stale_lock(tmp_path)
    assert not any(path.exists() for path in paths)
    assert release_stale_lock(tmp_path) == ""  # nothing left to do


def test_the_lock_of_a_running_snakemake_is_kept(tmp_path):
    paths = lock(tmp_path)
    # A process that runs as `…/snakemake` in that directory (python under that name, sleeping).
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "snakemake"
    fake.symlink_to(sys.executable)
    running = subprocess.Popen([str(fake), "-c", "import time; time.sleep(60)"], cwd=tmp_path)
    try:
        time.sleep(0.5)
        message = release_stale_lock(tmp_path)
        assert f"pid {running.pid}" in message and "lock kept" in message
        assert all(path.exists() for path in paths)
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait()
    # Killed: its lock is stale now.
    assert "released" in release_stale_lock(tmp_path) and not any(path.exists() for path in paths)


def test_the_command_line_entry_point_releases_it(tmp_path):
    paths = lock(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "dnafm_lib.workflow.stale_lock", str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and "released" in done.stderr
    assert not any(path.exists() for path in paths)
