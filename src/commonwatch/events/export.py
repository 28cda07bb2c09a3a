"""Exports of any filtered selection of events: CSV, JSON (array or lines) and IntelMQ JSON lines.

Each export is a stream of text chunks fed by ``EventStore.iter_rows`` (keyset batches), so the
whole selection is never in memory. An export is refused before the first byte when the
selection holds more events than ``settings.events_export_max_rows``, and recorded in the audit
log as one act: who, which filter, which format, how many rows.

Formats:

- ``csv``: one column per field (harmonisation names, ``extra`` as a JSON object), written
  through :func:`commonwatch.exports.write_csv` so cells starting with = + - @ are neutralised.
- ``json``: an array of objects keyed by harmonisation name, ``extra`` an object; ``jsonl``: the
  same objects, one per line.
- ``intelmq``: one IntelMQ event per line, as IntelMQ's file output writes them: only IntelMQ
  harmonisation keys, ``extra`` flattened one level (``extra.<key>``; harmonisation fields the
  store keeps in ``extra``, such as ``source.geolocation.region``, under their own names), times
  ISO 8601 with offset, empty values left out. commonwatch's own fields travel as ``extra.commonwatch.<name>``
  (``extra.commonwatch.event.key``, ``extra.commonwatch.constituent.org_id``, ...), so a
  commonwatch that reads the lines back restores the event. TLP is mapped to the TLP 1.0 values
  IntelMQ accepts: CLEAR -> WHITE, GREEN, AMBER and RED unchanged, and AMBER+STRICT -> RED.
  AMBER+STRICT (the recipient's organisation only) has no TLP 1.0 equal; TLP 1.0 AMBER also
  allows the recipient's clients, so mapping to it would widen who may see the event. RED
  never widens it; the exact TLP 2.0 label is kept in ``extra.commonwatch.tlp``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy.engine import Engine, Row
from sqlalchemy.orm import Session

from commonwatch.access import audit
from commonwatch.access.principal import Principal
from commonwatch.clock import ensure_utc
from commonwatch.errors import Invalid
from commonwatch.events import search
from commonwatch.events.schema import FIELDS, INTELMQ_FIELDS
from commonwatch.events.store import EXPORT_COLUMNS, StreamState, event_store, frames_of_rows
from commonwatch.exports import csv_text, frame_csv
from commonwatch.i18n import _

FORMATS: tuple[str, ...] = ("csv", "json", "jsonl", "intelmq")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "intelmq": "application/x-ndjson",
}
EXTENSIONS = {"csv": "csv", "json": "json", "jsonl": "jsonl", "intelmq": "intelmq.jsonl"}
#: TLP 2.0 (stored) -> TLP 1.0 (IntelMQ's harmonisation). See the module docstring for AMBER+STRICT.
INTELMQ_TLP = {"CLEAR": "WHITE", "GREEN": "GREEN", "AMBER": "AMBER", "AMBER+STRICT": "RED", "RED": "RED"}
#: Fields of ours that IntelMQ's harmonisation (3.5) also has, exported under their own names.
_INTELMQ_NATIVE = frozenset({"severity", "tlp"})
OWN_PREFIX = "extra.commonwatch."
CSV_HEADER: tuple[str, ...] = ("id", *(f.name for f in FIELDS))
_CSV_HEADER_TEXT = csv_text(CSV_HEADER, [])
_NAMES = CSV_HEADER
_TIME_NAMES = ("time.source", "time.observation")
#: Rows per frame of a CSV export: large enough that rendering is column by column, small enough
#: that a chunk of text stays a few MB.
CSV_FRAME_ROWS = 50_000


def _iso(value: datetime | None) -> str | None:
    return ensure_utc(value).isoformat() if value is not None else None


def _values(row: Any) -> tuple[Any, ...]:
    """The values of a row of :data:`store.sql.EXPORT_COLUMNS` (or of an ``Event``) in that order."""
    if isinstance(row, Row):
        return tuple(row)
    return tuple(getattr(row, column) for column in EXPORT_COLUMNS)


def event_record(row: Any) -> dict[str, Any]:
    """An event (row of :data:`store.sql.EXPORT_COLUMNS` or an ``Event``) keyed by harmonisation name."""
    out = dict(zip(_NAMES, _values(row), strict=True))
    for name in _TIME_NAMES:
        out[name] = _iso(out[name])
    return out


def intelmq_record(row: Any) -> dict[str, Any]:
    """An event as IntelMQ writes one: harmonisation keys, ``extra.*`` flattened, TLP 1.0."""
    out: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for f, value in zip(FIELDS, _values(row)[1:], strict=True):
        if value is None or value == "":
            continue  # IntelMQ drops empty values; leaving them out keeps the lines canonical
        if isinstance(value, datetime):
            value = _iso(value)
        if f.name == "extra":
            for key, item in intelmq_extra(value):
                out.setdefault(key, item)
        elif f.name == "tlp":
            out["tlp"] = INTELMQ_TLP[value]
            own["tlp"] = value
        elif f.intelmq or f.name in _INTELMQ_NATIVE:
            out[f.name] = value
        else:
            own[f.name] = value
    for name, value in own.items():
        out[OWN_PREFIX + name] = value
    return out


def intelmq_extra(extra: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """``extra`` as IntelMQ keys: harmonisation fields kept in ``extra`` under their own names,
    the rest as ``extra.<key>``; empty values left out, as IntelMQ leaves them out."""
    for key, value in extra.items():
        if value is None or value == "":
            continue
        yield (key if key in INTELMQ_FIELDS else f"extra.{key}"), value


def csv_cells(frame: pl.DataFrame) -> pl.DataFrame:
    """A frame of :meth:`EventStore.iter_frames` as the CSV export's cells: times in ISO 8601 with
    their offset (as ``datetime.isoformat`` writes them), ``constituent.cii`` true or false."""
    def iso(name: str) -> pl.Expr:
        t = pl.col(name).dt.convert_time_zone("UTC")
        return (pl.when(t.dt.microsecond() == 0).then(t.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
                .otherwise(t.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")).alias(name))

    return frame.with_columns(iso("time_source"), iso("time_observation"),
                              pl.when(pl.col("constituent_cii")).then(pl.lit("true"))
                              .otherwise(pl.lit("false")).alias("constituent_cii"))


def render_csv(frames: Iterable[pl.DataFrame]) -> Iterator[str]:
    """The CSV export: the header, then one chunk of text per frame, rendered column by column;
    every text cell through the formula guard (:func:`commonwatch.exports.frame_csv`)."""
    yield _CSV_HEADER_TEXT
    for frame in frames:
        yield frame_csv(csv_cells(frame.select(EXPORT_COLUMNS)))


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def render(fmt: str, rows: Iterable[Any], chunk_rows: int = 2000) -> Iterator[str]:
    """The text of an export, in chunks of about ``chunk_rows`` events."""
    if fmt == "csv":
        yield from render_csv(frames_of_rows(rows, chunk_rows))
    elif fmt == "json":
        yield "["
        first = True
        for batch in _chunks(rows, chunk_rows):
            text = ",\n".join(_dumps(event_record(r)) for r in batch)
            yield ("\n" if first else ",\n") + text
            first = False
        yield "\n]\n" if not first else "]\n"
    elif fmt in ("jsonl", "intelmq"):
        to_record: Callable[[Any], dict[str, Any]] = event_record if fmt == "jsonl" else intelmq_record
        for batch in _chunks(rows, chunk_rows):
            yield "".join(_dumps(to_record(r)) + "\n" for r in batch)
    else:
        raise Invalid("format", _("“{value}” is not one of: {choices}").format(value=fmt,
                                                                             choices=", ".join(FORMATS)))


def check_format(fmt: str) -> str:
    text = (fmt or "").strip().lower()
    if text not in FORMATS:
        raise Invalid("format", _("“{value}” is not one of: {choices}").format(value=fmt,
                                                                             choices=", ".join(FORMATS)))
    return text


@dataclass
class Prepared:
    """An export that passed its checks and is recorded; :meth:`stream` produces it."""

    engine: Engine
    principal: Principal
    filter: search.EventFilter
    format: str
    rows: int  # events in the selection when the export was recorded
    up_to_id: int  # the selection is frozen there: events stored later are not in this export

    def stream(self, state: StreamState | None = None) -> Iterator[str]:
        store = event_store(self.engine)
        if self.format == "csv":
            return render_csv(store.iter_frames(self.principal, self.filter, max_rows=self.rows,
                                                batch=CSV_FRAME_ROWS, up_to_id=self.up_to_id, state=state))
        rows = store.iter_rows(self.principal, self.filter, max_rows=self.rows, up_to_id=self.up_to_id,
                               state=state)
        return render(self.format, rows)

    def filename(self, now: datetime) -> str:
        return f"events-{ensure_utc(now):%Y%m%dT%H%M%SZ}.{EXTENSIONS[self.format]}"


def prepare(session: Session, engine: Engine, principal: Principal, f: search.EventFilter, fmt: str, *,
            max_rows: int) -> Prepared:
    """Check the size of the selection and record the export in the audit log (one act).

    The record is written before the first byte leaves, so an export cut short is still on file.
    The selection is frozen at its highest id, so the stream holds exactly the events counted
    (less any deleted meanwhile), however many arrive during a long download.
    """
    fmt = check_format(fmt)
    store = event_store(session)
    up_to_id = store.latest_id(principal, f)
    n, within = store.count_capped(principal, f, cap=max_rows, up_to_id=up_to_id)
    if not within:
        raise Invalid("limit", _("the selection holds more than {max} events, the export limit; "
                                 "narrow the filters (for example the time range)").format(max=f"{max_rows:,}"))
    audit.record(session, "export", "events", "",
                 after={"format": fmt, "filter": f.as_params(), "rows": n})
    return Prepared(engine, principal, f, fmt, n, up_to_id)
