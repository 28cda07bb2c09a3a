"""Phishing URL lists: OpenPhish-style (one URL per line) and PhishTank-style (CSV or JSON)."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from commonwatch.errors import Invalid
from commonwatch.feeds.abusech import _objects_batch, _sniff_json
from commonwatch.feeds.base import LINE, ParsedBatch, Source
from commonwatch.feeds.common import ReadState, iter_csv, iter_text_blocks, load_json_document, rename_to_fields
from commonwatch.i18n import _


class OpenPhishParser:
    name = "openphish"
    description = "OpenPhish-style list: one phishing URL per line"

    def parse(self, source: Source) -> Iterator[ParsedBatch]:
        state = ReadState()
        saw = False
        for block in iter_text_blocks(source.stream, state):
            n = pl.int_range(block.first_line, block.first_line + block.lines.len(), eager=True).cast(pl.Int64)
            frame = pl.DataFrame({"source.url": block.lines.str.strip_chars(), LINE: n})
            frame = frame.filter((pl.col("source.url") != "") & ~pl.col("source.url").str.starts_with("#"))
            saw = saw or frame.height > 0
            frame = frame.with_columns(pl.lit("openphish").alias("feed.name"),
                                       pl.lit("OpenPhish").alias("feed.provider"),
                                       pl.lit("phishing").alias("classification.type"),
                                       # No per-URL time in the list: listed as of the fetch.
                                       pl.lit(source.fetched_at.isoformat()).alias("time.source"),
                                       pl.lit("openphish").alias("classification.identifier"))
            yield ParsedBatch(frame, [], list(state.notes))
            state.notes.clear()
        if not saw:
            yield ParsedBatch(pl.DataFrame({LINE: pl.Series([], dtype=pl.Int64)}), [],
                              [_("the file has no data rows")])


class PhishTankParser:
    name = "phishtank"
    description = "PhishTank-style verified phishing URLs (CSV or JSON)"
    #: As IntelMQ's PhishTank parser places them: the detail page and the target are
    #: ``event_description.*``.
    MAPPING = {"phish_id": "extra.phish_id", "url": "source.url", "phish_detail_url": "event_description.url",
               "submission_time": "time.source", "verified": "extra.verified", "verification_time":
               "extra.verification_time", "online": "extra.online", "target": "event_description.target",
               "details": "extra.details"}
    #: Fields of the first ``details`` entry: the hosting address, its network and AS, its country.
    DETAILS = {"ip_address": "source.ip", "cidr_block": "source.network", "announcing_network": "source.asn",
               "country": "source.geolocation.cc", "rir": "extra.rir", "detail_time": "extra.detail_time"}
    CONSTANTS = {"feed.name": "phishtank", "feed.provider": "PhishTank", "classification.type": "phishing",
                 "classification.identifier": "phishtank"}

    def parse(self, source: Source) -> Iterator[ParsedBatch]:
        if _sniff_json(source):
            data = load_json_document(source)
            if data is None:
                yield ParsedBatch(pl.DataFrame({LINE: pl.Series([], dtype=pl.Int64)}), [], [_("the file is empty")])
                return
            if not isinstance(data, list):
                raise Invalid("file", _("a PhishTank JSON document is a list of objects"))
            for item in data:
                # The first detail row describes the hosting network, as IntelMQ reads it.
                if isinstance(item, dict) and isinstance(item.get("details"), list) and item["details"]:
                    first = item["details"][0]
                    if isinstance(first, dict):
                        for key in self.DETAILS:
                            item.setdefault(key, first.get(key))
            mapping = {**self.MAPPING, **self.DETAILS}
            yield _objects_batch(data, mapping, self.CONSTANTS)
            return
        for frame, bad, notes, _h in iter_csv(source):
            yield ParsedBatch(rename_to_fields(frame, self.MAPPING, constants=self.CONSTANTS), bad, notes)
