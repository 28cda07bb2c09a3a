"""The events capability's periodic work: compaction as the scheduler runs it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from commonwatch.access.principal import SYSTEM
from commonwatch.events.jobs import JOBS, run_compaction
from commonwatch.events.store.parquet import ParquetEventStore
from tests.events.eventdata import as_batch, spread

END = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def test_compaction_is_a_scheduled_job():
    assert "events-compaction" in {job.name for job in JOBS}


def test_the_job_merges_small_segments_of_the_configured_store(settings, clock, app, tmp_path):
    folder = tmp_path / "events"
    store = ParquetEventStore(folder)
    rows = spread(40, end=END, org_ids=[None], step=timedelta(minutes=1))
    for i in range(0, 40, 10):
        store.append(as_batch(rows[i:i + 10]), batch_id=i, now=END)
    assert len(store.manifest().segments) == 4
    state = SimpleNamespace(settings=settings.model_copy(update={"event_store": "parquet", "event_store_dir": folder}),
                            sessionmaker=app.state.sessionmaker, clock=clock)
    assert run_compaction(state) == "4 segments merged"
    after = ParquetEventStore(folder)
    assert len(after.manifest().segments) == 1
    assert after.scan(SYSTEM, ["event_key"], limit=100)["event_key"].sort().to_list() == sorted(r["event_key"] for r in rows)
    # The SQL store keeps its own layout: nothing to merge.
    sql_state = SimpleNamespace(settings=settings.model_copy(update={"event_store": "sql"}),
                                sessionmaker=app.state.sessionmaker, clock=clock)
    assert run_compaction(sql_state) == "0 segments merged"
