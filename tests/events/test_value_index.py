"""The Parquet store's per-value index (events/store/value_index.py): written beside each segment,
answering ``mentions`` exactly as a scan of the segments does, across compaction, rematch, retention
and garbage collection; a half-written index is never read, a missing or unreadable one falls back to
the segments, and compaction rebuilds the missing ones."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from commonwatch.access.principal import Principal, Role
from commonwatch.events.store import Probe, mention_pairs, mentions_frame, value_index
from commonwatch.events.store import parquet as pq_store
from commonwatch.events.store.parquet import ParquetEventStore
from tests.conftest import START
from tests.events.eventdata import as_batch, event_row

STAFF = Principal(1, "staff@x", Role.ANALYST)
A = Principal(2, "a@x", Role.CONSTITUENT, frozenset({11}))
ADDRESSES = [f"192.0.2.{i}" for i in range(1, 40)]
NAMES = [f"host{i}.example" for i in range(20)]


def _fill(location: Path, batches: int = 12, per: int = 50, seed: int = 5) -> ParquetEventStore:
    rng = random.Random(seed)
    store = ParquetEventStore(location)
    for b in range(batches):
        rows = []
        for i in range(per):
            at = START - timedelta(days=b % 4, minutes=i)
            rows.append(event_row(b * per + i, at=at, org_id=rng.choice([11, 12, None]), key_prefix=f"v{b}-",
                                  source_ip=rng.choice(ADDRESSES), destination_ip=rng.choice([None, *ADDRESSES]),
                                  source_fqdn=rng.choice([None, *NAMES]), source_url=None))
        assert store.append(as_batch(rows), batch_id=b, now=START) == per
    return store


def _probes() -> list[Probe]:
    return ([Probe(v, "ip") for v in ADDRESSES[:25]] + [Probe(v, "domain") for v in NAMES[:8]]
            + [Probe("no-such.example", "domain"), Probe(ADDRESSES[3], "domain")])


def _by_scan(store: ParquetEventStore, principal: Principal, probes: list[Probe]) -> pl.DataFrame:
    """The answer read from the segments alone (the path before the index)."""
    pairs = mention_pairs(store._lazy().filter(pq_store.visible_to(principal)), probes)
    return mentions_frame(probes, pairs, cap=10_000)


def _agree(store: ParquetEventStore) -> None:
    for who in (STAFF, A):
        for probes in (_probes(), _probes()[:3]):  # many values (joins) and a page's few (statistics)
            got = store.mentions(who, probes, cap=10_000)
            assert got.equals(_by_scan(store, who, probes)), who
            assert got["events"].sum() > 0


def _indexes(location: Path) -> set[str]:
    return {str(p.relative_to(location)) for p in location.rglob(f"*{value_index.SUFFIX}")}


def test_every_segment_has_its_index_and_it_answers_as_the_segments_do(tmp_path):
    store = _fill(tmp_path / "events")
    segments = {s["file"] for s in store.manifest().segments}
    assert _indexes(store.location) == {value_index.companion(f) for f in segments}
    _agree(store)

    def no_scan(segs):
        raise AssertionError(f"segments scanned: {segs}")

    # With every segment indexed, the exact probes are answered from the indexes alone.
    pairs = value_index.mention_pairs_indexed(store.location, store.manifest().segments, pq_store.visible_to(A),
                                              _probes(), no_scan)
    assert mentions_frame(_probes(), pairs, cap=10_000).equals(_by_scan(store, A, _probes()))


def test_exact_across_compaction_rematch_retention_and_garbage(tmp_path, monkeypatch):
    store = _fill(tmp_path / "events")
    before = {s["file"] for s in store.manifest().segments}
    assert store.compact() > 0
    after = {s["file"] for s in store.manifest().segments}
    assert after != before and {value_index.companion(f) for f in after} <= _indexes(store.location)
    _agree(store)
    # A rematch moves events to another organisation: the index's tenancy follows.
    ids = store._lazy().filter(pl.col("org_id") == 12).select("id").head(30).collect()["id"]
    full = store._lazy().filter(pl.col("id").is_in(ids.implode())).select("id", *pq_store.MATCH_COLUMNS).collect()
    assert store.rewrite_match(full.with_columns(pl.lit(11, pl.Int64).alias("org_id"))) == 30
    _agree(store)
    # Retention drops the older days except a held event.
    held = int(store._lazy().filter(pl.col("time_source") < START - timedelta(days=2)).select("id").head(1)
               .collect().item())
    store.drop_days_before((START - timedelta(days=1)).date(), [held])
    _agree(store)
    # Once retired files may go, their indexes go with them; the live ones stay.
    monkeypatch.setattr(pq_store, "RETIRE_SECONDS", 0.0)
    store.compact()
    live = {s["file"] for s in store.manifest().segments}
    assert _indexes(store.location) == {value_index.companion(f) for f in live}
    _agree(store)


def test_half_written_missing_and_unreadable_indexes(tmp_path):
    store = _fill(tmp_path / "events", batches=6)
    segs = store.manifest().segments
    first, second = (store.location / value_index.companion(s["file"]) for s in segs[:2])
    # A writer killed while writing an index leaves a temporary file: never read (and the index is missing).
    first.rename(first.with_name(f".{first.name}.tmp"))
    _agree(store)
    # An index that cannot be read: the segments answer.
    second.write_bytes(b"PAR1 not an index")
    _agree(store)
    # Compaction writes the missing index again (an unreadable one is replaced once its segment is).
    store.compact()
    live = {s["file"] for s in store.manifest().segments}
    assert all((store.location / value_index.companion(f)).exists() for f in live)
    _agree(store)


@pytest.mark.parametrize("name", ["x.parquet", "segments/2026-11-25/0000000003-abc.parquet"])
def test_an_index_is_named_by_its_segment(name):
    assert value_index.companion(name).endswith(".values.parquet")
    assert value_index.is_index(value_index.companion(name)) and not value_index.is_index(name)
