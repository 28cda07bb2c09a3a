"""The scale-out runner against a real RabbitMQ: batches published with confirms, processed by a
worker with the same stages, acknowledged after the commit; a poison batch is dead-lettered."""

from __future__ import annotations

import uuid

import pika
import pytest

from commonwatch.db import make_sessionmaker
from commonwatch.feeds.collect import sources_from_path
from commonwatch.feeds.registry import get_parser
from commonwatch.pipeline.amqp import dead_letter, declare, decode_batch, encode_batch, publish_batches, run_worker
from commonwatch.pipeline.demo import samples_dir
from commonwatch.pipeline.runner import finish_run, load_references, start_run
from tests.pipeline.helpers import count_events, seed_registry

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def queue(amqp_url):
    name = f"commonwatch.test.{uuid.uuid4().hex[:10]}"
    yield name
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    ch.queue_delete(name)
    ch.queue_delete(dead_letter(name))
    conn.close()


def _publish(amqp_url, engine, clock, queue, path, feed) -> int:
    run_id = start_run(engine, feed, str(path), "test", clock)
    parser = get_parser(feed)
    n = 0
    for source in sources_from_path(path, clock.now()):
        n += publish_batches(amqp_url, parser.parse(source), {"run_id": run_id, "feed": feed, "source": source.name},
                             queue=queue)
    return run_id, n


def test_batch_round_trip_encoding():
    import polars as pl

    from commonwatch.feeds.base import BadRecord, ParsedBatch

    batch = ParsedBatch(pl.DataFrame({"source.ip": ["198.51.100.1"], "raw.line": [2]}),
                        [BadRecord(3, "3 fields where the header has 7", "a,b,c")], ["a note"])
    back, meta = decode_batch(encode_batch(batch, {"run_id": 5, "feed": "x", "source": "y"}))
    assert back.frame.equals(batch.frame) and back.bad == batch.bad and back.notes == ["a note"]
    assert meta == {"run_id": 5, "feed": "x", "source": "y"}


def test_worker_stores_published_batches_once(amqp_url, any_engine, clock, queue, monkeypatch):
    monkeypatch.setenv("COMMONWATCH_BATCH_ROWS", "3")
    seed_registry(any_engine, clock)
    factory = make_sessionmaker(any_engine)
    path = samples_dir() / "2026-11-24-event4_sinkhole-asn-region-geo.csv"
    run_id, published = _publish(amqp_url, any_engine, clock, queue, path, "shadowserver")
    assert published == 3  # 8 rows in batches of 3
    refs = load_references(any_engine, factory, None)
    stats = run_worker(amqp_url, any_engine, refs, clock, queue=queue, max_batches=published)
    assert (stats.batches, stats.failed, stats.stored) == (3, 0, 8)
    assert count_events(any_engine) == 8
    # The same input again (a publisher retry, a redelivery): nothing new is stored.
    _publish(amqp_url, any_engine, clock, queue, path, "shadowserver")
    stats = run_worker(amqp_url, any_engine, refs, clock, queue=queue, max_batches=3)
    assert stats.stored == 0 and count_events(any_engine) == 8
    run = finish_run(factory, run_id, "done", [], "", clock, "test")
    assert run.events_stored == 8 and run.rows_read == 8


def test_poison_batch_goes_to_the_dead_letter_queue(amqp_url, engine, clock, queue):
    seed_registry(engine, clock)
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    declare(ch, queue)
    ch.basic_publish("", queue, b"\x00\x00\x00\x02{}not arrow", pika.BasicProperties(delivery_mode=2))
    conn.close()
    refs = load_references(engine, make_sessionmaker(engine), None)
    stats = run_worker(amqp_url, engine, refs, clock, queue=queue, max_batches=1)
    assert stats.failed == 1
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    method, _props, body = ch.basic_get(dead_letter(queue), auto_ack=True)
    conn.close()
    assert method is not None and body.endswith(b"not arrow")


def test_ingest_command_hands_batches_to_workers(amqp_url, settings, engine, clock, queue, monkeypatch):
    from typer.testing import CliRunner

    from commonwatch.cli import app
    from commonwatch.pipeline.models import IngestRun
    from commonwatch.runtime import Runtime, set_runtime

    monkeypatch.setenv("COMMONWATCH_BATCH_ROWS", "2")
    seed_registry(engine, clock)
    set_runtime(Runtime(settings, clock))
    try:
        result = CliRunner().invoke(app, ["ingest", str(samples_dir() / "urlhaus.csv"), "--feed", "urlhaus",
                                          "--broker", amqp_url, "--queue", queue])
    finally:
        set_runtime(None)
    assert result.exit_code == 0, result.output
    assert "2 batch(es) queued" in " ".join(result.output.split())
    assert count_events(engine) == 0  # nothing stored until a worker takes the batches
    factory = make_sessionmaker(engine)
    stats = run_worker(amqp_url, engine, load_references(engine, factory, None), clock, queue=queue, max_batches=2)
    assert stats.stored == 4 and count_events(engine) == 4
    with factory() as session:
        run = session.query(IngestRun).one()
        assert (run.status, run.events_stored, run.rows_read) == ("queued", 4, 4)
