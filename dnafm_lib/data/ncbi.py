"""NCBI genome assemblies: status from Datasets v2, FASTA from the genomes FTP tree or a Datasets zip.

An accession (``GCF_000001895.5``) resolves to its FTP directory
``genomes/all/GCF/000/001/895/GCF_000001895.5_Rnor_6.0/``; the assembly name comes from the
Datasets v2 ``dataset_report`` (or from an NT-list URL). The genomic FASTA is verified
against that directory's ``md5checksums.txt``. The Datasets v2 zip
(``/genome/accession/{acc}/download``) is the second source; its ``.fna`` entries are checked
(CRC, ``md5sum.txt`` when present) and gzipped, and no entry may point outside the target.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import zipfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Iterable

from dnafm_lib.core.atomic import atomic_open, atomic_path
from dnafm_lib.core.errors import DnafmError
from dnafm_lib.data.http import HttpClient, HttpError, RetryPolicy, file_md5

DEFAULT_FTP_URL = "https://ftp.ncbi.nlm.nih.gov"
DEFAULT_API_URL = "https://api.ncbi.nlm.nih.gov/datasets/v2"
# NCBI's published limits for its APIs: 3 requests/s, 10 with an API key.
REQUESTS_PER_S = 3.0
REQUESTS_PER_S_WITH_KEY = 10.0
# Accessions per dataset_report request (keeps the URL short; one page each).
REPORT_BATCH = 100
ACCESSION_RE = re.compile(r"^(GC[AF])_(\d{3})(\d{3})(\d{3})\.(\d+)$")
# Statuses under which the listed assembly's files are still served.
AVAILABLE_STATUSES = ("current", "previous")
SOURCES = ("ftp", "datasets")
# What download_assembly (and `dnafm download` for url rows) writes in its out_dir.
DOWNLOAD_FASTA_NAME, DOWNLOAD_RECORD_NAME = "genomic.fna.gz", "download.json"


class NcbiError(DnafmError):
    """An accession NCBI does not know or no longer serves, or a download that failed verification."""


@dataclass(frozen=True)
class AssemblyReport:
    accession: str
    current_accession: str
    assembly_name: str
    assembly_status: str  # current, previous, suppressed, retired


@dataclass(frozen=True)
class DownloadResult:
    accession: str
    assembly_name: str
    assembly_status: str
    fasta_path: str
    url: str
    md5: str
    retrieved_at: str
    source: str

    def to_json(self) -> dict:
        return asdict(self)


def check_accession(accession: str) -> str:
    """``accession`` if it is a versioned assembly accession (GCF_/GCA_ + 9 digits + .version)."""
    if not ACCESSION_RE.match(accession):
        raise NcbiError(
            f"{accession!r} is not an assembly accession (expected GCF_ or GCA_, 9 digits and a "
            "version, e.g. GCF_015227675.2)"
        )
    return accession


def ftp_dir_name(accession: str, assembly_name: str) -> str:
    """``{acc}_{asm}``: NCBI replaces characters other than letters, digits, ``.``, ``_``, ``-``."""
    return f"{accession}_{re.sub(r'[^A-Za-z0-9._-]', '_', assembly_name)}"


def ftp_directory_url(ftp_url: str, accession: str, assembly_name: str) -> str:
    prefix, d1, d2, d3, _ = ACCESSION_RE.match(check_accession(accession)).groups()
    return f"{ftp_url.rstrip('/')}/genomes/all/{prefix}/{d1}/{d2}/{d3}/{ftp_dir_name(accession, assembly_name)}/"


def parse_md5_checksums(text: str, source: str) -> dict[str, str]:
    """``md5checksums.txt`` → {file name: md5}; lines are ``md5  ./name``."""
    table = {}
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-fA-F]{32}", parts[0]):
            raise NcbiError(f"{source}: line {line_no} is not 'md5  ./file': {line[:80]!r}")
        table[parts[1].strip().removeprefix("./")] = parts[0].lower()
    return table


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class NcbiClient:
    """Datasets v2 reports and downloads, FTP downloads; one rate limit for all of them."""

    def __init__(
        self,
        *,
        ftp_url: str = DEFAULT_FTP_URL,
        api_url: str = DEFAULT_API_URL,
        api_key: str | None = None,
        retry: RetryPolicy = RetryPolicy(),
        progress: bool | None = None,
        requests_per_s: float | None = None,
    ):
        self.ftp_url = ftp_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("NCBI_API_KEY") or None
        if requests_per_s is None:
            requests_per_s = REQUESTS_PER_S_WITH_KEY if self.api_key else REQUESTS_PER_S
        # The key goes to the Datasets API only, and as a header: a query parameter would show in
        # URLs that error messages and logs print; the FTP tree and list URLs never see it.
        self.api_headers = {"api-key": self.api_key} if self.api_key else {}
        self.http = HttpClient(requests_per_s=requests_per_s, retry=retry, progress=progress)

    # -- status ------------------------------------------------------------------------
    def dataset_reports(
        self, accessions: Iterable[str], *, batch_size: int = REPORT_BATCH
    ) -> dict[str, AssemblyReport]:
        """Reports for the accessions NCBI knows, keyed by accession; unknown ones are absent."""
        wanted = list(dict.fromkeys(check_accession(a) for a in accessions))
        found: dict[str, AssemblyReport] = {}
        for first in range(0, len(wanted), batch_size):
            batch = wanted[first : first + batch_size]
            url = f"{self.api_url}/genome/accession/{','.join(batch)}/dataset_report"
            page_token = None
            while True:
                params = {"filters.assembly_version": "all_assemblies", "page_size": len(batch)}
                if page_token:
                    params["page_token"] = page_token
                payload = self.http.get_json(url, params=params, headers=self.api_headers)
                for report in payload.get("reports", []) if isinstance(payload, dict) else []:
                    parsed = _parse_report(url, report)
                    if parsed.accession in batch:
                        found[parsed.accession] = parsed
                page_token = payload.get("next_page_token") if isinstance(payload, dict) else None
                if not page_token:
                    break
        return found

    def assembly_report(self, accession: str) -> AssemblyReport:
        """The report for one accession; unknown to NCBI is an error naming it."""
        report = self.dataset_reports([accession]).get(accession)
        if report is None:
            raise NcbiError(f"{accession}: unknown to NCBI (no Datasets report at {self.api_url})")
        return report

    def available_report(self, accession: str) -> AssemblyReport:
        """The report, if NCBI still serves the assembly; suppressed/retired/unknown is an error."""
        report = self.assembly_report(accession)
        if report.assembly_status not in AVAILABLE_STATUSES:
            newer = (
                f"; its current version is {report.current_accession}"
                if report.current_accession and report.current_accession != accession
                else ""
            )
            raise NcbiError(f"{accession}: assembly is {report.assembly_status} at NCBI{newer}")
        return report

    # -- downloads -----------------------------------------------------------------------
    def download_ftp(self, report: AssemblyReport, fasta_out: Path) -> tuple[str, str]:
        """The genomic FASTA from the FTP tree, verified with md5checksums.txt → (url, md5)."""
        directory = ftp_directory_url(self.ftp_url, report.accession, report.assembly_name)
        file_name = f"{ftp_dir_name(report.accession, report.assembly_name)}_genomic.fna.gz"
        checksums_url = directory + "md5checksums.txt"
        checksums = parse_md5_checksums(self.http.get_text(checksums_url), checksums_url)
        if file_name not in checksums:
            raise NcbiError(f"{checksums_url}: no md5 listed for {file_name}")
        info = self.http.download(directory + file_name, fasta_out, expect="gzip", md5=checksums[file_name])
        return info.url, info.md5

    def download_datasets(self, report: AssemblyReport, fasta_out: Path) -> tuple[str, str]:
        """The genomic FASTA from a Datasets v2 zip, checked and gzipped → (url, md5 of the .fna.gz)."""
        url = f"{self.api_url}/genome/accession/{report.accession}/download"
        params = {"include_annotation_type": "GENOME_FASTA"}
        # The zip is a hidden scratch file beside the output, removed whatever happens.
        zip_tmp = fasta_out.parent / f".tmp-{fasta_out.name}.zip"
        try:
            self.http.download(url, zip_tmp, params=params, headers=self.api_headers, expect="zip")
            with atomic_path(fasta_out) as fasta_tmp:
                extract_genomic_fasta(zip_tmp, report.accession, fasta_tmp, source=url)
        finally:
            zip_tmp.unlink(missing_ok=True)
        return url, file_md5(fasta_out)


def _parse_report(url: str, report: dict) -> AssemblyReport:
    try:
        info = report.get("assembly_info", {})
        return AssemblyReport(
            accession=report["accession"],
            current_accession=report.get("current_accession") or report["accession"],
            assembly_name=info["assembly_name"],
            assembly_status=str(info.get("assembly_status", "current")).lower(),
        )
    except (KeyError, AttributeError, TypeError) as exc:
        raise NcbiError(f"{url}: dataset report lacks field {exc} ({str(report)[:120]})") from None


def safe_member_name(name: str, source: str) -> PurePosixPath:
    """A zip entry name that stays inside the extraction folder, or a clear error."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name):
        raise NcbiError(f"{source}: archive entry {name!r} points outside the target folder; refusing it")
    return path


def extract_genomic_fasta(zip_path: Path, accession: str, fasta_out: Path, *, source: str) -> None:
    """Write the ``ncbi_dataset/data/{acc}/*.fna`` entries of a Datasets zip, gzipped, to ``fasta_out``."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        raise NcbiError(f"{source}: not a readable zip archive ({exc})") from None
    with archive:
        names = [safe_member_name(info.filename, source) for info in archive.infolist()]
        # The genome's sequence files only (a package may also hold cds_from_genomic.fna, rna.fna).
        wanted = sorted(
            str(n)
            for n in names
            if n.parts[:3] == ("ncbi_dataset", "data", accession)
            and n.suffix == ".fna"
            and not n.name.startswith(("cds_from_genomic", "rna"))
        )
        if not wanted:
            raise NcbiError(f"{source}: no ncbi_dataset/data/{accession}/*.fna entry in the archive")
        expected_md5 = _zip_md5_table(archive, source)
        # gzip level 1: the genomes stage recompresses as bgzip, so speed matters more than size here.
        with gzip.open(fasta_out, "wb", compresslevel=1) as out:
            for name in wanted:
                hasher = hashlib.md5()
                try:
                    with archive.open(name) as member:
                        for block in iter(lambda: member.read(1 << 20), b""):
                            hasher.update(block)
                            out.write(block)
                except (zipfile.BadZipFile, OSError) as exc:  # CRC mismatch, truncated entry
                    raise NcbiError(f"{source}: entry {name} is corrupt ({exc})") from None
                if name in expected_md5 and expected_md5[name] != hasher.hexdigest():
                    raise NcbiError(
                        f"{source}: entry {name} has md5 {hasher.hexdigest()}, md5sum.txt says {expected_md5[name]}"
                    )


def _zip_md5_table(archive: zipfile.ZipFile, source: str) -> dict[str, str]:
    if "md5sum.txt" not in archive.namelist():
        return {}
    return parse_md5_checksums(archive.read("md5sum.txt").decode("utf-8", "replace"), f"{source}!md5sum.txt")


def write_download_record(result: DownloadResult, path: str | os.PathLike, **extra) -> None:
    with atomic_open(path) as handle:
        json.dump({**result.to_json(), **extra}, handle, indent=2)
        handle.write("\n")


def download_assembly(
    accession: str,
    out_dir: str | os.PathLike,
    *,
    source: str = "ftp",
    ftp_url: str = DEFAULT_FTP_URL,
    api_url: str = DEFAULT_API_URL,
    api_key: str | None = None,
    client: NcbiClient | None = None,
    report: AssemblyReport | None = None,
) -> DownloadResult:
    """Download one assembly's genomic FASTA to ``{out_dir}/genomic.fna.gz`` and record it.

    ``report``: the assembly's name and status when already known (from the splits table),
    which saves one Datasets request per genome; otherwise NCBI is asked. Writes
    ``{out_dir}/download.json`` (the DownloadResult fields) last, so its presence means the
    FASTA beside it is whole and verified.
    """
    if source not in SOURCES:
        raise NcbiError(f"source {source!r}: expected one of {', '.join(SOURCES)}")
    check_accession(accession)
    client = client or NcbiClient(ftp_url=ftp_url, api_url=api_url, api_key=api_key)
    if report is None or report.accession != accession or report.assembly_status not in AVAILABLE_STATUSES:
        report = client.available_report(accession)
    out_dir = Path(out_dir)
    fasta_out = out_dir / DOWNLOAD_FASTA_NAME
    if source == "ftp":
        url, md5 = client.download_ftp(report, fasta_out)
    else:
        url, md5 = client.download_datasets(report, fasta_out)
    result = DownloadResult(
        accession=accession,
        assembly_name=report.assembly_name,
        assembly_status=report.assembly_status,
        fasta_path=str(fasta_out),
        url=url,
        md5=md5,
        retrieved_at=_now(),
        source=source,
    )
    write_download_record(result, out_dir / DOWNLOAD_RECORD_NAME)
    return result


def fetch_url(url: str, out_path: str | os.PathLike, *, http: HttpClient | None = None) -> DownloadResult:
    """Download a FASTA (plain or gzip) from a sheet's ``url`` row to ``out_path``, unchanged."""
    if not url.startswith(("https://", "http://")):
        raise DnafmError(f"{url}: only http(s) URLs can be fetched")
    http = http or HttpClient()
    info = http.download(url, out_path, expect="fasta")
    return DownloadResult(
        accession="",
        assembly_name="",
        assembly_status="",
        fasta_path=str(out_path),
        url=url,
        md5=info.md5,
        retrieved_at=_now(),
        source="url",
    )


def gzip_if_plain(path: Path) -> None:
    """Compress ``path`` in place (same name) when it holds plain text rather than gzip."""
    with open(path, "rb") as handle:
        if handle.read(2) == b"\x1f\x8b":
            return
    with atomic_path(path) as tmp:
        with open(path, "rb") as src, gzip.open(tmp, "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


__all__ = [
    "AssemblyReport",
    "DownloadResult",
    "HttpError",
    "NcbiClient",
    "NcbiError",
    "download_assembly",
    "fetch_url",
    "ftp_directory_url",
]
