"""A minimal writer of the MaxMind DB format (v2.0), enough for tests to make real MMDB files:
a binary search tree with 24-bit records, the data section, and the metadata map."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"


def _ctrl(type_: int, size: int) -> bytes:
    if size < 29:
        marker, ext = size, b""
    elif size < 29 + 256:
        marker, ext = 29, bytes([size - 29])
    else:
        raise ValueError("sizes over 284 are not needed by these tests")
    if type_ <= 7:
        return bytes([(type_ << 5) | marker]) + ext
    return bytes([marker, type_ - 7]) + ext


def _uint(value: int, type_: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return _ctrl(type_, len(raw)) + raw


def encode(value: Any) -> bytes:
    """One value in the MaxMind DB data-section encoding."""
    if isinstance(value, bool):
        return _ctrl(14, int(value))
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _ctrl(2, len(raw)) + raw
    if isinstance(value, int):
        return _uint(value, 6 if value < 2**32 else 9)
    if isinstance(value, dict):
        out = _ctrl(7, len(value))
        for k, v in value.items():
            out += encode(str(k)) + encode(v)
        return out
    if isinstance(value, list):
        out = _ctrl(11, len(value))
        for v in value:
            out += encode(v)
        return out
    raise TypeError(type(value))


def write_mmdb(path, records: dict[str, dict], database_type: str = "Test-ASN") -> None:
    """``records``: CIDR (IPv4) -> data map. Writes an IPv4 database with 24-bit records."""
    data = b""
    offsets: dict[str, int] = {}
    for cidr, rec in records.items():
        offsets[cidr] = len(data)
        data += encode(rec)
    nodes: list[list[Any]] = [[None, None]]
    for cidr in records:
        net = ipaddress.IPv4Network(cidr)
        bits = int(net.network_address)
        node = 0
        for depth in range(net.prefixlen):
            bit = (bits >> (31 - depth)) & 1
            last = depth == net.prefixlen - 1
            if last:
                nodes[node][bit] = ("data", offsets[cidr])
            else:
                nxt = nodes[node][bit]
                if not (isinstance(nxt, tuple) and nxt[0] == "node"):
                    nodes.append([None, None])
                    nodes[node][bit] = ("node", len(nodes) - 1)
                node = nodes[node][bit][1]
    count = len(nodes)

    def value(rec) -> int:
        if rec is None:
            return count
        kind, n = rec
        return n if kind == "node" else count + 16 + n

    tree = b"".join(struct.pack(">I", value(left))[1:] + struct.pack(">I", value(right))[1:] for left, right in nodes)
    meta = {"node_count": count, "record_size": 24, "ip_version": 4, "database_type": database_type,
            "languages": ["en"], "binary_format_major_version": 2, "binary_format_minor_version": 0,
            "build_epoch": 1764000000, "description": {"en": "commonwatch test database"}}
    meta_bytes = (_ctrl(7, len(meta)) + b"".join(
        encode(k) + (_uint(v, 5) if k in ("record_size", "ip_version", "binary_format_major_version",
                                         "binary_format_minor_version")
                     else _uint(v, 9) if k == "build_epoch" else encode(v))
        for k, v in meta.items()))
    with open(path, "wb") as fh:
        fh.write(tree + b"\x00" * 16 + data + METADATA_MARKER + meta_bytes)
