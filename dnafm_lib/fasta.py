"""Streaming, validating FASTA reading (plain, gzip or bgzip).

The reader yields each record's sequence in large blocks with line breaks removed, so callers
work on megabytes at a time with vectorised code and memory stays bounded by the block size,
not by the chromosome. A hand-written block reader rather than Bio.SeqIO / pysam.FastxFile:
both materialise a whole record as one Python string (a 250 Mb chromosome at once) and the
SeqIO path is several times slower (benchmarks/shard_throughput.py measures it).

Validation (each failure is one FastaFormatError naming the file, record and offset): empty
file, text before the first header, empty or duplicate record names, characters outside the
IUPAC nucleotide codes, truncated or corrupt gzip. Windows line endings are accepted.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from .errors import DnafmError
from .tokenizer import BYTE_TO_ID

#: Bytes accepted in a sequence line: A, C, G, T and the IUPAC ambiguity codes, either case.
VALID_SEQUENCE_BYTES = bytes(code for code in range(256) if BYTE_TO_ID[code] != 255)
_LINE_BREAKS = b"\r\n"
GZIP_MAGIC = b"\x1f\x8b"
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


def is_gzip(path: str | Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_binary(path: str | Path):
    """The decompressed byte stream of a plain, gzip or bgzip file."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def _read_blocks(path: Path, block_bytes: int) -> Iterator[bytes]:
    """Decompressed blocks; a truncated or corrupt gzip becomes one clear error."""
    gzipped = is_gzip(path)
    try:
        with open_binary(path) as handle:
            while True:
                block = handle.read(block_bytes)
                if not block:
                    return
                yield block
    except EOFError:
        raise FastaFormatError(
            f"{path}: truncated gzip file (the compressed stream ends before its end marker); "
            "the download or copy was cut short"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        kind = "gzip" if gzipped else "file"
        raise FastaFormatError(f"{path}: corrupt {kind} data ({exc})") from None


def _first_invalid(bases: bytes) -> int:
    codes = np.frombuffer(bases, dtype=np.uint8)
    return int(np.flatnonzero(BYTE_TO_ID[codes] == 255)[0])


def _describe_byte(value: int) -> str:
    char = chr(value)
    return repr(char) if char.isprintable() and value < 128 else f"byte 0x{value:02x}"


def iter_sequence_chunks(
    path: str | Path, *, block_bytes: int = DEFAULT_BLOCK_BYTES, validate: bool = True
) -> Iterator[SequenceChunk]:
    """Yield every record's sequence as chunks, in file order.

    Each record yields at least one chunk (the first has ``offset == 0`` and may be empty), so a
    caller sees every record, including empty ones. With ``validate`` (the default) any byte
    outside the IUPAC codes is an error; ``validate=False`` is for callers that check the bytes
    themselves (the shard writer does so in its token lookup).
    """
    path = Path(path)
    names: dict[str, int] = {}
    record: str | None = None
    record_index = -1
    offset = 0
    line_number = 1  # of the start of the current block, for errors before the first header
    carry = b""

    def sequence_chunk(bases: bytes) -> SequenceChunk:
        if validate and bases.translate(None, VALID_SEQUENCE_BYTES):
            bad = _first_invalid(bases)
            raise FastaFormatError(
                f"{path}: record '{record}', offset {offset + bad}: unexpected character "
                f"{_describe_byte(bases[bad])} (expected A, C, G, T or an IUPAC code)"
            )
        return SequenceChunk(record, record_index, offset, bases)

    blocks = _read_blocks(path, block_bytes)
    at_eof = False
    while not at_eof:
        data = next(blocks, None)
        if data is None:
            at_eof = True
            block, carry = carry, b""
        else:
            block = carry + data
            cut = block.rfind(b"\n") + 1  # whole lines only; the rest waits for the next block
            block, carry = block[:cut], block[cut:]
        pos = 0
        end_of_block = len(block)
        while pos < end_of_block:
            if block[pos] == 62:  # '>' at a line start: a header
                eol = block.find(b"\n", pos)
                eol = end_of_block if eol < 0 else eol
                header = block[pos + 1 : eol].rstrip(b"\r").decode("utf-8", "replace")
                name = header.split(maxsplit=1)[0] if header.strip() else ""
                record_index += 1
                if not name:
                    raise FastaFormatError(f"{path}: record {record_index + 1} has an empty name ('>' alone)")
                if name in names:
                    raise FastaFormatError(
                        f"{path}: duplicate record name '{name}' (records {names[name] + 1} and {record_index + 1})"
                    )
                names[name] = record_index
                record, offset = name, 0
                yield SequenceChunk(record, record_index, 0, b"")
                pos = eol + 1
                continue
            next_header = block.find(b"\n>", pos)
            stop = end_of_block if next_header < 0 else next_header + 1
            bases = block[pos:stop].translate(None, _LINE_BREAKS)
            if record is None:
                if bases.strip():
                    segment = block[pos:stop]
                    first_text = pos + len(segment) - len(segment.lstrip())
                    line = line_number + block.count(b"\n", 0, first_text)
                    raise FastaFormatError(
                        f"{path}: line {line}: text before the first '>' header (not a FASTA file?)"
                    )
            elif bases:
                yield sequence_chunk(bases)
                offset += len(bases)
            pos = stop
        if record is None:
            line_number += block.count(b"\n")
    if record is None:
        raise FastaFormatError(f"{path}: empty FASTA file (no '>' records)")


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
