"""``commonwatch events migrate-store``: the events table moved into the Parquet store with every
field and every id kept, resumable after a SIGKILL (each event once), counts checked at the end,
the run audited. Real SQLite, real Parquet files, a real subprocess for the kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import polars as pl
from sqlalchemy import select

from commonwatch.access.models import AuditEntry
from commonwatch.access.principal import SYSTEM
from commonwatch.db import session_scope
from commonwatch.events.migrate import move_events
from commonwatch.events.store import COLUMN_TYPES
from commonwatch.events.store.parquet import ParquetEventStore
from commonwatch.events.store.sql import SqlEventStore
from tests.events.eventdata import as_batch, event_row, insert_events

END = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
ALL = [c for c in COLUMN_TYPES if c != "id"]


def table_rows(n: int, owners: list[int | None], partner: int | None = None, *, first_id: int = 7,
               step: timedelta = timedelta(hours=1)) -> list[dict]:
    """``n`` events ``step`` apart with ids that have gaps (as a table that lost rows has)."""
    rows = []
    for i in range(n):
        at = END - step * i - timedelta(seconds=i % 7)
        row = event_row(i, at=at, org_id=owners[i % len(owners)], id=first_id + 3 * i, batch_id=1 + i // 100,
                        created_at=at + timedelta(minutes=30))
        if partner is not None and i % 10 == 4:
            row["partner_org_id"] = partner
        rows.append(row)
    return rows


def _all_fields(store, ids) -> pl.DataFrame:
    return store.fetch(SYSTEM, ids, ALL).sort("id")


def test_migrate_keeps_every_field_and_id_and_is_audited(run, app, world, engine, tmp_path):
    rows = table_rows(1200, [world.org_a, world.org_b, None], world.partner)
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, rows, "sql")
    result = run("events", "migrate-store", "--batch-rows", "250", event_store_dir=tmp_path / "events")
    assert result.exit_code == 0, result.output
    assert "events in the table: 1,200; in the store: 1,200" in result.output
    ids = [r["id"] for r in rows]
    moved = _all_fields(ParquetEventStore(tmp_path / "events"), ids)
    assert moved.height == 1200
    assert moved.equals(_all_fields(SqlEventStore(engine), ids))  # every field of every event, ids kept
    with app.state.sessionmaker() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "events.migrate-store")).one()
    assert entry.actor == "cli"
    after = json.loads(entry.after)
    assert (after["moved"], after["table"], after["store"], after["batches"]) == (1200, 1200, 1200, 5)
    # Nothing left to move; the counts still match.
    again = run("events", "migrate-store", event_store_dir=tmp_path / "events")
    assert again.exit_code == 0, again.output
    assert "moved 0 event(s) this run" in again.output


def test_store_goes_on_past_the_moved_ids(tmp_path):
    store = ParquetEventStore(tmp_path / "events")
    frame = pl.DataFrame(table_rows(10, [None])).with_columns(pl.col("extra").map_elements(
        json.dumps, return_dtype=pl.String))
    frame = frame.with_columns(pl.col("source_ip_bin").cast(pl.Binary))
    assert store.append_stored(frame.select([pl.col(c).cast(t) for c, t in COLUMN_TYPES.items()])) == 10
    assert store.append_stored(frame.select([pl.col(c).cast(t) for c, t in COLUMN_TYPES.items()])) == 0
    assert store.manifest().next_id == 7 + 3 * 9 + 1
    new = as_batch([event_row(0, at=END, org_id=None, key_prefix="new")])
    assert store.append(new, batch_id=9, now=END) == 1
    assert store.existing_keys(new["event.key"].to_list()) == {new["event.key"][0]: 7 + 3 * 9 + 1}


def test_a_count_mismatch_exits_non_zero_with_the_numbers(run, app, world, tmp_path):
    rows = table_rows(300, [world.org_a, None])
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, rows, "sql")
    assert run("events", "migrate-store", event_store_dir=tmp_path / "events").exit_code == 0
    # An event written to the table below the store's highest id is never moved: the check sees it.
    late = event_row(5000, at=END - timedelta(days=1), org_id=None, key_prefix="late", id=8)
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, [late], "sql")
    result = run("events", "migrate-store", event_store_dir=tmp_path / "events")
    assert result.exit_code == 1
    assert "the table holds 301 event(s), the store 300" in result.output
    day = (END - timedelta(days=1)).date().isoformat()
    assert f"{day}: " in result.output


def test_sigkill_mid_migration_then_rerun_stores_each_event_once(app, world, engine, sqlite_url, tmp_path):
    rows = table_rows(20_000, [world.org_a, world.org_b, None], world.partner, step=timedelta(minutes=1))
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, rows, "sql")
    location = tmp_path / "events"
    env = {**os.environ, "COMMONWATCH_DATABASE_URL": sqlite_url, "COMMONWATCH_DATA_DIR": str(tmp_path / "data"),
           "COMMONWATCH_EVENT_STORE_DIR": str(location)}
    cmd = [sys.executable, "-c", "from commonwatch.cli import main; main()", "events", "migrate-store",
           "--batch-rows", "500"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _batch in range(3):  # killed once a few batches are committed, in the middle of the move
        assert proc.stderr.readline(), "the migration ended before it was killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = ParquetEventStore(location)._lazy().select("id").collect()
    assert 0 < partial.height < 20_000 and partial["id"].n_unique() == partial.height
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert final.returncode == 0, final.stderr[-2000:]
    stored = ParquetEventStore(location)._lazy().select("id", "event_key").collect()
    assert stored.height == 20_000 == stored["event_key"].n_unique()
    ids = [r["id"] for r in rows]
    assert sorted(stored["id"].to_list()) == ids
    assert _all_fields(ParquetEventStore(location), ids).equals(_all_fields(SqlEventStore(engine), ids))


def test_move_resumes_from_the_highest_stored_id(app, world, engine, tmp_path):
    rows = table_rows(400, [world.org_a])
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, rows, "sql")
    target = ParquetEventStore(tmp_path / "events")
    target.append_stored(SqlEventStore(engine).scan(SYSTEM, ALL, limit=150))
    result = move_events(SqlEventStore(engine), target, batch_rows=100)
    assert (result.resumed_after, result.moved, result.matches) == (rows[149]["id"], 250, True)


def test_start_up_warns_of_events_left_in_the_table(run, app, world, tmp_path):
    """An installation upgraded to the columnar default with its events still in the table is told
    how to move them, and no longer once they are moved (or when the table is the store)."""
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, table_rows(30, [world.org_a]), "sql")
    folder = tmp_path / "events"
    warned = run("init", event_store="parquet", event_store_dir=folder)
    assert warned.exit_code == 0, warned.output
    said = " ".join(warned.output.split())  # the console wraps long lines
    assert "30 event(s) are still in the database's events table" in said
    assert "move them with: commonwatch events migrate-store" in said
    assert "still in the database" not in run("init", event_store="sql").output
    assert run("events", "migrate-store", event_store_dir=folder).exit_code == 0
    assert "still in the database" not in run("init", event_store="parquet", event_store_dir=folder).output
