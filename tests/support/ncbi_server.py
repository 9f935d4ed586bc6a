"""A real HTTP server on 127.0.0.1 that looks like NCBI to dnafm_lib.data.ncbi, with injectable faults.

Serves, from in-memory fixture assemblies:
  /ftp/genomes/all/GCF/123/456/789/{acc}_{asm}/md5checksums.txt and {acc}_{asm}_genomic.fna.gz
  /datasets/v2/genome/accession/{acc,acc,…}/dataset_report   (paged: page_size, page_token)
  /datasets/v2/genome/accession/{acc}/download                (a Datasets-shaped zip)
  /static/{name}                                              (any bytes: NT lists, url-source FASTA)
Faults are queued per path fragment and each is used once, in order (see ``Fault``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import re
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def synthetic_fasta(seed: int = 7, contig_bp: tuple[int, ...] = (30_000, 12_345)) -> bytes:
    """A small multi-record FASTA (seeded, 60-column lines) standing in for a genome."""
    rng = random.Random(seed)
    out = []
    for index, length in enumerate(contig_bp, 1):
        seq = "".join(rng.choice("ACGTacgtN" if index % 2 else "ACGT") for _ in range(length))
        out.append(f">contig{index} synthetic test contig {index}\n")
        out.extend(seq[i : i + 60] + "\n" for i in range(0, length, 60))
    return "".join(out).encode()


@dataclass
class FakeAssembly:
    accession: str
    assembly_name: str
    status: str = "current"
    current_accession: str | None = None
    fasta: bytes | None = None  # plain FASTA; None: report only, no files
    md5_override: str | None = None  # what md5checksums.txt claims (a wrong md5 fault)
    zip_extra_entries: dict[str, bytes] = field(default_factory=dict)
    zip_md5_override: str | None = None  # what the zip's md5sum.txt claims for the .fna

    @property
    def dir_name(self) -> str:
        return f"{self.accession}_{re.sub(r'[^A-Za-z0-9._-]', '_', self.assembly_name)}"

    @property
    def fasta_gz(self) -> bytes:
        # mtime=0: the same bytes on every call, so md5 and Range resumes line up.
        return gzip.compress(self.fasta, mtime=0)


@dataclass
class Fault:
    """One injected misbehaviour for the next request whose path contains ``path_part``.

    kind: "drop" (send ``value`` bytes of the body, then close the connection),
    "status" (answer with status ``value``), "retry_after" (429 with Retry-After: ``value``),
    "html" (status 200 with an HTML error page), "ignore_range" (answer 200 with the whole body).
    """

    path_part: str
    kind: str
    value: int | str | None = None


@dataclass
class Hit:
    time_s: float
    path: str
    target: str  # path with the query string
    status: int
    range_header: str | None
    headers: dict[str, str]


class FakeNcbi:
    def __init__(self):
        self.assemblies: dict[str, FakeAssembly] = {}
        self.static: dict[str, bytes] = {}
        self.faults: list[Fault] = []
        self.hits: list[Hit] = []
        self.default_page_size = 20
        self.max_page_size = 1000  # like NCBI: a bigger page_size is capped, the rest is paged
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- setup -------------------------------------------------------------------------
    def add(self, assembly: FakeAssembly) -> FakeAssembly:
        self.assemblies[assembly.accession] = assembly
        return assembly

    def inject(self, path_part: str, kind: str, value=None) -> None:
        with self._lock:
            self.faults.append(Fault(path_part, kind, value))

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self.faults):
                if fault.path_part in path:
                    return self.faults.pop(index)
        return None

    # -- URLs --------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def ftp_url(self) -> str:
        return self.base_url + "/ftp"

    @property
    def api_url(self) -> str:
        return self.base_url + "/datasets/v2"

    def static_url(self, name: str) -> str:
        return f"{self.base_url}/static/{name}"

    def ftp_dir_path(self, assembly: FakeAssembly) -> str:
        digits = assembly.accession[4:13]
        prefix = assembly.accession[:3]
        return f"/ftp/genomes/all/{prefix}/{digits[:3]}/{digits[3:6]}/{digits[6:9]}/{assembly.dir_name}/"

    def hits_for(self, path_part: str) -> list[Hit]:
        return [h for h in self.hits if path_part in h.path]

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> "FakeNcbi":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- responses -----------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parsed = urlparse(request.path)
        path, query = parsed.path, parse_qs(parsed.query)
        range_header = request.headers.get("Range")
        fault = self._take_fault(path)

        def record(status: int) -> None:
            with self._lock:
                self.hits.append(Hit(time.monotonic(), path, request.path, status, range_header, dict(request.headers)))

        if fault is not None and fault.kind == "status":
            record(int(fault.value))
            return self._send(request, int(fault.value), b"<html><body>Service Unavailable</body></html>", "text/html")
        if fault is not None and fault.kind == "retry_after":
            record(429)
            return self._send(
                request, 429, b'{"error": "rate limit"}', "application/json", {"Retry-After": str(fault.value)}
            )
        if fault is not None and fault.kind == "html":
            record(200)
            page = b"<!DOCTYPE html>\n<html><head><title>Error</title></head><body>Try later</body></html>\n"
            return self._send(request, 200, page, "text/html; charset=utf-8")

        status, body, content_type = self._route(path, query)
        if status != 200:
            record(status)
            return self._send(request, status, body, content_type)
        start = 0
        if range_header and not (fault is not None and fault.kind == "ignore_range"):
            match = re.fullmatch(r"bytes=(\d+)-", range_header)
            start = int(match.group(1)) if match else 0
            if start >= len(body):
                record(416)
                return self._send(request, 416, b"", "text/plain", {"Content-Range": f"bytes */{len(body)}"})
        headers = {}
        status = 200
        if start:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        record(status)
        payload = body[start:]
        if fault is not None and fault.kind == "drop":
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(payload)))
            for key, value in headers.items():
                request.send_header(key, value)
            request.end_headers()
            request.wfile.write(payload[: int(fault.value)])
            request.wfile.flush()
            request.close_connection = True
            return
        self._send(request, status, payload, content_type, headers)

    @staticmethod
    def _send(request, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(body)

    def _route(self, path: str, query: dict) -> tuple[int, bytes, str]:
        not_found = (404, b"<html><body>404 Not Found</body></html>", "text/html")
        if path.startswith("/static/"):
            body = self.static.get(path.removeprefix("/static/"))
            return (200, body, "application/octet-stream") if body is not None else not_found
        match = re.fullmatch(r"/datasets/v2/genome/accession/([^/]+)/dataset_report", path)
        if match:
            return self._dataset_report(match.group(1).split(","), query)
        match = re.fullmatch(r"/datasets/v2/genome/accession/([^/]+)/download", path)
        if match:
            assembly = self.assemblies.get(match.group(1))
            if assembly is None or assembly.fasta is None:
                return 404, b'{"error": "not found"}', "application/json"
            return 200, self._datasets_zip(assembly), "application/zip"
        if path.startswith("/ftp/"):
            for assembly in self.assemblies.values():
                directory = self.ftp_dir_path(assembly)
                if not path.startswith(directory) or assembly.fasta is None:
                    continue
                name = path.removeprefix(directory)
                fasta_name = f"{assembly.dir_name}_genomic.fna.gz"
                if name == fasta_name:
                    return 200, assembly.fasta_gz, "application/octet-stream"
                if name == "md5checksums.txt":
                    md5 = assembly.md5_override or hashlib.md5(assembly.fasta_gz).hexdigest()
                    lines = [
                        f"{hashlib.md5(b'report').hexdigest()}  ./{assembly.dir_name}_assembly_report.txt",
                        f"{md5}  ./{fasta_name}",
                    ]
                    return 200, ("\n".join(lines) + "\n").encode(), "text/plain"
        return not_found

    def _dataset_report(self, accessions: list[str], query: dict) -> tuple[int, bytes, str]:
        reports = []
        for accession in accessions:
            assembly = self.assemblies.get(accession)
            if assembly is None:
                continue
            reports.append(
                {
                    "accession": assembly.accession,
                    "current_accession": assembly.current_accession or assembly.accession,
                    "source_database": "SOURCE_DATABASE_REFSEQ",
                    "assembly_info": {
                        "assembly_name": assembly.assembly_name,
                        "assembly_status": assembly.status,
                        "assembly_level": "Complete Genome",
                    },
                }
            )
        page_size = min(self.max_page_size, int(query.get("page_size", [self.default_page_size])[0]))
        offset = int(query.get("page_token", ["0"])[0])
        page = reports[offset : offset + page_size]
        payload: dict = {}
        if reports:  # NCBI answers {} when it knows none of the accessions
            payload = {"reports": page, "total_count": len(reports)}
            if offset + page_size < len(reports):
                payload["next_page_token"] = str(offset + page_size)
        return 200, json.dumps(payload).encode(), "application/json"

    @staticmethod
    def _datasets_zip(assembly: FakeAssembly) -> bytes:
        buffer = io.BytesIO()
        fna_name = f"ncbi_dataset/data/{assembly.accession}/{assembly.dir_name}_genomic.fna"
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("README.md", "# NCBI Datasets Genome Package\n")
            archive.writestr(
                "ncbi_dataset/data/assembly_data_report.jsonl", json.dumps({"accession": assembly.accession}) + "\n"
            )
            archive.writestr(fna_name, assembly.fasta)
            archive.writestr("ncbi_dataset/data/dataset_catalog.json", "{}")
            for name, data in assembly.zip_extra_entries.items():
                archive.writestr(zipfile.ZipInfo(name), data)
            md5 = assembly.zip_md5_override or hashlib.md5(assembly.fasta).hexdigest()
            archive.writestr("md5sum.txt", f"{md5}  {fna_name}\n")
        return buffer.getvalue()
