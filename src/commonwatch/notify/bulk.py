"""The bulk paths of planning, at the driver level: reading events into a Polars frame and writing
warning and ledger rows, with each engine's fast path (one executemany of plain tuples on SQLite,
COPY on PostgreSQL). Going through the ORM here cost a Python object and type conversion per
value; these functions convert whole columns instead."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from sqlalchemy import Table
from sqlalchemy.orm import Session

from commonwatch.clock import ensure_utc

#: How SQLAlchemy's DateTime stores a (naive UTC) value in SQLite, so text comparison is time order.
SQLITE_TIME = "%Y-%m-%d %H:%M:%S%.6f"


def _sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _param(session: Session, value: datetime):
    if _sqlite(session):
        return ensure_utc(value).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return ensure_utc(value)


def read_frame(session: Session, sql: str, params: tuple, schema: dict) -> pl.DataFrame:
    """Run ``sql`` (with ``?`` placeholders) on the session's connection; columns as ``schema``.

    Datetime columns come back as text from SQLite and are parsed as a whole column.
    """
    sqlite = _sqlite(session)
    if not sqlite:
        sql = sql.replace("?", "%s")
    params = tuple(_param(session, p) if isinstance(p, datetime) else p for p in params)
    rows = session.connection().exec_driver_sql(sql, params).fetchall()
    if not sqlite:
        return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")
    raw_schema = {k: (pl.String if isinstance(v, pl.Datetime) else pl.Int64 if v == pl.Boolean else v)
                  for k, v in schema.items()}
    frame = pl.DataFrame([tuple(r) for r in rows], schema=raw_schema, orient="row")
    fixes = []
    for name, dtype in schema.items():
        if isinstance(dtype, pl.Datetime):
            fixes.append(pl.col(name).str.to_datetime(time_unit="us", time_zone="UTC", strict=False))
        elif dtype == pl.Boolean:
            fixes.append(pl.col(name).cast(pl.Boolean))
    return frame.with_columns(fixes) if fixes else frame


def insert_frame(session: Session, table: Table, frame: pl.DataFrame) -> int:
    """Append the rows of ``frame`` (columns named as the table's) to ``table``; returns the count."""
    if frame.is_empty():
        return 0
    columns = frame.columns
    connection = session.connection()
    if _sqlite(session):
        text = frame.with_columns([
            pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None).dt.strftime(SQLITE_TIME)
            for c, t in frame.schema.items() if isinstance(t, pl.Datetime)])
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - names from models
        cursor = connection.connection.driver_connection.cursor()
        for chunk in text.iter_slices(100_000):
            cursor.executemany(sql, chunk.rows())
        return frame.height
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in frame.iter_rows():
            copy.write_row(row)
    return frame.height
