"""The pipeline's stages: pure functions from a columnar batch to a columnar batch.

normalise -> validate -> key and deduplicate -> enrich -> match -> classify, then the store
(``pipeline.store``) writes. The in-process runner and the RabbitMQ workers call the same
:func:`process_batch`. Every stage works on whole columns (Polars expressions, NumPy); nothing
loops in Python per event except the one call that computes each event's cryptographic key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import idna
import numpy as np
import polars as pl

from commonwatch.constituency.index import ConstituencyIndex, IpColumns, match_constituents, parse_ips
from commonwatch.enrichment.services import EnrichmentIndex, enrich
from commonwatch.events.schema import BY_NAME, FIELDS, INTELMQ_FIELDS, TLP_LABELS
from commonwatch.events.taxonomy import Taxonomy, classify
from commonwatch.feeds.base import LINE, ParsedBatch
from commonwatch.i18n import _
from commonwatch.textio import CONTROL

#: Fields that make up an observation's identity (with the time bucket) -> ``event.key``.
KEY_FIELDS = ("feed.name", "source.ip", "source.port", "source.fqdn", "source.url", "destination.ip",
              "destination.port", "protocol.transport", "protocol.application", "classification.type",
              "classification.identifier", "malware.name")
#: String columns with a length limit in the store, and the URL limit we choose.
MAX_LEN = {"feed.name": 100, "feed.provider": 100, "source.as_name": 200, "source.fqdn": 253,
           "source.reverse_dns": 253, "destination.fqdn": 253, "protocol.transport": 16,
           "protocol.application": 64, "classification.type": 64, "classification.identifier": 200,
           "malware.name": 200, "source.url": 8192}
MAX_EXTRA_CHARS = 256 * 1024
EARLIEST = datetime(1990, 1, 1)
_NAIVE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f",
                  "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S UTC", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d/%m/%Y %H:%M:%S")
_TZ_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M:%S%.f%z",
               "%Y-%m-%dT%H:%M:%S%.fZ", "%Y-%m-%dT%H:%M:%SZ")
_URL_HOST = r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/?#]*@)?(\[[^\]]+\]|[^:/?#\[\]]+)"
_FQDN_OK = r"^(?:[a-z0-9](?:[a-z0-9\-_]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9\-]{0,62}$"
STORE_COLUMNS = [f.name for f in FIELDS]
TIME_TYPE = pl.Datetime("us", "UTC")


@dataclass
class References:
    """What the stages consult: the constituency index, enrichment ranges and the taxonomy."""

    index: ConstituencyIndex
    enrichment: EnrichmentIndex
    taxonomy: Taxonomy


@dataclass(frozen=True)
class Params:
    now: datetime  # for "in the future" and as time.observation when the feed gives none
    dedup_window: timedelta = timedelta(days=1)  # same observation within one window = one event
    future_tolerance: timedelta = timedelta(hours=1)
    default_tlp: str = "AMBER"


@dataclass
class Processed:
    events: pl.DataFrame  # columns named by harmonisation names, typed, ready to store
    quarantine: pl.DataFrame  # line, reason, raw
    rows_in: int
    duplicates_in_batch: int
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


# --- normalise ------------------------------------------------------------------------------------------

#: ISO 8601 date-times with a zone, in the spellings the formats above miss: basic format
#: (``20261124T081000``), a comma before the fraction, minutes without seconds, ``Z``/``UTC``/``GMT``
#: after a space, and the offsets ``+08``, ``+0800``, ``+08:00`` (with or without a space before
#: them, as Shadowserver and abuse.ch exports write them; U+2212 as the minus sign too).
_ISO_ANY = (r"^(\d{4})-?(\d{2})-?(\d{2})[T ](\d{2}):?(\d{2})(?::?(\d{2}))?(?:[.,](\d+))?\s*"
            r"(?:(?i:(Z|UTC|GMT))|([+\-\x{2212}])(\d{2}):?(\d{2})?)$")
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%:z"
_HOUR_OFFSET = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?[+-]\d{2}$"
#: Values whose spelling decides the order in which the formats are tried.
_TIME_SAMPLE = 256


def iso_time_text(text: pl.Expr) -> pl.Expr:
    """Any ISO 8601 date-time spelling with a zone (and the feeds' variants of it) rewritten to
    ``YYYY-MM-DDTHH:MM:SS.f+HH:MM``: one regex pass and a concatenation (Polars kernels, no Python
    per value); null where the text is not such a spelling."""
    g = text.str.extract_groups(_ISO_ANY)

    def part(i: int) -> pl.Expr:
        return g.struct.field(str(i))

    sign = part(9).str.replace("\u2212", "-", literal=True)
    zone = pl.when(part(8).is_not_null()).then(pl.lit("+00:00")).otherwise(
        pl.concat_str([sign, part(10), pl.lit(":"), part(11).fill_null("00")]))
    return pl.concat_str([part(1), pl.lit("-"), part(2), pl.lit("-"), part(3), pl.lit("T"), part(4), pl.lit(":"),
                          part(5), pl.lit(":"), part(6).fill_null("00"), pl.lit("."),
                          part(7).fill_null("0").str.slice(0, 9), zone])


def _time_parsers(text: pl.Expr) -> list[pl.Expr]:
    exprs = [text.str.to_datetime(f, strict=False, time_unit="us").dt.replace_time_zone("UTC")
             for f in _NAIVE_FORMATS]
    exprs += [text.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC") for f in _TZ_FORMATS]
    exprs.append(pl.when(text.str.contains(r"^\d{9,10}(?:\.\d+)?$")).then(
        (text.cast(pl.Float64, strict=False) * 1_000_000).cast(pl.Int64).cast(TIME_TYPE)))
    # Last, so a feed's usual spelling never pays for the rewrite.
    # An hour-only offset (``+08``, Shadowserver's and PostgreSQL's spelling) is common enough for
    # a fast path of its own: two zeros make it ``+0800``.
    hour_offset = pl.when(text.str.contains(_HOUR_OFFSET)).then(text + "00")
    exprs += [hour_offset.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC")
              for f in ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z")]
    exprs.append(iso_time_text(text).str.to_datetime(_ISO_FORMAT, strict=False, time_unit="us", time_zone="UTC"))
    return exprs


def parse_times(col: pl.Expr) -> pl.Expr:
    """A string column of timestamps in the spellings feeds use -> UTC datetimes (null if none fits)."""
    return pl.coalesce(_time_parsers(col.str.strip_chars()))


def parse_time_series(values: pl.Series) -> pl.Series:
    """Like :func:`parse_times`, but a feed's one format costs one pass: the formats are tried
    in the order that suits the first values (a sample), each further one only on the values the
    earlier ones left unparsed."""
    text = values.str.strip_chars()
    frame = pl.DataFrame({"t": text})
    parsers = _time_parsers(pl.col("t"))
    sample = frame.filter(pl.col("t").is_not_null()).head(_TIME_SAMPLE)
    if sample.height:
        hits = sample.select([p.is_not_null().sum().alias(str(i)) for i, p in enumerate(parsers)]).row(0)
        # Stable: formats that read equally many sample values keep their order.
        parsers = [p for _hits, _i, p in sorted(zip(hits, range(len(parsers)), parsers, strict=True),
                                                key=lambda t: -t[0])]
    out = pl.Series("t", [None] * len(text), dtype=TIME_TYPE)
    todo = np.arange(len(text))
    for parser in parsers:
        if len(todo) == 0:
            break
        part = frame[todo].select(parser.alias("p"))["p"]
        ok = part.is_not_null().to_numpy()
        if ok.any():
            out = out.scatter(todo[ok], part.filter(pl.Series(ok)))
        todo = todo[~ok]
        if len(todo) and frame[todo]["t"].is_null().all():
            break
    return out


#: Control characters no event field keeps (C0 but tab, line feed and carriage return; DEL; C1):
#: PostgreSQL cannot store NUL, and the others hide text from the analyst reading it.
_CONTROL = CONTROL  # the one definition, commonwatch.textio
#: In a field the store has a column for, tab and line breaks are not text either.
_CONTROL_IN_COLUMN = r"[\x00-\x1f\x7f-\x9f]"


def strip_control_chars(frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """Control characters removed from every text field (columnar); returns the frame and, per
    field, how many values held one, so the run's notes can say what was changed."""
    found: dict[str, int] = {}
    fixes = []
    patterns = {name: _CONTROL_IN_COLUMN if name in BY_NAME else _CONTROL
                for name, dtype in frame.schema.items() if dtype == pl.String and not name.startswith("_")}
    if not patterns:
        return frame, found
    # All columns counted in one select, so Polars spreads them over its threads.
    counts = frame.select([pl.col(name).str.contains(pattern).sum().alias(name)
                           for name, pattern in patterns.items()]).row(0, named=True)
    for name, pattern in patterns.items():
        if counts[name]:
            found[name] = int(counts[name])
            fixes.append(pl.col(name).str.replace_all(pattern, ""))
    return (frame.with_columns(fixes) if fixes else frame), found


def control_chars_note(found: dict[str, int]) -> str:
    """The run's note for :func:`strip_control_chars`: which fields, how many values."""
    return _("control characters (NUL and the like) were removed from {n} value(s) in {fields}").format(
        n=sum(found.values()), fields=", ".join(sorted(found)))


def _blank_to_null(frame: pl.DataFrame) -> pl.DataFrame:
    cols = [c for c, t in frame.schema.items() if t == pl.String]
    # One strip per column (``replace`` turns the emptied values into nulls): half the work of
    # stripping once to test and once more to keep.
    return frame.with_columns([pl.col(c).str.strip_chars().replace("", None).alias(c) for c in cols])


def _idna(values: pl.Series) -> pl.Series:
    """IDNA (UTS 46) for the non-ASCII names, one unique name at a time; invalid -> marker."""
    def convert(v: str) -> str:
        try:
            return idna.encode(v, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return "\x00invalid"
    return values.map_elements(convert, return_dtype=pl.String)


def normalise(frame: pl.DataFrame, params: Params) -> tuple[pl.DataFrame, IpColumns]:
    """Types, UTC times, addresses, URL -> host split, IDNA. Adds ``_time_raw`` and the parse
    flags validate needs; every field of the event schema exists afterwards."""
    frame = _blank_to_null(frame)
    for name in (*KEY_FIELDS, "source.asn", "time.source", "time.observation", "source.geolocation.cc", "tlp"):
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(name))
    # Host of a URL: an address fills source.ip, a name fills source.fqdn (unless the feed gave them).
    url = pl.col("source.url")
    url_full = pl.when(url.str.contains(r"^[A-Za-z][A-Za-z0-9+.\-]*://")).then(url).otherwise(pl.lit("http://") + url)
    host = url_full.str.extract(_URL_HOST, 1).str.strip_chars("[]").str.to_lowercase()
    host_is_ip = host.str.contains(r"^[0-9.]+$|:")
    frame = frame.with_columns(
        pl.col("source.ip").fill_null(pl.when(host_is_ip).then(host)),
        pl.col("source.fqdn").fill_null(pl.when(~host_is_ip).then(host)),
    )
    ips = parse_ips(frame["source.ip"])
    dst = parse_ips(frame["destination.ip"])
    fqdn = frame["source.fqdn"].str.to_lowercase().str.strip_chars_end(".")
    ascii_mask = fqdn.str.contains(r"^[\x00-\x7f]*$").fill_null(True)
    if not ascii_mask.all():
        non_ascii = fqdn.filter(~ascii_mask).unique()
        converted = _idna(non_ascii)
        fqdn = fqdn.replace_strict(non_ascii, converted, default=fqdn)
    asn_text = pl.col("source.asn").str.replace(r"^(?i:as)\s*", "")
    port_num = pl.col("source.port").cast(pl.Int64, strict=False)
    dport_num = pl.col("destination.port").cast(pl.Int64, strict=False)
    cc = pl.col("source.geolocation.cc").str.to_uppercase()
    tlp = (pl.col("tlp").str.to_uppercase().str.replace(r"^TLP:", "").replace({"WHITE": "CLEAR"})
           .fill_null(params.default_tlp))
    frame = frame.with_columns(
        pl.col("time.source").alias("_time_raw"),
        parse_time_series(frame["time.source"]).alias("time.source"),
        parse_time_series(frame["time.observation"]).fill_null(pl.lit(params.now).cast(TIME_TYPE))
        .alias("time.observation"),
        ips.text.alias("source.ip"), ips.ip4.alias("_ip4"), ips.key.alias("_ip_key"),
        (~ips.valid).alias("_ip_bad"),
        dst.text.alias("destination.ip"), (~dst.valid).alias("_dst_bad"),
        port_num.alias("_port"), dport_num.alias("_dport"),
        (pl.col("source.port").is_not_null() & (port_num.is_null() | (port_num < 0) | (port_num > 65535)))
        .alias("_port_bad"),
        fqdn.alias("source.fqdn"),
        asn_text.cast(pl.Int64, strict=False).alias("source.asn"),
        pl.when(cc.str.contains(r"^[A-Z]{2}$")).then(cc).otherwise(None).alias("source.geolocation.cc"),
        pl.col("classification.type").str.to_lowercase(),
        pl.col("malware.name").str.to_lowercase(),
        pl.when(tlp.is_in(list(TLP_LABELS))).then(tlp).otherwise(pl.lit(params.default_tlp)).alias("tlp"),
    )
    frame = frame.with_columns(
        pl.when(pl.col("_port").is_between(0, 65535)).then(pl.col("_port")).otherwise(None)
        .cast(pl.Int32).alias("source.port"),
        pl.when(pl.col("_dport").is_between(0, 65535)).then(pl.col("_dport")).otherwise(None)
        .cast(pl.Int32).alias("destination.port"),
        (pl.col("source.fqdn").is_not_null() & ~pl.col("source.fqdn").str.contains(_FQDN_OK))
        .alias("_fqdn_bad"),
    )
    return frame, ips


# --- validate -------------------------------------------------------------------------------------------

def reasons(frame: pl.DataFrame, params: Params) -> pl.Expr:
    """The first reason each row cannot be an event, or null."""
    t = pl.col("time.source")
    future = pl.lit(params.now + params.future_tolerance).cast(TIME_TYPE)
    checks: list[tuple[pl.Expr, pl.Expr]] = [
        (pl.col("_time_raw").is_null(), pl.lit(_("time.source is missing"))),
        (t.is_null(), pl.format(_("time.source “{}” is not a date and time in a known format"),
                                pl.col("_time_raw").str.slice(0, 80))),
        (t > future, pl.format(_("time.source {} is in the future"), pl.col("_time_raw").str.slice(0, 80))),
        (t < pl.lit(EARLIEST).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
         pl.format(_("time.source {} is before 1990"), pl.col("_time_raw").str.slice(0, 80))),
        (pl.col("_ip_bad"), pl.lit(_("source.ip is not an IPv4 or IPv6 address"))),
        (pl.col("_dst_bad"), pl.lit(_("destination.ip is not an IPv4 or IPv6 address"))),
        (pl.col("_port_bad"), pl.lit(_("source.port is not a port number (0-65535)"))),
        (pl.col("_fqdn_bad"), pl.lit(_("source.fqdn is not a valid host name"))),
        (pl.col("source.ip").is_null() & pl.col("source.fqdn").is_null() & pl.col("source.url").is_null(),
         pl.lit(_("no source.ip, source.fqdn or source.url: nothing to warn anyone about"))),
    ]
    for name, limit in MAX_LEN.items():
        if name in frame.columns:
            checks.append((pl.col(name).str.len_chars() > limit,
                           pl.lit(_("{field} is longer than {limit} characters").format(field=name, limit=limit))))
    expr: pl.Expr = pl.lit(None, pl.String)
    for cond, message in reversed(checks):
        expr = pl.when(cond.fill_null(False)).then(message).otherwise(expr)
    return expr


# --- extra, key -----------------------------------------------------------------------------------------

def extra_json(frame: pl.DataFrame) -> pl.Expr:
    """Fields that are not columns of the store, as one JSON object (``extra.`` prefix removed)."""
    names = [c for c in frame.columns if not c.startswith("_") and c != LINE and c not in BY_NAME
             and (c.startswith("extra.") or "." in c or c in INTELMQ_FIELDS)]
    if not names:
        return pl.lit(None, pl.String)
    fields = [pl.col(c).cast(pl.String).alias(c.removeprefix("extra.")) for c in names]
    return (pl.when(pl.any_horizontal([pl.col(c).is_not_null() for c in names]))
            .then(pl.struct(fields).struct.json_encode()).otherwise(None))


def event_keys(frame: pl.DataFrame, window: timedelta) -> pl.Series:
    """``event.key``: BLAKE2b-128 of the observation's identity and its time window, hex.

    The same observation seen again within one window (Shadowserver repeats a host daily)
    yields the same key, so it is stored once; the same input always yields the same keys, which
    makes re-ingest and crash recovery idempotent.
    """
    t = pl.col("time.source")
    bucket = t.dt.truncate(f"{int(window.total_seconds())}s") if window.total_seconds() >= 1 else t
    parts = [pl.col(c).cast(pl.String).fill_null("") for c in KEY_FIELDS] + \
            [bucket.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")]
    # As UTF-8 bytes from Polars (the same bytes ``str.encode`` gives), so Python encodes nothing.
    joined = frame.select(pl.concat_str(parts, separator="\x1f").cast(pl.Binary).alias("k"))["k"].to_list()
    blake = hashlib.blake2b
    # The one per-row call of the pipeline: a stable, collision-resistant key; Polars' own hash
    # is not promised to stay the same across versions, and a changed key would store twice.
    return pl.Series("event.key", [blake(b, digest_size=16).hexdigest() for b in joined], dtype=pl.String)


# --- the whole batch -----------------------------------------------------------------------------------

def process_batch(parsed: ParsedBatch, refs: References, params: Params, timer=None) -> Processed:
    """Run every stage on one parsed batch. Pure: the same batch and references give the same result."""
    import time as _time

    timings: dict[str, float] = {}
    clock = timer or _time.perf_counter

    def lap(name: str, start: float) -> float:
        now = clock()
        timings[name] = timings.get(name, 0.0) + now - start
        return now

    raw = parsed.frame
    rows_in = raw.height + len(parsed.bad)
    bad_rows = pl.DataFrame({"line": [b.line for b in parsed.bad], "reason": [b.reason for b in parsed.bad],
                             "raw": [b.raw for b in parsed.bad]},
                            schema={"line": pl.Int64, "reason": pl.String, "raw": pl.String})
    # A quarantined record is kept as it was, but NUL cannot be stored: shown as U+FFFD.
    bad_rows = bad_rows.with_columns(pl.col("raw").str.replace_all("\x00", "\ufffd", literal=True))
    notes = list(parsed.notes)
    if raw.is_empty():
        return Processed(_empty_events(), bad_rows, rows_in, 0, notes, timings)
    t0 = clock()
    raw, controls = strip_control_chars(raw)
    if controls:
        notes.append(control_chars_note(controls))
    raw = raw.with_row_index("_row")
    frame, _ips = normalise(raw, params)
    t0 = lap("normalise", t0)
    frame = frame.with_columns(reasons(frame, params).alias("_reason"), extra_json(frame).alias("_extra"))
    frame = frame.with_columns(
        pl.when(pl.col("_reason").is_null() & (pl.col("_extra").str.len_chars() > MAX_EXTRA_CHARS))
        .then(pl.lit(_("the record is larger than {limit} characters").format(limit=MAX_EXTRA_CHARS)))
        .otherwise(pl.col("_reason")).alias("_reason"))
    failed = frame.filter(pl.col("_reason").is_not_null()).select("_row", "_reason")
    if failed.height:
        originals = raw.join(failed, on="_row").sort("_row")
        data_cols = [c for c in originals.columns if c not in ("_row", "_reason", LINE)]
        bad_rows = pl.concat([bad_rows, originals.select(
            pl.col(LINE).alias("line"), pl.col("_reason").alias("reason"),
            pl.struct(data_cols).struct.json_encode().str.slice(0, 65536).alias("raw"))])
    good = frame.filter(pl.col("_reason").is_null())
    t0 = lap("validate", t0)
    good = good.with_columns(event_keys(good, params.dedup_window).alias("event.key"))
    before = good.height
    good = good.unique(subset="event.key", keep="first", maintain_order=True)
    dups = before - good.height
    t0 = lap("deduplicate", t0)
    ips = IpColumns(good["_ip4"], _ip6_rows(good), good["_ip_key"], good["source.ip"],
                    pl.Series([True] * good.height))
    good = enrich(good, refs.enrichment, ips)
    t0 = lap("enrich", t0)
    good = match_constituents(good, refs.index, ips.ip4, ips.ip6)
    t0 = lap("match", t0)
    good = classify(good, refs.taxonomy)
    t0 = lap("classify", t0)
    events = _to_store_frame(good)
    lap("shape", t0)
    return Processed(events, bad_rows, rows_in, dups, notes, timings)


def _ip6_rows(frame: pl.DataFrame) -> dict[int, int]:
    """Row -> IPv6 address as an int, for the (few) rows with an IPv6 source."""
    mask = frame["_ip4"].is_null() & frame["_ip_key"].is_not_null()
    if not mask.any():
        return {}
    rows = np.flatnonzero(mask.to_numpy())
    keys = frame["_ip_key"].gather(rows).to_list()
    return {int(r): int.from_bytes(k, "big") for r, k in zip(rows, keys, strict=True)}


def _to_store_frame(good: pl.DataFrame) -> pl.DataFrame:
    cols = []
    for f in FIELDS:
        if f.name == "extra":
            cols.append(pl.col("_extra").alias("extra"))
        elif f.name in good.columns:
            cols.append(pl.col(f.name).cast(f.dtype).alias(f.name))
        else:
            cols.append(pl.lit(None, f.dtype).alias(f.name))
    cols.append(pl.col("_ip_key").alias("source.ip_bin"))
    return good.select(cols).with_columns(
        pl.col("feed.provider").fill_null(""), pl.col("classification.taxonomy").fill_null("other"),
        pl.col("constituent.cii").fill_null(False))


def _empty_events() -> pl.DataFrame:
    schema = {f.name: f.dtype for f in FIELDS} | {"source.ip_bin": pl.Binary}
    return pl.DataFrame(schema=schema)
