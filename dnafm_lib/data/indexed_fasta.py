"""Any FASTA (plain, gzip/bgzip, xz, bzip2, zstd) validated and made ready for random access by
pyfaidx, pysam and IGV.

Random access needs a ``.fai`` beside the file, and for a compressed file BGZF blocks with a
``.gzi``. NCBI serves plain gzip, which neither pyfaidx nor samtools can index. ``ensure_indexed``
returns a path that can be read at random: the input itself when it is plain or bgzip (its
indexes written beside it, under temporary names and renamed, when missing and the folder is
writable), or else a validated bgzip copy with both indexes in a cache folder, built under a
temporary name and renamed whole, keyed by the input's path, size and modification time, so
repeated and concurrent calls reuse one copy.

Every input passes the streaming validator of the genomes stage (data/fasta.py) first, so each
command refuses a bad FASTA with the same line as ``prepare-genome`` (samtools faidx alone keeps
one of two records whose names collide once the header is cut at its first space, and names
none of the file's other faults). A plain or bgzip file is validated once: a marker in the user's
cache (``validated/`` beside ``fasta/``), keyed like the copies, remembers it; a prepared genome directory (provenance.json beside its
genome.fa.gz) was validated when it was written. A file that is valid but that faidx cannot
index as it is (old-Mac line ends, ragged line lengths) is read through a copy, like gzip.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from dnafm_lib.core.atomic import atomic_open, atomic_path, sweep_stale, temp_prefix
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.compressed import sniff
from dnafm_lib.data.fasta import CR_LINE_ENDS, iter_sequence_chunks

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
    """``plain``, ``gzip``, ``bgzip`` (a gzip member with the BGZF ``BC`` extra field), ``xz``, ``bzip2`` or ``zstd``."""
    kind = sniff(path)
    if kind != "gzip":
        return kind
    with open(path, "rb") as handle:
        head = handle.read(18)
    # BGZF: FEXTRA flag set, XLEN 6, then subfield 'B' 'C' of length 2 (the SAM spec, section 4.1)
    if len(head) >= 16 and head[3] & 4 and head[12:14] == b"BC":
        return "bgzip"
    return "gzip"


def ensure_indexed(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """A path to the same sequences that pyfaidx/pysam open at random (see the module docstring).

    A FASTA the validator refuses is a FastaFormatError naming the file, and nothing is written.
    """
    path = Path(path)
    if path.is_dir() or not path.exists():
        raise FastaAccessError(f"{path}: {'a directory, not a' if path.is_dir() else 'no such'} FASTA file")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    prepared = _copy_dir(path, cache) / PREPARED_NAME
    if prepared.exists():
        return prepared
    kind = compression(path)
    if kind in ("plain", "bgzip") and _readable_in_place(path):
        indexes = [Path(f"{path}.fai")] + ([Path(f"{path}.gzi")] if kind == "bgzip" else [])
        if all(index.exists() and index.stat().st_mtime_ns >= path.stat().st_mtime_ns for index in indexes):
            return path
        if os.access(path.parent, os.W_OK):
            try:
                _index_beside(path, kind)
                return path
            except FastaAccessError as exc:  # e.g. ragged line lengths: the copy rewraps them
                log.info("%s; reading it through an indexed copy", exc)
    return _prepared_copy(path, cache, kind)


def _is_prepared_genome(path: Path) -> bool:
    """Whether ``path`` is the FASTA of a prepare_genome directory (validated when it was written)."""
    from dnafm_lib.data.genomes import FASTA_NAME, PROVENANCE_NAME

    provenance = path.parent / PROVENANCE_NAME
    return path.name == FASTA_NAME and provenance.exists() and provenance.stat().st_mtime_ns >= path.stat().st_mtime_ns


def _readable_in_place(path: Path) -> bool:
    """Validate ``path`` (once: the verdict is kept in the user's cache); whether faidx may index it as it is.

    The user's cache, not ``cache_dir``: that may be a command's output folder, which a marker
    would make non-empty before the command has written anything.
    """
    if _is_prepared_genome(path):
        return True
    marker = default_cache_dir().parent / "validated" / f"{path.name.split('.')[0] or 'genome'}-{_cache_key(path)}"
    if marker.exists():
        return marker.read_text().split("\n", 1)[0] == "in-place"
    flags: set[str] = set()
    for _ in iter_sequence_chunks(path, flags=flags):
        pass
    verdict = "copy" if CR_LINE_ENDS in flags else "in-place"  # faidx reads only \n line ends
    try:
        with atomic_open(marker) as handle:
            handle.write(f"{verdict}\n{path.resolve()}\n")
    except (OSError, DnafmError) as exc:  # a read-only cache costs a validation next time, nothing else
        log.info("%s: cannot remember the validation (%s)", marker, exc)
    return verdict == "in-place"


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


def _copy_dir(path: Path, cache_dir: Path) -> Path:
    return cache_dir / f"{path.name.split('.')[0] or 'genome'}-{_cache_key(path)}"


def _prepared_copy(path: Path, cache_dir: Path, kind: str) -> Path:
    """The bgzip + .fai + .gzi copy of ``path`` in ``cache_dir``, built once (validated while it is written)."""

    final = _copy_dir(path, cache_dir)
    prepared = final / PREPARED_NAME
    if prepared.exists():
        return prepared
    new_dirs = [folder for folder in (final.parent, *final.parent.parents) if not folder.exists()]
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        _build_copy(path, final, kind)
    except BaseException:
        for folder in new_dirs:  # deepest first: a refused input leaves no empty cache folders behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return prepared


def _build_copy(path: Path, final: Path, kind: str) -> None:
    from dnafm_lib.data.genomes import write_bgzip_fasta

    prepared = final / PREPARED_NAME
    # Not atomic_dir: a twin that finished first must be kept, not replaced under its readers.
    sweep_stale(final)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(final), dir=final.parent))
    try:
        log.info("%s: %s, not indexable as it is; writing an indexed bgzip copy to %s", path, kind, prepared)
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
