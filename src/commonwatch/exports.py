"""Exports people open in spreadsheets: CSV cells that a spreadsheet would run as a formula are
neutralised (OWASP "CSV injection"), every other value is written as it is."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_cell(value: Any) -> Any:
    """A text cell starting with = + - @ (or tab/CR, or their full-width forms) gets a leading '."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    write_csv(buf, header, rows)
    return buf.getvalue()


def write_csv(fh, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write a header and rows, every cell through :func:`safe_cell`; returns the row count."""
    writer = csv.writer(fh, lineterminator="\r\n")
    writer.writerow(header)
    n = 0
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
        n += 1
    return n
