"""IntelMQ events as JSON lines (the output of IntelMQ's file output bot) or as one JSON array of
events: interoperability with IntelMQ users. Harmonisation names map one to one; fields
commonwatch does not store as columns travel in ``extra``; TLP 1.0 ``WHITE`` becomes TLP 2.0
``CLEAR``. IntelMQ requires no ``time.source``: an event without one takes its
``time.observation``, and the run's notes say how many did."""

from __future__ import annotations

import io
from collections.abc import Iterator

import polars as pl

from commonwatch.errors import Invalid
from commonwatch.events.schema import BY_NAME, INTELMQ_FIELDS
from commonwatch.feeds.abusech import json_start, objects_frame
from commonwatch.feeds.base import LINE, ParsedBatch, Source
from commonwatch.feeds.common import batch_rows_setting, iter_json_lines, load_json_document, records_frame
from commonwatch.i18n import _

#: Keys of an IntelMQ message that are not event data: the message type and the raw record.
NOT_FIELDS = frozenset({"raw", "__type"})


class IntelMQParser:
    name = "intelmq"
    description = "IntelMQ events as JSON lines (file output bot) or a JSON array of events"

    def parse(self, source: Source) -> Iterator[ParsedBatch]:
        if json_start(source) == b"[":
            yield from self._parse_array(source)
            return
        for frame, bad, notes in iter_json_lines(source):
            yield _with_time_fallback(ParsedBatch(intelmq_to_fields(frame), bad, notes))

    def _parse_array(self, source: Source) -> Iterator[ParsedBatch]:
        raw = source.stream.read()
        try:
            data = load_json_document(_again(source, raw))
        except Invalid:
            # Not one JSON document: JSON lines whose first line is broken. Read line by line,
            # so every line is an event or a quarantined record with its reason.
            data = None
        if not isinstance(data, list):
            for frame, bad, notes in iter_json_lines(_again(source, raw)):
                yield _with_time_fallback(ParsedBatch(intelmq_to_fields(frame), bad, notes))
            return
        if not data:
            yield ParsedBatch(intelmq_to_fields(records_frame([], [])), [], [_("the file has no data rows")])
            return
        step = batch_rows_setting()
        for start in range(0, len(data), step):
            frame, bad = objects_frame(data[start:start + step], first=start + 1)
            yield _with_time_fallback(ParsedBatch(intelmq_to_fields(frame), bad, []))


def _again(source: Source, raw: bytes) -> Source:
    """The same document, to be read once more."""
    return Source(source.name, io.BufferedReader(io.BytesIO(raw)), source.fetched_at, len(raw))


def intelmq_to_fields(frame: pl.DataFrame) -> pl.DataFrame:
    """IntelMQ keys -> our field names: harmonisation names as they are, ``raw`` and ``__type``
    dropped (the record itself is kept for quarantine), other keys under ``extra.``."""
    exprs = []
    for col in frame.columns:
        if col == LINE or col in NOT_FIELDS:
            continue
        if col in BY_NAME or col in INTELMQ_FIELDS or col.startswith(("extra.", "source.", "destination.")):
            target = col
        elif col == "tlp":
            exprs.append(pl.col(col).str.to_uppercase().str.replace("^TLP:", "").replace({"WHITE": "CLEAR"})
                         .alias("tlp"))
            continue
        else:
            target = "extra." + col
        exprs.append(pl.col(col).alias(target))
    if "feed.name" not in frame.columns:
        exprs.append(pl.lit("intelmq").alias("feed.name"))
    return frame.select([*exprs, pl.col(LINE)])


def _with_time_fallback(parsed: ParsedBatch) -> ParsedBatch:
    """``time.observation`` stands in for a missing ``time.source`` (IntelMQ requires neither)."""
    frame = parsed.frame
    if frame.is_empty() or "time.observation" not in frame.columns:
        return parsed
    source = pl.col("time.source") if "time.source" in frame.columns else pl.lit(None, pl.String)
    missing = source.is_null() | (source.str.strip_chars() == "")
    used = frame.select((missing & pl.col("time.observation").is_not_null()).sum()).item()
    if not used:
        return parsed
    parsed.frame = frame.with_columns(pl.when(missing).then(pl.col("time.observation")).otherwise(source)
                                      .alias("time.source"))
    parsed.notes = [*parsed.notes, _("{n} event(s) without time.source: their time.observation was used").format(
        n=used)]
    return parsed
