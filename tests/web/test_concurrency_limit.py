"""At most ``max_concurrent_requests`` requests inside the app of one process; the others wait their
turn and are all answered. Fifty requests at once on one worker once deadlocked it: every thread of
the pool waited for a database connection held by requests that waited for a thread."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from commonwatch.access import audit
from commonwatch.config import Settings
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.web.middleware import ConcurrencyLimit
from tests.conftest import build_world
from tests.web.workers import WorkerServer


def test_no_more_than_the_limit_run_at_once_and_every_request_is_answered():
    inside = {"now": 0, "most": 0}

    async def app(scope, receive, send):
        inside["now"] += 1
        inside["most"] = max(inside["most"], inside["now"])
        await asyncio.sleep(0.01)
        inside["now"] -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=ConcurrencyLimit(app, limit=3))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            answers = await asyncio.gather(*(c.get("/") for _ in range(40)))
        return [a.status_code for a in answers]

    assert asyncio.run(run()) == [200] * 40
    assert inside["most"] == 3


def test_the_limit_is_a_checked_setting():
    with pytest.raises(ValueError, match="max_concurrent_requests"):
        Settings(max_concurrent_requests=0)
    with pytest.raises(ValueError, match="max_concurrent_requests"):
        Settings(max_concurrent_requests=40)  # as many as the thread pool: the deadlock again


def test_sixty_requests_at_once_on_one_worker_are_all_answered(tmp_path, sqlite_url, engine, clock):
    data_dir = tmp_path / "served"
    audit.use_key(engine, audit.load_key(Settings(data_dir=data_dir, database_url=sqlite_url)))
    with session_scope(make_sessionmaker(engine), actor="test") as session:
        session.info["clock"] = clock
        world = build_world(session, clock)
    server = WorkerServer(data_dir, sqlite_url, workers=1,
                          env={"COMMONWATCH_EVENT_STORE_DIR": str(tmp_path / "served-events")})
    server.start()
    try:
        answers: list[int] = []
        lock = threading.Lock()

        def one() -> None:
            try:
                with httpx.Client(timeout=60) as c:
                    status = c.get(f"{server.url}/api/v1/events?limit=50", headers=world.auth("admin")).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            with lock:
                answers.append(status)

        threads = [threading.Thread(target=one) for _ in range(60)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert answers == [200] * 60
    finally:
        server.stop()
