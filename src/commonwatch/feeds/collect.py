"""Collectors: turn a file, a folder or an HTTP(S) URL into :class:`Source` documents.

Compression is recognised by its magic bytes, not the file name: a gzip file is decompressed as
a stream, a zip file yields each member as its own source. HTTP fetches pass the outbound
allowlist, stop at the size and time limits, and send ``If-None-Match``/``If-Modified-Since`` so an
unchanged feed costs one round trip and no parsing.
"""

from __future__ import annotations

import gzip
import io
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import httpx

from commonwatch.errors import Invalid
from commonwatch.feeds.base import Source
from commonwatch.i18n import _

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"


class LimitedReader(io.RawIOBase):
    """Reads at most ``limit`` bytes from ``stream``; one byte more raises :class:`Invalid` (a
    decompression bomb or an oversized body stops here instead of filling the disk or memory)."""

    def __init__(self, stream: BinaryIO, limit: int | None, what: str):
        self._stream = stream
        self._limit = limit
        self._seen = 0
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        data = self._stream.read(len(buf))
        self._seen += len(data)
        if self._limit is not None and self._seen > self._limit:
            raise Invalid(self._what, _("is larger than the limit of {limit} bytes").format(limit=self._limit))
        buf[: len(data)] = data
        return len(data)


def _buffered(stream: BinaryIO) -> io.BufferedReader:
    return stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream, buffer_size=1 << 20)


def expand(name: str, stream: BinaryIO, fetched_at: datetime, *, limit: int | None = None,
           size_hint: int | None = None) -> Iterator[Source]:
    """The documents inside a byte stream: itself, its gzip content, or each member of a zip."""
    buffered = _buffered(stream)
    head = buffered.peek(4)[:4]
    if head.startswith(GZIP_MAGIC):
        inner = gzip.GzipFile(fileobj=buffered, mode="rb")
        inner_name = name[:-3] if name.lower().endswith(".gz") else name
        yield from expand(inner_name, _buffered(LimitedReader(inner, limit, name)), fetched_at, limit=limit)
        return
    if head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        spool = buffered if buffered.seekable() else _spool(buffered)
        try:
            archive = zipfile.ZipFile(spool)
        except zipfile.BadZipFile as exc:
            raise Invalid(name, _("is not a readable zip file: {error}").format(error=exc)) from None
        with archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if not members:
                raise Invalid(name, _("is a zip file with no files in it"))
            for member in members:
                with archive.open(member) as fh:
                    yield from expand(f"{name}!{member.filename}", _buffered(LimitedReader(fh, limit, member.filename)),
                                      fetched_at, limit=limit, size_hint=member.file_size)
        return
    yield Source(name=name, stream=buffered, fetched_at=fetched_at, size_hint=size_hint)


def _spool(stream: BinaryIO) -> BinaryIO:
    tmp = tempfile.TemporaryFile()  # noqa: SIM115 - returned open; the zip reader owns it
    while chunk := stream.read(1 << 20):
        tmp.write(chunk)
    tmp.seek(0)
    return tmp


def sources_from_path(path: Path, fetched_at: datetime, limit: int | None = None) -> Iterator[Source]:
    """A file, or every file under a folder (sorted, hidden files skipped), expanded; ``limit``
    caps what each compressed document may decompress to (use it for downloaded input)."""
    if not path.exists():
        raise Invalid("path", _("{path} does not exist").format(path=path))
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    for file in files:
        with file.open("rb") as fh:
            yield from expand(str(file), fh, fetched_at, limit=limit, size_hint=file.stat().st_size)


# --- HTTP --------------------------------------------------------------------------------------------

@dataclass
class FetchResult:
    url: str
    status: int  # 200 or 304
    body: Path | None  # a temporary file holding the body (200 only); the caller deletes it
    etag: str
    last_modified: str
    size: int = 0

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def check_allowed(url: str, allowlist: list[str]) -> None:
    """Outbound URLs must be http(s) and start with an allowlisted prefix."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid("url", _("“{url}” is not an http(s) URL").format(url=url))
    if not any(url.startswith(prefix) for prefix in allowlist if prefix):
        raise Invalid("url", _("“{url}” is not on the outbound allowlist (settings.outbound_allowlist)").format(
            url=url))


def fetch_url(url: str, *, allowlist: list[str], max_bytes: int, timeout: float, etag: str = "",
              last_modified: str = "", client: httpx.Client | None = None) -> FetchResult:
    """GET ``url`` into a temporary file within the limits; a conditional request when we have
    the validators of the last fetch. Redirects are followed only to allowlisted URLs."""
    check_allowed(url, allowlist)
    headers = {"User-Agent": "commonwatch feed collector", "Accept-Encoding": "gzip"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    own = client is None
    client = client or httpx.Client(timeout=timeout, follow_redirects=False)
    deadline = time.monotonic() + timeout
    try:
        for _hop in range(5):
            with client.stream("GET", url, headers=headers, timeout=timeout) as resp:
                if resp.status_code in (301, 302, 303, 307, 308):
                    target = str(resp.url.join(resp.headers.get("location", "")))
                    check_allowed(target, allowlist)
                    url = target
                    continue
                if resp.status_code == 304:
                    return FetchResult(url, 304, None, resp.headers.get("etag", etag),
                                       resp.headers.get("last-modified", last_modified))
                if resp.status_code != 200:
                    raise Invalid("url", _("{url} answered HTTP {status}").format(url=url, status=resp.status_code))
                declared = int(resp.headers.get("content-length") or 0)
                if declared > max_bytes:
                    raise Invalid("url", _("{url} is {size} bytes, over the limit of {limit}").format(
                        url=url, size=declared, limit=max_bytes))
                tmp = tempfile.NamedTemporaryFile(prefix="commonwatch-feed-", delete=False)  # noqa: SIM115 - the caller owns it
                size = 0
                try:
                    with tmp:
                        for chunk in resp.iter_bytes(1 << 16):
                            size += len(chunk)
                            if size > max_bytes:
                                raise Invalid("url", _("{url} sent more than the limit of {limit} bytes").format(
                                    url=url, limit=max_bytes))
                            if time.monotonic() > deadline:
                                raise Invalid("url", _("{url} took longer than {seconds} s").format(
                                    url=url, seconds=timeout))
                            tmp.write(chunk)
                except BaseException:
                    Path(tmp.name).unlink(missing_ok=True)
                    raise
                return FetchResult(url, 200, Path(tmp.name), resp.headers.get("etag", ""),
                                   resp.headers.get("last-modified", ""), size)
        raise Invalid("url", _("{url} redirected too many times").format(url=url))
    except httpx.TimeoutException:
        raise Invalid("url", _("{url} took longer than {seconds} s").format(url=url, seconds=timeout)) from None
    except httpx.HTTPError as exc:
        raise Invalid("url", _("{url} could not be fetched: {error}").format(url=url, error=exc)) from None
    finally:
        if own:
            client.close()
