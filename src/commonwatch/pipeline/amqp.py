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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import pika
import polars as pl

from commonwatch.clock import Clock
from commonwatch.feeds.base import BadRecord, ParsedBatch
from commonwatch.pipeline.runner import References, store
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


def publish_batches(url: str, batches: Iterable[ParsedBatch], meta: dict, queue: str = QUEUE) -> int:
    """Publish every batch persistently, each confirmed by the broker; returns how many."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = conn.channel()
        declare(channel, queue)
        channel.confirm_delivery()
        count = 0
        for seq, batch in enumerate(batches):
            body = encode_batch(batch, {**meta, "seq": seq})
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
