"""abuse.ch feeds: URLhaus (CSV), Feodo Tracker (IP blocklist as CSV or JSON) and ThreatFox (JSON)."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from commonwatch.errors import Invalid
from commonwatch.feeds.base import LINE, BadRecord, ParsedBatch, Source
from commonwatch.feeds.common import RAW_KEEP, iter_csv, load_json_document, records_frame, rename_to_fields
from commonwatch.i18n import _

PROVIDER = "abuse.ch"


def json_start(source: Source) -> bytes:
    """The document's first byte after a BOM and white space (``b"["`` for a JSON array, ``b"{"``
    for an object or JSON lines); peeks without consuming the stream."""
    head = source.stream.peek(64)[:64] if hasattr(source.stream, "peek") else b""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]


def _sniff_json(source: Source) -> bool:
    """Is the document JSON (it starts with ``[`` or ``{``)?"""
    return json_start(source) in (b"[", b"{")


class URLhausParser:
    name = "urlhaus"
    description = "abuse.ch URLhaus: malware distribution URLs (CSV export)"
    MAPPING = {"id": "extra.urlhaus_id", "dateadded": "time.source", "url": "source.url", "url_status": "extra.status",
               "last_online": "extra.last_online", "threat": "extra.threat", "tags": "extra.tags",
               "urlhaus_link": "extra.reference", "reporter": "extra.reporter"}
    HEADER = ["id", "dateadded", "url", "url_status", "last_online", "threat", "tags", "urlhaus_link", "reporter"]

    def parse(self, source: Source) -> Iterator[ParsedBatch]:
        for frame, bad, notes, _h in iter_csv(source, comment="#", header_in_comment=True):
            out = rename_to_fields(frame, self.MAPPING, constants={
                "feed.name": "urlhaus", "feed.provider": PROVIDER, "classification.type": "malware-distribution",
                "classification.identifier": "urlhaus"})
            yield ParsedBatch(out, bad, notes)


class FeodoTrackerParser:
    name = "feodotracker"
    description = "abuse.ch Feodo Tracker: botnet C2 IP blocklist (CSV or JSON)"
    CSV = {"first_seen_utc": "time.source", "first_seen": "time.source", "dst_ip": "source.ip",
           "dst_port": "source.port", "c2_status": "extra.status", "last_online": "extra.last_online",
           "malware": "malware.name"}
    JSON = {"ip_address": "source.ip", "port": "source.port", "status": "extra.status",
            "hostname": "source.reverse_dns",
            "as_number": "source.asn", "as_name": "source.as_name", "country": "source.geolocation.cc",
            "first_seen": "time.source", "last_online": "extra.last_online", "malware": "malware.name"}
    CONSTANTS = {"feed.name": "feodotracker", "feed.provider": PROVIDER, "classification.type": "c2-server",
                 "classification.identifier": "feodotracker", "protocol.transport": "tcp"}

    def parse(self, source: Source) -> Iterator[ParsedBatch]:
        if _sniff_json(source):
            data = load_json_document(source)
            if data is None:
                yield ParsedBatch(records_frame([], []), [], [_("the file is empty")])
                return
            if not isinstance(data, list):
                raise Invalid("file", _("a Feodo Tracker JSON blocklist is a list of objects"))
            yield _last_online_fallback(_objects_batch(data, self.JSON, self.CONSTANTS))
            return
        for frame, bad, notes, _h in iter_csv(source, comment="#", header_in_comment=True):
            yield _last_online_fallback(ParsedBatch(rename_to_fields(frame, self.CSV, constants=self.CONSTANTS),
                                                    bad, notes))


def _last_online_fallback(parsed: ParsedBatch) -> ParsedBatch:
    """An entry without ``first_seen`` is dated by its ``last_online`` day (as IntelMQ does), and
    the run's notes say how many were."""
    frame = parsed.frame
    if frame.is_empty() or "extra.last_online" not in frame.columns:
        return parsed
    seen = pl.col("time.source") if "time.source" in frame.columns else pl.lit(None, pl.String)
    used = frame.select((seen.is_null() & pl.col("extra.last_online").is_not_null()).sum()).item()
    if used:
        parsed.frame = frame.with_columns(pl.coalesce(seen, pl.col("extra.last_online")).alias("time.source"))
        parsed.notes = [*parsed.notes, _("{n} entr(y/ies) without first_seen: dated by last_online").format(n=used)]
    return parsed


def objects_frame(items: list, numbers: list[int] | None = None, first: int = 1,
                  ) -> tuple[pl.DataFrame, list[BadRecord]]:
    """String columns from a list of JSON objects, numbered from ``first`` (or by ``numbers``);
    an item that is not an object becomes a :class:`BadRecord`."""
    objs, nums, bad = [], [], []
    for i, item in enumerate(items):
        n = numbers[i] if numbers else first + i
        if isinstance(item, dict):
            objs.append(item)
            nums.append(n)
        else:
            bad.append(BadRecord(n, _("a JSON object was expected"), str(item)[:RAW_KEEP]))
    return records_frame(objs, nums), bad


def _objects_batch(items: list, mapping: dict[str, str], constants: dict[str, str],
                   numbers: list[int] | None = None) -> ParsedBatch:
    frame, bad = objects_frame(items, numbers)
    notes = [] if frame.height or bad else [_("the file has no data rows")]
    return ParsedBatch(rename_to_fields(frame, mapping, constants=constants), bad, notes)


class ThreatFoxParser:
    name = "threatfox"
    description = "abuse.ch ThreatFox: IOCs (JSON export or API answer); hash IOCs are quarantined"
    MAPPING = {"first_seen_utc": "time.source", "first_seen": "time.source", "malware": "malware.name",
               "malware_printable": "extra.malware_printable", "threat_type": "extra.threat_type",
               "confidence_level": "extra.confidence_level", "reference": "extra.reference", "tags": "extra.tags",
               "ioc_value": "extra.ioc_value", "ioc": "extra.ioc_value", "ioc_type": "extra.ioc_type",
               "id": "extra.threatfox_id", "reporter": "extra.reporter"}

    def parse(self, source: Source) -> Iterator[ParsedBatch]:
        data = load_json_document(source)
        if data is None:
            yield ParsedBatch(records_frame([], []), [], [_("the file is empty")])
            return
        if isinstance(data, dict) and "data" in data and isinstance(data["data"], list):
            items, nums = data["data"], None
        elif isinstance(data, dict):
            # The export: {"<id>": [ {...} ], ...}
            items, nums = [], []
            for key, value in data.items():
                for obj in value if isinstance(value, list) else [value]:
                    if isinstance(obj, dict):
                        obj = {"id": key, **obj}
                    items.append(obj)
                    nums.append(len(items))
        elif isinstance(data, list):
            items, nums = data, None
        else:
            raise Invalid("file", _("a ThreatFox document is an object or a list of objects"))
        b = _objects_batch(items, self.MAPPING, {"feed.name": "threatfox", "feed.provider": PROVIDER,
                                                 "classification.identifier": "threatfox"}, nums)
        b.frame = _split_ioc(b.frame)
        yield b


def _split_ioc(frame: pl.DataFrame) -> pl.DataFrame:
    """ThreatFox's ``ioc_value`` by ``ioc_type`` -> source.ip/port, source.fqdn or source.url;
    ``threat_type`` -> classification.type."""
    if frame.is_empty() or "extra.ioc_value" not in frame.columns:
        return frame
    t = pl.col("extra.ioc_type").fill_null("")
    v = pl.col("extra.ioc_value")
    ipport = v.str.extract_groups(r"^\[?([0-9A-Fa-f:.]+?)\]?:(\d{1,5})$")
    frame = frame.with_columns(
        pl.when(t == "ip:port").then(ipport.struct.field("1")).otherwise(None).alias("source.ip"),
        pl.when(t == "ip:port").then(ipport.struct.field("2")).otherwise(None).alias("source.port"),
        pl.when(t == "domain").then(v).otherwise(None).alias("source.fqdn"),
        pl.when(t == "url").then(v).otherwise(None).alias("source.url"),
        pl.col("extra.threat_type").fill_null("").replace_strict(
            {"botnet_cc": "c2-server", "payload_delivery": "malware-distribution", "payload": "malware"},
            default="undetermined").alias("classification.type"),
    )
    return frame.select([c for c in frame.columns if c != LINE] + [LINE])
