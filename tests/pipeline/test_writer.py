"""The store thread: batches grouped into transactions give the same store as one batch, and a
failing store fails the run loudly, leaving nothing half-written."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from commonwatch.db import make_sessionmaker
from commonwatch.feeds.collect import sources_from_path
from commonwatch.feeds.registry import get_parser
from commonwatch.pipeline.demo import samples_dir
from commonwatch.pipeline.models import IngestRun
from commonwatch.pipeline.runner import commit_due, ingest_sources
from tests.pipeline.helpers import count_events, events, seed_registry

SAMPLE = samples_dir() / "2026-11-24-event4_sinkhole-asn-region-geo.csv"



@pytest.fixture(autouse=True)
def _sql_store(monkeypatch):
    """The batch writer's transactions on the SQL store: these tests delete from the events table
    and put a trigger on it. The columnar store's own crash and fault tests are in
    tests/events/test_parquet_store.py."""
    from commonwatch.config import get_settings

    monkeypatch.setenv("COMMONWATCH_EVENT_STORE", "sql")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()

def run(engine, clock, commit_rows: int, commit_seconds: float = 3600.0):
    return ingest_sources(engine, make_sessionmaker(engine), sources_from_path(SAMPLE, clock.now()),
                          get_parser("shadowserver"), feed_label="shadowserver", source_label=str(SAMPLE),
                          clock=clock, data_dir=None, actor="test", commit_rows=commit_rows,
                          commit_seconds=commit_seconds)


def stored(engine) -> list[tuple]:
    return sorted((e.event_key, e.source_ip, e.org_id, e.severity) for e in events(engine))


@pytest.mark.parametrize("commit_rows", [1, 3, 1_000_000])
def test_small_batches_and_any_grouping_store_what_one_batch_stores(any_engine, clock, monkeypatch, commit_rows):
    seed_registry(any_engine, clock)
    whole = run(any_engine, clock, commit_rows)
    expected = stored(any_engine)
    with any_engine.begin() as conn:
        conn.execute(text("DELETE FROM events"))

    monkeypatch.setenv("COMMONWATCH_BATCH_ROWS", "2")
    split = run(any_engine, clock, commit_rows)
    assert split.status == "done"
    assert stored(any_engine) == expected
    assert (split.rows_read, split.events_stored, split.duplicates, split.quarantined) == (
        whole.rows_read, whole.events_stored, whole.duplicates, whole.quarantined)


def test_a_failing_store_fails_the_run_and_writes_nothing_half(engine, clock, monkeypatch):
    seed_registry(engine, clock)
    monkeypatch.setenv("COMMONWATCH_BATCH_ROWS", "2")
    with engine.begin() as conn:
        # The third event written aborts its statement, as a full disk or a lost connection would.
        conn.execute(text("CREATE TRIGGER fail_third BEFORE INSERT ON events "
                          "WHEN (SELECT count(*) FROM events) >= 2 BEGIN SELECT RAISE(ABORT, 'store failed'); END"))

    with pytest.raises(Exception, match="store failed"):
        run(engine, clock, commit_rows=1)

    with make_sessionmaker(engine)() as session:
        failed = session.scalars(select(IngestRun)).one()
    assert failed.status == "failed" and "store failed" in failed.error
    # Committed batches are whole: the first batch's two events and its counters, nothing of the next.
    assert count_events(engine) == 2
    assert failed.events_stored == 2

    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER fail_third"))
    again = run(engine, clock, commit_rows=1)
    assert again.status == "done"
    assert count_events(engine) == again.events_stored + 2



@pytest.mark.parametrize(("pending", "open_s", "waiting", "due"), [
    (100, 0.1, True, False),       # a batch is waiting and there is room: group it
    (100, 0.1, False, True),       # nothing waits: commit now, a quiet feed is stored at once
    (250_000, 0.1, True, True),    # enough rows
    (100, 5.0, True, True),        # open long enough: other writers wait at most this and one batch
])
def test_when_the_store_commits(pending, open_s, waiting, due):
    assert commit_due(pending, open_s, waiting, commit_rows=250_000, commit_seconds=5.0) is due


def test_a_time_cap_of_zero_gives_the_store_of_one_batch(engine, clock, monkeypatch):
    seed_registry(engine, clock)
    whole = run(engine, clock, commit_rows=1_000_000)
    expected = stored(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM events"))
    monkeypatch.setenv("COMMONWATCH_BATCH_ROWS", "2")
    split = run(engine, clock, commit_rows=1_000_000, commit_seconds=0.0)
    assert split.status == "done" and stored(engine) == expected
    assert split.events_stored == whole.events_stored


def test_the_parse_thread_keeps_order_raises_where_the_batch_was_and_stops_with_its_consumer():
    import threading

    from commonwatch.pipeline.runner import prefetched

    assert list(prefetched(iter(range(50)))) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise ValueError("line 3 cannot be read")

    got = []
    with pytest.raises(ValueError, match="line 3"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1, 2]

    read = []

    def endless():
        n = 0
        while True:
            read.append(n)
            yield n
            n += 1

    batches = prefetched(endless())
    assert [next(batches) for _ in range(3)] == [0, 1, 2]
    batches.close()  # the consumer stops: the reader thread ends, at most a batch or two ahead
    assert len(read) <= 6
    assert not any(t.name == "commonwatch-parse" for t in threading.enumerate())


def test_lines_are_split_as_python_splits_them():
    from commonwatch.feeds.common import split_lines

    for doc in ["", "a", "a\n", "a\r\nb\r\n", "\n\n", "x\n\ny", "中文,1\nb", "a\r\r\n"]:
        parts = doc.split("\n")
        if parts and parts[-1] == "":
            parts.pop()
        assert split_lines(doc).to_list() == [p.rstrip("\r") for p in parts]
