"""The genome sheet: a cohort's genomes, one tab-separated row each (config key ``genome_sheet``).

Columns ``SHEET_COLUMNS``: genome (the id naming every result folder), source (ncbi, url, file),
accession, location, split, annotation. This module holds every rule a sheet must meet, for the
workflow (checked at start, ``workflow/rules/common.smk``) and ``dnafm splits`` alike:

- the text: UTF-8, the known columns, as many fields on each line as the header has;
- each row: a safe genome id, a known source, what that source needs (an ncbi accession, an
  http(s) URL, a local FASTA), a known split or none, a local annotation if any;
- across rows: each genome id and each ncbi accession once, at least one row.

Every error is one line naming the sheet and the line (header = line 1), and the genome once
its id is known. ``workflow/schemas/genomes.schema.yaml`` describes the same row for readers;
tests/data/test_genome_sheet.py keeps the two in agreement.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

from dnafm_lib.core.errors import DnafmError
from dnafm_lib.core.names import PATH_NAME_PATTERN, PathNameError, check_path_name
from dnafm_lib.data.fasta import GZIP_MAGIC
from dnafm_lib.data.ncbi import check_accession

SHEET_COLUMNS = ("genome", "source", "accession", "location", "split", "annotation")
REQUIRED_COLUMNS = ("genome", "source")
SOURCES = ("ncbi", "url", "file")
SPLITS = ("train", "validation", "test")
# Genome ids name result folders and reach command lines: no leading '-' or '.', no spaces.
# Also the {genome} wildcard of every genome rule.
GENOME_ID_PATTERN = PATH_NAME_PATTERN  # a genome id names its folders (core/names.py)
GENOME_ID_RE = re.compile(rf"^{GENOME_ID_PATTERN}$")


class GenomeSheetError(DnafmError):
    """A genome sheet that cannot be read, or a row (or two) that breaks its rules."""


@dataclass(frozen=True)
class SheetRow:
    """One checked row; empty cells are ``""``. ``line`` is its line in the file (header = 1)."""

    genome: str
    source: str
    accession: str
    location: str
    split: str
    annotation: str
    line: int

    def cells(self) -> dict[str, str]:
        return {column: getattr(self, column) for column in SHEET_COLUMNS}


@dataclass(frozen=True)
class GenomeSheet:
    path: str
    rows: tuple[SheetRow, ...]

    @property
    def genomes(self) -> list[str]:
        return [row.genome for row in self.rows]

    def frame(self):
        """The rows as a pandas DataFrame of strings (columns ``SHEET_COLUMNS``, ``""`` when empty)."""
        import pandas as pd

        return pd.DataFrame([row.cells() for row in self.rows], columns=list(SHEET_COLUMNS), dtype=str)


def read_genome_sheet(path: str | os.PathLike, *, base_dir: str | os.PathLike = ".") -> GenomeSheet:
    """The sheet at ``path``, every rule checked; local files are looked up under ``base_dir``."""
    table = read_sheet_table(path)
    rows = tuple(
        check_row({column: table.at[index, column] for column in SHEET_COLUMNS}, path, sheet_line(index), base_dir)
        for index in table.index
    )
    check_rows(rows, path)
    return GenomeSheet(str(path), rows)


def read_sheet_table(path: str | os.PathLike):
    """The sheet's cells as a pandas DataFrame of stripped strings (empty cells ``""``), before the
    row rules; unknown or missing columns are an error naming them. Blank lines are dropped, and
    a row's index is its line in the file minus 2 (``sheet_line``)."""
    import pandas as pd

    path = Path(path)
    text = _sheet_text(path)
    try:
        # Blank lines read as empty rows, dropped below, so the index keeps counting file lines.
        # quoting=3 (QUOTE_NONE): a '"' is text.
        sheet = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, skip_blank_lines=False, quoting=3)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise GenomeSheetError(f"{path}: not a tab-separated genome sheet ({exc})") from None
    sheet = sheet.dropna(how="all")
    unknown = [c for c in sheet.columns if c not in SHEET_COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in sheet.columns]
    if unknown or missing:
        problems = [f"unknown column(s) {', '.join(unknown)}" if unknown else "", ""]
        problems[1] = f"missing column(s) {', '.join(missing)}" if missing else ""
        raise GenomeSheetError(
            f"{path}: {'; '.join(p for p in problems if p)} (expected {', '.join(SHEET_COLUMNS)}, tab-separated)"
        )
    for column in SHEET_COLUMNS:
        if column not in sheet.columns:
            sheet[column] = ""
    return sheet[list(SHEET_COLUMNS)].fillna("").apply(lambda column: column.str.strip())


def sheet_line(index) -> int:
    """The file line (header = line 1) of the row ``read_sheet_table`` gave ``index``."""
    return int(index) + 2


def check_row(cells: dict[str, str], path, line: int, base_dir: str | os.PathLike = ".") -> SheetRow:
    """One row's rules (id, source and what it needs, split, annotation); the row, typed."""
    genome, source = cells["genome"], cells["source"]
    where = f"{path}: line {line}"
    if not GENOME_ID_RE.match(genome):
        raise GenomeSheetError(
            f"{where}: genome id {genome!r} may hold only letters, digits, '_', '-', '.' and must start "
            "with a letter or digit"
        )
    where += f" (genome {genome})"
    if source not in SOURCES:
        raise GenomeSheetError(f"{where}: source {source!r}: expected one of {', '.join(SOURCES)}")
    if cells["split"] and cells["split"] not in SPLITS:
        raise GenomeSheetError(f"{where}: split {cells['split']!r}: expected one of {', '.join(SPLITS)} or empty")
    if source == "ncbi":
        try:
            check_accession(cells["accession"])
        except DnafmError as exc:
            raise GenomeSheetError(f"{where}: {exc}") from None
    if cells["accession"]:  # the tracks' hub names its folder after it: hub/{accession}/
        try:
            check_path_name(cells["accession"], f"{where}: accession")
        except PathNameError as exc:
            raise GenomeSheetError(str(exc)) from None
    if source == "url" and not cells["location"].startswith(("http://", "https://")):
        raise GenomeSheetError(f"{where}: source url needs an http(s) URL in location, got {cells['location']!r}")
    elif source == "file" and not cells["location"]:
        raise GenomeSheetError(f"{where}: location is empty (a 'file' row needs the path of its FASTA)")
    local = [("location", cells["location"])] if source == "file" else []
    if cells["annotation"]:
        local.append(("annotation", cells["annotation"]))
    for column, value in local:
        try:
            present = (Path(base_dir) / value).is_file()
        except OSError as exc:  # e.g. a name longer than the file system allows
            raise GenomeSheetError(f"{where}: {column} {value[:80]!r}: {exc.strerror}") from None
        if not present:
            raise GenomeSheetError(f"{where}: {column} {value} does not exist")
    return SheetRow(**{f.name: cells[f.name] for f in fields(SheetRow) if f.name != "line"}, line=line)


def check_rows(rows: tuple[SheetRow, ...], path) -> None:
    """Across rows: at least one genome; each genome id, and each ncbi accession, on one line only."""
    if not rows:
        raise GenomeSheetError(f"{path}: the genome sheet has a header but no genomes; add one row per genome")
    ids: dict[str, int] = {}
    accessions: dict[str, int] = {}
    for row in rows:
        where = f"{path}: line {row.line} (genome {row.genome})"
        if row.genome in ids:
            raise GenomeSheetError(f"{where}: genome id already used on line {ids[row.genome]}")
        ids[row.genome] = row.line
        if row.source == "ncbi":
            # The same assembly twice would be downloaded twice, and could sit in two splits.
            if row.accession in accessions:
                raise GenomeSheetError(
                    f"{where}: accession {row.accession} already used on line {accessions[row.accession]}"
                )
            accessions[row.accession] = row.line


def _sheet_text(path: Path) -> str:
    """The sheet's text, checked so that pandas cannot misread it: UTF-8 (a byte-order mark is
    fine), and every non-blank row with exactly as many tab-separated fields as the header.

    pandas would take a row with one field too many as a sign that the first column is an
    index, and report a confusing error far from the cause; here it is the line that is named.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GenomeSheetError(f"{path}: genome sheet not found") from None
    except IsADirectoryError:
        raise GenomeSheetError(f"{path}: is a directory, expected a genome sheet (TSV)") from None
    if data.startswith(GZIP_MAGIC):
        raise GenomeSheetError(f"{path}: is gzip-compressed; give the genome sheet as plain tab-separated text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise GenomeSheetError(
            f"{path}: line {line}, column {column}: byte 0x{data[exc.start]:02x} is not UTF-8"
        ) from None
    # Lines as pandas counts them (\n, with \r\n as one break), not str.splitlines()'s many breaks.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if not lines or not lines[0].strip():
        raise GenomeSheetError(f"{path}: empty genome sheet (expected a header line: {' '.join(SHEET_COLUMNS)})")
    width = lines[0].count("\t") + 1
    for line_number, line in enumerate(lines[1:], start=2):
        if line.strip() and line.count("\t") + 1 != width:
            raise GenomeSheetError(
                f"{path}: line {line_number}: {line.count(chr(9)) + 1} tab-separated fields, but the header has "
                f"{width} (an empty cell is an empty field between two tabs)"
            )
    return "\n".join(lines)
