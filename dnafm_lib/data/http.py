"""Resumable, verified HTTP downloads and polite JSON requests (NCBI and plain URLs).

One ``HttpClient`` per process. urllib3's ``Retry`` (mounted on a requests session) retries
5xx answers and failed connections with exponential backoff and waits as long as a 429's
``Retry-After`` says. What no library does is here: the client-side rate limit (retries
included), a Retry-After cap, resuming a body that broke off with an HTTP ``Range`` request,
refusing an HTML error page served with status 200 where data was expected, the md5 check,
and writing every file under a temporary name that only becomes the output once whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from dnafm_lib.core.atomic import atomic_path
from dnafm_lib.core.errors import DnafmError

USER_AGENT = "dnafm (+https://github.com/dnafm; genome downloads for DNA FM pretraining)"
CHUNK_BYTES = 1 << 20
# Progress bars only for downloads at least this large (small files finish before one renders).
PROGRESS_MIN_BYTES = 8 << 20
# Bytes looked at to tell the expected payload from an error page.
HEAD_CHECK_BYTES = 512
# The first bytes of each payload kind; an HTML page starts with "<" instead.
MAGIC = {"gzip": (b"\x1f\x8b",), "zip": (b"PK\x03\x04", b"PK\x05\x06"), "json": (b"{", b"[")}
# Answers worth asking again: rate limiting and server errors.
RETRIED_STATUSES = frozenset({429, *range(500, 600)})


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


class _RetryAfterTooLong(Exception):
    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = seconds


class _PoliteRetry(Retry):
    """urllib3's Retry with this project's policy: the doubling backoff of ``RetryPolicy``, a
    Retry-After longer than ``max_retry_after_s`` treated as a failure (urllib3 would shorten
    it), and every retry waiting its turn at the client's rate limiter."""

    policy = RetryPolicy()
    limiter: RateLimiter | None = None

    @classmethod
    def for_policy(cls, policy: RetryPolicy, limiter: RateLimiter) -> _PoliteRetry:
        retry = cls(
            total=policy.max_attempts - 1,
            status_forcelist=RETRIED_STATUSES,
            allowed_methods=None,
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        retry.policy, retry.limiter = policy, limiter
        return retry

    def new(self, **kw: Any) -> _PoliteRetry:
        retry = super().new(**kw)
        retry.policy, retry.limiter = self.policy, self.limiter
        return retry

    def get_backoff_time(self) -> float:
        return self.policy.backoff_s(max(1, len(self.history)))

    def parse_retry_after(self, retry_after: str) -> float:
        seconds = super().parse_retry_after(retry_after)
        if seconds > self.policy.max_retry_after_s:
            raise _RetryAfterTooLong(seconds)
        return seconds

    def get_retry_after(self, response) -> float | None:
        try:
            return super().get_retry_after(response)
        except urllib3.exceptions.InvalidHeader:  # unreadable: fall back to the backoff
            return None

    def sleep(self, response=None) -> None:
        super().sleep(response)
        if self.limiter is not None:
            self.limiter.wait()


@dataclass
class _Transfer:
    """A download in progress: what was written where, its md5 so far and its progress bar."""

    handle: BinaryIO
    label: str
    progress: bool
    hasher: Any = field(default_factory=hashlib.md5)
    written: int = 0
    total: int | None = None
    encoding: str | None = None
    bar: Any = None

    def restart(self) -> None:
        self.handle.seek(0)
        self.handle.truncate()
        self.hasher = hashlib.md5()
        self.written = 0

    def announce(self, total: int | None) -> None:
        self.total = total
        if self.bar is None and self.progress and (total is None or total >= PROGRESS_MIN_BYTES):
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, desc=self.label, leave=False)

    def write(self, chunk: bytes) -> None:
        self.handle.write(chunk)
        self.hasher.update(chunk)
        self.written += len(chunk)
        if self.bar is not None:
            self.bar.update(len(chunk))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class HttpClient:
    """requests.Session with rate limiting, retries (urllib3), Retry-After and resumable downloads."""

    def __init__(
        self,
        *,
        requests_per_s: float | None = None,
        retry: RetryPolicy = RetryPolicy(),
        timeout_s: float = 60.0,
        progress: bool | None = None,
    ):
        self.limiter = RateLimiter(requests_per_s)
        self.retry = retry
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = HTTPAdapter(max_retries=_PoliteRetry.for_policy(retry, self.limiter))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.timeout_s = timeout_s
        # None: a bar only when stderr is a terminal (not in Snakemake logs).
        self.progress = sys.stderr.isatty() if progress is None else progress

    # -- one request; urllib3 retries 5xx, 429 and failed connections -------------------------
    def _request(self, url: str, *, params=None, headers=None) -> requests.Response:
        """GET ``url`` (streamed) and return the answer once it is not retryable or retries ran out."""
        gave_up = f"{url}: gave up after {self.retry.max_attempts} attempts"
        self.limiter.wait()
        try:
            response = self.session.get(url, params=params, headers=headers, stream=True, timeout=self.timeout_s)
        except _RetryAfterTooLong as exc:
            raise HttpError(
                f"{url}: rate limited (429) with Retry-After {exc.seconds:.0f}s, "
                f"more than the {self.retry.max_retry_after_s:.0f}s this client waits"
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise HttpError(f"{gave_up}: connection failed ({type(exc).__name__}: {exc})") from None
        except requests.RequestException as exc:  # a malformed URL and the like: not retryable
            raise HttpError(f"{url}: {type(exc).__name__}: {exc}") from None
        if response.status_code == 429 or response.status_code >= 500:
            response.close()
            if response.status_code == 429:
                raise HttpError(f"{gave_up}: rate limited (429)")
            raise HttpError(f"{gave_up}: server error {response.status_code} {response.reason}")
        return response

    @staticmethod
    def _raise_for_status(url: str, response: requests.Response) -> None:
        if response.status_code >= 400:
            detail = response.text[:200].strip() if not looks_like_html(response.content[:64]) else ""
            response.close()
            raise HttpError(f"{url}: HTTP {response.status_code} {response.reason}" + (f": {detail}" if detail else ""))

    # -- small documents ---------------------------------------------------------------
    def get_text(self, url: str, *, params=None, headers=None, expect: str = "text") -> str:
        """The body of ``url`` as text; an HTML page where ``expect`` was due is an error.

        Fetched like a file (a body that breaks off is resumed or fetched again), into memory.
        """
        buffer = io.BytesIO()
        transfer = self._download_to(
            url, _Transfer(buffer, url, progress=False), params=params, headers=headers, expect=expect
        )
        return buffer.getvalue().decode(transfer.encoding or "utf-8", errors="replace")

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
        with atomic_path(out_path) as tmp, open(tmp, "wb") as handle:
            transfer = _Transfer(handle, label or out_path.name, progress=self.progress)
            self._download_to(url, transfer, params=params, headers=headers, expect=expect)
            digest = transfer.hasher.hexdigest()
            if md5 is not None and digest != md5.lower():
                raise HttpError(
                    f"{url}: md5 mismatch: downloaded {transfer.written} bytes with md5 {digest}, "
                    f"expected {md5.lower()}"
                )
        return DownloadInfo(path=out_path, md5=digest, size_bytes=transfer.written, url=url)

    def _download_to(self, url: str, transfer: _Transfer, *, params, headers, expect) -> _Transfer:
        """Fill ``transfer`` with the body of ``url``, resuming with Range after each break."""
        try:
            for failures in range(1, self.retry.max_attempts + 1):
                problem = self._transfer_once(url, transfer, params=params, headers=headers, expect=expect)
                if problem is None:
                    break
                if failures == self.retry.max_attempts:
                    raise HttpError(f"{url}: gave up after {failures} broken transfers: {problem}")
                time.sleep(self.retry.backoff_s(failures))
        finally:
            transfer.close()
        if transfer.total is not None and transfer.written != transfer.total:
            raise HttpError(f"{url}: received {transfer.written} bytes, server announced {transfer.total}")
        return transfer

    def _transfer_once(self, url: str, transfer: _Transfer, *, params, headers, expect) -> str | None:
        """One request from ``transfer.written`` on: None when the body is complete, else what broke."""
        # identity: the bytes on the wire are the file's bytes (md5, Range offsets).
        request_headers = {**(headers or {}), "Accept-Encoding": "identity"}
        if transfer.written:
            request_headers["Range"] = f"bytes={transfer.written}-"
        with self._request(url, params=params, headers=request_headers) as response:
            if response.status_code == 416 and transfer.written and transfer.written == transfer.total:
                return None  # the previous stream ended exactly at the end
            self._raise_for_status(url, response)
            _start_or_resume(url, response, transfer)
            try:
                _copy_body(url, response, transfer, expect)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                return f"connection broke at byte {transfer.written} ({type(exc).__name__})"
        if transfer.total is None or transfer.written >= transfer.total:
            return None
        return f"stream ended at byte {transfer.written} of {transfer.total}"


def _start_or_resume(url: str, response: requests.Response, transfer: _Transfer) -> None:
    """Line ``transfer`` up with what the server sends: the rest (206) or the whole body again."""
    transfer.encoding = response.encoding
    if response.status_code == 206:
        start, total = _content_range(url, response.headers.get("Content-Range"))
        if start != transfer.written:
            raise HttpError(f"{url}: asked to resume at byte {transfer.written}, server sent {start}")
    else:
        if transfer.written:  # the server ignored Range: start over rather than append a second copy
            transfer.restart()
        length = response.headers.get("Content-Length")
        total = int(length) if length else None
    transfer.announce(total)


def _copy_body(url: str, response: requests.Response, transfer: _Transfer, expect: str | None) -> None:
    """Stream the body into ``transfer``; the payload's first bytes are checked before any is written."""
    content_type = response.headers.get("Content-Type", "")
    checking = expect is not None and transfer.written == 0
    head = b""
    # read1: keep every byte that arrived before a break (a 1 MiB read() would lose them), and
    # the raw bytes, so md5 and Range offsets match.
    while chunk := response.raw.read1(CHUNK_BYTES, decode_content=False):
        if checking:
            head += chunk
            if len(head) < HEAD_CHECK_BYTES:
                continue
            _check_payload_start(url, head, expect, content_type)
            chunk, head, checking = head, b"", False
        transfer.write(chunk)
    if checking:  # shorter than HEAD_CHECK_BYTES, or empty
        _check_payload_start(url, head, expect, content_type)
        transfer.write(head)


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
