"""Prepare one genome directory: validated bgzip FASTA with its indexes, sizes and provenance.

``results/genomes/{genome}/`` holds

- ``genome.fa.gz``   the sequence, bgzip-compressed, 80 nt per line, case kept (soft-masking)
- ``genome.fa.gz.fai`` / ``genome.fa.gz.gzi``  samtools faidx indexes (pysam, pyfaidx, IGV read them)
- ``chrom.sizes``    ``name<TAB>length`` per record, in file order (UCSC / bigWig tools)
- ``provenance.json`` where it came from: source, URL or path, md5 of the input, assembly
  status, time; the download record (``download.json``) merged in when there is one
- ``annotation.gff3`` the sheet's GFF3 annotation, when it names one

The directory appears whole or not at all (``dnafm_lib.core.atomic.atomic_dir``), so a bad input
leaves nothing behind for Snakemake to mistake for a result.
"""

from __future__ import annotations

import datetime
import json
import os
import struct
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from dnafm_lib.core.atomic import atomic_dir
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.core.progress import Progress
from dnafm_lib.data.fasta import describe_skipped, iter_sequence_chunks, skip_empty_records
from dnafm_lib.data.genome_sheet import SOURCES
from dnafm_lib.data.gff import match_annotation, open_gff_text, read_features
from dnafm_lib.data.http import file_md5  # the download step's md5, so provenance and download.json agree

FASTA_NAME = "genome.fa.gz"
SIZES_NAME = "chrom.sizes"
PROVENANCE_NAME = "provenance.json"
ANNOTATION_NAME = "annotation.gff3"
LINE_NT = 80
GENOME_KIND = "prepare-genome"  # the marker of a prepared genome directory (core/output_dir.py)


class GenomeError(DnafmError):
    """A genome input (FASTA, annotation, download record) that cannot be prepared."""


def _wrap(bases: bytes, column: int, line_nt: int) -> tuple[bytes, int]:
    """``bases`` with a newline after every ``line_nt``-th base of the record; returns the new column.

    Vectorised (reshape + a newline column) so a chromosome is not split line by line in Python.
    """
    head = min(len(bases), line_nt - column) if column else 0
    out = [bases[:head]]
    column += head
    if column == line_nt:
        out.append(b"\n")
        column = 0
    rest = np.frombuffer(bases, dtype=np.uint8)[head:]
    whole = rest.size // line_nt
    if whole:
        lines = np.empty((whole, line_nt + 1), dtype=np.uint8)
        lines[:, :line_nt] = rest[: whole * line_nt].reshape(whole, line_nt)
        lines[:, line_nt] = ord("\n")
        out.append(lines.tobytes())
    tail = rest[whole * line_nt :].tobytes()
    out.append(tail)
    return b"".join(out), column + len(tail)


class BgzfWriter:
    """Write a BGZF file (blocked gzip that samtools faidx, pysam, pyfaidx and IGV index).

    zlib level-1 blocks of htslib's size, written straight from a buffer. It was measured with
    ISA-L blocks at 0.31 s per 20 Mb against 0.84 s for Bio.bgzf at ``compresslevel=1``
    (benchmarks/bgzf_writers.py); ISA-L was dropped for determinism (see _deflate_raw), which
    gives up most of that lead: rerun the benchmark before choosing between this and Bio.bgzf.
    """

    BLOCK_INPUT_BYTES = 0xFF00  # as htslib: a block's compressed size always fits in 64 KiB
    EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

    def __init__(self, path: str | os.PathLike, level: int = 1):
        self.handle = open(path, "wb")
        self.buffer = bytearray()
        self.level = level  # zlib level: 1 for FASTA (fast), higher for tables written once and read often

    def write(self, data: bytes) -> None:
        self.buffer += data
        whole = len(self.buffer) // self.BLOCK_INPUT_BYTES * self.BLOCK_INPUT_BYTES
        if whole:
            with memoryview(self.buffer) as view:
                for start in range(0, whole, self.BLOCK_INPUT_BYTES):
                    self._write_block(view[start : start + self.BLOCK_INPUT_BYTES])
            del self.buffer[:whole]

    def _write_block(self, data) -> None:
        compressed = _deflate_raw(data, self.level)
        if len(compressed) > 65536 - 26:  # incompressible: store instead
            compressed = _deflate_raw(data, 0)
        header = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00"
        self.handle.write(header + struct.pack("<H", len(compressed) + 25))
        self.handle.write(compressed)
        self.handle.write(struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data)))

    def close(self) -> None:
        try:
            if self.buffer:
                self._write_block(bytes(self.buffer))
                self.buffer.clear()
            self.handle.write(self.EOF_BLOCK)
        finally:
            self.handle.close()

    def __enter__(self) -> "BgzfWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _deflate_raw(data, level: int) -> bytes:
    # zlib, not ISA-L: ISA-L's level-1 output depends on what its hash table's memory held before
    # (a rerun after a kill wrote one block differently), and an interrupted rerun must write the
    # same bytes as an uninterrupted run (tests/workflow/test_kill_rerun.py).
    deflater = zlib.compressobj(level, zlib.DEFLATED, -15)
    return deflater.compress(data) + deflater.flush()


def write_bgzip_fasta(
    source: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    line_nt: int = LINE_NT,
    skipped: list[str] | None = None,
) -> list[tuple[str, int]]:
    """Validate ``source`` (plain/gzip/bgzip FASTA) and write it bgzip-compressed; return (name, length) per record.

    Headers keep only the record name (descriptions go; names are what indexes and tracks use).
    Zero-length records are left out (samtools faidx cannot index them; a bigWig cannot hold
    them) and their names appended to ``skipped``; a file with no bases at all is an error.
    """
    lengths: list[tuple[str, int]] = []
    skipped = [] if skipped is None else skipped
    column = 0
    progress = Progress(f"preparing {Path(source).name}", os.path.getsize(source), unit="bytes")
    with BgzfWriter(out_path) as writer:
        for chunk in skip_empty_records(iter_sequence_chunks(source, on_read=progress.update), skipped):
            if chunk.offset == 0 and not chunk.bases:
                if lengths and column:
                    writer.write(b"\n")
                writer.write(b">" + chunk.record.encode() + b"\n")
                lengths.append((chunk.record, 0))
                column = 0
                continue
            text, column = _wrap(chunk.bases, column, line_nt)
            writer.write(text)
            lengths[-1] = (chunk.record, lengths[-1][1] + len(chunk.bases))
        if column:
            writer.write(b"\n")
    progress.finish()
    if not lengths:
        raise GenomeError(f"{source}: no record has any sequence ({describe_skipped(skipped)})")
    return lengths


def copy_annotation(
    annotation: str | os.PathLike, out_path: Path, contigs: dict[str, int], fasta_path: str | os.PathLike = "the genome"
) -> tuple[int, str | None]:
    """Copy a GFF3 (any supported compression) to ``out_path``, checking it against the genome's ``contigs``.

    Returns the number of features on the genome's contigs and a warning line when some seqids
    are not contigs (``gff.match_annotation``; none matching is an error naming both files). A
    feature beyond its contig's end is an error naming the line: another assembly's annotation.
    """
    annotation = Path(annotation)
    if not annotation.exists():
        raise GenomeError(f"{annotation}: annotation file not found")
    seqids: Counter[str] = Counter()
    for feature in read_features(annotation):
        seqids[feature.seqid] += 1
        if feature.seqid in contigs and feature.end > contigs[feature.seqid]:
            raise GenomeError(
                f"{annotation}: line {feature.line_number}: end {feature.end} is beyond "
                f"'{feature.seqid}' ({contigs[feature.seqid]} nt) of {fasta_path}"
            )
    warning = match_annotation(annotation, fasta_path, contigs, seqids)
    with open_gff_text(annotation) as source, open(out_path, "w") as out:
        for line in source:
            out.write(line)
            if line.startswith("##FASTA"):
                break
    return sum(count for seqid, count in seqids.items() if seqid in contigs), warning


def read_download_record(path: str | os.PathLike) -> dict:
    """The download step's ``download.json`` (fields: accession, assembly_name, assembly_status,
    fasta_path, url, md5, retrieved_at, source)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise GenomeError(f"{path}: download record not found") from None
    except json.JSONDecodeError as exc:
        raise GenomeError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(record, dict) or "fasta_path" not in record:
        raise GenomeError(f"{path}: expected a JSON object with 'fasta_path'")
    return record


def _downloaded_fasta(record: dict, record_path: Path) -> Path:
    # fasta_path is as the download step wrote it (often relative to the workflow directory).
    candidates = [Path(record["fasta_path"]), record_path.parent / Path(record["fasta_path"]).name]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise GenomeError(f"{record_path}: its FASTA {record['fasta_path']} does not exist")


def input_fasta(
    genome: str, fasta: str | os.PathLike | None, download_record: str | os.PathLike | None
) -> tuple[Path, dict | None]:
    """The FASTA to prepare and the download record it came from (None for a plain FASTA)."""
    download: dict | None = None
    if download_record is not None:
        download = read_download_record(download_record)
        fasta_path = _downloaded_fasta(download, Path(download_record))
    elif fasta is not None:
        fasta_path = Path(fasta)
    else:
        raise GenomeError(f"genome {genome}: give a FASTA or a download record")
    if not fasta_path.exists():
        raise GenomeError(f"genome {genome}: FASTA {fasta_path} not found")
    return fasta_path, download


def _write_indexed_fasta(fasta_path: Path, tmp: Path) -> tuple[list[tuple[str, int]], list[str]]:
    """bgzip FASTA, its .fai/.gzi and the sizes file in ``tmp``; return (name, length) pairs and skipped records."""
    skipped: list[str] = []
    lengths = write_bgzip_fasta(fasta_path, tmp / FASTA_NAME, skipped=skipped)
    import pysam

    pysam.faidx(str(tmp / FASTA_NAME))  # writes .fai and .gzi beside it
    with open(tmp / SIZES_NAME, "w") as handle:
        handle.writelines(f"{name}\t{length}\n" for name, length in lengths)
    return lengths, skipped


def prepare_genome(
    genome: str,
    out_dir: str | os.PathLike,
    *,
    fasta: str | os.PathLike | None = None,
    download_record: str | os.PathLike | None = None,
    source: str = "file",
    location: str | None = None,
    accession: str | None = None,
    assembly_name: str | None = None,
    assembly_status: str | None = None,
    annotation: str | os.PathLike | None = None,
) -> dict:
    """Write ``out_dir`` (see the module docstring) from a FASTA or a download record; return the provenance."""
    if source not in SOURCES:
        raise GenomeError(f"genome {genome}: source {source!r}, expected one of {', '.join(SOURCES)}")
    fasta_path, download = input_fasta(genome, fasta, download_record)

    with atomic_dir(out_dir, kind=GENOME_KIND, inputs=(fasta_path, download_record, annotation)) as tmp:
        lengths, skipped = _write_indexed_fasta(fasta_path, tmp)
        annotation_features = annotation_warning = None
        if annotation:
            annotation_features, annotation_warning = copy_annotation(
                annotation, tmp / ANNOTATION_NAME, dict(lengths), fasta_path
            )
        download = download or {}
        provenance = {
            "genome": genome,
            "source": source,
            "location": location or download.get("url") or str(fasta_path),
            "url": download.get("url") or (location if source == "url" else None),
            "input_path": str(fasta_path),
            "input_md5": file_md5(fasta_path),
            "accession": accession or download.get("accession"),
            "assembly_name": assembly_name or download.get("assembly_name"),
            "assembly_status": assembly_status or download.get("assembly_status"),
            "retrieved_at": download.get("retrieved_at"),
            "prepared_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "n_records": len(lengths),
            "total_nt": sum(length for _, length in lengths),
            "skipped_empty_records": skipped,
            "annotation": str(annotation) if annotation else None,
            "annotation_features": annotation_features,
            "annotation_warning": annotation_warning,
            "download": download or None,
        }
        with open(tmp / PROVENANCE_NAME, "w") as handle:
            json.dump(provenance, handle, indent=2)
            handle.write("\n")
    return provenance
