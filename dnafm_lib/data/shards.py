"""Tokenized training shards: per-genome fixed-width windows, per-split manifests, and the reader.

Layout of one genome's shard directory (``results/shards/{genome}/``):

- ``tokens.npy``   uint8 (n_windows, window_nt): token ids, ``PAD`` beyond a row's length.
- ``softmask.npy`` uint8 (n_windows, ceil(window_nt / 8)): ``np.packbits`` of the lower-case flags.
- ``index.npy``    structured (n_windows,): ``contig`` (uint32, into metadata's contig list),
  ``start`` (uint64, 0-based), ``length`` (uint32); ``end = start + length``.
- ``metadata.json`` genome, window, vocabulary, counts (windows, nucleotides, dropped all-N
  windows, dropped short tails), contigs, and a sha256 of each array's data.

Windows are non-overlapping per contig, starting at 0; a window of only N is dropped and
counted; the last, shorter window of a contig is kept when it has at least ``min_tail_nt``
nucleotides. The model adds [CLS]/[EOS] around a row, so ``window_nt`` defaults to 3998.

A split's manifest (``results/shards/{split}.manifest.json``) lists its genomes' shard
directories (relative to the manifest) with their counts and checksums. ``open_split`` reads
it: sample ``i`` is an O(1) memmap row lookup, and ``order(seed, epoch)`` is a seeded
permutation of global sample ids, so a run resumes exactly on any number of ranks.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from dnafm_lib.core.atomic import atomic_dir, atomic_open
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.fasta import DEFAULT_BLOCK_BYTES, INVALID, iter_sequence_chunks, skip_empty_records
from dnafm_lib.model.tokenizer import BYTE_IS_SOFTMASKED, BYTE_TO_ID, N_ID, PAD_ID, VOCAB

DEFAULT_WINDOW_NT = 3998
DEFAULT_MIN_TAIL_NT = 512
SHARD_FORMAT = "dnafm-shards/1"
MANIFEST_FORMAT = "dnafm-shard-manifest/1"
TOKENS_FILE = "tokens.npy"
SOFTMASK_FILE = "softmask.npy"
INDEX_FILE = "index.npy"
METADATA_FILE = "metadata.json"
SHARDS_KIND = "shard"  # the marker of a shard directory (core/output_dir.py)
INDEX_DTYPE = np.dtype([("contig", "<u4"), ("start", "<u8"), ("length", "<u4")])
# One bytes.translate pass (in the FASTA reader, with the line breaks removed) maps each base to
# its token id, plus 0x80 when lower case (soft-masked); outside IUPAC → the reader's INVALID.
_SOFT_FLAG = 0x80
_FLAGGED_ID_TABLE = bytes(
    INVALID[0] if BYTE_TO_ID[code] == 255 else int(BYTE_TO_ID[code]) | (_SOFT_FLAG if BYTE_IS_SOFTMASKED[code] else 0)
    for code in range(256)
)
_N_BYTES = (bytes([N_ID]), bytes([N_ID | _SOFT_FLAG]))
# Rows are written in batches of about this many bytes (one write call per batch).
_WRITE_BATCH_BYTES = 1 << 22


class ShardError(DnafmError):
    """Shards or a manifest that are missing, inconsistent or corrupt."""


class _NpyRowWriter:
    """Append fixed-width uint8 rows to a .npy file whose row count is known only at the end.

    Rows go after a header slot of fixed size; ``close`` writes the real header into that slot
    (numpy pads every v1 header to a multiple of 64 bytes, so the slot fits any row count),
    avoiding a second copy of a multi-gigabyte array. The sha256 covers the array data.
    """

    HEADER_BYTES = 128
    #: Writes queued ahead of the caller before it waits (bounds memory to a few batches).
    MAX_PENDING = 3

    def __init__(self, path: Path, row_bytes: int, background: ThreadPoolExecutor | None = None):
        self.path = path
        self.row_bytes = row_bytes
        self.rows = 0
        self.sha256 = hashlib.sha256()
        self.handle = open(path, "wb")
        self.handle.write(b"\0" * self.HEADER_BYTES)
        # file writes and sha256 release the GIL: on a thread they overlap tokenizing
        self.background = background
        self.pending: collections.deque[Future] = collections.deque()

    def _write_now(self, data: np.ndarray) -> None:
        view = memoryview(data).cast("B")
        self.handle.write(view)
        self.sha256.update(view)

    def write(self, rows: np.ndarray) -> None:
        data = np.ascontiguousarray(rows, dtype=np.uint8)
        assert data.ndim == 2 and data.shape[1] == self.row_bytes
        self.rows += data.shape[0]
        if self.background is None:
            self._write_now(data)
            return
        self.pending.append(self.background.submit(self._write_now, data))
        while len(self.pending) > self.MAX_PENDING:
            self.pending.popleft().result()

    def close(self) -> None:
        try:
            while self.pending:
                self.pending.popleft().result()
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": "|u1", "fortran_order": False, "shape": (self.rows, self.row_bytes)}
            )
            if len(header.getvalue()) != self.HEADER_BYTES:  # cannot happen below ~10^40 rows
                raise ShardError(f"{self.path}: unexpected .npy header size {len(header.getvalue())}")
            self.handle.seek(0)
            self.handle.write(header.getvalue())
        finally:
            for future in self.pending:
                future.cancel()
            self.handle.close()


def _array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(array)).cast("B")).hexdigest()


class _GenomeWindower:
    """Cut each contig's token stream into rows; state carries over between sequence chunks."""

    def __init__(self, window_nt: int, min_tail_nt: int, tokens: _NpyRowWriter, softmask: _NpyRowWriter):
        self.window_nt = window_nt
        self.min_tail_nt = min_tail_nt
        self.tokens = tokens
        self.softmask = softmask
        self.contigs: list[dict] = []
        self.index_parts: list[np.ndarray] = []
        self.dropped_all_n_windows = 0
        self.dropped_tail_windows = 0
        self.dropped_tail_nt = 0
        self.windows_kept = 0
        self.nt_kept = 0
        self._pending = b""  # flagged ids of the current contig not yet in a full window
        self._contig_start = 0  # contig offset of the first pending nucleotide
        self._batch_ids: list[np.ndarray] = []
        self._batch_soft: list[np.ndarray] = []
        self._batch_index: list[np.ndarray] = []
        self._batch_bytes = 0

    def start_contig(self, name: str) -> None:
        self.finish_contig()
        self.contigs.append({"name": name, "length": 0, "windows": 0})
        self._pending = b""
        self._contig_start = 0

    def add(self, flagged: bytes) -> None:
        """Append a chunk of flagged ids (token id | 0x80 where soft-masked) to the current contig."""
        self.contigs[-1]["length"] += len(flagged)
        if self._pending:
            flagged = self._pending + flagged
        whole = len(flagged) // self.window_nt * self.window_nt
        if whole:
            rows = np.frombuffer(flagged, dtype=np.uint8, count=whole).reshape(-1, self.window_nt)
            may_hold_n = any(flagged.find(n_byte, 0, whole) >= 0 for n_byte in _N_BYTES)
            starts = self._contig_start + np.arange(rows.shape[0], dtype=np.uint64) * self.window_nt
            self._emit(rows, starts, np.full(rows.shape[0], self.window_nt, dtype=np.uint32), may_hold_n)
            self._contig_start += whole
        self._pending = flagged[whole:]

    def finish_contig(self) -> None:
        if not self.contigs:
            return
        tail = len(self._pending)
        if tail and tail >= self.min_tail_nt:
            row = np.full((1, self.window_nt), PAD_ID, dtype=np.uint8)
            row[0, :tail] = np.frombuffer(self._pending, dtype=np.uint8)
            self._emit(row, np.array([self._contig_start], dtype=np.uint64), np.array([tail], dtype=np.uint32), True)
        elif tail:
            self.dropped_tail_windows += 1
            self.dropped_tail_nt += tail
        self._pending = b""
        self._contig_start += tail

    def _emit(self, flagged_rows: np.ndarray, starts: np.ndarray, lengths: np.ndarray, may_hold_n: bool) -> None:
        rows = flagged_rows & np.uint8(~_SOFT_FLAG & 0xFF)
        soft_rows = np.packbits(flagged_rows >= _SOFT_FLAG, axis=1)
        if may_hold_n:
            # A row is all N when every nucleotide (up to its length) is N; PAD fills the rest.
            keep = np.count_nonzero(rows == N_ID, axis=1) < lengths
            if not keep.all():
                self.dropped_all_n_windows += int(rows.shape[0] - keep.sum())
                rows, soft_rows, starts, lengths = rows[keep], soft_rows[keep], starts[keep], lengths[keep]
        if not rows.shape[0]:
            return
        index = np.empty(rows.shape[0], dtype=INDEX_DTYPE)
        index["contig"] = len(self.contigs) - 1
        index["start"] = starts
        index["length"] = lengths
        self._batch_ids.append(rows)
        self._batch_soft.append(soft_rows)
        self._batch_index.append(index)
        self._batch_bytes += rows.nbytes
        self.contigs[-1]["windows"] += rows.shape[0]
        self.windows_kept += rows.shape[0]
        self.nt_kept += int(lengths.sum(dtype=np.int64))
        if self._batch_bytes >= _WRITE_BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        for rows in self._batch_ids:
            self.tokens.write(rows)
        for rows in self._batch_soft:
            self.softmask.write(rows)
        self.index_parts.extend(self._batch_index)
        self._batch_ids, self._batch_soft, self._batch_index, self._batch_bytes = [], [], [], 0


def _check_window_settings(window_nt: int, min_tail_nt: int) -> None:
    if window_nt < 1:
        raise ShardError(f"window_nt must be at least 1, got {window_nt}")
    if not 1 <= min_tail_nt <= window_nt:
        raise ShardError(f"min_tail_nt must be between 1 and window_nt ({window_nt}), got {min_tail_nt}")


def _window_fasta(fasta_path: Path, block_bytes: int, windower: _GenomeWindower, skipped: list[str]) -> None:
    """Feed every record of ``fasta_path`` to ``windower``; names of empty records go to ``skipped``."""
    chunks = iter_sequence_chunks(fasta_path, block_bytes=block_bytes, table=_FLAGGED_ID_TABLE)
    for chunk in skip_empty_records(chunks, skipped):
        if chunk.offset == 0 and not chunk.bases:
            windower.start_contig(chunk.record)
        else:
            windower.add(chunk.bases)
    windower.finish_contig()
    windower.flush()


def _windower_counts(windower: _GenomeWindower) -> dict:
    """The metadata entries that count what ``windower`` kept and dropped, in metadata order."""
    return {
        "n_windows": windower.windows_kept,
        "n_nt": windower.nt_kept,
        "dropped_all_n_windows": windower.dropped_all_n_windows,
        "dropped_tail_windows": windower.dropped_tail_windows,
        "dropped_tail_nt": windower.dropped_tail_nt,
        "contigs": windower.contigs,
    }


def _file_checksums(tmp: Path, tokens: _NpyRowWriter, softmask: _NpyRowWriter, index: np.ndarray) -> dict:
    """The metadata ``files`` entry: each array file's data sha256 and size on disk."""
    return {
        TOKENS_FILE: {"sha256": tokens.sha256.hexdigest(), "bytes": (tmp / TOKENS_FILE).stat().st_size},
        SOFTMASK_FILE: {"sha256": softmask.sha256.hexdigest(), "bytes": (tmp / SOFTMASK_FILE).stat().st_size},
        INDEX_FILE: {"sha256": _array_sha256(index), "bytes": (tmp / INDEX_FILE).stat().st_size},
    }


def write_genome_shards(
    fasta_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    genome: str,
    *,
    window_nt: int = DEFAULT_WINDOW_NT,
    min_tail_nt: int = DEFAULT_MIN_TAIL_NT,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    source_fasta_name: str | None = None,
) -> dict:
    """Shard one genome's FASTA (plain, gzip or bgzip) into ``out_dir``; return its metadata.

    ``source_fasta_name`` is the FASTA path the metadata records, when it is not ``fasta_path``
    (a batch job shards a staged copy of the genome that is later put in place).

    ``block_bytes`` is how much decompressed FASTA is handled per step (memory stays near a
    few times this, whatever the contig sizes).

    ``out_dir`` appears whole or not at all: a bad FASTA (unknown letters, duplicate names,
    truncated gzip, …) raises one FastaFormatError and leaves no output.
    """
    _check_window_settings(window_nt, min_tail_nt)
    fasta_path = Path(fasta_path)
    out_dir = Path(out_dir)
    with (
        atomic_dir(out_dir, kind=SHARDS_KIND, inputs=(fasta_path,)) as tmp,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer") as writer,
    ):
        tokens = _NpyRowWriter(tmp / TOKENS_FILE, window_nt, writer)
        softmask = _NpyRowWriter(tmp / SOFTMASK_FILE, (window_nt + 7) // 8, writer)
        windower = _GenomeWindower(window_nt, min_tail_nt, tokens, softmask)
        skipped: list[str] = []  # zero-length records: left out, as prepare-genome leaves them out
        try:
            _window_fasta(fasta_path, block_bytes, windower, skipped)
        finally:
            tokens.close()
            softmask.close()
        index = np.concatenate(windower.index_parts) if windower.index_parts else np.empty(0, dtype=INDEX_DTYPE)
        np.save(tmp / INDEX_FILE, index)
        metadata = {
            "format": SHARD_FORMAT,
            "genome": genome,
            "source_fasta": source_fasta_name or str(fasta_path),
            "window_nt": window_nt,
            "min_tail_nt": min_tail_nt,
            "vocab": list(VOCAB),
            "pad_id": PAD_ID,
            **_windower_counts(windower),
            "skipped_empty_records": skipped,
            "files": _file_checksums(tmp, tokens, softmask, index),
            "checksum_covers": "sha256 of each .npy file's array data (the bytes after its header)",
        }
        with open(tmp / METADATA_FILE, "w") as handle:
            json.dump(metadata, handle, indent=2)
            handle.write("\n")
    return metadata


def _read_versioned_json(path: Path, expected_format: str, missing: str) -> dict:
    """A metadata or manifest JSON object whose ``format`` is ``expected_format``; ``missing``: the error if absent."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise ShardError(missing) from None
    except json.JSONDecodeError as exc:
        raise ShardError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != expected_format:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ShardError(f"{path}: format {found!r}, expected {expected_format!r}")
    return data


def read_shard_metadata(shard_dir: str | os.PathLike) -> dict:
    return _read_versioned_json(
        Path(shard_dir) / METADATA_FILE, SHARD_FORMAT, f"{shard_dir}: not a shard directory (no {METADATA_FILE})"
    )


def _npy_data_sha256(path: Path) -> str:
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    digest = hashlib.sha256()
    flat = array.reshape(-1).view(np.uint8) if array.dtype.fields is None else array.view(np.uint8).reshape(-1)
    step = 1 << 24
    for begin in range(0, flat.size, step):
        digest.update(memoryview(np.ascontiguousarray(flat[begin : begin + step])).cast("B"))
    return digest.hexdigest()


def verify_shard_dir(shard_dir: str | os.PathLike, metadata: dict | None = None) -> None:
    """Recompute each array's sha256 and compare with the metadata; raise ShardError on a mismatch."""
    shard_dir = Path(shard_dir)
    metadata = metadata or read_shard_metadata(shard_dir)
    for name, expected in metadata["files"].items():
        path = shard_dir / name
        if not path.exists():
            raise ShardError(f"{path}: missing")
        actual = _npy_data_sha256(path)
        if actual != expected["sha256"]:
            raise ShardError(f"{path}: sha256 {actual} differs from {expected['sha256']} in {METADATA_FILE}")


def write_manifest(
    split: str,
    shard_dirs: Sequence[str | os.PathLike],
    out_path: str | os.PathLike,
    *,
    window_nt: int | None = None,
    verify: bool = False,
) -> dict:
    """Write the manifest of ``split`` listing ``shard_dirs`` (one per genome, in this order).

    All genomes must share one window and vocabulary. ``window_nt`` is needed only for an
    empty split (no genomes). With ``verify`` every array's checksum is recomputed first.
    """
    out_path = Path(out_path)
    genomes = []
    windows = set() if window_nt is None else {window_nt}
    for shard_dir in shard_dirs:
        metadata = read_shard_metadata(shard_dir)
        if verify:
            verify_shard_dir(shard_dir, metadata)
        if metadata["vocab"] != list(VOCAB):
            raise ShardError(f"{shard_dir}: vocabulary differs from this dnafm's")
        windows.add(metadata["window_nt"])
        if len(windows) > 1:
            raise ShardError(
                f"{shard_dir}: window_nt {metadata['window_nt']} differs from the split's {sorted(windows)}"
            )
        genomes.append(
            {
                "genome": metadata["genome"],
                "dir": os.path.relpath(Path(shard_dir).resolve(), out_path.parent.resolve()),
                "n_windows": metadata["n_windows"],
                "n_nt": metadata["n_nt"],
                "dropped_all_n_windows": metadata["dropped_all_n_windows"],
                "files": metadata["files"],
            }
        )
    names = [g["genome"] for g in genomes]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ShardError(f"split {split}: genome(s) listed twice: {', '.join(duplicates)}")
    if not windows:
        raise ShardError(f"split {split}: no genomes, so window_nt must be given")
    manifest = {
        "format": MANIFEST_FORMAT,
        "split": split,
        "window_nt": windows.pop(),
        "vocab": list(VOCAB),
        "pad_id": PAD_ID,
        "n_genomes": len(genomes),
        "n_windows": sum(g["n_windows"] for g in genomes),
        "n_nt": sum(g["n_nt"] for g in genomes),
        "dropped_all_n_windows": sum(g["dropped_all_n_windows"] for g in genomes),
        "genomes": genomes,
    }
    with atomic_open(out_path) as handle:
        json.dump(manifest, handle, indent=2)
        handle.write("\n")
    return manifest


class SplitReader:
    """Random access to every window of a split (see ``open_split``)."""

    def __init__(self, manifest_path: str | os.PathLike):
        self.path = Path(manifest_path)
        manifest = _read_versioned_json(self.path, MANIFEST_FORMAT, f"{self.path}: no such shard manifest")
        if manifest["vocab"] != list(VOCAB):
            raise ShardError(f"{self.path}: vocabulary differs from this dnafm's")
        self.manifest = manifest
        self.split: str = manifest["split"]
        self.window: int = int(manifest["window_nt"])
        self.genomes: list[str] = [g["genome"] for g in manifest["genomes"]]
        self._dirs = [(self.path.parent / g["dir"]) for g in manifest["genomes"]]
        counts = np.array([g["n_windows"] for g in manifest["genomes"]], dtype=np.int64)
        self._first = np.concatenate([[0], np.cumsum(counts)])  # global id of each genome's first window
        self._tokens: list[np.ndarray | None] = [None] * len(self._dirs)
        self._softmask: list[np.ndarray | None] = [None] * len(self._dirs)
        self._index: list[np.ndarray | None] = [None] * len(self._dirs)
        self._contigs: list[list[str] | None] = [None] * len(self._dirs)

    def __len__(self) -> int:
        return int(self._first[-1])

    def __getstate__(self) -> dict:
        # Pickled into DataLoader workers without the mapped arrays (np.memmap would pickle its
        # data); each worker maps the genomes it reads on first use.
        state = self.__dict__.copy()
        for name in ("_tokens", "_softmask", "_index", "_contigs"):
            state[name] = [None] * len(self._dirs)
        return state

    def __repr__(self) -> str:
        return f"SplitReader({self.split!r}: {len(self)} windows of {self.window} nt from {len(self.genomes)} genomes)"

    def _open(self, genome: int) -> None:
        # Opened on first use, so a DataLoader worker maps only the genomes it reads.
        directory = self._dirs[genome]
        expected = self.manifest["genomes"][genome]["n_windows"]
        try:
            tokens = np.load(directory / TOKENS_FILE, mmap_mode="r", allow_pickle=False)
            softmask = np.load(directory / SOFTMASK_FILE, mmap_mode="r", allow_pickle=False)
            index = np.load(directory / INDEX_FILE, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError as exc:
            raise ShardError(f"{self.path}: shard file missing: {exc.filename}") from None
        if not (
            tokens.shape == (expected, self.window) and index.shape == (expected,) and softmask.shape[0] == expected
        ):
            raise ShardError(
                f"{directory}: holds {tokens.shape[0]} windows of {tokens.shape[1] if tokens.ndim == 2 else '?'} nt, "
                f"the manifest {self.path} says {expected} of {self.window}; re-run dnafm index-shards"
            )
        self._tokens[genome], self._softmask[genome], self._index[genome] = tokens, softmask, index
        self._contigs[genome] = [c["name"] for c in read_shard_metadata(directory)["contigs"]]

    def _where(self, i: int) -> tuple[int, int]:
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        genome = int(np.searchsorted(self._first, i, side="right")) - 1
        if self._tokens[genome] is None:
            self._open(genome)
        return genome, i - int(self._first[genome])

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        """``(tokens uint8 (window,), length)``; tokens beyond ``length`` are PAD (0)."""
        genome, row = self._where(i)
        return np.array(self._tokens[genome][row]), int(self._index[genome][row]["length"])

    def softmask(self, i: int) -> np.ndarray:
        """bool (window,): True where the genome had lower case (soft-masked repeats)."""
        genome, row = self._where(i)
        return np.unpackbits(self._softmask[genome][row], count=self.window).astype(np.bool_)

    def locate(self, i: int) -> tuple[str, str, int, int]:
        """``(genome, contig, start, end)`` of window ``i``, 0-based half-open."""
        genome, row = self._where(i)
        entry = self._index[genome][row]
        start = int(entry["start"])
        return self.genomes[genome], self._contigs[genome][int(entry["contig"])], start, start + int(entry["length"])

    def order(self, seed: int, epoch: int) -> np.ndarray:
        """A permutation of ``range(len(self))`` (int64) fixed by ``(seed, epoch)``."""
        return np.random.Generator(np.random.PCG64([int(seed), int(epoch)])).permutation(len(self)).astype(np.int64)

    def verify(self) -> None:
        """Recompute every genome's checksums against the manifest; raise ShardError on a mismatch."""
        for directory, entry in zip(self._dirs, self.manifest["genomes"]):
            verify_shard_dir(directory, {"files": entry["files"]})


def open_split(manifest_path: str | os.PathLike) -> SplitReader:
    """Open a split's manifest (``results/shards/{split}.manifest.json``) for reading."""
    return SplitReader(manifest_path)
