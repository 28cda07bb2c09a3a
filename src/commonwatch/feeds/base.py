"""The contract between feed parsers and the pipeline.

A collector turns a file, a folder or a URL into :class:`Source` objects (one per document,
already decompressed). A parser turns a source into a stream of :class:`ParsedBatch`: columnar
rows named with IntelMQ harmonisation field names, every value still a string as it appeared in
the feed, plus the rows it could not parse at all. The pipeline's stages (normalise, validate,
deduplicate, enrich, match, classify, store) take it from there; nothing in a parser loops in
Python per row on the happy path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Protocol

import polars as pl

#: Column holding the 1-based line (CSV/text) or record (JSON) number of each row in its source.
LINE = "raw.line"
#: Rows per batch a parser should aim for: big enough for columnar speed, small enough for memory.
BATCH_ROWS = 100_000


@dataclass
class Source:
    """One document to parse: a file, a member of an archive, or an HTTP response body."""

    name: str  # file name or URL; Shadowserver report types are detected from it
    stream: BinaryIO  # decompressed bytes, read once, front to back
    fetched_at: datetime  # becomes ``time.observation`` when the feed gives none
    size_hint: int | None = None


@dataclass
class BadRecord:
    """A record the parser could not turn into a row (wrong column count, broken JSON, ...)."""

    line: int
    reason: str
    raw: str  # the record as it was (truncated by the parser to a sane length)


@dataclass(frozen=True)
class Shape:
    """What a source's header looked like against the feed's mapping, for feed health
    (``feeds.health``): the feed it belongs to, the columns it had, the columns its mapping
    knows and the ones the mapping requires. ``mapped`` empty means no mapping to compare with."""

    feed: str
    header: tuple[str, ...] = ()
    mapped: tuple[str, ...] = ()
    required: tuple[str, ...] = ()


@dataclass
class ParsedBatch:
    """Rows parsed from one part of a source.

    ``frame`` has one column per harmonisation field the feed provides (``time.source``,
    ``source.ip``, ``source.port``, ``source.url``, ``classification.type``, ``malware.name``,
    ``extra.<name>``, ...), all ``pl.String``, and the ``raw.line`` column (``pl.Int64``).
    ``feed.name``, ``feed.provider`` and, where the feed implies them, ``classification.*`` may be
    constant columns. ``notes`` says what the reader should know (e.g. "unknown report type
    scan_foo: generic mapping, 7 columns kept under extra.*").
    """

    frame: pl.DataFrame
    bad: list[BadRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the source's header against the mapping (parsers with a column mapping set it)
    shape: Shape | None = None


class Parser(Protocol):
    """A feed family's parser; registered by name in ``commonwatch.feeds.registry``."""

    name: str  # the name used on the command line: shadowserver, urlhaus, generic:FILE, ...
    description: str

    def parse(self, source: Source) -> Iterator[ParsedBatch]: ...
