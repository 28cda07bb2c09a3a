"""Time to acknowledge from a rollup (``AckStep``), kept when a warning is answered.

A warning's time to acknowledge is ``responded_at - created_at`` to the nearest
:data:`STEP_SECONDS` (0.01 hours, halves up). Each answered warning is counted once per grain of
the event rollups (part-day, UTC day, UTC month, by ``created_at``), for its organisation and for
the centre (``ALL``), at two levels: its step, and its bin of :data:`BIN` steps. A period's
median and 90th percentile are then exact: the bins of the period (a year: a dozen months' bins
and the edge days') give the ranks' bins, and only those bins' steps are read.

notify answers a warning through ``respond`` / ``respond_many``; before it moves the answer, it
hands the warnings' ids to :func:`answered` (the ``warning_answers`` part), which takes the old
answer out of the rollup and adds the new one in the same transaction. ``reports rebuild``
recomputes whole UTC months from the warnings table (:func:`rebuild`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import polars as pl
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.db import scope
from commonwatch.reports.models import ALL, AckStep
from commonwatch.reports.query import Filters, Period, _centre, _ranges, org_filtered
from commonwatch.reports.rollup import (
    DAY,
    HOUR,
    MONTH,
    _insert,
    _month_start,
    _months,
    day_edges,
    month_of_day,
    part_of_day,
)

#: The step a duration is counted to (0.01 hours), and the steps per bin (an hour).
STEP_SECONDS = 36
BIN = 100
COARSE, FINE = 0, 1
KEYS = ["grain", "level", "org_id", "bucket", "step"]


def step_of(created: pl.Expr, responded: pl.Expr) -> pl.Expr:
    """``responded - created`` in steps, to the nearest (halves up), from whole microseconds."""
    step_us = STEP_SECONDS * 1_000_000
    return ((responded - created).dt.total_microseconds() + step_us // 2) // step_us


def rows_of(answers: pl.DataFrame, edges: tuple[int, ...]) -> pl.DataFrame:
    """The rollup rows (``KEYS`` + ``n``) of answers given as ``org_id, created_at, responded_at,
    n`` (``n`` +1 for an answer counted, -1 for one taken out); times naive UTC or aware."""
    if not answers.height:
        return pl.DataFrame(schema={**dict.fromkeys(KEYS, pl.Int64), "n": pl.Int64})
    times = {c: (pl.col(c).dt.convert_time_zone("UTC") if getattr(answers.schema[c], "time_zone", None)
                 else pl.col(c).dt.replace_time_zone("UTC")).cast(pl.Datetime("us", "UTC"))
             for c in ("created_at", "responded_at")}
    base = answers.select(
        (times["created_at"].dt.epoch("s") // 3600).alias("hour"), pl.col("org_id").cast(pl.Int64),
        step_of(times["created_at"], times["responded_at"]).alias("step"), pl.col("n").cast(pl.Int64))
    both = pl.concat([base, base.with_columns(pl.lit(ALL, pl.Int64).alias("org_id"))])
    day = pl.col("hour") // 24
    grains = pl.concat([both.select(pl.lit(g, pl.Int64).alias("grain"), "org_id", b.alias("bucket"), "step", "n")
                        for g, b in ((HOUR, part_of_day(pl.col("hour"), edges)), (DAY, day),
                                     (MONTH, month_of_day(day)))])
    levels = pl.concat([grains.select("grain", pl.lit(FINE, pl.Int64).alias("level"), "org_id", "bucket", "step", "n"),
                        grains.select("grain", pl.lit(COARSE, pl.Int64).alias("level"), "org_id", "bucket",
                                      pl.col("step") // BIN, "n")])
    return levels.group_by(KEYS).agg(pl.col("n").sum()).filter(pl.col("n") != 0)


def add(conn: Connection, answers: pl.DataFrame, zone: str) -> None:
    """Add (or, with ``n`` = -1, take out) answers to the rollup."""
    _insert(conn, AckStep, rows_of(answers, day_edges(zone)), add=True)


def _frame(rows: Iterable[tuple[Any, ...]]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema={"org_id": pl.Int64, "created_at": pl.Datetime("us"),
                                            "responded_at": pl.Datetime("us"), "n": pl.Int64}, orient="row")


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def answered(session: Session, ids: list[int], now: datetime, zone: str | None = None) -> None:
    """Called by notify before it records an answer at ``now`` to the warnings ``ids``: each one's
    earlier answer (if any) leaves the rollup, the new one comes in."""
    from commonwatch.config import get_settings
    from commonwatch.notify.models import EventWarning

    if not ids:
        return
    found = session.execute(select(EventWarning.org_id, EventWarning.created_at, EventWarning.responded_at)
                            .where(EventWarning.id.in_(ids))).all()
    at = _naive(now)
    rows = [(o, _naive(c), _naive(r), -1) for o, c, r in found if r is not None]
    rows += [(o, _naive(c), at, 1) for o, c, _r in found]
    add(session.connection(), _frame(rows), zone or get_settings().timezone)


def rebuild(conn: Connection, since: datetime, until: datetime | None = None, *, zone: str) -> int:
    """Recompute the rollup of every UTC month from ``since``'s month up to ``until`` (rounded up to
    a month; default: everything after) from the warnings table; returns the answers counted."""
    from commonwatch.notify.models import EventWarning

    start = _month_start(since)
    end = _month_start(until, up=True) if until else None
    h0, m0 = int(start.timestamp()) // 3600, _months(start)
    h1, m1 = (int(end.timestamp()) // 3600, _months(end)) if end else (None, None)
    for grain, lo, hi in ((HOUR, h0, h1), (DAY, h0 // 24, h1 // 24 if h1 else None), (MONTH, m0, m1)):
        conn.execute(delete(AckStep).where(AckStep.grain == grain, AckStep.bucket >= lo,
                                           *([AckStep.bucket < hi] if hi is not None else [])))
    w = EventWarning
    stmt = select(w.org_id, w.created_at, w.responded_at).where(
        w.created_at >= start, w.responded_at.is_not(None), *([w.created_at < end] if end else []))
    counted = 0
    for chunk in conn.execute(stmt.execution_options(yield_per=100_000)).partitions():
        frame = _frame((o, _naive(c), _naive(r), 1) for o, c, r in chunk)
        add(conn, frame, zone)
        counted += frame.height
    return counted


def _scoped(stmt: Any, principal: Principal, f: Filters) -> Any:
    stmt = scope(stmt, principal, AckStep)
    if _centre(principal, f):
        return stmt.where(AckStep.org_id == ALL)
    return org_filtered(stmt.where(AckStep.org_id != ALL), AckStep.org_id, f)


def _counts(session: Session, principal: Principal, p: Period, f: Filters, level: int,
            bins: Iterable[int] = ()) -> list[tuple[int, int]]:
    """``(step or bin, answers)`` of ``p``, sorted (``bins``: only the steps in those bins)."""
    out: dict[int, int] = defaultdict(int)
    within = [and_(AckStep.step >= b * BIN, AckStep.step < (b + 1) * BIN) for b in bins]
    for grain, lo, hi in _ranges(p):
        stmt = select(AckStep.step, func.sum(AckStep.n)).where(
            AckStep.grain == grain, AckStep.level == level, AckStep.bucket >= lo, AckStep.bucket < hi)
        if within:
            stmt = stmt.where(or_(*within))
        for step, n in session.execute(_scoped(stmt, principal, f).group_by(AckStep.step)).all():
            out[int(step)] += int(n)
    return sorted((s, n) for s, n in out.items() if n > 0)


def _at(counts: list[tuple[int, int]], rank: int) -> tuple[int, int]:
    """The value at ``rank`` (from 0) of values given as sorted ``(value, how many)``, and how many
    come before that value."""
    seen = 0
    for value, k in counts:
        if seen + k > rank:
            return value, seen
        seen += k
    raise IndexError(rank)


def quantiles(session: Session, principal: Principal, p: Period, f: Filters = Filters()) -> tuple[float, float, int]:
    """The median and 90th percentile of the period's answered warnings' time to acknowledge, in
    hours, and how many there are (``(0, 0, 0)``: none). The median of an even count is the mean
    of the two middle values; the 90th percentile is the value at rank ``round(0.9 * (n - 1))``."""
    bins = _counts(session, principal, p, f, COARSE)
    n = sum(k for _b, k in bins)
    if not n:
        return 0.0, 0.0, 0
    mid = (n - 1) / 2
    ranks = sorted({int(mid), int(mid) + (1 if mid != int(mid) else 0), int(round(0.9 * (n - 1)))})
    where = {r: _at(bins, r) for r in ranks}
    steps = _counts(session, principal, p, f, FINE, sorted({b for b, _s in where.values()}))
    # the steps of each rank's bin, and the rank within it
    value = {}
    for r, (b, before) in where.items():
        in_bin = [(s, k) for s, k in steps if b * BIN <= s < (b + 1) * BIN]
        value[r] = _at(in_bin, r - before)[0] * STEP_SECONDS / 3600.0
    lo, hi = int(mid), int(mid) + (1 if mid != int(mid) else 0)
    return (value[lo] + value[hi]) / 2, value[int(round(0.9 * (n - 1)))], n

