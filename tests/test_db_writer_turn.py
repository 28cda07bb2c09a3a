"""``db.writer_turn`` (TAXII writes use it): SQLite writers of one process store in turn; a second
writer waits on the turn, not in SQLite's busy handler, and enters as soon as the first is done.

Not in the Makefile's CLOCK_SUITES: it touches no real clock, and its timed thread waits hang
under libfaketime."""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from commonwatch.db import make_engine, writer_turn


def test_sqlite_writers_of_one_process_take_turns(sqlite_url):
    engine = make_engine(sqlite_url)
    first_in, release = threading.Event(), threading.Event()
    entered: list[float] = []

    def first() -> None:
        with writer_turn(engine), engine.begin() as conn:
            conn.execute(text("SELECT 1"))
            first_in.set()
            release.wait(5)

    def second() -> None:
        with writer_turn(engine):
            entered.append(time.monotonic())

    a = threading.Thread(target=first)
    a.start()
    assert first_in.wait(5)
    b = threading.Thread(target=second)
    b.start()
    b.join(0.3)
    assert entered == []  # waits its turn while the first writer holds it
    released = time.monotonic()
    release.set()
    a.join(5)
    b.join(5)
    assert len(entered) == 1 and entered[0] - released < 1.0  # and enters once it is released
    engine.dispose()


def test_writer_turn_is_nothing_on_postgresql(pg_url):
    engine = make_engine(pg_url)
    with writer_turn(engine), writer_turn(engine):  # no lock taken: nesting does not deadlock
        pass
    engine.dispose()
