"""On SQLite one writer holds the write lock at a time, for seconds during an ingest. Requests that
only read must not wait for it; their advisory writes (a session's last activity) wait briefly,
then are skipped and done by a later request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from commonwatch.access.models import WebSession
from commonwatch.db import read_only_engine, run_writes_after, write_after
from tests.conftest import sign_in


@dataclass
class Lock:
    release: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    released_by_test: bool = False


@contextmanager
def write_lock_held(engine) -> Iterator[Lock]:
    """A writer (as an ingest is) holding SQLite's write lock until the block ends, or 60 s."""
    lock = Lock()

    def writer() -> None:
        with engine.connect() as conn, conn.begin():  # BEGIN IMMEDIATE
            lock.held.set()
            lock.released_by_test = lock.release.wait(timeout=60)

    thread = threading.Thread(target=writer)
    thread.start()
    assert lock.held.wait(timeout=10)
    try:
        yield lock
    finally:
        lock.release.set()
        thread.join()


def last_seen(engine):
    with engine.connect() as conn:
        return conn.execute(select(WebSession.last_seen_at)).scalars().all()


def test_pages_and_api_reads_answer_while_a_writer_holds_the_lock(client, app, world, clock, engine):
    sign_in(client, world.users["coordinator"])
    clock.advance(timedelta(minutes=5))  # the session's idle timer is due to slide
    before = last_seen(engine)
    with write_lock_held(engine) as lock:
        for path in ("/", "/events", "/organisations", "/notify/policies", "/healthz"):
            assert client.get(path).status_code == 200, path
        assert client.get("/api/v1/events", headers=world.auth("analyst")).status_code == 200
        lock.release.set()
    # Every read answered before the writer let go: none of them waited for it.
    assert lock.released_by_test
    # The advisory update could not be written then; the next request writes it.
    assert last_seen(engine) == before
    assert client.get("/").status_code == 200
    assert last_seen(engine) == [clock.now()]


def test_a_write_in_a_read_only_transaction_fails_at_once(engine):
    with write_lock_held(engine), read_only_engine(engine).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 0
        with pytest.raises(OperationalError, match="readonly"):
            conn.execute(text("DELETE FROM users"))


def test_writes_after_run_when_the_lock_is_free_and_are_skipped_when_it_is_not(engine, sessions):
    session = sessions()
    write_after(session, text("CREATE TABLE touched (x)"))
    with write_lock_held(engine):
        assert run_writes_after(engine, session, wait_seconds=0.05) is False
    assert "writes_after" not in session.info  # skipped, not kept: a later request repeats them
    write_after(session, text("CREATE TABLE touched (x)"))
    assert run_writes_after(engine, session) is True
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM touched")).scalar() == 0

