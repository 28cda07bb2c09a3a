"""Exports people open in spreadsheets: CSV cells that a spreadsheet would run as a formula are
neutralised (OWASP "CSV injection"), every other value is written as it is."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
#: The same starts as one anchored character class ('-' last, so it is not a range).
_FORMULA_RE = "^[" + "".join(c for c in _FORMULA_START if c != "-") + "-]"


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


def safe_text(expr: pl.Expr) -> pl.Expr:
    """:func:`safe_cell` for a column of text, as one vectorised expression; an empty text becomes
    null, so that it is written as an empty cell as :func:`write_csv` writes it."""
    return (pl.when(expr.str.contains(_FORMULA_RE)).then(pl.lit("'") + expr)
            .when(expr.str.len_bytes() == 0).then(None).otherwise(expr))


def frame_csv(frame: pl.DataFrame) -> str:
    """Rows of a frame of text and numbers as CSV, every text cell through :func:`safe_text`,
    quoted and terminated as :func:`write_csv` writes them (no header)."""
    cells = frame.with_columns(safe_text(pl.col(name)).alias(name)
                               for name, dtype in frame.schema.items() if dtype == pl.String)
    return cells.write_csv(None, include_header=False, line_terminator="\r\n", quote_style="necessary",
                           null_value="")
