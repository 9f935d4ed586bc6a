"""Streaming, validating FASTA reading (plain, gzip/bgzip, xz, bzip2 or zstd: data/compressed.py).

The reader yields each record's sequence in large blocks with line breaks removed, so callers
work on megabytes at a time with vectorised code and memory stays bounded by the block size,
not by the chromosome. A hand-written block reader rather than Bio.SeqIO / pysam.FastxFile
for memory: both materialise a whole record as one Python string (a 250 Mb chromosome at
once). Speed is close: pysam.FastxFile plus one translate pass reads a 40-Mb gzip FASTA in
0.62 s against 0.47 s here (benchmarks/fasta_readers.py); Bio.SeqIO is several times slower
(benchmarks/shard_throughput.py).

Validation (each failure is one FastaFormatError naming the file, record and offset): empty
file, text before the first header, empty or duplicate record names, a header that is not
UTF-8, characters outside the IUPAC nucleotide codes, truncated or corrupt compressed data.
Windows and old-Mac (``\r`` alone) line endings and a UTF-8 byte-order mark (as Windows
editors write) are accepted.

Zero-length records (a header with no sequence) are yielded like any other; the writers that
need every record to have bases (bgzip + faidx, shards) drop them through
``skip_empty_records``, so ``chrom.sizes``, the ``.fai`` and the shards list the same records.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.compressed import GZIP_MAGIC, is_gzip, iter_blocks  # noqa: F401 (re-exported)
from dnafm_lib.model.tokenizer import BYTE_TO_ID

#: What a translate table maps a byte outside the IUPAC codes to.
INVALID = b"\xff"
#: The default table: valid bytes unchanged, anything else INVALID.
IDENTITY_TABLE = bytes(code if BYTE_TO_ID[code] != 255 else INVALID[0] for code in range(256))
_LINE_BREAKS = b"\r\n"
UTF8_BOM = b"\xef\xbb\xbf"
#: Decompressed bytes handled per step: large enough that per-block Python overhead vanishes.
DEFAULT_BLOCK_BYTES = 1 << 22


class FastaFormatError(DnafmError):
    """A FASTA file that cannot be read as nucleotide records."""


class SequenceChunk(NamedTuple):
    """Part of one record's sequence: ``sequence[offset : offset + len(bases)]`` of ``record``."""

    record: str
    record_index: int
    offset: int
    bases: bytes


_DONE = object()


def _prefetched(blocks: Iterator[bytes], depth: int = 2) -> Iterator[bytes]:
    """Run ``blocks`` in a background thread, ``depth`` blocks ahead of the consumer.

    Inflating and file reads release the GIL, so decompression overlaps the caller's tokenizing
    (benchmarks/shard_throughput.py measures the whole).
    """
    results: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item) -> bool:
        """Queue ``item``, waiting for room; False once the consumer has stopped."""
        while not stop.is_set():
            try:
                results.put(item, timeout=0.1)
                break
            except queue.Full:
                continue
        return not stop.is_set()

    def produce() -> None:
        try:
            for block in blocks:
                if not hand_over(block):
                    return
            item = _DONE
        except BaseException as exc:  # handed to the consumer, raised there
            item = exc
        hand_over(item)

    worker = threading.Thread(target=produce, name="fasta-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = results.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def _describe_byte(value: int) -> str:
    char = chr(value)
    return repr(char) if char.isprintable() and value < 128 else f"byte 0x{value:02x}"


def _record_name(path: Path, header_line: bytes, record_index: int, names: dict[str, int]) -> str:
    """The name in ``header_line`` (without its '>'); an error if not UTF-8, empty or already in ``names``."""
    try:
        header = header_line.rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FastaFormatError(
            f"{path}: record {record_index + 1} header, column {exc.start + 2}: byte "
            f"0x{header_line[exc.start]:02x} is not UTF-8 (header {header_line[:40].decode('utf-8', 'replace')!r})"
        ) from None
    name = header.split(maxsplit=1)[0] if header.strip() else ""
    if not name:
        raise FastaFormatError(f"{path}: record {record_index + 1} has an empty name ('>' alone)")
    if name in names:
        raise FastaFormatError(
            f"{path}: duplicate record name '{name}' (records {names[name] + 1} and {record_index + 1})"
        )
    return name


class _ChunkReader:
    """What ``iter_sequence_chunks`` carries from one block to the next: the current record and
    a header line or line start split across the block boundary."""

    def __init__(self, path: Path, table: bytes):
        self.path = path
        self.table = table
        self.names: dict[str, int] = {}
        self.record: str | None = None
        self.record_index = -1
        self.offset = 0
        self.line_number = 1  # line of the current block's first byte (tracked until the first header)
        self.header_part: bytes | None = None  # a header line that continues in the next block
        self.at_line_start = True  # whether the previous block ended with a newline

    def open_record(self, header_line: bytes) -> SequenceChunk:
        self.record_index += 1
        name = _record_name(self.path, header_line, self.record_index, self.names)
        self.names[name] = self.record_index
        self.record, self.offset = name, 0
        return SequenceChunk(name, self.record_index, 0, b"")

    def block_chunks(self, data: bytes) -> Iterator[SequenceChunk]:
        """The chunks of the next block ``data``: one per header, one per record's run of lines."""
        pos = 0
        end_of_block = len(data)
        if self.header_part is not None:
            eol = data.find(b"\n")
            if eol < 0:
                self.header_part += data
                return
            yield self.open_record(self.header_part + data[:eol])
            self.header_part = None
            pos = eol + 1
        while pos < end_of_block:
            if data[pos] == 62 and (pos or self.at_line_start):  # '>' at a line start: a header
                eol = data.find(b"\n", pos)
                if eol < 0:
                    self.header_part = data[pos + 1 :]
                    break
                yield self.open_record(data[pos + 1 : eol])
                pos = eol + 1
                continue
            next_header = data.find(b"\n>", pos)
            stop = end_of_block if next_header < 0 else next_header + 1
            lines = data if pos == 0 and stop == end_of_block else data[pos:stop]
            if self.record is None:
                self.reject_text_before_header(data, pos, lines)
            else:
                bases = lines.translate(self.table, _LINE_BREAKS)
                if INVALID in bases:
                    self.reject_invalid_byte(lines, bases)
                if bases:
                    yield SequenceChunk(self.record, self.record_index, self.offset, bases)
                    self.offset += len(bases)
            pos = stop
        if self.record is None:
            self.line_number += data.count(b"\n")
        self.at_line_start = data.endswith(b"\n")

    def reject_text_before_header(self, data: bytes, pos: int, lines: bytes) -> None:
        if lines.strip():
            first_text = pos + len(lines) - len(lines.lstrip())
            line = self.line_number + data.count(b"\n", 0, first_text)
            raise FastaFormatError(f"{self.path}: line {line}: text before the first '>' header (not a FASTA file?)")

    def reject_invalid_byte(self, lines: bytes, bases: bytes) -> None:
        """Raise for the first byte of ``lines`` that the table mapped to INVALID in ``bases``."""
        bad = bases.find(INVALID)
        value = lines.translate(None, _LINE_BREAKS)[bad]
        raise FastaFormatError(
            f"{self.path}: record '{self.record}', offset {self.offset + bad}: unexpected character "
            f"{_describe_byte(value)} (expected A, C, G, T or an IUPAC code)"
        )

    def finish(self) -> Iterator[SequenceChunk]:
        if self.header_part is not None:  # the file ends inside a header line
            yield self.open_record(self.header_part)
        if self.record is None:
            raise FastaFormatError(f"{self.path}: empty FASTA file (no '>' records)")


def iter_sequence_chunks(
    path: str | Path,
    *,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    table: bytes = IDENTITY_TABLE,
    prefetch: bool = True,
    flags: set[str] | None = None,
    on_read: Callable[[int], None] | None = None,
) -> Iterator[SequenceChunk]:
    """Yield every record's sequence as chunks, in file order.

    Each record yields at least one chunk (the first has ``offset == 0`` and may be empty), so a
    caller sees every record, including empty ones. ``table`` (256 bytes, for ``bytes.translate``)
    maps the bases in the same pass that removes line breaks: the shard writer passes one that
    yields token ids directly. It must map every byte outside the IUPAC codes to ``INVALID``
    (0xff) and no valid one to it; such a byte is reported as an error with its record and offset.
    ``flags``, when given, collects what the file needed beyond plain reading (``CR_LINE_ENDS``);
    ``on_read`` is called with the bytes of the file read so far after each block.
    """
    path = Path(path)
    reader = _ChunkReader(path, table)
    blocks = iter_blocks(path, block_bytes, FastaFormatError, on_read)
    if prefetch:
        blocks = _prefetched(blocks)
    # Blocks are used as they come (no re-slicing into whole lines): line breaks are dropped by
    # the translate pass wherever they fall, and only a header may need joining across blocks.
    first_block = True
    for data in blocks:
        if first_block:
            first_block = False
            if data.startswith(UTF8_BOM):
                data = data[len(UTF8_BOM) :]
        if b"\r" in data:
            data = _unix_line_ends(data, flags)
        yield from reader.block_chunks(data)
    yield from reader.finish()


#: What ``iter_sequence_chunks`` adds to ``flags`` for a file with old-Mac (``\r`` alone) line ends.
CR_LINE_ENDS = "cr-line-ends"


def _unix_line_ends(data: bytes, flags: set[str] | None) -> bytes:
    """``data`` with Windows (``\r\n``) and old-Mac (``\r`` alone) line ends made ``\n``.

    Without this an old-Mac file is one line: its first header would swallow every base. A
    ``\r\n`` split across two blocks becomes a blank line, which the reader drops.
    """
    data = data.replace(b"\r\n", b"\n")
    if b"\r" in data:
        if flags is not None and b"\r" in data[:-1]:  # a last \r may be the half of a split \r\n
            flags.add(CR_LINE_ENDS)
        data = data.replace(b"\r", b"\n")
    return data


def skip_empty_records(chunks: Iterator[SequenceChunk], skipped: list[str]) -> Iterator[SequenceChunk]:
    """``chunks`` without the records that have no bases; their names are appended to ``skipped``.

    A record's opening (empty, ``offset == 0``) chunk is held back until its first bases arrive,
    so a consumer never starts a record it would have to leave empty.
    """
    held: SequenceChunk | None = None
    for chunk in chunks:
        if chunk.offset == 0 and not chunk.bases:
            if held is not None:
                skipped.append(held.record)
            held = chunk
            continue
        if held is not None:
            yield held
            held = None
        yield chunk
    if held is not None:
        skipped.append(held.record)


def describe_skipped(skipped: list[str]) -> str:
    """A warning line for zero-length records that were left out."""
    shown = ", ".join(repr(name) for name in skipped[:5]) + (", …" if len(skipped) > 5 else "")
    return f"skipped {len(skipped)} zero-length record(s) (a header with no sequence): {shown}"


def read_fasta(path: str | Path) -> dict[str, bytes]:
    """Whole records as ``{name: sequence}`` (for small files and tests)."""
    records: dict[str, list[bytes]] = {}
    for chunk in iter_sequence_chunks(path):
        records.setdefault(chunk.record, []).append(chunk.bases)
    return {name: b"".join(parts) for name, parts in records.items()}


def record_lengths(path: str | Path) -> list[tuple[str, int]]:
    """``[(name, length)]`` in file order, validating the whole file on the way."""
    lengths: dict[str, int] = {}
    for chunk in iter_sequence_chunks(path):
        lengths[chunk.record] = lengths.get(chunk.record, 0) + len(chunk.bases)
    return list(lengths.items())
