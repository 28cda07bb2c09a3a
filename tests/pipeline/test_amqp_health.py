"""Feed health for runs handed to RabbitMQ workers: the publisher records what parsing knows and each
worker adds what it processed, so a broker run leaves the same figures as a local run and its faults
open and alert the coordinators as a local run's do. Against a real RabbitMQ, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.feeds.collect import sources_from_path
from commonwatch.feeds.models import FeedRunStats
from commonwatch.feeds.registry import get_parser
from commonwatch.pipeline.amqp import publish_run, run_worker
from commonwatch.pipeline.runner import load_references
from tests.feeds.test_health import FEED, _subjects, check, report
from tests.pipeline.helpers import ingest, seed_registry
from tests.pipeline.test_amqp import queue  # noqa: F401  (the fixture is used by name)

pytestmark = pytest.mark.rabbitmq

FIGURES = ("feed_name", "rows", "events", "quarantined", "matched", "content_hash", "header", "new_columns",
           "missing_columns", "has_mapping", "known_columns")


def broker_ingest(amqp_url: str, engine, clock, queue_name: str, path) -> int:
    """``commonwatch ingest --broker``'s publisher, then a worker until the run's batches are done."""
    sm = make_sessionmaker(engine)
    run_id, published = publish_run(engine, sm, clock, get_parser("shadowserver"), sources_from_path(path, clock.now()),
                                    feed="shadowserver", target=str(path), url=amqp_url, queue=queue_name,
                                    actor="test")
    if published:
        stats = run_worker(amqp_url, engine, load_references(engine, sm, None), clock, queue=queue_name,
                           max_batches=published)
        assert stats.failed == 0
    return run_id


def figures(engine, run_id: int) -> list[tuple]:
    with make_sessionmaker(engine)() as s:
        rows = s.scalars(select(FeedRunStats).where(FeedRunStats.run_id == run_id)).all()
        return [tuple(getattr(r, c) for c in FIGURES) for r in rows]


def test_a_broker_run_records_what_a_local_run_records(amqp_url, any_engine, clock, queue, tmp_path,  # noqa: F811
                                                       monkeypatch):
    monkeypatch.setenv("COMMONWATCH_BATCH_ROWS", "3")  # several batches, several workers' merges
    seed_registry(any_engine, clock)
    path = report(tmp_path, 1, rows=10, bad=2, extra={"tls_ja4": "x"})
    local = ingest(any_engine, path, "shadowserver", clock)
    clock.advance(timedelta(hours=1))
    run_id = broker_ingest(amqp_url, any_engine, clock, queue, path)
    [broker] = figures(any_engine, run_id)
    assert broker == figures(any_engine, local.run_id)[0]
    assert broker[:5] == (FEED, 10, 8, 2, 8) and broker[7] == ["tls_ja4"]


def test_broker_runs_raise_faults_as_local_runs_do(amqp_url, any_engine, clock, queue, tmp_path):  # noqa: F811
    seed_registry(any_engine, clock)
    for day in range(8):
        broker_ingest(amqp_url, any_engine, clock, queue, report(tmp_path, day, rows=20 + day % 3))
        clock.advance(timedelta(days=1))
    clock.advance(timedelta(hours=-23))
    assert check(any_engine, clock) == (set(), set())
    broker_ingest(amqp_url, any_engine, clock, queue, report(tmp_path, 40, rows=20, bad=12, drop=("ip",)))
    opened, _closed = check(any_engine, clock)
    assert {"missing_column", "quarantine"} <= opened
    clock.advance(timedelta(days=1))
    broker_ingest(amqp_url, any_engine, clock, queue, report(tmp_path, 41, rows=0))
    assert "empty" in check(any_engine, clock)[0]


def test_a_broker_runs_fault_alerts_the_coordinators(amqp_url, app, world, clock, queue, tmp_path):  # noqa: F811
    from commonwatch.feeds.jobs import check_health

    st = app.state
    with session_scope(st.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
    for day in range(8):
        broker_ingest(amqp_url, st.engine, clock, queue, report(tmp_path, day, rows=20 + day % 3))
        clock.advance(timedelta(days=1))
    clock.advance(timedelta(hours=-23))
    assert check_health(st) == "0 fault(s) opened, 0 closed; 0 alerted"
    broker_ingest(amqp_url, st.engine, clock, queue, report(tmp_path, 50, extra={"tls_ja4": "x"}))
    assert check_health(st) == "1 fault(s) opened, 0 closed; 1 alerted"
    [subject] = _subjects(st.settings.data_dir / "notify" / "outbox")[world.users["coordinator"]]
    assert FEED in subject
