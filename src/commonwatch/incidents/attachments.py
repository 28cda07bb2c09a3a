"""Attachments: type checked by content (not only by name), size-limited, stored under their SHA-256.

Files live in ``$COMMONWATCH_DATA_DIR/incidents/blobs/<aa>/<bb>/<sha256>``; the same content uploaded
twice is stored once. Accepted: documents and evidence a CERT receives (PDF, images, text, CSV,
JSON, e-mail, packet captures, office documents and ZIP archives). Refused: executables, scripts and
markup a browser would run, and any file whose name claims a different type than its content.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from commonwatch.i18n import _

#: detected kind -> (MIME type, extensions a name may have)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pdf": ("application/pdf", (".pdf",)),
    "png": ("image/png", (".png",)),
    "jpeg": ("image/jpeg", (".jpg", ".jpeg")),
    "gif": ("image/gif", (".gif",)),
    "pcap": ("application/vnd.tcpdump.pcap", (".pcap", ".cap")),
    "pcapng": ("application/x-pcapng", (".pcapng",)),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (".docx",)),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx",)),
    "pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", (".pptx",)),
    "zip": ("application/zip", (".zip",)),
    "gzip": ("application/gzip", (".gz", ".tgz")),
    "text": ("text/plain", (".txt", ".log", ".csv", ".json", ".eml", ".md", ".xml", ".yaml", ".yml", ".ioc", ".stix")),
}
_REFUSED_NAMES = (".exe", ".dll", ".scr", ".com", ".bat", ".cmd", ".ps1", ".vbs", ".js", ".jar", ".msi", ".sh",
                  ".html", ".htm", ".svg", ".xhtml", ".hta", ".lnk", ".apk", ".elf", ".so", ".dylib")
_MARKUP = re.compile(rb"<\s*(script|html|svg|iframe|object|embed)\b", re.IGNORECASE)


class AttachmentRefused(Exception):
    """The file was not stored; ``reason`` says why, in the reader's language."""

    def __init__(self, filename: str, reason: str):
        self.filename = filename
        self.reason = reason
        super().__init__(f"{filename}: {reason}")


@dataclass(frozen=True)
class StoredFile:
    filename: str
    sha256: str
    size: int
    content_type: str


def safe_filename(name: str) -> str:
    """The base name only, without control or path characters, at most 200 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[\x00-\x1f\x7f\"<>|:*?]", "_", base).strip(" .")
    return (base or "attachment")[-200:]


def _zip_kind(head: bytes, data: bytes) -> str:
    try:
        names = zipfile.ZipFile(BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return ""
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    return "zip"


def _is_text(data: bytes) -> bool:
    """Text in UTF-8 (or UTF-16 with a BOM) or GB18030, with no binary control characters."""
    sample = data[:65536]
    text = None
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = sample.decode("utf-16", errors="ignore")
    else:
        for encoding in ("utf-8", "gb18030"):
            try:
                # An incremental decoder lets a sample end inside a multi-byte character.
                text = codecs.getincrementaldecoder(encoding)().decode(sample, final=len(data) <= len(sample))
                break
            except UnicodeDecodeError:
                continue
    if text is None:
        return False
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n\f")
    return controls == 0


def detect_kind(data: bytes) -> str | None:
    """What the content is, from its first bytes; None when it is of no accepted kind."""
    head = data[:16]
    if head.startswith(b"MZ") or head.startswith(b"\x7fELF") or head[:4] in (
            b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):
        return None  # executables of any platform
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
        return "pcap"
    if head.startswith(b"\x0a\x0d\x0d\x0a"):
        return "pcapng"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_kind(head, data) or None
    if head.startswith(b"#!"):
        return None  # a script
    if _is_text(data):
        return None if _MARKUP.search(data[:65536]) else "text"
    return None


def check_file(filename: str, data: bytes, max_bytes: int) -> tuple[str, str]:
    """(safe name, MIME type) if the file may be stored; raises :class:`AttachmentRefused` otherwise."""
    name = safe_filename(filename)
    if len(data) > max_bytes:
        raise AttachmentRefused(name, _("is larger than the limit of {limit} bytes").format(limit=f"{max_bytes:,}"))
    if not data:
        raise AttachmentRefused(name, _("is empty"))
    ext = os.path.splitext(name.lower())[1]
    if ext in _REFUSED_NAMES:
        raise AttachmentRefused(name, _("files of type “{ext}” are not accepted").format(ext=ext))
    kind = detect_kind(data)
    if kind is None:
        raise AttachmentRefused(name, _("its content is not of an accepted type (executables, scripts and web "
                                        "pages are refused)"))
    mime, extensions = KINDS[kind]
    if ext and ext not in extensions:
        raise AttachmentRefused(name, _("the name says “{ext}” but the content is {kind}").format(ext=ext, kind=kind))
    return name, mime


def blob_path(root: Path, sha256: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a SHA-256 hex digest")
    return root / sha256[:2] / sha256[2:4] / sha256


def store(root: Path, filename: str, data: bytes, max_bytes: int) -> StoredFile:
    """Check and store one file; the same content is written once."""
    name, mime = check_file(filename, data, max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(root, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and rename, so a crash never leaves a half-written blob under its hash.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return StoredFile(name, digest, len(data), mime)
