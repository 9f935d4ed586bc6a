"""Any FASTA (plain, gzip or bgzip) made ready for random access by pyfaidx, pysam and IGV.

Random access needs a ``.fai`` beside the file, and for a compressed file BGZF blocks with a
``.gzi``. NCBI serves plain gzip, which neither pyfaidx nor samtools can index. ``ensure_indexed``
returns a path that can be read at random: the input itself when it is plain or bgzip (its
indexes written beside it, under temporary names and renamed, when missing and the folder is
writable), or else a validated bgzip copy with both indexes in a cache folder, built under a
temporary name and renamed whole, keyed by the input's path, size and modification time, so
repeated and concurrent calls reuse one copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from dnafm_lib.core.atomic import atomic_path, sweep_stale, temp_prefix
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.fasta import GZIP_MAGIC

log = logging.getLogger(__name__)

PREPARED_NAME = "genome.fa.gz"


class FastaAccessError(DnafmError):
    """A FASTA that cannot be opened for random access."""


def default_cache_dir() -> Path:
    """``$DNAFM_CACHE_DIR``, else ``$XDG_CACHE_HOME/dnafm``, else ``~/.cache/dnafm``; plus ``/fasta``."""
    root = (
        os.environ.get("DNAFM_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dnafm"
    )
    return Path(root) / "fasta"


def compression(path: str | os.PathLike) -> str:
    """``plain``, ``gzip`` or ``bgzip`` (a gzip member with the BGZF ``BC`` extra field)."""
    with open(path, "rb") as handle:
        head = handle.read(18)
    if head[:2] != GZIP_MAGIC:
        return "plain"
    # BGZF: FEXTRA flag set, XLEN 6, then subfield 'B' 'C' of length 2 (the SAM spec, section 4.1)
    if len(head) >= 16 and head[3] & 4 and head[12:14] == b"BC":
        return "bgzip"
    return "gzip"


def ensure_indexed(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """A path to the same sequences that pyfaidx/pysam open at random (see the module docstring)."""
    path = Path(path)
    if path.is_dir() or not path.exists():
        raise FastaAccessError(f"{path}: {'a directory, not a' if path.is_dir() else 'no such'} FASTA file")
    kind = compression(path)
    if kind != "gzip":
        indexes = [Path(f"{path}.fai")] + ([Path(f"{path}.gzi")] if kind == "bgzip" else [])
        if all(index.exists() and index.stat().st_mtime_ns >= path.stat().st_mtime_ns for index in indexes):
            return path
        if os.access(path.parent, os.W_OK):
            _index_beside(path, kind)
            return path
    return _prepared_copy(path, Path(cache_dir) if cache_dir else default_cache_dir())


def _faidx(fasta: Path, fai: Path, gzi: Path | None) -> None:
    import pysam

    args = [str(fasta), "--fai-idx", str(fai)] + (["--gzi-idx", str(gzi)] if gzi else [])
    try:
        pysam.faidx(*args)
    except pysam.SamtoolsError as exc:
        message = str(exc).split("stderr=")[-1].strip().strip("'\"\\n ")
        raise FastaAccessError(f"{fasta}: cannot index the FASTA ({message})") from None


def _index_beside(path: Path, kind: str) -> None:
    """Write ``.fai`` (and ``.gzi``) beside ``path`` under temporary names, then rename them in."""
    fai, gzi = Path(f"{path}.fai"), Path(f"{path}.gzi") if kind == "bgzip" else None
    with contextlib.ExitStack() as stack:
        # entered fai first, so the .gzi is renamed in before the .fai that announces it
        tmp_fai = stack.enter_context(atomic_path(fai))
        tmp_gzi = stack.enter_context(atomic_path(gzi)) if gzi else None
        _faidx(path, tmp_fai, tmp_gzi)
    log.info("%s: indexed (%s)", path, fai.name)


def _cache_key(path: Path) -> str:
    stat = path.stat()
    identity = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _prepared_copy(path: Path, cache_dir: Path) -> Path:
    """The bgzip + .fai + .gzi copy of ``path`` in ``cache_dir``, built once (validated while it is written)."""
    from dnafm_lib.data.genomes import write_bgzip_fasta

    stem = path.name.split(".")[0] or "genome"
    final = cache_dir / f"{stem}-{_cache_key(path)}"
    prepared = final / PREPARED_NAME
    if prepared.exists():
        return prepared
    final.parent.mkdir(parents=True, exist_ok=True)
    # Not atomic_dir: a twin that finished first must be kept, not replaced under its readers.
    sweep_stale(final)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(final), dir=final.parent))
    try:
        log.info("%s: plain gzip, not bgzip; writing an indexed bgzip copy to %s", path, prepared)
        write_bgzip_fasta(path, tmp / PREPARED_NAME)
        _faidx(tmp / PREPARED_NAME, tmp / f"{PREPARED_NAME}.fai", tmp / f"{PREPARED_NAME}.gzi")
        (tmp / "source.txt").write_text(f"{path.resolve()}\n")
        try:
            os.rename(tmp, final)
        except OSError:
            if not prepared.exists():  # not a concurrent twin that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return prepared


def open_fasta(path: str | Path):
    """A pyfaidx reader of an indexed FASTA (raw strings, case kept); one error naming the file."""
    import pyfaidx

    try:
        return pyfaidx.Fasta(str(path), sequence_always_upper=False, rebuild=False, as_raw=True)
    except (OSError, pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat) as exc:
        raise DnafmError(f"{path}: cannot open the FASTA ({exc})") from None


def fasta_lengths(fasta) -> dict[str, int]:
    """Each record's length in bp, by name, of an ``open_fasta`` FASTA."""
    return {name: len(record) for name, record in fasta.records.items()}
