"""Spamhaus DROP and EDROP: netblocks "hijacked or leased by professional spam or cyber-crime
operations". Both the classic text lists (``CIDR ; SBLnnn``) and the JSON-lines form are read.

The event carries the network's first address as ``source.ip`` (so the matcher finds the
constituent) and the whole block as ``extra.source.network``.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from commonwatch.feeds.base import LINE, ParsedBatch, Source
from commonwatch.feeds.common import ReadState, iter_json_lines, iter_text_blocks, rename_to_fields
from commonwatch.i18n import _


class SpamhausParser:
    description_fmt = "Spamhaus {list}: netblocks of spam and cyber-crime operations"

    def __init__(self, which: str):
        self.which = which  # drop | edrop
        self.name = f"spamhaus-{which}"
        self.description = self.description_fmt.format(list=which.upper())

    def parse(self, source: Source) -> Iterator[ParsedBatch]:
        head = source.stream.peek(64)[:64] if hasattr(source.stream, "peek") else b""
        # The lists carry no per-entry time: an entry is "listed as of when we fetched the list".
        constants = {"feed.name": self.name, "feed.provider": "Spamhaus", "classification.type": "blacklist",
                     "classification.identifier": self.name, "time.source": source.fetched_at.isoformat()}
        if head.lstrip().startswith(b"{"):
            for frame, bad, notes in iter_json_lines(source):
                frame = frame.filter(pl.col("cidr").is_not_null()) if "cidr" in frame.columns else frame
                out = rename_to_fields(frame, {"cidr": "extra.source.network", "sblid": "extra.sblid",
                                               "rir": "extra.rir"}, constants=constants)
                yield ParsedBatch(_network_ip(out), bad, notes)
            return
        state = ReadState()
        saw = False
        for block in iter_text_blocks(source.stream, state):
            n = pl.int_range(block.first_line, block.first_line + block.lines.len(), eager=True).cast(pl.Int64)
            frame = pl.DataFrame({"line": block.lines, LINE: n})
            frame = frame.filter((pl.col("line").str.strip_chars() != "") & ~pl.col("line").str.starts_with(";"))
            saw = saw or frame.height > 0
            parts = pl.col("line").str.split_exact(";", 1)
            frame = frame.with_columns(
                parts.struct.field("field_0").str.strip_chars().alias("extra.source.network"),
                parts.struct.field("field_1").str.strip_chars().alias("extra.sblid"),
            ).drop("line")
            out = frame.with_columns([pl.lit(v).alias(k) for k, v in constants.items()])
            yield ParsedBatch(_network_ip(out), [], list(state.notes))
            state.notes.clear()
        if not saw:
            yield ParsedBatch(pl.DataFrame({LINE: pl.Series([], dtype=pl.Int64)}), [],
                              [_("the file has no data rows")])


def _network_ip(frame: pl.DataFrame) -> pl.DataFrame:
    if "extra.source.network" not in frame.columns:
        return frame
    return frame.with_columns(pl.col("extra.source.network").str.split("/").list.first().alias("source.ip"))
