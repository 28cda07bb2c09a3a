"""Faults of the Parquet event store: SIGKILL during ingest and during compaction, a full disk, a
read-only folder, a corrupt segment at start-up; readers in other processes. Real subprocesses,
real files (and, for the disk faults, a real small tmpfs)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from commonwatch.access.principal import Principal, Role
from commonwatch.errors import Invalid
from commonwatch.events import search
from commonwatch.events.store.parquet import ParquetEventStore, opened
from tests.conftest import require_service
from tests.events.eventdata import as_batch, spread
from tests.pipeline.test_crash import _ingest_cmd, prepared_ingest

END = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
STAFF = Principal(1, "staff@x", Role.ANALYST)
EVERYTHING = search.EventFilter()


def _stored(location: Path) -> tuple[int, int]:
    """(events, distinct keys) in the store, read afresh as a new process would."""
    frame = ParquetEventStore(location)._lazy().select("event_key").collect()
    return frame.height, frame["event_key"].n_unique()


def test_sigkill_during_ingest_ten_times_then_rerun(sqlite_url, clock, tmp_path):
    location = tmp_path / "events"
    report, good, _bad, env = prepared_ingest(sqlite_url, clock, tmp_path, COMMONWATCH_EVENT_STORE="parquet",
                                              COMMONWATCH_EVENT_STORE_DIR=str(location))
    rng = random.Random(20261202)
    for _trial in range(10):
        proc = subprocess.Popen(_ingest_cmd(report), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (location / "manifest.json").exists():
            stored, distinct = _stored(location)
            assert stored == distinct <= good  # never an event twice, whatever the moment of the kill
    final = subprocess.run(_ingest_cmd(report), env=env, capture_output=True, text=True, timeout=600, check=False)
    assert final.returncode == 0, final.stderr[-2000:]
    assert _stored(location) == (good, good)
    assert opened(location).check() == []  # no segment was left half-written in the manifest


def _small_segments(location: Path, batches: int = 30, per: int = 40, prefix: str = "") -> int:
    store = ParquetEventStore(location)
    for b in range(batches):
        rows = spread(per, end=END - timedelta(hours=b), org_ids=[None], key_prefix=f"{prefix}b{b}")
        assert store.append(as_batch(rows), batch_id=b, now=END) == per
    return batches * per


_COMPACT_ONCE = """
import sys
from commonwatch.events.store.parquet import ParquetEventStore
store = ParquetEventStore(sys.argv[1])
print("up", flush=True)
store.compact()
print("done", flush=True)
"""


def test_sigkill_during_compaction_ten_times(tmp_path):
    location = tmp_path / "events"
    rng = random.Random(20261203)
    expected = 0
    for trial in range(10):
        expected += _small_segments(location, batches=12, per=30, prefix=f"t{trial}")
        before = ParquetEventStore(location).search_page(STAFF, EVERYTHING, limit=1000, count=False)
        proc = subprocess.Popen([sys.executable, "-c", _COMPACT_ONCE, str(location)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout.readline().strip() == "up"  # imports done: the kill lands in the compaction
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        store = ParquetEventStore(location)
        assert _stored(location) == (expected, expected)
        after = store.search_page(STAFF, EVERYTHING, limit=1000, count=False)
        assert [e.id for e in after.items] == [e.id for e in before.items]
        assert store.check() == []
    # The store compacts to one segment a day and still holds each event once.
    store = ParquetEventStore(location)
    store.compact()
    days = {s["file"].split("/")[1] for s in store.manifest().segments}
    assert len(store.manifest().segments) == len(days)
    assert _stored(location) == (expected, expected)


def test_a_corrupt_or_truncated_segment_is_set_aside_at_start_up(tmp_path, caplog):
    location = tmp_path / "events"
    total = _small_segments(location, batches=4, per=25)
    segments = ParquetEventStore(location).manifest().segments
    truncated, garbled = location / segments[0]["file"], location / segments[1]["file"]
    truncated.write_bytes(truncated.read_bytes()[:100])
    garbled.write_bytes(b"not parquet at all" * 20)
    with caplog.at_level("ERROR"):
        store = opened(location)
    assert sum("set aside" in r.getMessage() for r in caplog.records) == 2
    assert sorted(p.name for p in (location / "corrupt").iterdir()) == sorted([truncated.name, garbled.name])
    lost = segments[0]["rows"] + segments[1]["rows"]
    assert store.count_capped(STAFF, EVERYTHING, cap=10**6) == (total - lost, True)
    assert store.check() == []  # once set aside, never read again


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB file system (tmpfs), for a full disk and a read-only folder."""
    mount = tmp_path / "disk"
    if os.geteuid() != 0 or not _mount_tmpfs(mount, "1m"):
        require_service("a mountable tmpfs (root)", "mount -t tmpfs was refused")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_a_clear_error_and_nothing_half_written(small_disk):
    location = small_disk / "events"
    store = ParquetEventStore(location)
    first = spread(50, end=END, org_ids=[None], key_prefix="fits")
    assert store.append(as_batch(first), batch_id=1, now=END) == 50
    filler = small_disk / "filler"
    with filler.open("wb") as fh:  # fill the disk to the last block
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError:
            pass
    later = spread(5000, end=END + timedelta(days=1), org_ids=[None], key_prefix="later")
    with pytest.raises(Invalid) as err:
        store.append(as_batch(later), batch_id=2, now=END)
    assert err.value.errors[0].field == "event_store_dir" and str(location) in err.value.errors[0].reason
    assert _stored(location) == (50, 50) and store.check() == []
    filler.unlink()
    assert store.append(as_batch(later), batch_id=2, now=END) == 5000  # the next run goes on
    assert _stored(location) == (5050, 5050)


def test_a_read_only_folder_is_a_clear_error_and_the_next_run_goes_on(small_disk):
    location = small_disk / "events"
    store = ParquetEventStore(location)
    assert store.append(as_batch(spread(20, end=END, org_ids=[None], key_prefix="a")), batch_id=1, now=END) == 20
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        with pytest.raises(Invalid) as err:
            store.append(as_batch(spread(20, end=END, org_ids=[None], key_prefix="b")), batch_id=2, now=END)
        assert str(location) in err.value.errors[0].reason
        assert store.count_capped(STAFF, EVERYTHING) == (20, True)  # reads go on
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert store.append(as_batch(spread(20, end=END, org_ids=[None], key_prefix="b")), batch_id=2, now=END) == 20


_READER = """
import sys, time
from commonwatch.access.principal import Principal, Role
from commonwatch.events import search
from commonwatch.events.store.parquet import ParquetEventStore
store = ParquetEventStore(sys.argv[1])
staff = Principal(1, "s@x", Role.ANALYST)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    n = store.count_capped(staff, search.EventFilter(), cap=10**6)[0]
    if n >= int(sys.argv[2]):
        print(n, flush=True)
        break
    time.sleep(0.05)
"""


def test_a_reader_in_another_process_sees_a_batch_within_two_seconds(tmp_path):
    location = tmp_path / "events"
    store = ParquetEventStore(location)
    store.append(as_batch(spread(10, end=END, org_ids=[None], key_prefix="x")), batch_id=1, now=END)
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(location), "60"], stdout=subprocess.PIPE,
                              text=True)
    time.sleep(1.0)  # the reader is up and polling
    store.append(as_batch(spread(50, end=END, org_ids=[None], key_prefix="y")), batch_id=2, now=END)
    committed = time.monotonic()
    out, _ = reader.communicate(timeout=30)
    assert out.strip() == "60"
    assert time.monotonic() - committed < 10  # generous for a loaded machine; docs/performance.md has the figure
