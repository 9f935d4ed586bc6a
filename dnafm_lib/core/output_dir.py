"""Output directories that a command may write: absent, empty, or its own earlier output.

A command that writes a directory leaves a marker file in it (``.dnafm-output.json``) naming
the kind of output (``{"written_by": "dnafm ism"}``). Before it writes, it checks the directory:
one that holds anything without that marker (a user's data, another command's output) is
refused with one error, and nothing is touched. Inputs inside the output directory are refused
too, since replacing the directory would delete them. A symlinked output directory is resolved,
so its target is what gets written and the link stays.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from dnafm_lib.core.errors import DnafmError

MARKER_NAME = ".dnafm-output.json"
_MARKER_TEMP = f".tmp-{MARKER_NAME}."  # core.atomic.temp_prefix of the marker


class OutputDirError(DnafmError):
    """An output directory that is not this command's to write (or that holds its own inputs)."""


def resolved(path: str | os.PathLike) -> Path:
    """``path`` with every symlink resolved (a dangling link becomes its target's path)."""
    return Path(os.path.realpath(path))


def marker_kind(directory: str | os.PathLike) -> str | None:
    """The kind of output the marker in ``directory`` names, or None (no marker, or not ours)."""
    try:
        data = json.loads((Path(directory) / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None
    written_by = data.get("written_by") if isinstance(data, dict) else None
    return written_by.removeprefix("dnafm ") if isinstance(written_by, str) else None


def write_marker(directory: str | os.PathLike, kind: str) -> None:
    """Mark ``directory`` as output of ``dnafm {kind}``. Written under a temporary name and renamed
    (core/atomic.py), so a hard-linked marker (a copied tree) is replaced, never edited in place,
    and the temporary of a killed writer is swept by the next."""
    from dnafm_lib.core.atomic import atomic_open  # atomic_dir calls this module: imported when used

    with atomic_open(Path(directory) / MARKER_NAME) as handle:
        json.dump({"written_by": f"dnafm {kind}"}, handle)
        handle.write("\n")


def check_output_dir(
    path: str | os.PathLike,
    kind: str,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    allowed: Iterable[str] = (),
) -> Path:
    """Raise OutputDirError unless ``path`` may be written as output of ``dnafm {kind}``; return it resolved.

    Writable: absent, empty, or marked as ``kind``'s output. ``allowed`` names entries an unmarked
    directory may already hold (e.g. chunk files earlier workflow jobs put there for a gather).
    No input may lie inside it, except inside those entries.
    """
    final = resolved(path)
    shown = Path(path)
    if final.exists() and not final.is_dir():
        raise OutputDirError(f"{shown}: exists and is not a directory; remove it or choose another output directory")
    ours = [final / name for name in allowed]  # what this command's own earlier steps put there
    for source in inputs:
        if source is None or not os.path.lexists(source):
            continue  # e.g. a model preset's name: nothing on disk to lose
        source_path = resolved(source)
        if any(source_path == own or own in source_path.parents for own in ours):
            continue  # e.g. the one-shot tracks' indexed copy of the genome in OUT_DIR/genome
        if source_path == final or final in source_path.parents:
            raise OutputDirError(
                f"{source}: an input inside the output directory {shown}; choose an output directory "
                "that does not hold the inputs"
            )
    if not final.is_dir():
        return final
    found = marker_kind(final)
    if found == kind:
        return final
    if found is not None:
        raise OutputDirError(
            f"{shown}: holds the output of dnafm {found}, not of dnafm {kind}; "
            "choose another output directory or remove this one"
        )
    try:
        entries = sorted(entry.name for entry in os.scandir(final))
    except OSError as exc:
        raise OutputDirError(f"{shown}: cannot list the output directory ({exc.strerror})") from None
    # A marker's temporary (a writer killed while marking) is ours; the next write_marker sweeps it.
    foreign = [name for name in entries if name not in set(allowed) and not name.startswith(_MARKER_TEMP)]
    if foreign:
        shown_names = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise OutputDirError(
            f"{shown}: not empty and not an earlier output of dnafm {kind} (holds {shown_names}; no {MARKER_NAME}); "
            "nothing was changed: choose a new or empty output directory, or remove this one"
        )
    return final


def claim_output_dir(
    path: str | os.PathLike,
    kind: str,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    allowed: Iterable[str] = (),
) -> Path:
    """``check_output_dir``, then create the directory and mark it, for writers that fill a
    directory file by file (a rerun then recognises it); return it resolved."""
    final = check_output_dir(path, kind, inputs=inputs, allowed=allowed)
    try:
        final.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputDirError(f"{path}: a file is in the way of the output directory") from None
    if marker_kind(final) != kind or any(entry.name.startswith(_MARKER_TEMP) for entry in os.scandir(final)):
        write_marker(final, kind)  # and sweeps a killed writer's temporary
    return final


def check_output_file(path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None]) -> None:
    """Refuse an output file that is one of the inputs (writing it would replace the input)."""
    final = resolved(path)
    for source in inputs:
        if source is not None and resolved(source) == final:
            raise OutputDirError(f"{path}: the output is also an input ({source}); choose another output path")
