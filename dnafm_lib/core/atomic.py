"""Write outputs under a temporary name and rename them when whole.

Snakemake and users must never see a half-written file: a crash leaves either the old
output or nothing, plus at most a hidden ``.tmp-{name}.{host}.{pid}.*`` sibling. The
temporary name carries its writer's host and pid, so the next writer of the same output
removes the leftovers of writers that are gone (``sweep_stale``) before it starts: a SIGKILL
costs disk space only until the same command runs again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.core.output_dir import check_output_dir, write_marker


class OutputPathError(DnafmError):
    """An output path that cannot be written as asked (e.g. a file where a directory should go)."""


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create 0600/0700 entries; outputs must get the modes a plain open() would give,
# so that group members on a shared cluster can read results.
_UMASK = _current_umask()
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK

#: A leftover from another host is removed once it has not changed for this long: we cannot ask
#: that host whether its writer lives, and Snakemake never runs two jobs for one output at once.
FOREIGN_STALE_S = 24 * 3600


#: Write failures that are the output's (its file system), not the program's: reported naming the output.
WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def write_failure(final: Path, exc: OSError) -> OutputPathError:
    """One line for a failed write of ``final`` (the OS error names only the temporary, or nothing)."""
    return OutputPathError(f"{final}: {os.strerror(exc.errno).lower()} while writing it; nothing was written")


def _host() -> str:
    return socket.gethostname() or "localhost"


def _owner_tag() -> str:
    return f"{_host()}.{os.getpid()}."


def temp_prefix(final: str | os.PathLike, kind: str = "tmp") -> str:
    """``.tmp-{name}.{host}.{pid}.``: the prefix (for ``tempfile.mkstemp``/``mkdtemp``) of a temporary
    sibling of ``final`` that ``sweep_stale(final)`` removes once this process is gone. For writers
    that cannot use ``atomic_path``/``atomic_dir`` (e.g. one that must not replace a finished twin)."""
    return f".{kind}-{Path(final).name}.{_owner_tag()}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _make_parent(final: Path) -> None:
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in final.parents if p.exists() and not p.is_dir()), final.parent)
        raise OutputPathError(f"{blocker}: is a file, so {final} cannot be created under it") from None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep_stale(final: str | os.PathLike) -> list[Path]:
    """Remove ``.tmp-``/``.old-`` siblings of ``final`` whose writer is gone; return what was removed.

    A writer on this host is gone when its pid no longer runs; one on another host when its
    leftover has been untouched for ``FOREIGN_STALE_S``. Leftovers of live writers stay.
    """
    final = Path(final)
    parent = final.parent
    if not parent.is_dir():
        return []
    removed = []
    host = _host()
    now = time.time()
    for prefix in (".tmp-", ".old-"):
        start = f"{prefix}{final.name}."
        # "<host>.<pid>.<random>": host names may hold dots; pids and mkstemp's [a-z0-9_] suffix never do
        owned = re.compile(rf"{re.escape(start)}(?P<host>.+)\.(?P<pid>\d+)\.[a-z0-9_]+")
        for candidate in parent.glob(f"{glob_escape(start)}*"):
            owner = owned.fullmatch(candidate.name)
            # The glob also finds a longer output's temps (final.fai's): its name's rest reads as the host.
            if owner is None or owner["host"].endswith(f".{host}"):
                continue  # not a name this module wrote for final
            if owner["host"] == host:
                stale = not _pid_alive(int(owner["pid"]))
            else:
                try:
                    stale = now - candidate.lstat().st_mtime > FOREIGN_STALE_S
                except FileNotFoundError:
                    continue
            if stale:
                _remove(candidate)
                removed.append(candidate)
    return removed


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path beside ``final``; rename it onto ``final`` on success."""
    final = Path(final)
    if final.is_dir():
        raise OutputPathError(f"{final}: is a directory, expected a file path to write")
    _make_parent(final)
    sweep_stale(final)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(final), dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, FILE_MODE)
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in WRITE_FAILURES:
            raise write_failure(final, exc) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(final: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """``open()`` a temporary sibling of ``final``; it replaces ``final`` only when closed cleanly."""
    with atomic_path(final) as tmp:
        with open(tmp, mode, **kwargs) as handle:
            yield handle


@contextlib.contextmanager
def atomic_dir(
    final: str | os.PathLike, *, kind: str = "dnafm", inputs: Iterable[str | os.PathLike | None] = ()
) -> Iterator[Path]:
    """Yield a temporary directory beside ``final``; it replaces ``final`` (whole) on success.

    ``final`` is replaced only when it is absent, empty or an earlier output of the same ``kind``
    (its ``.dnafm-output.json`` marker, written into every directory made here; see
    core/output_dir.py), and holds none of ``inputs``: anything else is an error checked before any
    work, and again just before the old directory goes. A symlink is resolved: its target is replaced.
    """
    shown = Path(final)
    final = check_output_dir(shown, kind, inputs=inputs)
    _make_parent(final)
    sweep_stale(final)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(final), dir=final.parent))
    try:
        yield tmp
        write_marker(tmp, kind)
        os.chmod(tmp, DIR_MODE)
        check_output_dir(shown, kind, inputs=inputs)  # the body may have run for hours
        if final.exists():
            # The old directory moves aside under an owner-tagged name: if we die between the two
            # renames, the next writer sweeps it.
            backup = Path(tempfile.mkdtemp(prefix=temp_prefix(final, "old"), dir=final.parent))
            os.replace(final, backup)
            os.replace(tmp, final)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in WRITE_FAILURES:
            raise write_failure(shown, exc) from exc
        raise
    except DnafmError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if str(tmp) in str(exc):  # name the file where the user will look for it, not its temporary
            raise OutputPathError(str(exc).replace(str(tmp), str(shown))) from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
