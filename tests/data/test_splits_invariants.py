"""Invariants of the splits stage, over random lists, removals and replacements (fake NCBI on 127.0.0.1).

Positional rule (``splits.positional_splits``), for every count and split sizes:
  P1. train… then validation… then test, in list order; test = the last ``test_genomes``,
      validation = the ``validation_genomes`` before them, train the rest (never empty);
  P2. counts that leave no train genome are one error, never a silent short split.
NT list checked against NCBI (``splits.build_nt_splits``), for every list and set of removals:
  R1. kept genomes stay in list order and keep the split of their list position;
  R2. a removed genome shrinks its own split; no genome moves to another split;
  R3. a replacement takes the replaced genome's place (line) and split, and the replaced
      accession is listed in removed.tsv with ``replaced_by``;
  R4. kept + removed (minus replaced) account for every listed genome, each accession once;
  R5. the summary's per-split counts are those of genomes.tsv.
Genome sheet (``genome_sheet.read_genome_sheet``), for every genome id:
  V1. an id is accepted exactly when it is letters, digits, ``_ - .`` starting with a letter or
      digit; a bad id is one error naming the sheet line.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnafm_lib.data.genome_sheet import GenomeSheetError, read_genome_sheet
from dnafm_lib.data.http import RetryPolicy
from dnafm_lib.data.ncbi import NcbiClient
from dnafm_lib.data.splits import (
    SPLITS,
    SplitsError,
    build_nt_splits,
    positional_splits,
)
from tests.support.ncbi_server import FakeAssembly, FakeNcbi

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FAST_RETRY = RetryPolicy(max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02)


@PROPERTY
@given(st.integers(0, 60), st.integers(0, 20), st.integers(0, 20))
def test_positional_splits_put_train_first_then_validation_then_test(count, validation, test):
    if count < validation + test + 1:  # P2
        with pytest.raises(SplitsError, match="non-empty train split"):
            positional_splits(count, validation, test, "list.txt")
        return
    labels = positional_splits(count, validation, test, "list.txt")
    assert len(labels) == count
    assert labels == sorted(labels, key=SPLITS.index)  # P1: contiguous blocks in split order
    assert labels.count("test") == test and labels.count("validation") == validation
    assert labels[count - test :] == ["test"] * test  # the last ones are test


@pytest.fixture(scope="module")
def ncbi():
    fake = FakeNcbi().start()
    yield fake
    fake.stop()


@st.composite
def nt_cohorts(draw):
    """A list of accessions, their NCBI statuses (some gone) and replacements of some genomes."""
    count = draw(st.integers(3, 40))
    validation = draw(st.integers(1, (count - 1) // 2))
    test = draw(st.integers(1, count - 1 - validation))
    accessions = [f"GCF_{100000000 + 7919 * i:09d}.1" for i in range(count)]
    statuses = draw(
        st.lists(
            st.sampled_from(["current", "current", "previous", "suppressed", "retired", "unknown"]),
            min_size=count,
            max_size=count,
        )
    )
    replaced = draw(st.sets(st.integers(0, count - 1), max_size=3))
    replacements = {accessions[i]: f"GCF_{900000000 + i:09d}.2" for i in sorted(replaced)}
    return accessions, statuses, validation, test, replacements


@PROPERTY
@given(nt_cohorts())
def test_removals_and_replacements_never_move_a_genome_to_another_split(ncbi, tmp_path_factory, cohort):
    accessions, statuses, validation, test, replacements = cohort
    ncbi.assemblies.clear()
    for accession, status in zip(accessions, statuses):
        if status != "unknown":
            ncbi.add(FakeAssembly(accession, f"ASM{accession[4:13]}v1", status=status))
    for new in replacements.values():
        ncbi.add(FakeAssembly(new, f"NEW{new[4:13]}v2"))
    list_path = tmp_path_factory.mktemp("list") / "nt_urls.txt"
    list_path.write_text("\n".join(accessions) + "\n")
    client = NcbiClient(
        ftp_url=ncbi.ftp_url, api_url=ncbi.api_url, retry=FAST_RETRY, progress=False, requests_per_s=10_000
    )

    result = build_nt_splits(
        str(list_path), client=client, validation_genomes=validation, test_genomes=test, replacements=replacements
    )

    listed_split = dict(zip(accessions, positional_splits(len(accessions), validation, test, "list")))
    line_of = {accession: line for line, accession in enumerate(accessions, 1)}
    gone = {a for a, s in zip(accessions, statuses) if s in ("suppressed", "retired", "unknown")}
    kept = result.genomes
    # R1: list order, and each genome keeps its list position's split.
    assert [g.line for g in kept] == sorted(g.line for g in kept)
    for genome in kept:
        original = genome.replaces or genome.accession
        assert genome.line == line_of[original]
        assert genome.split == listed_split[original]  # R2/R3: never another split
    # R3: each replacement sits where its old genome was, and the old one is recorded as removed.
    by_accession = {g.accession: g for g in kept}
    for old, new in replacements.items():
        assert by_accession[new].replaces == old and old not in by_accession
    removed = {row["accession"]: row for row in result.removed}
    for old, new in replacements.items():
        assert removed[old]["replaced_by"] == new and removed[old]["split"] == listed_split[old]
    # R4: every listed genome is kept, replaced, or removed as gone — and only those.
    assert {g.accession for g in kept if not g.replaces} == set(accessions) - gone - set(replacements)
    assert set(removed) == gone | set(replacements)
    assert len(by_accession) == len(kept)
    # R2 in numbers, and R5: the summary agrees with the table.
    for split in SPLITS:
        expected = sum(1 for a in accessions if listed_split[a] == split and (a not in gone or a in replacements))
        assert sum(1 for g in kept if g.split == split) == expected == result.summary["per_split"][split]


GENOME_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@settings(PROPERTY, max_examples=25)
@given(st.text(alphabet="abcXYZ019._- /$é", min_size=1, max_size=12))
def test_a_sheet_accepts_exactly_the_safe_genome_ids(tmp_path_factory, genome_id):
    fasta = tmp_path_factory.mktemp("fasta") / "g.fa"
    fasta.write_text(">c\nACGT\n")
    sheet = fasta.parent / "genomes.tsv"
    sheet.write_text(
        "genome\tsource\taccession\tlocation\tsplit\tannotation\n"
        f"ok_first\tfile\t\t{fasta}\ttrain\t\n"
        f"{genome_id}\tfile\t\t{fasta}\ttest\t\n"
    )
    stripped = genome_id.strip()
    if stripped and GENOME_ID.match(stripped) and stripped != "ok_first":
        rows = read_genome_sheet(str(sheet)).rows
        assert [e.genome for e in rows] == ["ok_first", stripped]
        assert [e.split for e in rows] == ["train", "test"]
    else:
        with pytest.raises(GenomeSheetError, match=rf"{re.escape(str(sheet))}: line 3: genome"):
            read_genome_sheet(str(sheet))
