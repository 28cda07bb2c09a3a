"""The ClickHouse event store on chDB, beyond the contract (tests/events/test_store_contract.py):
ClickHouse's own safety nets (a block inserted twice is stored once; a copy stored past the check
is read once), writers in parallel, retention by whole partitions with legal holds, a move from the
events table (resumed after a stop, ids kept) and the RabbitMQ worker writing through the factory.
Real chDB in the test's folder; real SQLite and RabbitMQ."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from commonwatch.access.principal import SYSTEM
from commonwatch.config import get_settings
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.errors import Invalid
from commonwatch.events.migrate import move_events
from commonwatch.events.search import EventFilter
from commonwatch.events.store import COLUMN_TYPES, event_store
from commonwatch.events.store.clickhouse import (
    _KEY_CACHES,
    TABLE,
    ChdbBackend,
    ClickHouseEventStore,
    quote_str,
    table_ddl,
)
from commonwatch.events.store.parquet import RENAME
from commonwatch.events.store.sql import SqlEventStore
from tests.events.eventdata import as_batch, event_row, insert_events, spread

END = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path) -> ClickHouseEventStore:
    return ClickHouseEventStore(ChdbBackend(tmp_path / "chdb"))


def physical_rows(store: ClickHouseEventStore) -> int:
    """Rows as stored, before ReplacingMergeTree folds copies (no FINAL)."""
    return int(store._scalar(f"SELECT count() FROM {TABLE}"))


def test_the_same_block_inserted_twice_is_stored_once(store):
    """An insert retried after its answer was lost carries the same token: ClickHouse drops it."""
    rows = spread(20, end=END, org_ids=[None])
    assert store.append(as_batch(rows), batch_id=1, now=END) == 20
    block = store._rows_by_id(range(1, 21), [*COLUMN_TYPES, "version"])
    again = ClickHouseEventStore._full(block)
    store._insert(again)
    store._insert(again)
    assert physical_rows(store) == 20


def test_a_copy_stored_past_the_check_is_read_once(store):
    """Two copies of one key (as two writers without the lock could leave): every read shows one."""
    rows = spread(5, end=END, org_ids=[None])
    store.append(as_batch(rows), batch_id=1, now=END)
    copy = ClickHouseEventStore._full(store._rows_by_id([3], [*COLUMN_TYPES, "version"]))
    store._insert(copy.with_columns(pl.lit(2, pl.UInt64).alias("version"), pl.lit(77, pl.Int64).alias("batch_id")))
    assert physical_rows(store) == 6
    assert store.count_capped(SYSTEM, EventFilter()) == (5, True)
    assert [r.id for r in store.ordered(SYSTEM, EventFilter(), limit=10)].count(3) == 1
    assert store.fetch(SYSTEM, [3], ["batch_id"])["batch_id"].to_list() == [77]  # the newest version


def test_writers_in_parallel_store_each_key_once_with_distinct_ids(store):
    rows = spread(300, end=END, org_ids=[None], step=timedelta(seconds=30))
    batches = [rows[i * 50:i * 50 + 150] for i in range(4)]  # overlapping slices
    stored, errors = [], []

    def write(part):
        try:
            stored.append(store.append(as_batch(part), batch_id=1, now=END))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    covered = {r["event_key"] for b in batches for r in b}
    assert sum(stored) == len(covered) == physical_rows(store)
    ids = store.existing_keys(list(covered))
    assert len(set(ids.values())) == len(covered)
    assert sorted(ids.values()) == list(range(1, len(covered) + 1))


@pytest.mark.postgres
def test_a_writer_waits_while_another_holds_the_advisory_lock(pg_url, tmp_path):
    """Workers on other machines share no file lock: they take turns on PostgreSQL's advisory lock."""
    from sqlalchemy import text

    from commonwatch.db import make_engine
    from commonwatch.events.store.clickhouse import ADVISORY_KEY

    engine = make_engine(pg_url)
    rows = spread(10, end=END, org_ids=[None])
    stored: list[int] = []
    # The folder open and a first batch written, so what the writer waits for below is the lock alone.
    ClickHouseEventStore(ChdbBackend(tmp_path / "chdb")).append(as_batch(spread(3, end=END, org_ids=[None],
                                                                               key_prefix="warm")), batch_id=1, now=END)
    try:
        with engine.connect() as other:  # another worker, in the middle of its batch
            other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_KEY})

            def write():
                with session_scope(make_sessionmaker(engine), actor="test") as s:
                    stored.append(ClickHouseEventStore(ChdbBackend(tmp_path / "chdb"), s).append(
                        as_batch(rows), batch_id=1, now=END))

            writer = threading.Thread(target=write)
            writer.start()
            writer.join(timeout=3)
            assert writer.is_alive() and stored == []  # waiting for the other worker
            other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            other.commit()
            writer.join(timeout=30)
        assert stored == [10]
    finally:
        engine.dispose()


def test_the_dedup_check_looks_within_the_window(tmp_path):
    """A key stored more than ``event_dedup_days`` from the batch's times is outside the check."""
    store = ClickHouseEventStore(ChdbBackend(tmp_path / "chdb"), dedup_days=1)
    row = event_row(1, at=END, org_id=None)
    assert store.append(as_batch([row]), batch_id=1, now=END) == 1
    assert store.append(as_batch([{**row, "time_source": END + timedelta(hours=20)}]), batch_id=2, now=END) == 0
    assert store.append(as_batch([{**row, "time_source": END + timedelta(days=3)}]), batch_id=3, now=END) == 1


def with_ids(rows, ids) -> pl.DataFrame:
    """Rows as :meth:`ClickHouseEventStore.append_stored` takes them (a move from another store)."""
    frame = as_batch(rows).rename(RENAME, strict=False)
    return frame.with_columns(pl.Series("id", ids, pl.Int64), pl.lit(1, pl.Int64).alias("batch_id"),
                              pl.col("time_source").alias("created_at"))


def test_dedup_stays_exact_across_a_restart(tmp_path):
    """The writer's key cache lives in its process: a process started afresh reads the stored keys
    again, so what an earlier process stored is not stored twice."""
    import subprocess
    import sys

    rows = spread(40, end=END, org_ids=[None], step=timedelta(hours=5))  # over 9 days
    as_batch(rows[:30]).write_parquet(tmp_path / "first.parquet")
    first = subprocess.run(
        [sys.executable, "-c", "import sys, polars as pl; from datetime import datetime, UTC; from pathlib import Path; "
         "from commonwatch.events.store.clickhouse import ChdbBackend, ClickHouseEventStore; "
         "s = ClickHouseEventStore(ChdbBackend(Path(sys.argv[1]))); "
         "print(s.append(pl.read_parquet(sys.argv[2]), batch_id=1, now=datetime.now(UTC)))",
         str(tmp_path / "chdb"), str(tmp_path / "first.parquet")], capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split()[-1] == "30"
    store = ClickHouseEventStore(ChdbBackend(tmp_path / "chdb"))
    assert store.append(as_batch(rows), batch_id=2, now=END) == 10
    assert store.append(as_batch(rows), batch_id=3, now=END) == 0  # now from the cache
    assert physical_rows(store) == 40
    assert sorted(store.existing_keys([r["event_key"] for r in rows]).values()) == list(range(1, 41))


def test_a_writer_catches_up_on_what_other_writers_did(store):
    """Two writers (on a server, in two processes) each with a key cache: one's appends, moves and
    retention drops are seen by the other's next check. chDB runs one process, so the second
    writer is this process with its cache set aside, then put back."""
    mine = spread(10, end=END, org_ids=[None], key_prefix="mine")
    theirs = spread(10, end=END, org_ids=[None], key_prefix="theirs")
    store._record_block(1, 50, END)  # ids handed out to a batch whose insert failed: free for a move
    assert store.append(as_batch(mine), batch_id=1, now=END) == 10

    def as_other_writer(write):
        held = _KEY_CACHES.pop(store.location)
        try:
            return write()
        finally:
            _KEY_CACHES[store.location] = held

    # Their append (ids above what this writer saw): caught up by id.
    assert as_other_writer(lambda: store.append(as_batch(theirs), batch_id=2, now=END)) == 10
    assert store.append(as_batch(mine + theirs), batch_id=3, now=END) == 0
    # Their move of stored events, ids below those handed out: this writer's cache starts again.
    moved = spread(5, end=END, org_ids=[None], key_prefix="moved")
    assert as_other_writer(lambda: store.append_stored(with_ids(moved, [1, 2, 3, 4, 5]))) == 5
    assert store.append(as_batch(moved + theirs), batch_id=4, now=END) == 0
    # Their retention drop: keys left the store, so storing them again is no repeat.
    assert as_other_writer(lambda: store.drop_days_before(date(2026, 11, 26), [])) != []
    assert store.count_capped(SYSTEM, EventFilter()) == (0, True)
    assert store.append(as_batch(mine), batch_id=5, now=END) == 10


def test_retention_drops_whole_partitions_and_keeps_holds(store):
    rows = [event_row(i, at=datetime(2026, 11, 20 + i // 10, 6, i, tzinfo=UTC), org_id=None) for i in range(30)]
    store.append(as_batch(rows), batch_id=1, now=END)
    ids = store.existing_keys([r["event_key"] for r in rows])
    held = ids[rows[12]["event_key"]]  # on 21 November

    def partitions():
        table = store.backend.arrow(f"SELECT DISTINCT partition FROM system.parts WHERE table = '{TABLE}' "
                                    "AND active ORDER BY partition")
        return table.column(0).to_pylist()

    assert partitions() == ["20261120", "20261121", "20261122"]
    plan = store.drop_days_before(date(2026, 11, 22), [held, 10**9], dry_run=True)
    assert [(d.day, d.dropped, d.kept) for d in plan] == [("2026-11-20", 10, 0), ("2026-11-21", 9, 1)]
    assert store.count_capped(SYSTEM, EventFilter()) == (30, True)
    done = store.drop_days_before(date(2026, 11, 22), [held])
    assert done == plan
    assert "20261120" not in partitions()  # the whole day's partition went
    left = set(store.scan(SYSTEM, [], limit=100)["id"].to_list())
    assert left == {held} | {ids[r["event_key"]] for r in rows[20:]}


def test_migrate_store_moves_the_table_with_ids_and_resumes(engine, tmp_path):
    rows = [event_row(i, at=END - timedelta(hours=i), org_id=None, id=10 + 3 * i, batch_id=4) for i in range(90)]
    with session_scope(make_sessionmaker(engine), actor="test") as s:
        insert_events(s, rows, "sql")
    source = SqlEventStore(engine)
    target = ClickHouseEventStore(ChdbBackend(tmp_path / "chdb"))

    class Stop(Exception):
        pass

    def stop_after_two(result, last):
        if result.batches == 2:
            raise Stop

    with pytest.raises(Stop):
        move_events(source, target, batch_rows=20, on_batch=stop_after_two)
    assert target.latest_id(SYSTEM, EventFilter()) == 10 + 3 * 39
    result = move_events(source, target, batch_rows=20)
    assert result.resumed_after == 10 + 3 * 39 and result.moved == 50 and result.matches
    every = [c for c in COLUMN_TYPES if c != "id"]
    ids = [r["id"] for r in rows]
    assert target.fetch(SYSTEM, ids, every).sort("id").equals(source.fetch(SYSTEM, ids, every).sort("id"))
    # A batch given twice is stored once; new events get ids past the moved ones.
    assert target.append_stored(source.scan(SYSTEM, every, limit=30)) == 0
    fresh = spread(2, end=END, org_ids=[None], key_prefix="new")
    assert target.append(as_batch(fresh), batch_id=9, now=END) == 2
    assert min(target.existing_keys([r["event_key"] for r in fresh]).values()) > max(ids)


def test_migrate_store_command_fills_the_clickhouse_store(run, app, engine, tmp_path):
    rows = [event_row(i, at=END - timedelta(hours=i), org_id=None) for i in range(40)]
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, rows, "sql")
    result = run("events", "migrate-store", "--to", "clickhouse", "--batch-rows", "15",
                 event_store_dir=tmp_path / "events", clickhouse_url="")
    assert result.exit_code == 0, result.output
    assert "events in the table: 40; in the store: 40" in result.output
    assert (tmp_path / "events" / "chdb").is_dir()
    refused = run("events", "migrate-store", "--to", "duckdb")
    assert refused.exit_code != 0 and "duckdb" in refused.output


def test_a_chdb_folder_open_in_another_process_is_refused_with_the_reason(tmp_path):
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from commonwatch.events.store.clickhouse import ChdbBackend; "
         "ChdbBackend(Path(sys.argv[1]))._session(); print('open', flush=True); sys.stdin.read()",
         str(tmp_path / "chdb")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(Invalid) as err:
            ClickHouseEventStore(ChdbBackend(tmp_path / "chdb")).count_capped(SYSTEM, EventFilter())
        assert err.value.errors[0].field == "event_store" and "another process" in err.value.errors[0].reason
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    # Once that process has gone, the folder opens here, its table intact.
    assert ClickHouseEventStore(ChdbBackend(tmp_path / "chdb")).count_capped(SYSTEM, EventFilter()) == (0, True)


def test_cluster_tables_are_replicated_and_sharded_on_the_key(store):
    statements = table_ddl("events_cluster", "cw")
    for statement in statements:  # ClickHouse's own parser reads each (chDB has no cluster to run them on)
        parsed = store.backend.arrow(f"SELECT formatQuery({quote_str(statement)})").column(0)[0].as_py()
        assert parsed.startswith("CREATE TABLE IF NOT EXISTS")
    ddl = "\n".join(statements)
    assert "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/cw/events_local', '{replica}', version)" \
        in ddl
    assert "Distributed('events_cluster', 'cw', events_local, cityHash64(event_key))" in ddl
    assert ddl.count("ON CLUSTER `events_cluster`") == 4
    assert "Distributed" not in "\n".join(table_ddl())


@pytest.mark.rabbitmq
def test_the_worker_stores_queued_batches_in_clickhouse_once(amqp_url, engine, clock, tmp_path, monkeypatch):
    import uuid

    import pika

    from commonwatch.feeds.collect import sources_from_path
    from commonwatch.feeds.registry import get_parser
    from commonwatch.pipeline.amqp import dead_letter, publish_batches, run_worker
    from commonwatch.pipeline.demo import samples_dir
    from commonwatch.pipeline.runner import load_references, start_run
    from tests.pipeline.helpers import seed_registry

    monkeypatch.setenv("COMMONWATCH_EVENT_STORE", "clickhouse")
    monkeypatch.setenv("COMMONWATCH_EVENT_STORE_DIR", str(tmp_path / "events"))
    monkeypatch.delenv("COMMONWATCH_CLICKHOUSE_URL", raising=False)
    monkeypatch.setenv("COMMONWATCH_BATCH_ROWS", "3")
    get_settings.cache_clear()
    queue = f"commonwatch.test.{uuid.uuid4().hex[:10]}"
    try:
        seed_registry(engine, clock)
        factory = make_sessionmaker(engine)
        path = samples_dir() / "2026-11-24-event4_sinkhole-asn-region-geo.csv"
        parser = get_parser("shadowserver")

        def publish():
            run_id = start_run(engine, "shadowserver", str(path), "test", clock)
            return sum(publish_batches(amqp_url, parser.parse(src), {"run_id": run_id, "feed": "shadowserver",
                                                                    "source": src.name}, queue=queue)
                       for src in sources_from_path(path, clock.now()))

        refs = load_references(engine, factory, None)
        published = publish()
        stats = run_worker(amqp_url, engine, refs, clock, queue=queue, max_batches=published)
        assert (stats.batches, stats.failed, stats.stored) == (3, 0, 8)
        ch = event_store(engine)
        assert ch.name == "clickhouse" and ch.count_capped(SYSTEM, EventFilter()) == (8, True)
        assert SqlEventStore(engine).count_capped(SYSTEM, EventFilter()) == (0, True)  # not in the table
        stats = run_worker(amqp_url, engine, refs, clock, queue=queue, max_batches=publish())
        assert stats.stored == 0 and ch.count_capped(SYSTEM, EventFilter()) == (8, True)
    finally:
        get_settings.cache_clear()
        conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = conn.channel()
        channel.queue_delete(queue)
        channel.queue_delete(dead_letter(queue))
        conn.close()
