"""The NCBI client against a real HTTP server on 127.0.0.1 with injected faults.

Every case ends in a verified file or one clear error with no output left behind.
"""

import gzip
import hashlib
import json
import time

import pytest

from dnafm_lib import cli
from dnafm_lib.data.http import HttpClient, HttpError, RetryPolicy
from dnafm_lib.data.ncbi import NcbiClient, NcbiError, download_assembly, fetch_url, ftp_directory_url
from tests.support.ncbi_server import FakeAssembly, FakeNcbi, synthetic_fasta

# Tiny backoff: the fault tests take milliseconds, not the production seconds.
FAST_RETRY = RetryPolicy(max_attempts=4, backoff_initial_s=0.01, backoff_max_s=0.05)
RAT_OLD, RAT_NEW = "GCF_000001895.5", "GCF_015227675.2"


@pytest.fixture
def ncbi():
    fake = FakeNcbi().start()
    fake.add(FakeAssembly(RAT_NEW, "mRatBN7.2", fasta=synthetic_fasta(seed=1)))
    fake.add(FakeAssembly(RAT_OLD, "Rnor_6.0", status="suppressed", current_accession=RAT_NEW))
    yield fake
    fake.stop()


@pytest.fixture
def client(ncbi):
    return NcbiClient(ftp_url=ncbi.ftp_url, api_url=ncbi.api_url, retry=FAST_RETRY, progress=False, requests_per_s=1000)


def leftovers(directory):
    return sorted(p.name for p in directory.rglob("*")) if directory.exists() else []


def gunzip(path):
    with gzip.open(path, "rb") as handle:
        return handle.read()


def test_ftp_download_gives_the_verified_fasta_and_a_download_record(ncbi, client, tmp_path):
    result = download_assembly(RAT_NEW, tmp_path / "rat", client=client)

    assert gunzip(result.fasta_path) == synthetic_fasta(seed=1)
    assert (
        result.url
        == f"{ncbi.ftp_url}/genomes/all/GCF/015/227/675/GCF_015227675.2_mRatBN7.2/GCF_015227675.2_mRatBN7.2_genomic.fna.gz"
    )
    assert result.md5 == hashlib.md5(ncbi.assemblies[RAT_NEW].fasta_gz).hexdigest()
    record = json.loads((tmp_path / "rat" / "download.json").read_text())
    assert record["accession"] == RAT_NEW
    assert record["assembly_name"] == "mRatBN7.2"
    assert record["assembly_status"] == "current"
    assert record["md5"] == result.md5 and record["url"] == result.url and record["retrieved_at"]
    assert leftovers(tmp_path / "rat") == ["download.json", "genomic.fna.gz"]


def test_connection_dropped_mid_file_is_resumed_with_range_and_verified(ncbi, client, tmp_path):
    ncbi.inject("_genomic.fna.gz", "drop", 4000)

    result = download_assembly(RAT_NEW, tmp_path / "rat", client=client)

    assert gunzip(result.fasta_path) == synthetic_fasta(seed=1)
    ranges = [hit.range_header for hit in ncbi.hits_for("_genomic.fna.gz")]
    assert ranges == [None, "bytes=4000-"]
    assert [hit.status for hit in ncbi.hits_for("_genomic.fna.gz")] == [200, 206]


def test_server_that_ignores_range_makes_the_download_restart_not_duplicate(ncbi, client, tmp_path):
    ncbi.inject("_genomic.fna.gz", "drop", 4000)
    ncbi.inject("_genomic.fna.gz", "ignore_range")

    result = download_assembly(RAT_NEW, tmp_path / "rat", client=client)

    assert gunzip(result.fasta_path) == synthetic_fasta(seed=1)
    assert result.md5 == hashlib.md5(ncbi.assemblies[RAT_NEW].fasta_gz).hexdigest()


def test_wrong_md5_is_one_clear_error_and_leaves_no_file(ncbi, client, tmp_path):
    ncbi.assemblies[RAT_NEW].md5_override = "0" * 32

    with pytest.raises(HttpError, match="md5 mismatch.*expected 0{32}"):
        download_assembly(RAT_NEW, tmp_path / "rat", client=client)

    assert leftovers(tmp_path / "rat") == []


def test_server_errors_are_retried_until_the_download_succeeds(ncbi, client, tmp_path):
    ncbi.inject("_genomic.fna.gz", "status", 503)
    ncbi.inject("_genomic.fna.gz", "status", 502)

    result = download_assembly(RAT_NEW, tmp_path / "rat", client=client)

    assert gunzip(result.fasta_path) == synthetic_fasta(seed=1)
    assert [hit.status for hit in ncbi.hits_for("_genomic.fna.gz")] == [503, 502, 200]


def test_persistent_server_errors_give_up_with_the_url_and_no_file(ncbi, client, tmp_path):
    for _ in range(FAST_RETRY.max_attempts):
        ncbi.inject("_genomic.fna.gz", "status", 503)

    with pytest.raises(HttpError, match=r"_genomic\.fna\.gz: gave up after 4 attempts: server error 503"):
        download_assembly(RAT_NEW, tmp_path / "rat", client=client)
    assert leftovers(tmp_path / "rat") == []


def test_backoff_doubles_between_retries():
    policy = RetryPolicy(backoff_initial_s=0.5, backoff_max_s=3.0)
    assert [policy.backoff_s(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_rate_limited_request_waits_as_long_as_retry_after_says(ncbi, client, tmp_path):
    ncbi.inject("dataset_report", "retry_after", 1)

    report = client.assembly_report(RAT_NEW)

    assert report.assembly_name == "mRatBN7.2"
    first, second = ncbi.hits_for("dataset_report")
    assert first.status == 429 and second.status == 200
    # The client's own backoff is 10 ms: a 1 s gap can only come from Retry-After.
    assert second.time_s - first.time_s >= 0.95


def test_retry_after_longer_than_the_client_accepts_is_an_error(ncbi, tmp_path):
    impatient = NcbiClient(
        ftp_url=ncbi.ftp_url,
        api_url=ncbi.api_url,
        progress=False,
        retry=RetryPolicy(max_attempts=3, backoff_initial_s=0.01, max_retry_after_s=5),
    )
    ncbi.inject("dataset_report", "retry_after", 3600)

    with pytest.raises(HttpError, match="Retry-After 3600s"):
        impatient.assembly_report(RAT_NEW)


def test_suppressed_accession_is_one_clear_error_naming_it_and_its_successor(ncbi, client, tmp_path):
    with pytest.raises(
        NcbiError, match=rf"{RAT_OLD}: assembly is suppressed at NCBI; its current version is {RAT_NEW}"
    ):
        download_assembly(RAT_OLD, tmp_path / "rat", client=client)
    assert leftovers(tmp_path / "rat") == []
    assert ncbi.hits_for("/ftp/") == []


def test_unknown_accession_is_one_clear_error_naming_it(ncbi, client, tmp_path):
    with pytest.raises(NcbiError, match="GCF_999999999.1: unknown to NCBI"):
        download_assembly("GCF_999999999.1", tmp_path / "x", client=client)
    assert leftovers(tmp_path / "x") == []


def test_malformed_accession_is_refused_before_any_request(ncbi, client, tmp_path):
    with pytest.raises(NcbiError, match="'GCF_12345' is not an assembly accession"):
        download_assembly("GCF_12345", tmp_path / "x", client=client)
    assert ncbi.hits == []


def test_html_error_page_with_status_200_is_not_taken_for_the_genome(ncbi, client, tmp_path):
    ncbi.inject("_genomic.fna.gz", "html")

    with pytest.raises(HttpError, match="status 200 with an HTML page where gzip was expected"):
        download_assembly(RAT_NEW, tmp_path / "rat", client=client)
    assert leftovers(tmp_path / "rat") == []


def test_html_error_page_instead_of_a_dataset_report_is_an_error(ncbi, client):
    ncbi.inject("dataset_report", "html")

    with pytest.raises(HttpError, match="dataset_report: server answered status 200 with an HTML page"):
        client.assembly_report(RAT_NEW)


def test_datasets_zip_source_gives_the_gzipped_fasta(ncbi, client, tmp_path):
    result = download_assembly(RAT_NEW, tmp_path / "rat", source="datasets", client=client)

    assert gunzip(result.fasta_path) == synthetic_fasta(seed=1)
    assert result.url.endswith(f"/genome/accession/{RAT_NEW}/download")
    assert json.loads((tmp_path / "rat" / "download.json").read_text())["source"] == "datasets"
    assert leftovers(tmp_path / "rat") == ["download.json", "genomic.fna.gz"]


@pytest.mark.parametrize("evil_name", ["../x", "/tmp/dnafm-evil-x", "ncbi_dataset/../../x"])
def test_zip_entry_pointing_outside_the_target_folder_is_refused(ncbi, client, tmp_path, evil_name):
    ncbi.assemblies[RAT_NEW].zip_extra_entries[evil_name] = b"not yours"
    target = tmp_path / "downloads" / "rat"

    with pytest.raises(NcbiError, match=f"archive entry '{evil_name}' points outside the target folder"):
        download_assembly(RAT_NEW, target, source="datasets", client=client)
    assert leftovers(tmp_path) == ["downloads", "rat"]  # the empty folders, nothing in them


def test_dataset_reports_are_batched_and_follow_next_page_tokens(ncbi, client):
    accessions = [f"GCF_{index:09d}.1" for index in range(1, 251)]
    for accession in accessions:
        ncbi.add(FakeAssembly(accession, f"ASM{accession[4:13]}v1"))
    ncbi.max_page_size = 40

    reports = client.dataset_reports(accessions + ["GCA_000000001.9"], batch_size=100)

    assert sorted(reports) == accessions
    requests = ncbi.hits_for("dataset_report")
    assert {hit.path.count(",") + 1 for hit in requests} == {100, 51}  # 3 batches (the last has the unknown)
    assert len(requests) == 3 + 3 + 2  # pages of 40: 100 → 3, 100 → 3, 50 → 2


def test_client_side_rate_limit_spaces_requests(ncbi):
    polite = NcbiClient(ftp_url=ncbi.ftp_url, api_url=ncbi.api_url, retry=FAST_RETRY, progress=False, requests_per_s=20)
    started_s = time.monotonic()  # the server logs hits on this same clock
    for _ in range(6):
        polite.assembly_report(RAT_NEW)

    times = [hit.time_s for hit in ncbi.hits_for("dataset_report")]
    assert len(times) == 6
    # The 6th request cannot start before 5 intervals of 50 ms. Measured from the client's start,
    # not the first hit: a slow first request (a new connection on a busy machine) shortens the
    # hits' span but never this one.
    assert times[-1] - started_s >= 5 * 0.05


def test_api_key_is_sent_to_the_datasets_api_only_and_never_in_a_url(ncbi, monkeypatch, tmp_path):
    monkeypatch.setenv("NCBI_API_KEY", "secret-key")
    keyed = NcbiClient(ftp_url=ncbi.ftp_url, api_url=ncbi.api_url, retry=FAST_RETRY, progress=False)

    download_assembly(RAT_NEW, tmp_path / "ftp", client=keyed)
    download_assembly(RAT_NEW, tmp_path / "zip", source="datasets", client=keyed)

    api_hits = ncbi.hits_for("/datasets/")
    assert len(api_hits) == 3  # two reports, one zip
    assert all(hit.headers.get("api-key") == "secret-key" for hit in api_hits)
    # A URL is what error messages and logs print; other hosts (FTP mirrors, list URLs) get nothing.
    assert all("secret-key" not in hit.target for hit in ncbi.hits)
    assert [hit for hit in ncbi.hits_for("/ftp/") if "api-key" in {k.lower() for k in hit.headers}] == []
    assert keyed.http.limiter.min_interval_s == pytest.approx(0.1)  # 10 requests/s with a key


def test_api_key_stays_out_of_the_error_when_ncbi_is_unreachable(monkeypatch):
    monkeypatch.setenv("NCBI_API_KEY", "secret-key")
    keyed = NcbiClient(api_url="http://127.0.0.1:9/datasets/v2", retry=RetryPolicy(max_attempts=1), progress=False)

    with pytest.raises(HttpError, match="connection failed") as caught:
        keyed.assembly_report(RAT_NEW)
    assert "secret-key" not in str(caught.value)


def test_ftp_directory_follows_the_accession_digits():
    assert ftp_directory_url("https://ftp.ncbi.nlm.nih.gov", "GCA_000001405.29", "GRCh38.p14") == (
        "https://ftp.ncbi.nlm.nih.gov/genomes/all/GCA/000/001/405/GCA_000001405.29_GRCh38.p14/"
    )


def test_fetch_url_downloads_a_plain_fasta_unchanged(ncbi, tmp_path):
    ncbi.static["genome.fa"] = synthetic_fasta(seed=3)
    ncbi.inject("genome.fa", "drop", 1000)

    result = fetch_url(
        ncbi.static_url("genome.fa"), tmp_path / "genome.fa", http=HttpClient(retry=FAST_RETRY, progress=False)
    )

    assert (tmp_path / "genome.fa").read_bytes() == synthetic_fasta(seed=3)
    assert result.md5 == hashlib.md5(synthetic_fasta(seed=3)).hexdigest()


def test_fetch_url_refuses_an_html_page(ncbi, tmp_path):
    ncbi.static["page.fa"] = b"<html><body>login required</body></html>"

    with pytest.raises(HttpError, match="HTML page where fasta was expected"):
        fetch_url(ncbi.static_url("page.fa"), tmp_path / "page.fa", http=HttpClient(retry=FAST_RETRY, progress=False))
    assert leftovers(tmp_path) == []


def test_fetch_url_names_the_url_on_404(ncbi, tmp_path):
    with pytest.raises(HttpError, match=r"/static/missing\.fa: HTTP 404"):
        fetch_url(ncbi.static_url("missing.fa"), tmp_path / "m.fa", http=HttpClient(retry=FAST_RETRY, progress=False))


def test_download_command_writes_one_folder_per_accession(ncbi, tmp_path, capsys):
    code = cli.main(
        [
            "download",
            RAT_NEW,
            "--out-dir",
            str(tmp_path / "dl"),
            "--ncbi-ftp-url",
            ncbi.ftp_url,
            "--ncbi-api-url",
            ncbi.api_url,
        ]
    )

    assert code == 0
    assert gunzip(tmp_path / "dl" / RAT_NEW / "genomic.fna.gz") == synthetic_fasta(seed=1)
    assert json.loads((tmp_path / "dl" / RAT_NEW / "download.json").read_text())["assembly_name"] == "mRatBN7.2"


def test_download_command_reports_a_suppressed_accession_in_one_line(ncbi, tmp_path, capsys):
    code = cli.main(
        [
            "download",
            RAT_OLD,
            "--out-dir",
            str(tmp_path / "dl"),
            "--ncbi-ftp-url",
            ncbi.ftp_url,
            "--ncbi-api-url",
            ncbi.api_url,
        ]
    )

    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err == f"dnafm download: error: {RAT_OLD}: assembly is suppressed at NCBI; its current version is {RAT_NEW}"


@pytest.mark.parametrize("command", ["download", "splits"])
def test_zero_attempts_is_refused_before_any_request(ncbi, tmp_path, capsys, command):
    (tmp_path / "list.txt").write_text(f"{RAT_NEW}\n")
    where = (
        [RAT_NEW, "--out-dir", str(tmp_path / "dl")]
        if command == "download"
        else ["--list", str(tmp_path / "list.txt"), "--out-dir", str(tmp_path / "dl")]
    )

    code = cli.main(
        [command, *where, "--attempts", "0", "--ncbi-ftp-url", ncbi.ftp_url, "--ncbi-api-url", ncbi.api_url]
    )

    assert code == 1
    assert capsys.readouterr().err.strip() == (
        f"dnafm {command}: error: --attempts must be at least 1 and --backoff-s at least 0, got 0 and 1.0"
    )
    assert ncbi.hits == [] and not (tmp_path / "dl").exists()


def test_connection_dropped_inside_a_dataset_report_is_retried(ncbi, client):
    ncbi.inject("dataset_report", "drop", 10)

    assert client.assembly_report(RAT_NEW).assembly_status == "current"
    assert len(ncbi.hits_for("dataset_report")) == 2


def test_download_command_gzips_a_plain_fasta_from_a_url_row_of_the_splits_table(ncbi, tmp_path):
    ncbi.static["plain.fa"] = synthetic_fasta(seed=9)
    table = tmp_path / "genomes.tsv"
    table.write_text(
        "genome\taccession\tsource\tlocation\tsplit\tannotation\tassembly_name\tstatus\n"
        f"web\t\turl\t{ncbi.static_url('plain.fa')}\ttrain\t\t\t\n"
    )

    code = cli.main(["download", "--genomes-tsv", str(table), "--genome", "web", "--out-dir", str(tmp_path / "web")])

    assert code == 0
    assert gunzip(tmp_path / "web" / "genomic.fna.gz") == synthetic_fasta(seed=9)
    record = json.loads((tmp_path / "web" / "download.json").read_text())
    assert record["genome"] == "web" and record["source"] == "url"
    assert record["md5"] == hashlib.md5(synthetic_fasta(seed=9)).hexdigest()


def test_connection_broken_within_the_first_bytes_restarts_the_download_cleanly(ncbi, client, tmp_path):
    ncbi.inject("_genomic.fna.gz", "drop", 1)

    result = download_assembly(RAT_NEW, tmp_path / "rat", client=client)

    assert gunzip(result.fasta_path) == synthetic_fasta(seed=1)
    assert len(ncbi.hits_for("_genomic.fna.gz")) == 2


def test_empty_answer_where_a_gzip_was_expected_is_an_error(ncbi, tmp_path):
    ncbi.static["empty.fna.gz"] = b""
    http = HttpClient(retry=FAST_RETRY, progress=False)

    with pytest.raises(
        HttpError, match=r"empty\.fna\.gz: server answered status 200 with data starting b'' where gzip"
    ):
        http.download(ncbi.static_url("empty.fna.gz"), tmp_path / "empty.fna.gz", expect="gzip")
    assert leftovers(tmp_path) == []


def test_datasets_zip_whose_checksum_disagrees_is_an_error_and_leaves_no_file(ncbi, client, tmp_path):
    ncbi.assemblies[RAT_NEW].zip_md5_override = "f" * 32

    with pytest.raises(NcbiError, match=r"_genomic\.fna has md5 [0-9a-f]{32}, md5sum\.txt says f{32}"):
        download_assembly(RAT_NEW, tmp_path / "rat", source="datasets", client=client)
    assert leftovers(tmp_path / "rat") == []


def test_progress_bar_shows_on_a_terminal_download_and_survives_a_resume(ncbi, tmp_path, monkeypatch, capsys):
    import dnafm_lib.data.http as http_module

    monkeypatch.setattr(http_module, "PROGRESS_MIN_BYTES", 0)
    ncbi.static["genome.fa"] = synthetic_fasta(seed=4)
    ncbi.inject("genome.fa", "drop", 2000)

    HttpClient(retry=FAST_RETRY, progress=True).download(
        ncbi.static_url("genome.fa"), tmp_path / "g.fa", expect="fasta"
    )

    assert (tmp_path / "g.fa").read_bytes() == synthetic_fasta(seed=4)
    assert "g.fa" in capsys.readouterr().err  # tqdm's bar, labelled with the file name


def test_download_of_a_splits_table_row_reuses_its_status_instead_of_asking_again(ncbi, tmp_path):
    table = tmp_path / "genomes.tsv"
    table.write_text(
        "genome\taccession\tsource\tlocation\tsplit\tannotation\tassembly_name\tstatus\n"
        f"{RAT_NEW}\t{RAT_NEW}\tncbi\t\ttrain\t\tmRatBN7.2\tcurrent\n"
    )

    code = cli.main(
        [
            "download",
            "--genomes-tsv",
            str(table),
            "--genome",
            RAT_NEW,
            "--out-dir",
            str(tmp_path / "rat"),
            "--ncbi-ftp-url",
            ncbi.ftp_url,
            "--ncbi-api-url",
            ncbi.api_url,
        ]
    )

    assert code == 0
    assert gunzip(tmp_path / "rat" / "genomic.fna.gz") == synthetic_fasta(seed=1)
    assert ncbi.hits_for("dataset_report") == []
    assert json.loads((tmp_path / "rat" / "download.json").read_text())["assembly_status"] == "current"


@pytest.mark.parametrize("source", ["ftp", "datasets"])
def test_a_real_plasmid_genome_round_trips_through_both_sources(ncbi, client, tmp_path, source):
    from pathlib import Path

    plasmid = gunzip(Path(__file__).resolve().parents[2] / "resources/demo/yersinia_plasmid_pPCP1_NC_005816.1.fna.gz")
    ncbi.add(FakeAssembly("GCF_000007885.1", "ASM788v1", fasta=plasmid))

    result = download_assembly("GCF_000007885.1", tmp_path / "yersinia", source=source, client=client)

    assert gunzip(result.fasta_path) == plasmid
    assert plasmid.startswith(b">NC_005816.1")
