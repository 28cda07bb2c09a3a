"""The scale-out runner over RabbitMQ.

``commonwatch ingest ... --broker amqp://...`` parses the input and publishes each parsed batch
to a durable queue with publisher confirms (a batch is known to be on the broker before the next
is read). ``commonwatch worker`` processes batches with the same stage functions as the
in-process runner, stores them (COPY on PostgreSQL), commits, and only then acknowledges the
message. A worker killed between commit and acknowledgement gets the batch again; the idempotent
store writes it once. A batch that fails for a reason a retry cannot fix goes to the dead-letter
queue with the error, never silently away.

Client: pika (BlockingConnection) — maintained by the RabbitMQ team's community, no event loop
to host in the worker, publisher confirms with ``confirm_delivery()``.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

import pika
import polars as pl

from commonwatch.clock import Clock
from commonwatch.feeds import health
from commonwatch.feeds.base import BadRecord, ParsedBatch
from commonwatch.pipeline.runner import References, finish_run, parse_safely, start_run, store
from commonwatch.pipeline.stages import Params, process_batch

log = logging.getLogger("commonwatch.worker")
QUEUE = "commonwatch.batches"


def dead_letter(queue: str) -> str:
    return f"{queue}.dead"


def declare(channel, queue: str = QUEUE) -> None:
    """The work queue and its dead-letter queue, both durable."""
    channel.queue_declare(queue=dead_letter(queue), durable=True)
    channel.queue_declare(queue=queue, durable=True, arguments={
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead_letter(queue)})


def encode_batch(batch: ParsedBatch, meta: dict) -> bytes:
    """JSON header (run, feed, source, bad records, notes) + Arrow IPC of the frame."""
    head = json.dumps({**meta, "bad": [[b.line, b.reason, b.raw] for b in batch.bad], "notes": batch.notes},
                      ensure_ascii=False).encode("utf-8")
    buf = io.BytesIO()
    batch.frame.write_ipc(buf, compression="zstd")
    return len(head).to_bytes(4, "big") + head + buf.getvalue()


def decode_batch(body: bytes) -> tuple[ParsedBatch, dict]:
    n = int.from_bytes(body[:4], "big")
    meta = json.loads(body[4:4 + n].decode("utf-8"))
    frame = pl.read_ipc(io.BytesIO(body[4 + n:]))
    bad = [BadRecord(int(line), reason, raw) for line, reason, raw in meta.pop("bad")]
    return ParsedBatch(frame, bad, meta.pop("notes")), meta


def publish_batches(url: str, batches: Iterable[ParsedBatch], meta: dict, queue: str = QUEUE, *,
                    meta_of: Callable[[ParsedBatch], dict] | None = None) -> int:
    """Publish every batch persistently, each confirmed by the broker; returns how many.
    ``meta_of`` adds a batch's own header fields (the feed its health figures count under)."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        declare(channel, queue)
        channel.confirm_delivery()
        count = 0
        for seq, batch in enumerate(batches):
            body = encode_batch(batch, {**meta, "seq": seq, **(meta_of(batch) if meta_of else {})})
            # With confirms on, this returns once the broker has the message (raises if it refused it).
            channel.basic_publish(exchange="", routing_key=queue, body=body, mandatory=True,
                                  properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent,
                                                                  content_type="application/x-commonwatch-batch"))
            count += 1
        return count
    finally:
        conn.close()


@dataclass
class WorkerStats:
    batches: int = 0
    failed: int = 0
    stored: int = 0


def run_worker(url: str, engine, refs: References, clock: Clock, *, queue: str = QUEUE,
               dedup_window: timedelta = timedelta(days=1), max_batches: int | None = None,
               idle_seconds: float | None = None) -> WorkerStats:
    """Consume batches until stopped (or ``max_batches`` done, or idle for ``idle_seconds``)."""
    stats = WorkerStats()
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        declare(channel, queue)
        channel.basic_qos(prefetch_count=1)
        idle_since = time.monotonic()
        for method, _props, body in channel.consume(queue, inactivity_timeout=1.0):
            if method is None:
                if idle_seconds is not None and time.monotonic() - idle_since > idle_seconds:
                    break
                continue
            idle_since = time.monotonic()
            try:
                parsed, meta = decode_batch(body)
                done = process_batch(parsed, refs, Params(now=clock.now(), dedup_window=dedup_window))
                written = store(engine, int(meta["run_id"]), done, meta["feed"], meta["source"], clock)
                if meta.get("health_feed"):  # feed health, as a local run records it (feeds.health)
                    health.add_processed(engine, int(meta["run_id"]), meta["health_feed"], clock.now(),
                                         events=done.events, quarantined=done.quarantine.height,
                                         refused_by_parser=len(parsed.bad))
            except Exception as exc:  # a poison batch: keep it (dead-letter queue) and go on
                log.exception("batch failed", extra={"error": str(exc)})
                channel.basic_nack(method.delivery_tag, requeue=False)
                stats.failed += 1
            else:
                channel.basic_ack(method.delivery_tag)  # after the commit, never before
                stats.batches += 1
                stats.stored += written.inserted
            if max_batches is not None and stats.batches + stats.failed >= max_batches:
                break
        channel.cancel()
    finally:
        conn.close()
    return stats


def publish_run(engine, sessionmaker, clock: Clock, parser, sources: Iterable, *, feed: str, target: str, url: str,
                queue: str = QUEUE, actor: str = "cli") -> tuple[int, int]:
    """``commonwatch ingest --broker``: one run, every source parsed and its batches published; the
    run's feed-health figures of parsing (rows, the parser's refusals, the bytes' hash, the header)
    are written here and the workers add theirs. Returns (run id, batches published)."""
    recorder = health.RunRecorder(feed, actor)
    run_id = start_run(engine, feed, target, actor, clock)
    count = 0
    for source in sources:
        source = recorder.watch(source)
        count += publish_batches(url, parse_safely(parser, source),
                                 {"run_id": run_id, "feed": feed, "source": source.name}, queue=queue,
                                 meta_of=lambda b: {"health_feed": recorder.add_parsed(b)})
        recorder.source_done()
    recorder.merge(engine, run_id, clock.now())
    finish_run(sessionmaker, run_id, "queued", [f"{count} batch(es) queued for workers"], "", clock, actor)
    return run_id, count
