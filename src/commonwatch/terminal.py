"""What the CLI prints: tables that never cut a value, and times by the one rule the pages follow.

The rule (:data:`TIME_RULE`): a time written without an offset is read in the installation's time
zone (setting ``COMMONWATCH_TIMEZONE``), the zone the pages use for a person who has not set one
of their own; times are shown in that zone, with their offset, so a line pasted elsewhere stays
exact.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

from commonwatch.clock import ensure_utc

TIME_RULE = ("Times without an offset are read in the installation's time zone (COMMONWATCH_TIMEZONE, as the "
             "pages read them for a person without a zone of their own); times are shown in that zone, with "
             "their offset.")


def show_time(value: datetime | None, tz: str) -> str:
    """A stored (UTC) time in ``tz`` as ISO 8601 to the second, with its offset."""
    if value is None:
        return ""
    from commonwatch.web.templating import zone

    return ensure_utc(value).astimezone(zone(tz)).replace(microsecond=0).isoformat()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    # A tab or line break inside a value would break the row; they are shown escaped.
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n")


def _width(text: str) -> int:
    """Columns a text takes in a terminal: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def print_table(header: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO | None = None) -> int:
    """Print rows under a header and return how many. To a terminal the columns are aligned; to a
    pipe or file they are separated by tabs (one row a line, for ``cut`` and ``awk``). No value is
    ever cut short."""
    out = out or sys.stdout
    cells = [[_cell(v) for v in row] for row in rows]
    if not out.isatty():
        for line in (list(header), *cells):
            out.write("\t".join(line) + "\n")
        return len(cells)
    widths = [max([_width(h)] + [_width(r[i]) for r in cells]) for i, h in enumerate(header)]
    for line in (list(header), *cells):
        out.write("  ".join(v + " " * (w - _width(v)) for v, w in zip(line, widths, strict=True)).rstrip() + "\n")
    return len(cells)
