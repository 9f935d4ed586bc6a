"""NT splits and genome-sheet splits, checked against the fake NCBI server on 127.0.0.1."""

import csv
import json
import random

import pytest

from dnafm_lib import cli
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.http import RetryPolicy
from dnafm_lib.data.ncbi import NcbiClient
from dnafm_lib.data.splits import (
    GENOME_COLUMNS,
    REMOVED_COLUMNS,
    SplitsError,
    build_nt_splits,
    build_sheet_splits,
    parse_list_line,
    parse_replacements,
    write_splits,
)
from tests.support.ncbi_server import FakeAssembly, FakeNcbi

RAT_OLD, RAT_NEW = "GCF_000001895.5", "GCF_015227675.2"
FAST_RETRY = RetryPolicy(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05)


@pytest.fixture
def ncbi():
    fake = FakeNcbi().start()
    yield fake
    fake.stop()


@pytest.fixture
def client(ncbi):
    return NcbiClient(ftp_url=ncbi.ftp_url, api_url=ncbi.api_url, retry=FAST_RETRY, progress=False, requests_per_s=1000)


def list_line(form: int, accession: str, asm: str) -> str:
    """One NT-list entry in one of the forms seen in the wild."""
    prefix, digits = accession[:3], accession[4:13]
    all_dir = f"genomes/all/{prefix}/{digits[:3]}/{digits[3:6]}/{digits[6:9]}/{accession}_{asm}"
    return [
        f"https://ftp.ncbi.nlm.nih.gov/{all_dir}/{accession}_{asm}_genomic.fna.gz",
        f"https://ftp.ncbi.nlm.nih.gov/{all_dir}/",
        f"ftp://ftp.ncbi.nlm.nih.gov/genomes/refseq/bacteria/Genus_species{digits[-3:]}/latest_assembly_versions/"
        f"{accession}_{asm}/{accession}_{asm}_genomic.fna.gz",
        accession,
    ][form % 4]


def make_nt_cohort(ncbi, *, genomes=812, gone=17, rat_line=300, seed=11):
    """An NT-like list on the fake server: ``gone`` removed genomes in train (one is the rat)."""
    rng = random.Random(seed)
    accessions = [f"GCF_{100000000 + index * 37:09d}.{1 + index % 3}" for index in range(genomes)]
    accessions[rat_line - 1] = RAT_OLD
    gone_lines = sorted(rng.sample([n for n in range(1, genomes - 100) if n != rat_line], gone - 1))
    statuses = {}
    for order, line in enumerate(gone_lines):
        statuses[accessions[line - 1]] = ("suppressed", "retired", "unknown")[order % 3]
    lines = []
    for line, accession in enumerate(accessions, 1):
        asm = "Rnor_6.0" if accession == RAT_OLD else f"ASM{accession[4:13]}v{line % 5 + 1}"
        status = statuses.get(accession, "previous" if line % 97 == 0 else "current")
        if accession == RAT_OLD:
            ncbi.add(FakeAssembly(RAT_OLD, asm, status="suppressed", current_accession=RAT_NEW))
        elif status != "unknown":
            ncbi.add(FakeAssembly(accession, asm, status=status))
        lines.append(list_line(line, accession, asm))
    ncbi.add(FakeAssembly(RAT_NEW, "mRatBN7.2"))
    ncbi.static["nt_urls.txt"] = ("\n".join(lines) + "\n").encode()
    return accessions, statuses


def read_tsv(path):
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        return reader.fieldnames, list(reader)


def test_nt_list_of_812_with_17_gone_and_the_rat_swap_gives_796_genomes_696_50_50(ncbi, client, tmp_path):
    accessions, statuses = make_nt_cohort(ncbi)
    ncbi.max_page_size = 40  # NCBI pages its reports; the client must follow them

    result = build_nt_splits(ncbi.static_url("nt_urls.txt"), client=client, replacements={RAT_OLD: RAT_NEW})
    write_splits(result, tmp_path / "splits")

    columns, genomes = read_tsv(tmp_path / "splits" / "genomes.tsv")
    assert tuple(columns) == GENOME_COLUMNS
    assert len(genomes) == 796
    assert [sum(g["split"] == s for g in genomes) for s in ("train", "validation", "test")] == [696, 50, 50]
    # The last 100 list entries are validation then test, in list order.
    assert [g["accession"] for g in genomes[-50:]] == accessions[-50:]
    assert [g["accession"] for g in genomes[-100:-50]] == accessions[-100:-50]
    rat = next(g for g in genomes if g["accession"] == RAT_NEW)
    assert genomes.index(rat) == 299 - sum(1 for line_acc in accessions[:299] if line_acc in statuses)
    assert rat == {
        "genome": RAT_NEW,
        "accession": RAT_NEW,
        "source": "ncbi",
        "location": f"{ncbi.ftp_url}/genomes/all/GCF/015/227/675/GCF_015227675.2_mRatBN7.2/",
        "split": "train",
        "annotation": "",
        "assembly_name": "mRatBN7.2",
        "status": "current",
    }
    assert not {g["accession"] for g in genomes} & (set(statuses) | {RAT_OLD})

    columns, removed = read_tsv(tmp_path / "splits" / "removed.tsv")
    assert tuple(columns) == REMOVED_COLUMNS
    assert len(removed) == 17
    by_accession = {row["accession"]: row for row in removed}
    assert by_accession[RAT_OLD]["reason"] == (
        f"suppressed at NCBI (current: {RAT_NEW}); replaced by {RAT_NEW} (configured)"
    )
    assert by_accession[RAT_OLD]["replaced_by"] == RAT_NEW and by_accession[RAT_OLD]["line"] == "300"
    for accession, status in statuses.items():
        expected = "unknown to NCBI (no Datasets report)" if status == "unknown" else f"{status} at NCBI"
        assert by_accession[accession]["reason"] == expected

    summary = json.loads((tmp_path / "splits" / "summary.json").read_text())
    assert summary["listed_genomes"] == 812
    assert summary["listed_per_split"] == {"train": 712, "validation": 50, "test": 50}
    assert summary["genomes"] == 796 and summary["per_split"] == {"train": 696, "validation": 50, "test": 50}
    assert summary["removed"] == 17
    assert summary["removed_by_status"] == {"suppressed": 7, "retired": 5, "unknown": 5}
    assert summary["replacements"] == [
        {
            "old": RAT_OLD,
            "new": RAT_NEW,
            "split": "train",
            "line": 300,
            "old_status": "suppressed",
            "new_status": "current",
        }
    ]


def test_previous_assemblies_stay_with_their_status(ncbi, client):
    make_nt_cohort(ncbi)
    result = build_nt_splits(ncbi.static_url("nt_urls.txt"), client=client, replacements={RAT_OLD: RAT_NEW})
    statuses = {g.status for g in result.genomes}
    assert statuses == {"current", "previous"}


def test_a_removed_test_genome_shrinks_the_test_split_instead_of_borrowing_from_validation(ncbi, client, tmp_path):
    accessions = [f"GCA_{index:09d}.1" for index in range(1, 21)]
    for accession in accessions:
        ncbi.add(FakeAssembly(accession, "asm", status="retired" if accession == accessions[-1] else "current"))
    (tmp_path / "list.txt").write_text("\n".join(accessions) + "\n")

    result = build_nt_splits(str(tmp_path / "list.txt"), client=client, validation_genomes=3, test_genomes=4)

    assert result.summary["per_split"] == {"train": 13, "validation": 3, "test": 3}
    assert [g.accession for g in result.genomes if g.split == "validation"] == accessions[13:16]


@pytest.mark.parametrize(
    "line, expected",
    [
        (
            "https://ftp.ncbi.nlm.nih.gov/genomes/all/GCF/000/001/405/GCF_000001405.40_GRCh38.p14/"
            "GCF_000001405.40_GRCh38.p14_genomic.fna.gz",
            ("GCF_000001405.40", "GRCh38.p14"),
        ),
        (
            "ftp://ftp.ncbi.nlm.nih.gov/genomes/refseq/vertebrate_mammalian/Rattus_norvegicus/latest_assembly_versions/"
            "GCF_000001895.5_Rnor_6.0/GCF_000001895.5_Rnor_6.0_genomic.fna.gz",
            ("GCF_000001895.5", "Rnor_6.0"),
        ),
        (
            "https://ftp.ncbi.nlm.nih.gov/genomes/all/GCA/000/002/315/GCA_000002315.5_GRCg6a/",
            ("GCA_000002315.5", "GRCg6a"),
        ),
        ("https://example.org/mirror/GCF_000005845.2_ASM584v2_genomic.fna.gz", ("GCF_000005845.2", "ASM584v2")),
        ("GCF_015227675.2", ("GCF_015227675.2", "")),
    ],
)
def test_list_lines_in_every_form_give_accession_and_assembly_name(line, expected):
    assert parse_list_line(line, "list: line 1") == expected


def test_unreadable_list_line_is_an_error_naming_the_line(tmp_path, client):
    (tmp_path / "list.txt").write_text("GCF_000001405.40\n\nhttps://example.org/genome.fa.gz\n")
    with pytest.raises(SplitsError, match=r"list\.txt: line 3: 'https://example.org/genome\.fa\.gz' is neither"):
        build_nt_splits(str(tmp_path / "list.txt"), client=client)


def test_duplicate_accession_in_the_list_is_an_error_naming_both_lines(tmp_path, client):
    (tmp_path / "list.txt").write_text("GCF_000001405.40\nGCF_000001895.5\nGCF_000001405.40\n")
    with pytest.raises(SplitsError, match="line 3: GCF_000001405.40 already listed at line 1"):
        build_nt_splits(str(tmp_path / "list.txt"), client=client)


def test_list_too_short_for_the_split_counts_is_an_error(tmp_path, client):
    (tmp_path / "list.txt").write_text("GCF_000001405.40\nGCF_000001895.5\n")
    with pytest.raises(SplitsError, match="2 genomes cannot give 50 validation \\+ 50 test genomes"):
        build_nt_splits(str(tmp_path / "list.txt"), client=client)


def test_replacement_of_an_accession_not_in_the_list_is_an_error(ncbi, client, tmp_path):
    make_nt_cohort(ncbi, genomes=120, gone=1, rat_line=5)
    with pytest.raises(
        SplitsError, match="replacement GCF_000000001.1=GCF_015227675.2: GCF_000000001.1 is not in the list"
    ):
        build_nt_splits(ncbi.static_url("nt_urls.txt"), client=client, replacements={"GCF_000000001.1": RAT_NEW})


def test_two_replacements_by_one_accession_are_an_error_naming_both(ncbi, client):
    accessions, _ = make_nt_cohort(ncbi, genomes=120, gone=1, rat_line=5)
    other = accessions[10]
    with pytest.raises(SplitsError, match=f"replacements {RAT_OLD}={RAT_NEW} and {other}={RAT_NEW} both put {RAT_NEW}"):
        build_nt_splits(ncbi.static_url("nt_urls.txt"), client=client, replacements={RAT_OLD: RAT_NEW, other: RAT_NEW})
    assert ncbi.hits_for("dataset_report") == []  # refused before asking NCBI


def test_replacement_by_a_suppressed_accession_is_an_error(ncbi, client):
    make_nt_cohort(ncbi, genomes=120, gone=1, rat_line=5)
    ncbi.assemblies[RAT_NEW].status = "suppressed"
    with pytest.raises(SplitsError, match=f"replacement {RAT_OLD}={RAT_NEW}: {RAT_NEW} is suppressed"):
        build_nt_splits(ncbi.static_url("nt_urls.txt"), client=client, replacements={RAT_OLD: RAT_NEW})


def test_replacements_parse_from_config_mapping_and_command_line():
    assert parse_replacements({RAT_OLD: RAT_NEW}) == parse_replacements([f"{RAT_OLD}={RAT_NEW}"]) == {RAT_OLD: RAT_NEW}
    with pytest.raises(DnafmError, match="'rat' is not an assembly accession"):
        parse_replacements([f"rat={RAT_NEW}"])


def write_sheet(path, rows):
    header = "genome\tsource\taccession\tlocation\tsplit\tannotation\n"
    path.write_text(header + "".join("\t".join(row) + "\n" for row in rows))
    return str(path)


def no_network():
    raise AssertionError("a sheet without ncbi rows must not create an NCBI client")


def test_demo_sheet_with_local_files_builds_splits_offline(tmp_path):
    for name in ("a.fa.gz", "b.fa", "c.fa.gz", "a.gff3"):
        (tmp_path / name).write_text(">x\nACGT\n")
    sheet = write_sheet(
        tmp_path / "sheet.tsv",
        [
            ("chloroplast", "file", "NC_000932.1", str(tmp_path / "a.fa.gz"), "train", str(tmp_path / "a.gff3")),
            ("bac", "file", "", str(tmp_path / "b.fa"), "validation", ""),
            ("plasmid", "file", "", str(tmp_path / "c.fa.gz"), "test", ""),
        ],
    )

    result = build_sheet_splits(sheet, client_factory=no_network)
    write_splits(result, tmp_path / "splits")

    columns, genomes = read_tsv(tmp_path / "splits" / "genomes.tsv")
    assert tuple(columns) == GENOME_COLUMNS
    assert genomes[0] == {
        "genome": "chloroplast",
        "accession": "NC_000932.1",
        "source": "file",
        "location": str(tmp_path / "a.fa.gz"),
        "split": "train",
        "annotation": str(tmp_path / "a.gff3"),
        "assembly_name": "",
        "status": "",
    }
    assert [g["split"] for g in genomes] == ["train", "validation", "test"]
    assert read_tsv(tmp_path / "splits" / "removed.tsv") == (list(REMOVED_COLUMNS), [])
    assert json.loads((tmp_path / "splits" / "summary.json").read_text())["per_split"] == {
        "train": 1,
        "validation": 1,
        "test": 1,
    }


def test_sheet_rows_without_a_split_get_the_positional_rule(tmp_path):
    for index in range(5):
        (tmp_path / f"{index}.fa").write_text(">x\nACGT\n")
    sheet = write_sheet(
        tmp_path / "sheet.tsv", [(f"g{i}", "file", "", str(tmp_path / f"{i}.fa"), "", "") for i in range(5)]
    )

    result = build_sheet_splits(sheet, client_factory=no_network, validation_genomes=1, test_genomes=2)

    assert [g.split for g in result.genomes] == ["train", "train", "validation", "test", "test"]


def test_sheet_with_ncbi_and_url_rows_checks_only_the_ncbi_rows(ncbi, client, tmp_path):
    ncbi.add(FakeAssembly(RAT_NEW, "mRatBN7.2"))
    ncbi.add(FakeAssembly("GCA_000002315.5", "GRCg6a", status="suppressed"))
    sheet = write_sheet(
        tmp_path / "sheet.tsv",
        [
            ("rat", "ncbi", RAT_NEW, "", "train", ""),
            ("chicken", "ncbi", "GCA_000002315.5", "", "train", ""),
            ("web", "url", "", ncbi.static_url("web.fa"), "test", ""),
        ],
    )

    result = build_sheet_splits(sheet, client_factory=lambda: client)

    assert [(g.genome, g.assembly_name, g.status) for g in result.genomes] == [
        ("rat", "mRatBN7.2", "current"),
        ("web", "", ""),
    ]
    assert result.removed[0]["genome"] == "chicken" and result.removed[0]["reason"] == "suppressed at NCBI"
    assert len(ncbi.hits_for("dataset_report")) == 1


def test_a_bad_sheet_row_stops_the_splits_with_the_sheet_module_s_message(tmp_path, monkeypatch):
    # every rule of a row is tested in tests/data/test_genome_sheet.py; here: build_sheet_splits applies them
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.fa").write_text(">x\nACGT\n")
    sheet = write_sheet(
        tmp_path / "sheet.tsv", [("ok", "file", "", "x.fa", "train", ""), ("g", "s3", "", "x.fa", "", "")]
    )
    with pytest.raises(DnafmError, match=r"sheet\.tsv: line 3 \(genome g\): source 's3': expected one of ncbi"):
        build_sheet_splits(sheet, client_factory=no_network)


def test_sheet_with_an_unknown_column_is_refused_as_the_workflow_refuses_it(tmp_path):
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("genome\tsource\tpath\nok\tfile\tx.fa\n")
    with pytest.raises(DnafmError, match=r"sheet\.tsv: unknown column\(s\) path \(expected genome, source"):
        build_sheet_splits(str(sheet), client_factory=no_network)


def test_splits_command_with_a_pinned_list_url_and_the_rat_swap(ncbi, tmp_path, capsys):
    make_nt_cohort(ncbi)

    code = cli.main(
        [
            "splits",
            "--list",
            ncbi.static_url("nt_urls.txt"),
            "--out-dir",
            str(tmp_path / "splits"),
            "--ncbi-api-url",
            ncbi.api_url,
            "--ncbi-ftp-url",
            ncbi.ftp_url,
            "--replace",
            f"{RAT_OLD}={RAT_NEW}",
        ]
    )

    assert code == 0
    assert "796 genomes (696 train / 50 validation / 50 test); 17 removed; 1 replaced" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "splits").iterdir()) == ["genomes.tsv", "removed.tsv", "summary.json"]


def test_splits_command_fails_cleanly_and_writes_nothing_when_ncbi_is_unreachable(tmp_path, capsys):
    (tmp_path / "list.txt").write_text("GCF_015227675.2\n")
    code = cli.main(
        [
            "splits",
            "--list",
            str(tmp_path / "list.txt"),
            "--out-dir",
            str(tmp_path / "splits"),
            "--validation-genomes",
            "0",
            "--test-genomes",
            "0",
            "--ncbi-api-url",
            "http://127.0.0.1:9/datasets/v2",
            "--attempts",
            "2",
            "--backoff-s",
            "0.01",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "dnafm splits: error: http://127.0.0.1:9/datasets/v2/genome/accession/GCF_015227675.2/dataset_report"
    )
    assert not (tmp_path / "splits").exists()
