"""The genome sheet (dnafm_lib.data.genome_sheet): every rule, one line naming sheet, line and genome."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dnafm_lib.data.genome_sheet import (
    GENOME_ID_PATTERN,
    SHEET_COLUMNS,
    SOURCES,
    SPLITS,
    GenomeSheetError,
    SheetRow,
    read_genome_sheet,
)
from dnafm_lib.data.ncbi import ACCESSION_RE

REPO = Path(__file__).resolve().parents[2]
HEADER = "\t".join(SHEET_COLUMNS)


def write_sheet(path, rows, header=HEADER):
    path.write_text(header + "\n" + "".join("\t".join(row) + "\n" for row in rows))
    return path


@pytest.fixture
def fasta(tmp_path):
    path = tmp_path / "a.fa"
    path.write_text(">c\nACGT\n")
    return path


def test_rows_come_back_typed_with_their_file_line(tmp_path, fasta):
    sheet = write_sheet(
        tmp_path / "sheet.tsv",
        [
            ["a", "file", " NC_1 ", str(fasta), "train", ""],  # cells are stripped
            ["rat", "ncbi", "GCF_015227675.2", "", "", ""],
        ],
    )
    read = read_genome_sheet(sheet)
    assert read.rows == (
        SheetRow("a", "file", "NC_1", str(fasta), "train", "", line=2),
        SheetRow("rat", "ncbi", "GCF_015227675.2", "", "", "", line=3),
    )
    frame = read.frame()
    assert list(frame.columns) == list(SHEET_COLUMNS) and frame.loc[1, "location"] == ""


def test_a_repeated_genome_id_names_both_lines(tmp_path, fasta):
    rows = [["a", "file", "", str(fasta), "train", ""], ["b", "file", "", str(fasta), "", ""]]
    sheet = write_sheet(tmp_path / "sheet.tsv", [*rows, ["a", "file", "", str(fasta), "", ""]])
    with pytest.raises(GenomeSheetError, match=r"sheet\.tsv: line 4 \(genome a\): genome id already used on line 2"):
        read_genome_sheet(sheet)


def test_a_repeated_ncbi_accession_names_both_lines(tmp_path):
    rows = [["rat", "ncbi", "GCF_015227675.2", "", "train", ""], ["rat2", "ncbi", "GCF_015227675.2", "", "test", ""]]
    with pytest.raises(
        GenomeSheetError, match=r"line 3 \(genome rat2\): accession GCF_015227675\.2 already used on line 2"
    ):
        read_genome_sheet(write_sheet(tmp_path / "sheet.tsv", rows))


def test_line_numbers_count_blank_lines(tmp_path, fasta):
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"{HEADER}\na\tfile\t\t{fasta}\ttrain\t\n\n\nb\tfile\t\tmissing.fa\t\t\n\n")
    with pytest.raises(GenomeSheetError, match=r"sheet\.tsv: line 5 \(genome b\): location missing\.fa does not exist"):
        read_genome_sheet(sheet)


def test_local_files_are_looked_up_under_the_base_directory(tmp_path, fasta):
    sheet = write_sheet(tmp_path / "sheet.tsv", [["a", "file", "", "a.fa", "", ""]])
    assert read_genome_sheet(sheet, base_dir=tmp_path).genomes == ["a"]
    with pytest.raises(GenomeSheetError, match="location a.fa does not exist"):
        read_genome_sheet(sheet, base_dir=tmp_path / "elsewhere")


@pytest.mark.parametrize(
    "row, message",
    [
        (("bad id!", "file", "", "x.fa", "", ""), "line 3: genome id 'bad id!' may hold only"),
        (
            ("-x", "file", "", "x.fa", "", ""),
            "line 3: genome id '-x' may hold only .* must start with a letter or digit",
        ),
        (("g", "s3", "", "x.fa", "", ""), r"line 3 \(genome g\): source 's3': expected one of ncbi, url, file"),
        (("g", "file", "", "missing.fa", "", ""), r"line 3 \(genome g\): location missing\.fa does not exist"),
        (("g", "file", "", "", "", ""), r"line 3 \(genome g\): location is empty"),
        (("g", "file", "", "x.fa", "", "no.gff3"), r"line 3 \(genome g\): annotation no\.gff3 does not exist"),
        (("g", "ncbi", "GCF_1", "", "", ""), r"line 3 \(genome g\): 'GCF_1' is not an assembly accession"),
        (("g", "url", "", "ftp://host/x.fa", "", ""), r"line 3 \(genome g\): source url needs an http\(s\) URL"),
        (("g", "file", "", "x.fa", "holdout", ""), r"line 3 \(genome g\): split 'holdout': expected one of"),
    ],
)
def test_a_bad_row_is_one_line_naming_sheet_line_and_genome(tmp_path, monkeypatch, row, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.fa").write_text(">x\nACGT\n")
    sheet = write_sheet(tmp_path / "sheet.tsv", [("ok", "file", "", "x.fa", "train", ""), row])
    with pytest.raises(GenomeSheetError, match=rf"sheet\.tsv: {message}") as error:
        read_genome_sheet(sheet)
    assert "\n" not in str(error.value)


def test_unknown_and_missing_columns_are_named_with_the_expected_ones(tmp_path):
    sheet = write_sheet(tmp_path / "sheet.tsv", [["a", "x.fa"]], header="genome\tpath")
    with pytest.raises(
        GenomeSheetError,
        match=r"unknown column\(s\) path; missing column\(s\) source \(expected genome, source, accession",
    ):
        read_genome_sheet(sheet)


def test_a_header_only_sheet_is_refused(tmp_path):
    with pytest.raises(GenomeSheetError, match="sheet.tsv: the genome sheet has a header but no genomes"):
        read_genome_sheet(write_sheet(tmp_path / "sheet.tsv", []))


@pytest.mark.parametrize("sheet", ["config/genomes.tsv", "config/cohorts/mine_example_genomes.tsv"])
def test_the_shipped_sheets_read_clean(sheet):
    read = read_genome_sheet(REPO / sheet, base_dir=REPO)
    assert read.genomes and all(row.source in SOURCES for row in read.rows)


def test_the_schema_describes_the_rules_this_module_applies():
    """workflow/schemas/genomes.schema.yaml is the readers' description of a row: it must not drift."""
    schema = yaml.safe_load((REPO / "workflow/schemas/genomes.schema.yaml").read_text())
    properties = schema["properties"]
    assert tuple(properties) == SHEET_COLUMNS
    assert properties["genome"]["pattern"] == f"^{GENOME_ID_PATTERN}$"
    assert tuple(properties["source"]["enum"]) == SOURCES
    assert tuple(properties["split"]["enum"]) == SPLITS
    ncbi = next(part["then"] for part in schema["allOf"] if part["if"]["properties"]["source"]["const"] == "ncbi")
    for accession in ("GCF_015227675.2", "GCA_000001405.29", "GCF_1", "GCF_015227675"):
        schema_says = re.match(ncbi["properties"]["accession"]["pattern"], accession) is not None
        assert schema_says == (ACCESSION_RE.match(accession) is not None), accession
