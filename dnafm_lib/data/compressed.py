"""Decompressed bytes of an input file: plain, gzip/bgzip, xz, bzip2 or zstd, told apart by magic bytes.

One reader for the FASTA and GFF3 readers, so every entry point takes the same compressions
(Debian and many archives ship genomes as ``.fna.xz``; Ensembl and NCBI as gzip). Each format
is read by its standard decoder (zlib or ISA-L, Python's lzma and bz2, the zstandard package)
through a decompress object, not a file object, for two reasons: output per step is capped, so
a long run of N (compressing 1000:1 or more) cannot blow up memory, and a stream cut short is
told apart from one that ended (``lzma.open`` reports it, ``zstandard``'s stream reader does
not). Concatenated members/streams/frames (bgzip, pbzip2, pixz, ``cat a.zst b.zst``) are read
whole.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from dnafm_lib.core.errors import DnafmError

GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"
BZIP2_MAGIC = b"BZh"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: (magic, name) in the order they are tried; a name is what messages and ``compression`` say.
MAGICS = ((GZIP_MAGIC, "gzip"), (XZ_MAGIC, "xz"), (BZIP2_MAGIC, "bzip2"), (ZSTD_MAGIC, "zstd"))

_COMPRESSED_READ_BYTES = 1 << 20
#: zstd's decompress object takes no output cap: feed it small pieces so one step stays bounded
#: (an RLE block turns 4 bytes into 128 KiB, so 2 KiB in is at most 64 MiB out).
_ZSTD_PIECE_BYTES = 1 << 11

try:  # ISA-L's inflate: zlib's API, measured ~1.7x faster on DNA (benchmarks/shard_throughput.py)
    from isal import isal_zlib as _inflate
except ImportError:  # zlib keeps working where the isal wheel is missing
    _inflate = zlib


def compression_of(head: bytes) -> str:
    """``plain``, ``gzip``, ``xz``, ``bzip2`` or ``zstd`` for a file beginning with ``head``."""
    for magic, name in MAGICS:
        if head.startswith(magic):
            return name
    return "plain"


def sniff(path: str | os.PathLike) -> str:
    """The compression of the file at ``path`` (see ``compression_of``)."""
    with open(path, "rb") as handle:
        return compression_of(handle.read(8))


def is_gzip(path: str | os.PathLike) -> bool:
    return sniff(path) == "gzip"


class _Decoder:
    """One member/stream/frame of a compressed file: ``step(data, cap)`` → (output, finished)."""

    def __init__(self, kind: str):
        self.kind = kind
        if kind == "gzip":
            self.obj = _inflate.decompressobj(wbits=31)
        elif kind == "xz":
            self.obj = lzma.LZMADecompressor()
        elif kind == "bzip2":
            self.obj = bz2.BZ2Decompressor()
        else:
            import zstandard

            self.obj = zstandard.ZstdDecompressor().decompressobj()

    def step(self, data: bytes, cap: int) -> tuple[bytes, bytes]:
        """Decode some of ``data``; return (output, input left for the next step)."""
        if self.kind == "gzip":  # zlib keeps what it did not use in unconsumed_tail
            out = self.obj.decompress(data, cap)
            return out, self.obj.unconsumed_tail
        if self.kind in ("xz", "bzip2"):  # these buffer input themselves until asked again
            out = self.obj.decompress(data, cap) if data or not self.obj.needs_input else b""
            return out, b""
        out = self.obj.decompress(data[:_ZSTD_PIECE_BYTES])
        return out, data[_ZSTD_PIECE_BYTES:]

    @property
    def eof(self) -> bool:
        return self.obj.eof

    @property
    def unused_data(self) -> bytes:
        return self.obj.unused_data

    @property
    def wants_input(self) -> bool:
        return getattr(self.obj, "needs_input", True)


def _decoder_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [_inflate.error, zlib.error, lzma.LZMAError, OSError, EOFError]
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errors)


def _decompressed(
    handle: BinaryIO, kind: str, path: Path, block_bytes: int, error: type[DnafmError]
) -> Iterator[bytes]:
    """The decompressed bytes of ``handle`` in blocks of about ``block_bytes``."""
    if kind == "zstd":
        try:
            import zstandard  # noqa: F401
        except ImportError:
            raise error(f"{path}: zstd-compressed, and the zstandard package is not installed") from None
    errors = _decoder_errors()
    decoder = _Decoder(kind)
    started = False  # inside a member: a file ending here is cut short
    pending = b""
    parts: list[bytes] = []
    parts_bytes = 0
    while True:
        if not pending and decoder.wants_input:
            pending = handle.read(_COMPRESSED_READ_BYTES)
            if not pending:
                break
        if not started:
            pending = pending.lstrip(b"\0")  # zero padding between/after members is allowed
            if not pending:
                continue
            started = True
        try:
            out, pending = decoder.step(pending, block_bytes)
        except errors as exc:
            raise error(f"{path}: corrupt {kind} data ({exc})") from None
        if decoder.eof:
            pending = decoder.unused_data + pending
            decoder = _Decoder(kind)
            started = False
        if out:
            parts.append(out)
            parts_bytes += len(out)
            if parts_bytes >= block_bytes:
                yield b"".join(parts)
                parts, parts_bytes = [], 0
    if started:
        raise error(
            f"{path}: truncated {kind} file (the compressed stream ends before its end marker); "
            "the download or copy was cut short"
        )
    if parts:
        yield b"".join(parts)


def iter_blocks(
    path: str | os.PathLike,
    block_bytes: int,
    error: type[DnafmError] = DnafmError,
    on_read: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The file's bytes, decompressed whatever its compression, in blocks of about ``block_bytes``.

    A truncated or corrupt stream raises ``error`` naming the file and the compression.
    ``on_read`` is called with the bytes of the file read so far after each block (progress lines).
    """
    path = Path(path)
    with open(path, "rb") as handle:
        kind = compression_of(handle.read(8))
        handle.seek(0)
        if kind == "plain":
            blocks = iter(lambda: handle.read(block_bytes), b"")
        else:
            blocks = _decompressed(handle, kind, path, block_bytes, error)
        for block in blocks:
            yield block
            if on_read is not None:
                on_read(handle.tell())


class _BlockStream(io.RawIOBase):
    """A readable binary file over an iterator of blocks (for line-by-line readers)."""

    def __init__(self, blocks: Iterator[bytes]):
        self._blocks = blocks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            self._buffer = next(self._blocks, b"")
            if not self._buffer:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size

    def close(self) -> None:
        close = getattr(self._blocks, "close", None)
        if close:
            close()
        super().close()


def open_text(path: str | os.PathLike, error: type[DnafmError] = DnafmError) -> io.TextIOWrapper:
    """Text (UTF-8, undecodable bytes replaced, any line ending) of a file in any supported compression."""
    raw = _BlockStream(iter_blocks(path, 1 << 20, error))
    return io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8", errors="replace", newline=None)
