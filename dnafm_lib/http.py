"""Resumable, verified HTTP downloads and polite JSON requests (NCBI and plain URLs).

One ``HttpClient`` per process: it spaces requests to a client-side rate limit, retries
5xx answers and broken connections with exponential backoff, waits as long as a 429's
``Retry-After`` says, resumes a broken download with an HTTP ``Range`` request, refuses
an HTML error page served with status 200 where data was expected, and writes every
file under a temporary name that only becomes the output once whole and verified.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import requests
import urllib3

from .atomic import atomic_path
from .errors import DnafmError

USER_AGENT = "dnafm (+https://github.com/dnafm; genome downloads for DNA FM pretraining)"
CHUNK_BYTES = 1 << 20
# Progress bars only for downloads at least this large (small files finish before one renders).
PROGRESS_MIN_BYTES = 8 << 20
# Bytes looked at to tell the expected payload from an error page.
HEAD_CHECK_BYTES = 512
# The first bytes of each payload kind; an HTML page starts with "<" instead.
MAGIC = {"gzip": (b"\x1f\x8b",), "zip": (b"PK\x03\x04", b"PK\x05\x06"), "json": (b"{", b"[")}


class HttpError(DnafmError):
    """A request that failed for good (after retries), naming the URL and what came back."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts per request and the exponential backoff between them."""

    max_attempts: int = 6
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    # A server asking for a longer pause than this is treated as a failure, not waited out.
    max_retry_after_s: float = 600.0

    def backoff_s(self, attempt: int) -> float:
        """Pause before retry number ``attempt`` (1-based): initial, 2×, 4×, … capped."""
        return min(self.backoff_max_s, self.backoff_initial_s * (2 ** (attempt - 1)))


@dataclass(frozen=True)
class DownloadInfo:
    path: Path
    md5: str
    size_bytes: int
    url: str


class RateLimiter:
    """At most ``requests_per_s`` request starts per second, shared by every thread."""

    def __init__(self, requests_per_s: float | None):
        self.min_interval_s = 1.0 / requests_per_s if requests_per_s else 0.0
        self._lock = threading.Lock()
        self._next_start = 0.0

    def wait(self) -> None:
        if not self.min_interval_s:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self.min_interval_s
        if start > now:
            time.sleep(start - now)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def looks_like_html(head: bytes) -> bool:
    start = head.lstrip()[:15].lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml"))


def _check_payload_start(url: str, head: bytes, expect: str | None, content_type: str) -> None:
    """Refuse an error page served with status 200 where ``expect`` data was due."""
    if expect is None:
        return
    is_html = looks_like_html(head) or content_type.startswith("text/html")
    if expect == "fasta":
        ok = head.startswith(MAGIC["gzip"]) or head.lstrip().startswith(b">")
    elif expect == "text":
        ok = not is_html
    else:
        ok = head.lstrip().startswith(MAGIC[expect])
    if ok:
        return
    what = "an HTML page" if is_html else f"data starting {head[:16]!r}"
    raise HttpError(f"{url}: server answered status 200 with {what} where {expect} was expected")


class HttpClient:
    """requests.Session with rate limiting, retries, Retry-After and resumable downloads."""

    def __init__(
        self,
        *,
        requests_per_s: float | None = None,
        retry: RetryPolicy = RetryPolicy(),
        timeout_s: float = 60.0,
        progress: bool | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.limiter = RateLimiter(requests_per_s)
        self.retry = retry
        self.timeout_s = timeout_s
        # None: a bar only when stderr is a terminal (not in Snakemake logs).
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._sleep = sleep

    # -- one request with retries -------------------------------------------------------
    def _request(self, url: str, *, params=None, headers=None, stream=False) -> requests.Response:
        """GET ``url`` until a non-retryable answer: 2xx/3xx/4xx returned, 5xx/429/errors retried."""
        last_problem = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            self.limiter.wait()
            try:
                response = self.session.get(
                    url, params=params, headers=headers, stream=stream, timeout=self.timeout_s
                )
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                # ChunkedEncodingError: the body of a small (non-streamed) answer broke off.
                last_problem = f"connection failed ({type(exc).__name__}: {exc})"
                self._pause(attempt, self.retry.backoff_s(attempt))
                continue
            except requests.RequestException as exc:  # a malformed URL and the like: not retryable
                raise HttpError(f"{url}: {type(exc).__name__}: {exc}") from None
            if response.status_code == 429:
                wait_s = parse_retry_after(response.headers.get("Retry-After"))
                response.close()
                if wait_s is not None and wait_s > self.retry.max_retry_after_s:
                    raise HttpError(
                        f"{url}: rate limited (429) with Retry-After {wait_s:.0f}s, "
                        f"more than the {self.retry.max_retry_after_s:.0f}s this client waits"
                    )
                last_problem = "rate limited (429)"
                self._pause(attempt, wait_s if wait_s is not None else self.retry.backoff_s(attempt))
                continue
            if response.status_code >= 500:
                last_problem = f"server error {response.status_code} {response.reason}"
                response.close()
                self._pause(attempt, self.retry.backoff_s(attempt))
                continue
            return response
        raise HttpError(f"{url}: gave up after {self.retry.max_attempts} attempts: {last_problem}")

    def _pause(self, attempt: int, seconds: float) -> None:
        if attempt < self.retry.max_attempts:
            self._sleep(seconds)

    @staticmethod
    def _raise_for_status(url: str, response: requests.Response) -> None:
        if response.status_code >= 400:
            detail = response.text[:200].strip() if not looks_like_html(response.content[:64]) else ""
            response.close()
            raise HttpError(
                f"{url}: HTTP {response.status_code} {response.reason}" + (f": {detail}" if detail else "")
            )

    # -- small documents ---------------------------------------------------------------
    def get_text(self, url: str, *, params=None, headers=None, expect: str = "text") -> str:
        """The body of ``url`` as text; an HTML page where ``expect`` was due is an error."""
        response = self._request(url, params=params, headers=headers)
        self._raise_for_status(url, response)
        body = response.content
        _check_payload_start(url, body[:HEAD_CHECK_BYTES], expect, response.headers.get("Content-Type", ""))
        return body.decode(response.encoding or "utf-8", errors="replace")

    def get_json(self, url: str, *, params=None, headers=None) -> Any:
        """Parsed JSON from ``url``; anything else (an HTML page, truncated JSON) is an error."""
        text = self.get_text(url, params=params, headers=headers, expect="json")
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise HttpError(f"{url}: response is not valid JSON ({exc})") from None

    # -- files ---------------------------------------------------------------------------
    def download(
        self,
        url: str,
        out_path: str | os.PathLike,
        *,
        params=None,
        headers=None,
        expect: str | None = None,
        md5: str | None = None,
        label: str | None = None,
    ) -> DownloadInfo:
        """Download ``url`` to ``out_path``: resumed with Range after a break, md5-checked.

        ``expect`` ("gzip", "zip", "json", "fasta", "text") rejects an error page served
        with status 200; ``md5`` (hex) rejects a corrupt file. On any failure nothing is
        left at ``out_path``.
        """
        out_path = Path(out_path)
        with atomic_path(out_path) as tmp:
            info = self._download_to(url, tmp, params=params, headers=headers, expect=expect,
                                     label=label or out_path.name)
            if md5 is not None and info.md5 != md5.lower():
                raise HttpError(
                    f"{url}: md5 mismatch: downloaded {info.size_bytes} bytes with md5 {info.md5}, "
                    f"expected {md5.lower()}"
                )
        return DownloadInfo(path=out_path, md5=info.md5, size_bytes=info.size_bytes, url=url)

    @staticmethod
    def _write(handle, hasher, chunk: bytes, bar) -> None:
        handle.write(chunk)
        hasher.update(chunk)
        if bar is not None:
            bar.update(len(chunk))

    def _download_to(self, url: str, tmp: Path, *, params, headers, expect, label) -> DownloadInfo:
        hasher = hashlib.md5()
        written = 0
        total: int | None = None
        bar = None
        failures = 0
        last_problem = ""
        with open(tmp, "wb") as handle:
            try:
                while True:
                    # identity: the bytes on the wire are the file's bytes (md5, Range offsets).
                    request_headers = {**(headers or {}), "Accept-Encoding": "identity"}
                    if written:
                        request_headers["Range"] = f"bytes={written}-"
                    response = self._request(url, params=params, headers=request_headers, stream=True)
                    with response:
                        if response.status_code == 416 and written and written == total:
                            break  # the previous stream ended exactly at the end
                        self._raise_for_status(url, response)
                        if written and response.status_code != 206:
                            # Server ignored Range: start over rather than append a second copy.
                            handle.seek(0)
                            handle.truncate()
                            hasher = hashlib.md5()
                            written = 0
                        if response.status_code == 206:
                            start, total = _content_range(url, response.headers.get("Content-Range"))
                            if start != written:
                                raise HttpError(f"{url}: asked to resume at byte {written}, server sent {start}")
                        else:
                            length = response.headers.get("Content-Length")
                            total = int(length) if length else None
                        if bar is None and self.progress and (total is None or total >= PROGRESS_MIN_BYTES):
                            from tqdm import tqdm

                            bar = tqdm(total=total, unit="B", unit_scale=True, desc=label, leave=False)
                        try:
                            # read1: keep every byte that arrived before a break (a 1 MiB read()
                            # would lose them), and the raw bytes, so md5 and Range offsets match.
                            head = b""  # the payload's first bytes, held back until checked
                            while chunk := response.raw.read1(CHUNK_BYTES, decode_content=False):
                                if written == 0 and expect is not None:
                                    head += chunk
                                    if len(head) < HEAD_CHECK_BYTES:
                                        continue
                                    _check_payload_start(url, head, expect, response.headers.get("Content-Type", ""))
                                    chunk, head = head, b""
                                self._write(handle, hasher, chunk, bar)
                                written += len(chunk)
                            if written == 0 and expect is not None:  # shorter than HEAD_CHECK_BYTES, or empty
                                _check_payload_start(url, head, expect, response.headers.get("Content-Type", ""))
                                self._write(handle, hasher, head, bar)
                                written += len(head)
                        except (urllib3.exceptions.HTTPError, OSError) as exc:
                            last_problem = f"connection broke at byte {written} ({type(exc).__name__})"
                        else:
                            if total is None or written >= total:
                                break
                            last_problem = f"stream ended at byte {written} of {total}"
                    failures += 1
                    if failures >= self.retry.max_attempts:
                        raise HttpError(f"{url}: gave up after {failures} broken transfers: {last_problem}")
                    self._sleep(self.retry.backoff_s(failures))
            finally:
                if bar is not None:
                    bar.close()
        if total is not None and written != total:
            raise HttpError(f"{url}: received {written} bytes, server announced {total}")
        return DownloadInfo(path=tmp, md5=hasher.hexdigest(), size_bytes=written, url=url)


def _content_range(url: str, header: str | None) -> tuple[int, int | None]:
    """(first byte, total size) from ``Content-Range: bytes a-b/total``."""
    try:
        unit, _, rest = (header or "").partition(" ")
        span, _, size = rest.partition("/")
        if unit != "bytes":
            raise ValueError
        return int(span.split("-")[0]), (None if size == "*" else int(size))
    except ValueError:
        raise HttpError(f"{url}: 206 answer with an unreadable Content-Range {header!r}") from None


def file_md5(path: str | os.PathLike) -> str:
    hasher = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            hasher.update(block)
    return hasher.hexdigest()
