"""IntelMQ events as JSON lines (the output of IntelMQ's file output bot): interoperability with
IntelMQ users. Harmonisation names map one to one; fields commonwatch does not store as columns
travel in ``extra``; TLP 1.0 ``WHITE`` becomes TLP 2.0 ``CLEAR``."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from commonwatch.events.schema import BY_NAME
from commonwatch.feeds.base import LINE, ParsedBatch, Source
from commonwatch.feeds.common import iter_json_lines


class IntelMQParser:
    name = "intelmq"
    description = "IntelMQ events as JSON lines (file output bot)"

    def parse(self, source: Source) -> Iterator[ParsedBatch]:
        for frame, bad, notes in iter_json_lines(source):
            yield ParsedBatch(intelmq_to_fields(frame), bad, notes)


def intelmq_to_fields(frame: pl.DataFrame) -> pl.DataFrame:
    """IntelMQ keys -> our field names: harmonisation names as they are, ``raw`` dropped (the
    record itself is kept for quarantine), other keys under ``extra.``."""
    exprs = []
    for col in frame.columns:
        if col == LINE or col == "raw":
            continue
        if col in BY_NAME or col.startswith("extra.") or col.startswith("source.") or col.startswith("destination."):
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
