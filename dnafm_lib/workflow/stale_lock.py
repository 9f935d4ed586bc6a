"""Release the lock a hard-killed Snakemake run left behind, when no Snakemake works here any more.

Snakemake locks its working directory (.snakemake/locks/) and removes the lock when it ends, also
on Ctrl-C; after SIGKILL, the OOM killer or a lost machine the lock stays, and the same command
then refuses to start until `snakemake --unlock`. `make demo` and `make run` call this first, so
rerunning the interrupted command is enough. Linux only (/proc): elsewhere, or when any process
running Snakemake has this working directory, the lock is left alone.

    python -m dnafm_lib.workflow.stale_lock [DIRECTORY]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

LOCKS = Path(".snakemake") / "locks"


def _ancestors() -> set[int]:
    """This process and its parents (make, the shell): they name snakemake in their command lines."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def _runs_snakemake(argv: list[str]) -> bool:
    """`snakemake …`, `…/bin/snakemake …` or `python -m snakemake …`."""
    names = [os.path.basename(arg) for arg in argv[:3]]
    return "snakemake" in names or any(a == "-m" and b == "snakemake" for a, b in zip(argv, argv[1:]))


def snakemake_running_in(directory: Path) -> list[int]:
    """Pids of processes other than our own line that run Snakemake with `directory` as working directory."""
    directory = directory.resolve()
    mine = _ancestors()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        pid = int(proc.name)
        if pid in mine:
            continue
        try:
            if Path(os.readlink(proc / "cwd")) != directory:
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        if _runs_snakemake([arg.decode(errors="replace") for arg in argv if arg]):
            found.append(pid)
    return found


def release_stale_lock(directory: str | os.PathLike = ".") -> str:
    """Remove the lock files of `directory` when no Snakemake runs there; say what was done."""
    directory = Path(directory)
    locks = directory / LOCKS
    held = sorted(locks.glob("*.lock")) if locks.is_dir() else []
    if not held:
        return ""
    if not Path("/proc/self").exists():
        return f"{locks}: a Snakemake lock is held; if no run is going on, run `snakemake --unlock`"
    running = snakemake_running_in(directory)
    if running:
        return f"{locks}: Snakemake is running here (pid {', '.join(map(str, running))}); lock kept"
    for path in held:
        path.unlink(missing_ok=True)
    return f"{locks}: released the lock of a Snakemake run that was killed (no Snakemake runs here now)"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    message = release_stale_lock(args[0] if args else ".")
    if message:
        print(message, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
