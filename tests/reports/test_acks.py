"""Time to acknowledge from its rollup equals the raw computation over the warnings: random
answers, periods at a UTC+8 midnight and across months, filters and tenancy, answers moved
through notify, and a rebuild."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from sqlalchemy import insert, select

from commonwatch.access.principal import SYSTEM, Principal, Role
from commonwatch.constituency import services as registry
from commonwatch.constituency.models import Organisation
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.notify import services as notify
from commonwatch.notify.models import EventWarning
from commonwatch.reports import acks
from commonwatch.reports import indicators as ind
from commonwatch.reports.models import AckStep
from commonwatch.reports.query import Filters, Period

ZONE = "Asia/Shanghai"
START = datetime(2026, 8, 25, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _orgs(factory) -> list[int]:
    with session_scope(factory, actor="test") as s:
        return [registry.create_org(s, {"name": n, "kind": "network-operator", "sector": sector, "region": "Beijing"}).id
                for n, sector in (("A", "telecom"), ("B", "energy"), ("C", "energy"))]


def _warnings(engine, rng, orgs: list[int], k: int = 3000) -> None:
    """``k`` warnings over 100 days from ``START``, two in three answered 0–100 hours later; some
    answers exactly on a half step (18 s past a step) and some at a UTC+8 midnight."""
    created = [START + timedelta(seconds=int(s)) for s in rng.integers(0, 100 * 86400, size=k)]
    created[:50] = [datetime(2026, 10, 31, 16, 0, tzinfo=UTC) + timedelta(seconds=int(s))
                    for s in rng.integers(-600, 600, size=50)]
    delay = rng.integers(0, 100 * 3600 * 1_000_000, size=k)
    delay[::7] = (delay[::7] // 36_000_000) * 36_000_000 + 18_000_000  # halves round up
    rows = [{"org_id": orgs[i % len(orgs)], "event_id": i, "obs_key": i, "time_source": created[i],
             "classification_type": "scanner", "severity": "low", "created_at": created[i],
             "status": "acknowledged" if i % 3 else "open",
             "responded_at": created[i] + timedelta(microseconds=int(delay[i])) if i % 3 else None}
            for i in range(k)]
    with engine.begin() as conn:
        conn.execute(insert(EventWarning), rows)


def _edge_up(t: datetime) -> datetime:
    """The first day edge (UTC's or Asia/Shanghai's midnight, 00:00 or 16:00 UTC) at or after
    ``t``: in a third zone a period runs between the edges after its midnights, as the event
    rollups' do (a part-day counts where it starts)."""
    for h in range(0, 48):
        at = t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=h)
        if at >= t and at.hour in (0, 16):
            return at
    raise AssertionError(t)


def _raw(s, p: Period, orgs: set[int] | None) -> tuple[float, float, int]:
    """Median, 90th percentile (hours) and count computed from the warnings themselves."""
    rows = s.execute(select(EventWarning.org_id, EventWarning.created_at, EventWarning.responded_at)
                     .where(EventWarning.responded_at.is_not(None))).all()
    frame = pl.DataFrame([(o, c.astimezone(UTC) if c.tzinfo else c.replace(tzinfo=UTC),
                           r.astimezone(UTC) if r.tzinfo else r.replace(tzinfo=UTC)) for o, c, r in rows],
                         schema={"org": pl.Int64, "c": pl.Datetime("us", "UTC"), "r": pl.Datetime("us", "UTC")},
                         orient="row")
    frame = frame.filter((pl.col("c") >= _edge_up(p.since)) & (pl.col("c") < _edge_up(p.until)))
    if orgs is not None:
        frame = frame.filter(pl.col("org").is_in(sorted(orgs)))
    us = (frame["r"] - frame["c"]).dt.total_microseconds().to_numpy()
    steps = np.sort(np.floor_divide(us + 18_000_000, 36_000_000))
    n = len(steps)
    if not n:
        return 0.0, 0.0, 0
    mid = (n - 1) / 2
    median = (steps[int(np.floor(mid))] + steps[int(np.ceil(mid))]) / 2 * 36 / 3600
    return float(median), float(steps[int(round(0.9 * (n - 1)))] * 36 / 3600), n


PERIODS = [Period(date(2026, 11, 1), date(2026, 12, 1), ZONE),  # a month from a UTC+8 midnight
           Period(date(2026, 10, 31), date(2026, 11, 2), ZONE),  # days around it
           Period(date(2026, 9, 1), date(2026, 12, 3), ZONE),  # over 92 days
           Period(date(2026, 8, 20), date(2026, 12, 31), "UTC"),
           Period(date(2026, 10, 15), date(2026, 10, 16), "Europe/Berlin")]


def _check(engine, factory, orgs: list[int]) -> None:
    own = Principal(user_id=10**6, email="a@example.org", role=Role.CONSTITUENT, org_ids=frozenset({orgs[0]}))
    with factory() as s:
        energy = set(s.scalars(select(Organisation.id).where(Organisation.sector == "energy")))
        for p in PERIODS:
            cases = [(SYSTEM, Filters(), None), (SYSTEM, Filters(org_id=orgs[1]), {orgs[1]}),
                     (SYSTEM, Filters(sector="energy"), energy), (own, Filters(), {orgs[0]})]
            for who, f, want in cases:
                median, p90, n = acks.quantiles(s, who, p, f)
                r_median, r_p90, r_n = _raw(s, p, want)
                assert (n, round(median, 6), round(p90, 6)) == (r_n, round(r_median, 6), round(r_p90, 6)), (p, f)
        # the indicator shows the same, in hours to 0.01
        got = ind.compute("notify.time_to_ack", ind.Context(s, SYSTEM, PERIODS[0], Filters()))
        r_median, r_p90, r_n = _raw(s, PERIODS[0], None)
        assert got.data["n"].to_list() == [round(r_median, 2), round(r_p90, 2), float(r_n)]
        assert r_n > 100


def _table(engine) -> pl.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(select(AckStep.grain, AckStep.level, AckStep.org_id, AckStep.bucket, AckStep.step,
                                   AckStep.n).where(AckStep.n != 0)).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=[*acks.KEYS, "n"], orient="row").sort(acks.KEYS)


def test_rollup_equals_raw_after_rebuild_and_answers_through_notify(any_engine):
    factory = make_sessionmaker(any_engine)
    orgs = _orgs(factory)
    _warnings(any_engine, np.random.default_rng(18), orgs)
    with any_engine.begin() as conn:
        assert acks.rebuild(conn, EPOCH, zone=ZONE) == 2000
    _check(any_engine, factory, orgs)

    # answers through notify move the rollup: first answers, answers given again, many at once
    answering = Principal(user_id=0, email="r@example.org", role=Role.CONSTITUENT, org_ids=frozenset(orgs))
    with session_scope(factory, actor="test") as s:
        ids = list(s.scalars(select(EventWarning.id).order_by(EventWarning.id)))
        now = datetime(2026, 12, 2, 3, 4, 5, 678901, tzinfo=UTC)
        for wid in ids[:40]:  # 0, 3, 6, ... were open; the rest answered before
            notify.respond(s, answering, wid, "resolved", "", suppress=False, now=now)
        done, refused = notify.respond_many(s, answering, ids[30:400], "acknowledged", "",
                                            now=now + timedelta(hours=5, seconds=18))
        assert len(done) == 370 and not refused
    _check(any_engine, factory, orgs)
    kept = _table(any_engine)
    with any_engine.begin() as conn:  # a rebuild gives the same rows
        acks.rebuild(conn, START, zone=ZONE)
    assert _table(any_engine).equals(kept)


def test_no_answers_is_an_empty_table(any_engine):
    factory = make_sessionmaker(any_engine)
    with factory() as s:
        got = ind.compute("notify.time_to_ack", ind.Context(s, SYSTEM, PERIODS[0], Filters()))
    assert got.empty and got.value is None


@pytest.mark.parametrize("seconds,step", [(17.999999, 0), (18, 1), (53.999999, 1), (54, 2), (-18, 0), (-18.000001, -1)])
def test_steps_round_halves_up(seconds, step):
    frame = pl.DataFrame({"c": [datetime(2026, 1, 1)], "r": [datetime(2026, 1, 1) + timedelta(seconds=seconds)]})
    assert frame.select(acks.step_of(pl.col("c"), pl.col("r")))[0, 0] == step
