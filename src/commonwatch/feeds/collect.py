"""Collectors: turn a file, a folder or an HTTP(S) URL into :class:`Source` documents.

Compression is recognised by its magic bytes, not the file name: a gzip file is decompressed as
a stream, a zip file yields each member as its own source. HTTP fetches obey the outbound policy
(:mod:`commonwatch.outbound`: allowlist, redirects, size and time limits) and send
``If-None-Match``/``If-Modified-Since`` so an unchanged feed costs one round trip and no parsing.
"""

from __future__ import annotations

import gzip
import io
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import httpx

from commonwatch import outbound
from commonwatch.errors import Invalid
from commonwatch.feeds.base import Source
from commonwatch.i18n import _
from commonwatch.outbound import Policy

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


def fetch_url(url: str, policy: Policy, *, etag: str = "", last_modified: str = "") -> FetchResult:
    """GET ``url`` into a temporary file under the outbound policy (allowlist, redirects, size and
    time limits: :mod:`commonwatch.outbound`); a conditional request when we have the validators of
    the last fetch."""
    headers = {"User-Agent": "commonwatch feed collector", "Accept-Encoding": "gzip"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        with outbound.open_exchange(policy, "GET", url, field="url", headers=headers) as opened:
            resp, url = opened.response, opened.url
            if resp.status_code == 304:
                return FetchResult(url, 304, None, resp.headers.get("etag", etag),
                                   resp.headers.get("last-modified", last_modified))
            if resp.status_code != 200:
                raise Invalid("url", _("{url} answered HTTP {status}").format(url=url, status=resp.status_code))
            tmp = tempfile.NamedTemporaryFile(prefix="commonwatch-feed-", delete=False)  # noqa: SIM115 - the caller owns it
            size = 0
            try:
                with tmp:
                    for chunk in opened.iter_body():
                        size += len(chunk)
                        tmp.write(chunk)
            except BaseException:
                Path(tmp.name).unlink(missing_ok=True)
                raise
            return FetchResult(url, 200, Path(tmp.name), resp.headers.get("etag", ""),
                               resp.headers.get("last-modified", ""), size)
    except httpx.TimeoutException:
        raise Invalid("url", _("{url} took longer than {seconds} s").format(
            url=url, seconds=f"{policy.timeout:g}")) from None
    except httpx.HTTPError as exc:
        raise Invalid("url", _("{url} could not be fetched: {error}").format(url=url, error=exc)) from None
