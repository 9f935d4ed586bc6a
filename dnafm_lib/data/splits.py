"""Train/validation/test genome splits: the NT multi-species list, or a cohort's genome sheet.

NT list: one entry per line in split order (``genomes/all/…`` URLs, older
``genomes/refseq/{group}/{Species}/latest_assembly_versions/…`` URLs, or bare accessions).
Test = the last ``test_genomes`` lines, validation = the ``validation_genomes`` before them,
train = the rest. Every accession's status is checked with NCBI (batched Datasets reports);
genomes that are gone (suppressed, retired, unknown) go to ``removed.tsv`` with the reason;
configured replacements (the rat swap) take the replaced genome's place and split.

Outputs (the contract the genomes and shards stages read), in ``out_dir``:
``genomes.tsv`` (columns GENOME_COLUMNS), ``removed.tsv`` (REMOVED_COLUMNS), ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

from dnafm_lib.core.atomic import atomic_open
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.genome_sheet import SPLITS, read_genome_sheet
from dnafm_lib.data.http import HttpClient
from dnafm_lib.data.ncbi import (
    ACCESSION_RE,
    AVAILABLE_STATUSES,
    AssemblyReport,
    NcbiClient,
    check_accession,
    ftp_directory_url,
)

GENOME_COLUMNS = ("genome", "accession", "source", "location", "split", "annotation", "assembly_name", "status")
# The files write_splits makes in its out_dir (genomes.tsv last: downstream rules key on it).
GENOMES_TSV, REMOVED_TSV, SUMMARY_JSON = "genomes.tsv", "removed.tsv", "summary.json"
REMOVED_COLUMNS = ("genome", "accession", "line", "split", "status", "reason", "replaced_by")
# A path segment naming an assembly directory or file: {acc}_{asm}[_genomic.fna.gz]
_ASM_SEGMENT_RE = re.compile(r"^(GC[AF]_\d{9}\.\d+)_(.+)$")
_FILE_SUFFIX_RE = re.compile(r"_(genomic|rna|protein|cds_from_genomic)\.\w+(\.gz)?$|_assembly_report\.txt$")


class SplitsError(DnafmError):
    """A malformed NT list, split counts that leave no train genome, or a replacement that does not fit."""


@dataclass
class GenomeEntry:
    """One genome in list/sheet order, with where it came from (``line``) and its split."""

    genome: str
    accession: str
    source: str
    location: str
    split: str
    line: int
    annotation: str = ""
    assembly_name: str = ""
    status: str = ""
    replaces: str = ""

    def row(self) -> dict[str, str]:
        return {column: str(getattr(self, column)) for column in GENOME_COLUMNS}


@dataclass
class SplitsResult:
    genomes: list[GenomeEntry]
    removed: list[dict[str, str]]
    summary: dict = field(default_factory=dict)


# -- reading the NT list --------------------------------------------------------------------
def parse_list_line(line: str, where: str) -> tuple[str, str]:
    """(accession, assembly name or "") from a URL of either NCBI layout or a bare accession."""
    text = line.strip()
    if ACCESSION_RE.match(text):
        return text, ""
    parsed = urlparse(text)
    if parsed.scheme in ("http", "https", "ftp") and parsed.path:
        segments = [s for s in parsed.path.split("/") if s]
        # Prefer the directory segment ({acc}_{asm}); a file name carries a suffix to strip.
        for segment in segments:
            match = _ASM_SEGMENT_RE.match(segment)
            if match and not _FILE_SUFFIX_RE.search(segment):
                return match.group(1), match.group(2)
        for segment in segments:
            match = _ASM_SEGMENT_RE.match(_FILE_SUFFIX_RE.sub("", segment))
            if match:
                return match.group(1), match.group(2)
    raise SplitsError(
        f"{where}: {text[:120]!r} is neither an NCBI assembly URL "
        "(genomes/all/… or genomes/refseq/…/latest_assembly_versions/…) nor an accession"
    )


def read_list_text(list_source: str, client_http=None) -> str:
    """The NT list's text from a local file or an http(s) URL (pin a revision in the URL)."""
    if list_source.startswith(("http://", "https://")):
        return (client_http or HttpClient()).get_text(list_source)
    path = Path(list_source)
    if not path.is_file():
        raise SplitsError(f"NT list {list_source}: no such file")
    return path.read_text()


def parse_nt_list(text: str, source_name: str) -> list[tuple[int, str, str]]:
    """[(line number, accession, assembly name from the URL or "")] in list order.

    Blank lines and ``#`` comments are skipped; a first line ``URL`` (a CSV header) too.
    """
    entries = []
    seen: dict[str, int] = {}
    for line_no, line in enumerate(text.splitlines(), 1):
        stripped = line.strip().strip(",").strip('"')
        if not stripped or stripped.startswith("#") or (not entries and stripped.upper() == "URL"):
            continue
        accession, assembly_name = parse_list_line(stripped, f"{source_name}: line {line_no}")
        if accession in seen:
            raise SplitsError(f"{source_name}: line {line_no}: {accession} already listed at line {seen[accession]}")
        seen[accession] = line_no
        entries.append((line_no, accession, assembly_name))
    if not entries:
        raise SplitsError(f"{source_name}: the NT list holds no genomes")
    return entries


def positional_splits(count: int, validation_genomes: int, test_genomes: int, where: str) -> list[str]:
    """Split labels for ``count`` genomes in order: train…, then validation, then test last."""
    if validation_genomes < 0 or test_genomes < 0:
        raise SplitsError(f"{where}: validation/test genome counts must not be negative")
    if count < validation_genomes + test_genomes + 1:
        raise SplitsError(
            f"{where}: {count} genomes cannot give {validation_genomes} validation + "
            f"{test_genomes} test genomes and a non-empty train split"
        )
    train = count - validation_genomes - test_genomes
    return ["train"] * train + ["validation"] * validation_genomes + ["test"] * test_genomes


def parse_replacements(items) -> dict[str, str]:
    """{old: new} from a mapping or ``OLD=NEW`` strings; both must be accessions."""
    pairs = items.items() if isinstance(items, dict) else (item.split("=", 1) for item in items or [])
    replacements: dict[str, str] = {}
    for pair in pairs:
        if len(pair) != 2:
            raise SplitsError(f"replacement {'='.join(pair)!r}: expected OLD=NEW accessions")
        old, new = (str(p).strip() for p in pair)
        check_accession(old)
        check_accession(new)
        replacements[old] = new
    return replacements


# -- status and replacements ----------------------------------------------------------------
def _check_replacements_fit_list(replacements: dict[str, str], listed: set[str], where: str) -> None:
    """Each replacement swaps a listed accession for an unlisted one, and no two give the same one."""
    for old, new in replacements.items():
        if old not in listed:
            raise SplitsError(f"{where}: replacement {old}={new}: {old} is not in the list")
        if new in listed:
            raise SplitsError(f"{where}: replacement {old}={new}: {new} is already in the list")
    # Two genomes swapped for one accession would list it twice in genomes.tsv.
    first_old_for: dict[str, str] = {}
    for old, new in replacements.items():
        if new in first_old_for:
            raise SplitsError(
                f"{where}: replacements {first_old_for[new]}={new} and {old}={new} both put {new} in the list"
            )
        first_old_for[new] = old


def _fetch_status_reports(
    ncbi_entries: list[GenomeEntry], replacements: dict[str, str], client: NcbiClient | None, where: str
) -> dict[str, AssemblyReport]:
    """NCBI's reports for the listed and the replacement accessions; every replacement must be available."""
    reports: dict[str, AssemblyReport] = {}
    if ncbi_entries:
        if client is None:
            raise SplitsError(f"{where}: NCBI rows need an NCBI client")
        reports = client.dataset_reports([e.accession for e in ncbi_entries] + list(replacements.values()))
    for old, new in replacements.items():
        report = reports.get(new)
        if report is None or report.assembly_status not in AVAILABLE_STATUSES:
            status = report.assembly_status if report else "unknown to NCBI"
            raise SplitsError(f"{where}: replacement {old}={new}: {new} is {status}")
    return reports


def _removal_row(entry: GenomeEntry, report: AssemblyReport | None, status: str, replacement: str) -> dict[str, str]:
    """The removed-genomes row for ``entry``, gone at NCBI or replaced by configuration."""
    if report is None:
        reason = "unknown to NCBI (no Datasets report)"
    elif status not in AVAILABLE_STATUSES:
        newer = report.current_accession
        reason = f"{status} at NCBI" + (f" (current: {newer})" if newer != entry.accession else "")
    else:
        reason = f"{status} at NCBI"
    if replacement:
        reason += f"; replaced by {replacement} (configured)"
    return {
        "genome": entry.genome,
        "accession": entry.accession,
        "line": str(entry.line),
        "split": entry.split,
        "status": status,
        "reason": reason,
        "replaced_by": replacement,
    }


def _replacement_entry(entry: GenomeEntry, replacement: str) -> GenomeEntry:
    """``entry`` at its list line and split, now for ``replacement``; a genome named by accession is renamed."""
    return GenomeEntry(
        genome=replacement if entry.genome == entry.accession else entry.genome,
        accession=replacement,
        source="ncbi",
        location="",
        split=entry.split,
        line=entry.line,
        annotation=entry.annotation,
        replaces=entry.accession,
    )


def apply_status_and_replacements(
    entries: list[GenomeEntry],
    replacements: dict[str, str],
    client: NcbiClient | None,
    where: str,
) -> tuple[list[GenomeEntry], list[dict[str, str]], list[dict[str, str]]]:
    """Check ``ncbi`` entries with NCBI, drop the gone ones, swap in replacements in place."""
    ncbi_entries = [e for e in entries if e.source == "ncbi"]
    _check_replacements_fit_list(replacements, {e.accession for e in ncbi_entries}, where)
    reports = _fetch_status_reports(ncbi_entries, replacements, client, where)

    kept: list[GenomeEntry] = []
    removed: list[dict[str, str]] = []
    swaps: list[dict[str, str]] = []
    for entry in entries:
        if entry.source != "ncbi":
            kept.append(entry)
            continue
        report = reports.get(entry.accession)
        status = report.assembly_status if report else "unknown"
        replacement = replacements.get(entry.accession, "")
        if replacement or status not in AVAILABLE_STATUSES:
            removed.append(_removal_row(entry, report, status, replacement))
        if replacement:
            new_report = reports[replacement]
            swaps.append(
                {
                    "old": entry.accession,
                    "new": replacement,
                    "split": entry.split,
                    "line": entry.line,
                    "old_status": status,
                    "new_status": new_report.assembly_status,
                }
            )
            entry = _replacement_entry(entry, replacement)
            report = new_report
        elif status not in AVAILABLE_STATUSES:
            continue
        entry.assembly_name = report.assembly_name
        entry.status = report.assembly_status
        if not entry.location:
            entry.location = ftp_directory_url(client.ftp_url, entry.accession, report.assembly_name)
        kept.append(entry)
    return kept, removed, swaps


# -- the two front doors --------------------------------------------------------------------
def build_nt_splits(
    list_source: str,
    *,
    client: NcbiClient,
    validation_genomes: int = 50,
    test_genomes: int = 50,
    replacements: dict[str, str] | None = None,
) -> SplitsResult:
    """The NT splits from a list file or URL, checked against NCBI."""
    text = read_list_text(list_source, client.http)
    listed = parse_nt_list(text, list_source)
    labels = positional_splits(len(listed), validation_genomes, test_genomes, list_source)
    entries = [
        GenomeEntry(genome=acc, accession=acc, source="ncbi", location="", split=split, line=line_no, assembly_name=asm)
        for (line_no, acc, asm), split in zip(listed, labels)
    ]
    kept, removed, swaps = apply_status_and_replacements(entries, replacements or {}, client, list_source)
    return SplitsResult(kept, removed, _summary(list_source, "nt_list", entries, kept, removed, swaps, client))


def build_sheet_splits(
    sheet_path: str,
    *,
    client_factory=NcbiClient,
    validation_genomes: int = 50,
    test_genomes: int = 50,
    replacements: dict[str, str] | None = None,
) -> SplitsResult:
    """Splits from a genome sheet (read and checked by ``genome_sheet.read_genome_sheet``); the
    network is used only when a row's source is ``ncbi``.

    Rows with an empty ``split`` get the positional rule (over those rows, in sheet order).
    """
    entries = [
        GenomeEntry(
            genome=row.genome,
            accession=row.accession,
            source=row.source,
            location=row.location,
            split=row.split,
            line=row.line,
            annotation=row.annotation,
        )
        for row in read_genome_sheet(sheet_path).rows
    ]
    unsplit = [e for e in entries if not e.split]
    if unsplit:
        labels = positional_splits(
            len(unsplit), validation_genomes, test_genomes, f"{sheet_path} (rows without a split)"
        )
        for entry, label in zip(unsplit, labels):
            entry.split = label
    # Only a sheet with ncbi rows talks to NCBI (the demo cohort runs offline).
    client = client_factory() if any(e.source == "ncbi" for e in entries) else None
    kept, removed, swaps = apply_status_and_replacements(entries, replacements or {}, client, sheet_path)
    return SplitsResult(kept, removed, _summary(sheet_path, "genome_sheet", entries, kept, removed, swaps, client))


def _summary(source, kind, listed, kept, removed, swaps, client) -> dict:
    def per_split(items):
        return {split: sum(1 for e in items if e.split == split) for split in SPLITS}

    reasons: dict[str, int] = {}
    for row in removed:
        reasons[row["status"]] = reasons.get(row["status"], 0) + 1
    return {
        "source": source,
        "source_kind": kind,
        "listed_genomes": len(listed),
        "listed_per_split": per_split(listed),
        "genomes": len(kept),
        "per_split": per_split(kept),
        "removed": len(removed),
        "removed_by_status": reasons,
        "replacements": swaps,
        "ncbi_api_url": client.api_url if client else None,
        "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_splits(result: SplitsResult, out_dir: str | Path) -> None:
    """removed.tsv, summary.json, then genomes.tsv (the file downstream rules key on) into ``out_dir``.

    Each file is written under a temporary name and renamed when whole.
    """
    out_dir = Path(out_dir)
    _write_tsv(out_dir / REMOVED_TSV, REMOVED_COLUMNS, result.removed)
    with atomic_open(out_dir / SUMMARY_JSON) as handle:
        handle.write(json.dumps(result.summary, indent=2) + "\n")
    _write_tsv(out_dir / GENOMES_TSV, GENOME_COLUMNS, [e.row() for e in result.genomes])


def _write_tsv(path: Path, columns, rows) -> None:
    with atomic_open(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def read_genomes_table(path: str | Path) -> list[dict[str, str]]:
    """Rows of a genomes.tsv written by ``write_splits`` (what the download rule looks up)."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if tuple(reader.fieldnames or ()) != GENOME_COLUMNS:
            raise SplitsError(f"{path}: columns {reader.fieldnames}, expected {list(GENOME_COLUMNS)}")
        return list(reader)
