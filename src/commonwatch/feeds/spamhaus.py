"""Spamhaus DROP and EDROP: netblocks "hijacked or leased by professional spam or cyber-crime
operations". Both the classic text lists (``CIDR ; SBLnnn``) and the JSON-lines form are read.

The event carries the network's first address as ``source.ip`` (so the matcher finds the
constituent) and the whole block as ``extra.source.network``. The lists carry no time per entry:
``time.source`` is the list's own date (the text list's ``Last-Modified`` comment, the JSON
form's ``metadata`` timestamp), as IntelMQ dates them; only a list without one is dated by the
fetch, and the run's notes say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import polars as pl

from commonwatch.feeds.base import LINE, ParsedBatch, Source
from commonwatch.feeds.common import ReadState, iter_json_lines, iter_text_blocks, rename_to_fields
from commonwatch.i18n import _

_LAST_MODIFIED = re.compile(r"^;\s*Last-Modified:\s*(.+?)\s*$", re.IGNORECASE)


def last_modified(comments: list[str]) -> datetime | None:
    """The date of a ``; Last-Modified: <RFC 7231 date>`` comment line, if one parses."""
    for line in comments:
        m = _LAST_MODIFIED.match(line.strip())
        if m:
            try:
                when = parsedate_to_datetime(m.group(1))
            except (TypeError, ValueError):
                return None
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


class SpamhausParser:
    description_fmt = "Spamhaus {list}: netblocks of spam and cyber-crime operations"

    def __init__(self, which: str):
        self.which = which  # drop | edrop
        self.name = f"spamhaus-{which}"
        self.description = self.description_fmt.format(list=which.upper())

    def _constants(self) -> dict[str, str]:
        return {"feed.name": self.name, "feed.provider": "Spamhaus", "classification.type": "blacklist",
                "classification.identifier": self.name}

    def _fetch_dated(self, source: Source) -> tuple[str, str]:
        return source.fetched_at.isoformat(), _("the list gives no date of its own: dated by the fetch")

    def parse(self, source: Source) -> Iterator[ParsedBatch]:
        head = source.stream.peek(64)[:64] if hasattr(source.stream, "peek") else b""
        if head.lstrip().startswith(b"{"):
            yield from self._parse_json_lines(source)
            return
        yield from self._parse_text(source)

    def _parse_json_lines(self, source: Source) -> Iterator[ParsedBatch]:
        # The metadata record (with the list's timestamp) is the last line: the list is small
        # (about a thousand blocks), so its batches are held until the date is known.
        held: list[ParsedBatch] = []
        stamp: str | None = None
        for frame, bad, notes in iter_json_lines(source):
            if "type" in frame.columns and "timestamp" in frame.columns:
                meta = frame.filter(pl.col("type") == "metadata")["timestamp"].drop_nulls()
                if meta.len():
                    stamp = meta[0]
            frame = frame.filter(pl.col("cidr").is_not_null()) if "cidr" in frame.columns else frame
            out = rename_to_fields(frame, {"cidr": "extra.source.network", "sblid": "extra.sblid",
                                           "rir": "extra.rir", "type": "__drop__", "timestamp": "__drop__"},
                                   constants=self._constants())
            held.append(ParsedBatch(_network_ip(out), bad, notes))
        note = ""
        if stamp is None:
            stamp, note = self._fetch_dated(source)
        for b in held:
            b.frame = b.frame.with_columns(pl.lit(stamp, pl.String).alias("time.source"))
        if note and held:
            held[0].notes = [note, *held[0].notes]
        yield from held

    def _parse_text(self, source: Source) -> Iterator[ParsedBatch]:
        state = ReadState()
        saw = False
        stamp: str | None = None
        for block in iter_text_blocks(source.stream, state):
            n = pl.int_range(block.first_line, block.first_line + block.lines.len(), eager=True).cast(pl.Int64)
            frame = pl.DataFrame({"line": block.lines, LINE: n})
            is_comment = pl.col("line").str.strip_chars_start().str.starts_with(";")
            notes = list(state.notes)
            state.notes.clear()
            if stamp is None:
                when = last_modified(frame.filter(is_comment)["line"].to_list())
                if when is not None:
                    stamp = when.astimezone(UTC).isoformat()
                else:
                    stamp, note = self._fetch_dated(source)
                    notes.insert(0, note)
            frame = frame.filter((pl.col("line").str.strip_chars() != "") & ~is_comment)
            saw = saw or frame.height > 0
            parts = pl.col("line").str.split_exact(";", 1)
            frame = frame.with_columns(
                parts.struct.field("field_0").str.strip_chars().alias("extra.source.network"),
                parts.struct.field("field_1").str.strip_chars().alias("extra.sblid"),
            ).drop("line")
            out = frame.with_columns([pl.lit(v).alias(k) for k, v in
                                      {**self._constants(), "time.source": stamp}.items()])
            yield ParsedBatch(_network_ip(out), [], notes)
        if not saw:
            yield ParsedBatch(pl.DataFrame({LINE: pl.Series([], dtype=pl.Int64)}), [],
                              [_("the file has no data rows")])


def _network_ip(frame: pl.DataFrame) -> pl.DataFrame:
    if "extra.source.network" not in frame.columns:
        return frame
    return frame.with_columns(pl.col("extra.source.network").str.split("/").list.first().alias("source.ip"))
