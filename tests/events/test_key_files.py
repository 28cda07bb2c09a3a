"""The Parquet store's key files (events/store/key_index.py): each segment's sorted fingerprints
beside it, written with it and with compaction, read by a new writer instead of hashing its keys
again; a missing, truncated, corrupt or stale one (another hash function) is rebuilt from its
segment, never trusted; the writer holds only the dedup window's days."""

from __future__ import annotations

import zlib
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from commonwatch.events.store import key_index
from commonwatch.events.store import parquet as pq_store
from commonwatch.events.store.parquet import ParquetEventStore
from tests.conftest import START
from tests.events.eventdata import as_batch, event_row


def _rows(n: int, *, prefix: str, day: int = 0) -> list[dict]:
    return [event_row(i, at=START - timedelta(days=day, minutes=i), org_id=None, key_prefix=prefix)
            for i in range(n)]


def _filled(location: Path) -> tuple[ParquetEventStore, list[dict]]:
    store = ParquetEventStore(location)
    rows = _rows(40, prefix="a") + _rows(30, prefix="b", day=1)
    assert store.append(as_batch(rows), batch_id=1, now=START) == 70
    pq_store._forget_index(location)  # as a new process: no index in memory
    return store, rows


def _key_files(store: ParquetEventStore) -> list[Path]:
    return [store.location / key_index.companion(s["file"]) for s in store.manifest().segments]


def _true_run(store: ParquetEventStore, seg: dict) -> key_index.Run:
    keys = pl.read_parquet(store.location / seg["file"], columns=["event_key"])["event_key"]
    return key_index.sorted_run(*key_index.fingerprints(keys))


def _in_step(store: ParquetEventStore) -> None:
    """Every live segment's key file holds exactly its keys' fingerprints."""
    for seg in store.manifest().segments:
        raw = (store.location / key_index.companion(seg["file"])).read_bytes()
        run = key_index.decoded(raw, seg["rows"])
        assert run is not None, seg["file"]
        want = _true_run(store, seg)
        assert np.array_equal(run[0], want[0]) and np.array_equal(run[1], want[1])


def _dedups_exactly(store: ParquetEventStore, rows: list[dict]) -> None:
    """Stored keys given again (with new ones) store only the new ones, as a new process."""
    again = rows + _rows(5, prefix="new")
    assert store.append(as_batch(again), batch_id=2, now=START) == 5
    frame = store._lazy().select("event_key").collect()
    assert frame.height == frame["event_key"].n_unique() == len(rows) + 5


def test_a_segment_is_written_with_its_key_file_and_a_new_writer_reads_it(tmp_path, monkeypatch):
    store, rows = _filled(tmp_path / "events")
    _in_step(store)
    # A new writer reads the files: it does not read the segments' keys again.
    read = []
    real = pl.read_parquet
    monkeypatch.setattr(key_index.pl, "read_parquet", lambda *a, **k: read.append(a) or real(*a, **k))
    _dedups_exactly(store, rows)
    assert read == []


def _broken_by_truncation(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-8])


def _broken_by_a_flipped_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[key_index.HEADER.size + 3] ^= 0xFF  # the body no longer matches its CRC
    path.write_bytes(bytes(raw))


def _stale(path: Path) -> None:
    """The file as another Polars would write it: another hash, a valid CRC, its own identity."""
    seg = path.with_name(path.name.removesuffix(key_index.SUFFIX) + ".parquet")
    keys = pl.read_parquet(seg, columns=["event_key"])["event_key"]
    run = key_index.sorted_run(keys.hash(seed=1).to_numpy(), keys.hash(seed=2).to_numpy())
    body = run[0].astype("<u8").tobytes() + run[1].astype("<u8").tobytes()
    probes = [0] * (2 * len(key_index.PROBES))
    path.write_bytes(key_index.HEADER.pack(key_index.MAGIC, len(run[0]), zlib.crc32(body),
                                           b"0.0.0".ljust(32, b"\0"), *probes) + body)


def _of_another_segment(path: Path) -> None:
    """A whole, current file, but of the other day's segment (which holds another number of keys)."""
    seg = path.with_name(path.name.removesuffix(key_index.SUFFIX) + ".parquet")
    other = next(p for p in path.parent.parent.rglob("*.parquet")
                 if p.parent != seg.parent and not p.name.endswith(".values.parquet"))
    keys = pl.read_parquet(other, columns=["event_key"])["event_key"]
    path.write_bytes(key_index.encoded(key_index.sorted_run(*key_index.fingerprints(keys))))


@pytest.mark.parametrize("damage", [Path.unlink, _broken_by_truncation, _broken_by_a_flipped_byte, _stale,
                                    _of_another_segment],
                         ids=["missing", "truncated", "corrupt", "stale", "wrong-count"])
def test_a_bad_key_file_is_rebuilt_from_its_segment(tmp_path, damage):
    store, rows = _filled(tmp_path / "events")
    for path in _key_files(store):
        damage(path)
    _dedups_exactly(store, rows)
    _in_step(store)  # rewritten whole


def test_compaction_keeps_the_key_files_in_step_and_garbage_goes_with_the_segments(tmp_path, monkeypatch):
    location = tmp_path / "events"
    store = ParquetEventStore(location)
    rows = []
    for b in range(6):
        batch = _rows(20, prefix=f"c{b}-", day=b % 2)
        rows += batch
        assert store.append(as_batch(batch), batch_id=b, now=START) == 20
    old = _key_files(store)
    assert store.compact() == 6
    assert len(store.manifest().segments) == 2
    _in_step(store)
    pq_store._forget_index(location)
    _dedups_exactly(store, rows)
    monkeypatch.setattr(pq_store, "RETIRE_SECONDS", 0.0)
    store.compact()  # a writer: collects what is retired
    assert not any(p.exists() for p in old)
    # An older store's segments without key files get them from compaction.
    for path in _key_files(store):
        path.unlink()
    store.compact()
    _in_step(store)


def test_the_dedup_check_looks_within_the_window_and_holds_only_its_days(tmp_path):
    """As the ClickHouse store's: a key stored more than ``dedup_days`` from the batch's times is
    outside the check; the writer's index holds the window's days, not the store's."""
    location = tmp_path / "events"
    store = ParquetEventStore(location, dedup_days=1)
    old = _rows(30, prefix="old", day=20)
    assert store.append(as_batch(old), batch_id=1, now=START) == 30
    recent = _rows(10, prefix="recent")
    assert store.append(as_batch(recent), batch_id=2, now=START) == 10
    pq_store._forget_index(location)
    assert store.append(as_batch(recent), batch_id=3, now=START) == 0
    held = pq_store._INDEXES[location.resolve()][1]
    assert len(held) == 10  # the old day's keys were not loaded
    # The same key within the window is a repeat; three days away it is another observation.
    row = recent[0]
    assert store.append(as_batch([{**row, "time_source": row["time_source"] + timedelta(hours=20)}]),
                        batch_id=4, now=START) == 0
    assert store.append(as_batch([{**row, "time_source": row["time_source"] + timedelta(days=3)}]),
                        batch_id=5, now=START) == 1
    # A batch of the old day loads that day: its keys are repeats.
    assert store.append(as_batch(old[:5]), batch_id=6, now=START) == 0


def test_the_window_s_days_are_utc_days_of_the_batch_s_times():
    from datetime import UTC, datetime, timezone

    beijing = timezone(timedelta(hours=8))
    times = pl.Series([datetime(2026, 11, 25, 3, 0, tzinfo=beijing), datetime(2026, 11, 25, 12, 0, tzinfo=UTC)])
    assert pq_store.dedup_span(times, 1) == ("2026-11-23", "2026-11-26")  # 03:00 in Beijing: the 24th UTC
    assert pq_store.dedup_span(pl.Series([datetime(2026, 11, 25, 3, 0)]), 2) == ("2026-11-23", "2026-11-27")
    assert pq_store.dedup_span(pl.Series([datetime(2026, 11, 25, tzinfo=UTC), None]), 1) is None  # every day
