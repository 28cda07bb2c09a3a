"""Readers for the reference files an operator supplies: MaxMind MMDB (ASN, Country or City
databases), the iptoasn TSV (``ip2asn-combined.tsv``) and RIR delegated-extended statistics.

Each returns a Polars frame of ranges: ``first``/``last`` (16-byte keys), ``asn``, ``as_name``,
``cc``, and the number of lines it skipped with why.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from commonwatch.constituency.index import ip4_keys, parse_ips
from commonwatch.errors import Invalid
from commonwatch.i18n import _
from commonwatch.net import network_bounds

KINDS = ("mmdb", "iptoasn", "rir")
RANGE_SCHEMA = {"first": pl.Binary, "last": pl.Binary, "asn": pl.Int64, "as_name": pl.String, "cc": pl.String}


@dataclass
class Ranges:
    frame: pl.DataFrame
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)


def detect_kind(path: Path) -> str:
    """mmdb by its metadata marker, RIR by its ``|`` records, iptoasn by its tabs."""
    with path.open("rb") as fh:
        head = fh.read(4096)
        fh.seek(max(0, path.stat().st_size - 128 * 1024))
        tail = fh.read()
    if b"\xab\xcd\xefMaxMind.com" in tail:
        return "mmdb"
    text = head.decode("utf-8", errors="replace")
    if "|ipv4|" in text or "|ipv6|" in text or "|asn|" in text:
        return "rir"
    if "\t" in text:
        return "iptoasn"
    raise Invalid(str(path), _("is not an MMDB, iptoasn TSV or RIR delegated-extended file"))


def read_mmdb(path: Path) -> Ranges:
    import maxminddb

    try:
        reader = maxminddb.open_database(str(path))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise Invalid(str(path), _("is not a readable MMDB file: {error}").format(error=exc)) from None
    rows: dict[str, list] = {k: [] for k in RANGE_SCHEMA}
    skipped = 0
    with reader:
        for network, record in reader:
            if not isinstance(record, dict):
                skipped += 1
                continue
            asn = record.get("autonomous_system_number")
            name = record.get("autonomous_system_organization")
            country = (record.get("country") or record.get("registered_country") or {}).get("iso_code")
            if asn is None and country is None:
                skipped += 1
                continue
            net = network
            if net.version == 6 and net.prefixlen >= 96 and int(net.network_address) >> 32 == 0:
                # IPv4 lives in ::/96 of an IPv6 tree.
                net = ipaddress.ip_network((int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96))
            first, last = network_bounds(net)
            rows["first"].append(first)
            rows["last"].append(last)
            rows["asn"].append(int(asn) if asn is not None else None)
            rows["as_name"].append(str(name)[:200] if name else None)
            rows["cc"].append(str(country).upper()[:2] if country else None)
    return Ranges(pl.DataFrame(rows, schema=RANGE_SCHEMA), skipped)


def read_iptoasn(path: Path) -> Ranges:
    """``range_start range_end AS_number country_code AS_description``, tab separated; AS 0
    ("not routed") is skipped."""
    frame = pl.read_csv(path, separator="\t", has_header=False, infer_schema=False, quote_char=None,
                        new_columns=["start", "end", "asn", "cc", "name"], truncate_ragged_lines=True,
                        raise_if_empty=False)
    if frame.is_empty():
        return Ranges(pl.DataFrame(schema=RANGE_SCHEMA))
    first, last = parse_ips(frame["start"]), parse_ips(frame["end"])
    asn = frame["asn"].cast(pl.Int64, strict=False)
    ok = first.valid & last.valid & first.key.is_not_null() & last.key.is_not_null() & asn.is_not_null() & (asn > 0)
    out = pl.DataFrame({"first": first.key, "last": last.key, "asn": asn,
                        "as_name": frame["name"].str.slice(0, 200),
                        "cc": frame["cc"].str.to_uppercase().str.slice(0, 2)}).filter(ok)
    out = out.with_columns(pl.when(pl.col("cc").is_in(["NONE", "None", ""])).then(None).otherwise(pl.col("cc"))
                           .alias("cc"))
    skipped = frame.height - out.height
    return Ranges(out, skipped, [_("{n} line(s) not routed (AS 0) or not valid").format(n=skipped)] if skipped else [])


def read_rir(path: Path) -> Ranges:
    """RIR delegated-extended: ``registry|cc|type|start|value|date|status[|id]``. IPv4 ``value`` is
    an address count, IPv6 a prefix length; only allocated/assigned ranges with a country count."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = pl.Series("l", text.splitlines(), dtype=pl.String)
    lines = lines.filter(~lines.str.starts_with("#") & (lines.str.strip_chars() != ""))
    parts = lines.str.split("|")
    frame = pl.DataFrame({"p": parts}).with_columns(
        pl.col("p").list.get(1, null_on_oob=True).alias("cc"), pl.col("p").list.get(2, null_on_oob=True).alias("type"),
        pl.col("p").list.get(3, null_on_oob=True).alias("start"),
        pl.col("p").list.get(4, null_on_oob=True).alias("value"),
        pl.col("p").list.get(6, null_on_oob=True).alias("status"))
    usable = frame.filter(pl.col("type").is_in(["ipv4", "ipv6"]) & pl.col("status").is_in(["allocated", "assigned"])
                          & pl.col("cc").str.contains(r"^[A-Za-z]{2}$"))
    skipped = frame.filter(pl.col("type").is_in(["ipv4", "ipv6"])).height - usable.height
    v4 = usable.filter(pl.col("type") == "ipv4")
    starts = parse_ips(v4["start"])
    count = v4["value"].cast(pl.Int64, strict=False)
    ok4 = starts.ip4.is_not_null() & count.is_not_null() & (count > 0)
    end4 = (starts.ip4.cast(pl.Int64) + count - 1).clip(0, 0xFFFFFFFF).cast(pl.UInt32)
    end_keys = ip4_keys(end4)
    frame4 = pl.DataFrame({"first": starts.key, "last": end_keys, "asn": pl.Series([None] * v4.height, dtype=pl.Int64),
                           "as_name": pl.Series([None] * v4.height, dtype=pl.String),
                           "cc": v4["cc"].str.to_uppercase()}).filter(ok4 & end_keys.is_not_null())
    rows6 = {k: [] for k in RANGE_SCHEMA}
    for start, plen, cc in usable.filter(pl.col("type") == "ipv6").select("start", "value", "cc").iter_rows():
        try:
            net = ipaddress.IPv6Network(f"{start}/{plen}", strict=False)
        except ValueError:
            skipped += 1
            continue
        f, last = network_bounds(net)
        for key, value in (("first", f), ("last", last), ("asn", None), ("as_name", None), ("cc", cc.upper())):
            rows6[key].append(value)
    out = pl.concat([frame4, pl.DataFrame(rows6, schema=RANGE_SCHEMA)])
    skipped += v4.height - frame4.height
    return Ranges(out, skipped, [_("{n} record(s) not allocated/assigned or not valid").format(n=skipped)]
                  if skipped else [])


def read_file(path: Path, kind: str | None = None) -> tuple[str, Ranges]:
    kind = kind or detect_kind(path)
    if kind not in KINDS:
        raise Invalid("kind", _("must be one of {kinds}").format(kinds=", ".join(KINDS)))
    reader = {"mmdb": read_mmdb, "iptoasn": read_iptoasn, "rir": read_rir}[kind]
    return kind, reader(path)


