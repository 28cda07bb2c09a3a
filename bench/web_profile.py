#!/usr/bin/env python3
"""Where a hot read's CPU goes: cProfile over N requests to each path, in process and in one thread.

    .venv/bin/python bench/web_load.py --events 120000 --keep /tmp/cw-prof --prepare-only
    .venv/bin/python bench/web_profile.py /tmp/cw-prof [--requests 50] [--top 12]

The app is driven through httpx's ASGI transport on this thread's event loop, and the work FastAPI
hands to its thread pool (sync endpoints and dependencies) runs inline, so the profile sees the
request handling itself (a profile of a TestClient sees only the client thread waiting).

Prints, for ``/api/v1/events?limit=50`` (admin token), ``/events`` (admin, signed in),
``/warnings`` (a constituent, signed in) and ``/`` (the overview, admin): CPU ms per request
(process time, first request excluded) and the functions with the most cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path


def fill_synthetic(rt, n: int) -> None:
    """The suite's world (two tenants, a user of every role) and ``n`` events over its
    organisations in the configured (Parquet) store, through the store's append."""
    from datetime import timedelta

    from commonwatch.migrate import upgrade

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.conftest import build_world
    from tests.events.eventdata import insert_events, spread

    upgrade(rt.engine)
    with rt.session("bench") as s:
        world = build_world(s, rt.clock)
    owners = [world.org_a, world.org_a_unit, world.org_b, None]
    for start in range(0, n, 50_000):
        rows = spread(min(50_000, n - start), end=rt.clock.now() - timedelta(seconds=start), org_ids=owners,
                      step=timedelta(seconds=1))
        for i, row in enumerate(rows):
            row["event_key"] = f"syn-{start + i}"
        with rt.session("bench") as s:
            insert_events(s, rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path, help="a data dir made by web_load.py --keep DIR --prepare-only; with "
                                            "--synthetic N an empty folder to fill instead")
    ap.add_argument("--synthetic", type=int, default=0,
                    help="no demo: the test suite's small world and N events (quicker on a busy machine)")
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    os.environ["COMMONWATCH_DATA_DIR"] = str(args.work / "data")
    os.environ["COMMONWATCH_MFA_REQUIRED_ROLES"] = ""
    os.environ["COMMONWATCH_LOG_LEVEL"] = "WARNING"
    os.environ.pop("COMMONWATCH_EVENT_STORE_DIR", None)
    import asyncio

    import anyio.to_thread
    import httpx

    from commonwatch.access import services as access
    from commonwatch.app import create_app
    from commonwatch.demo import DEMO_PASSWORD

    async def inline(func, *args, **_kw):
        return func(*args)

    anyio.to_thread.run_sync = inline  # FastAPI's thread pool, run on this thread (profiling only)

    password = "correct-horse-battery" if args.synthetic else DEMO_PASSWORD  # tests/conftest.py's world
    from commonwatch.runtime import get_runtime

    rt = get_runtime()
    if args.synthetic:
        fill_synthetic(rt, args.synthetic)
    app = create_app(rt.settings, clock=rt.clock, engine=rt.engine)
    with rt.session("bench") as s:
        from sqlalchemy import select

        from commonwatch.access.models import User

        admin = s.scalar(select(User).where(User.role == "admin").order_by(User.id))
        constituent = s.scalar(select(User).where(User.role == "constituent").order_by(User.id))
        token = access.create_token(s, admin, name="profile", now=rt.clock.now()).secret
        emails = admin.email, constituent.email

    async def signed_in(email: str) -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")
        page = await c.get("/login")
        csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        resp = await c.post("/login", data={"email": email, "password": password, "csrf_token": csrf, "next": "/"})
        assert resp.status_code == 303, resp.text[:300]
        return c

    async def run() -> None:
        staff, member = await signed_in(emails[0]), await signed_in(emails[1])
        paths = [("events API", staff, "/api/v1/events?limit=50", {"Authorization": f"Bearer {token}"}),
                 ("events page", staff, "/events", {}),
                 ("warnings (constituent)", member, "/warnings", {}),
                 ("overview", staff, "/", {})]
        for name, client, path, headers in paths:
            for _ in range(2):  # warm: imports, templates, caches
                assert (await client.get(path, headers=headers)).status_code == 200
            prof = cProfile.Profile()
            cpu = time.process_time()
            prof.enable()
            for _ in range(args.requests):
                await client.get(path, headers=headers)
            prof.disable()
            per = (time.process_time() - cpu) / args.requests * 1000
            out = io.StringIO()
            pstats.Stats(prof, stream=out).strip_dirs().sort_stats("cumulative").print_stats(args.top + 40)
            lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
            start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
            print(f"\n== {name} {path}: {per:.1f} ms CPU per request ({args.requests} requests, profiled)")
            shown = [ln for ln in lines[start + 1:] if not any(x in ln for x in (
                "asyncio", "anyio", "_backends", "httpx", "_client.py", "_transports", "starlette/", "base_events",
                "events.py:8", "routing.py", "applications.py", "middleware", "contextlib", "_exception_handler"))]
            print(lines[start])
            for ln in shown[:args.top]:
                print(ln)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
