#!/usr/bin/env python3
"""Reading the asset inventory for the vulnerability matcher: ``cii.services.asset_frame`` (one
scoped query read through the driver cursor into a Polars frame) against the same query through
the SQLAlchemy ORM result (``session.execute(stmt).all()``), the way a service usually reads rows.

    .venv/bin/python bench/cii_asset_frame.py [--assets 1000000] [--orgs 10000] [--database-url URL]

Fills a fresh database (SQLite file by default) with N assets over M organisations (half of them in
a system with an MLPS level, each with a CPE), then reads them all as the centre (best of two,
after a warm-up read) and one organisation's as its constituent. The last line's ``ratio`` is
ORM time / ours (higher is better).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime

import polars as pl
from sqlalchemy import insert, select

from commonwatch import db as cwdb
from commonwatch.access.principal import SYSTEM, Principal, Role
from commonwatch.cii.models import Asset, CiiSystem
from commonwatch.cii.services import ASSET_FRAME_SCHEMA, asset_frame
from commonwatch.constituency.models import Organisation
from commonwatch.db import make_engine, make_sessionmaker, session_scope
from commonwatch.migrate import upgrade


def fill(factory, n: int, orgs: int) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with session_scope(factory, actor="bench") as s:
        s.execute(insert(Organisation), [{"id": i, "name": f"org {i}", "kind": "cii-operator", "sector": "energy",
                                          "created_at": now, "updated_at": now} for i in range(1, orgs + 1)])
        s.execute(insert(CiiSystem), [{"id": i, "org_id": i, "name": f"system {i}", "mlps_level": 1 + i % 5,
                                       "created_at": now, "updated_at": now} for i in range(1, orgs + 1)])
        step = 100_000
        for lo in range(0, n, step):
            s.connection().execute(insert(Asset.__table__), [{
                "id": i, "org_id": 1 + i % orgs, "system_id": (1 + i % orgs) if i % 2 else None, "kind": "software",
                "name": f"p{i % 5000}", "version": f"1.{i % 100}",
                "cpe": f"cpe:2.3:a:v{i % 1000}:p{i % 5000}:1.{i % 100}:*:*:*:*:*:*:*",
                "purl": f"pkg:pypi/p{i % 5000}@1.{i % 100}" if i % 3 == 0 else None, "source": "api",
                "created_at": now, "updated_at": now} for i in range(lo + 1, min(n, lo + step) + 1)])


def orm_frame(session, principal) -> pl.DataFrame:
    stmt = select(Asset.id, Asset.org_id, Asset.system_id, CiiSystem.mlps_level, Asset.cpe, Asset.purl,
                  Asset.version).outerjoin(CiiSystem, CiiSystem.id == Asset.system_id)
    rows = session.execute(cwdb.scope(stmt, principal, Asset).order_by(Asset.id)).all()
    return pl.DataFrame(rows, schema=ASSET_FRAME_SCHEMA, orient="row")


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", type=int, default=1_000_000)
    ap.add_argument("--orgs", type=int, default=10_000)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cw-bench-cii-") as tmp:
        engine = make_engine(args.database_url or f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        factory = make_sessionmaker(engine)
        t = time.perf_counter()
        fill(factory, args.assets, args.orgs)
        print(f"filled {args.assets:,} assets over {args.orgs:,} organisations in {time.perf_counter() - t:.1f} s")
        one = Principal(user_id=1, email="c@x", role=Role.CONSTITUENT, org_ids=frozenset({7}))
        with session_scope(factory, actor="bench") as s:
            asset_frame(s, SYSTEM)  # warm the page cache, so neither read pays for the first
            t_ours = t_peer = float("inf")
            for _ in range(2):
                ours, t = timed(asset_frame, s, SYSTEM)
                t_ours = min(t_ours, t)
                peer, t = timed(orm_frame, s, SYSTEM)
                t_peer = min(t_peer, t)
            assert ours.equals(peer), "the two reads differ"
            mine, t_one = timed(asset_frame, s, one)
        print(f"all assets: asset_frame {t_ours:.2f} s, ORM rows {t_peer:.2f} s ({ours.height:,} rows)")
        print(f"one organisation: asset_frame {t_one * 1000:.1f} ms ({mine.height:,} rows)")
        print(f"RESULT cii_asset_frame ours={t_ours:.3f} peer={t_peer:.3f} unit=s ratio={t_peer / t_ours:.2f} goal=>1")


if __name__ == "__main__":
    main()
