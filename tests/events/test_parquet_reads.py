"""What the Parquet store keeps per segment for readers (counts, a first page's rows, the small
segments' rows) never outlives the data: after appends, a rematch rewrite and a compaction every
count, first page and read by id equals the same read done from the files with nothing kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from commonwatch.access.principal import Principal, Role
from commonwatch.events import search
from commonwatch.events.store.parquet import ParquetEventStore, filter_expr, visible_to
from tests.events.eventdata import as_batch, spread

END = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
STAFF = Principal(1, "staff@x", Role.ANALYST)
TENANT = Principal(2, "a@x", Role.CONSTITUENT, frozenset({11}))
FILTERS = (search.EventFilter(), search.EventFilter(severity="high"), search.EventFilter(org_id=11))
ORDER = {"by": ["time_source", "id"], "descending": True}


def _from_files(store: ParquetEventStore, who: Principal, f: search.EventFilter) -> pl.DataFrame:
    """The selection read straight from the live segments (none of the store's kept reads)."""
    return store._lazy().filter(visible_to(who) & filter_expr(f)).collect()


def _agrees(store: ParquetEventStore) -> None:
    for who in (STAFF, TENANT):
        for f in FILTERS:
            truth = _from_files(store, who, f)
            assert store.count_capped(who, f) == (truth.height, True)
            page = store.search_page(who, f, limit=7, count=False)
            assert [e.id for e in page.items] == truth.sort(**ORDER).head(7)["id"].to_list()
    ids = _from_files(store, STAFF, search.EventFilter())["id"].to_list()[::9]
    fetched = store.fetch(TENANT, ids, ("org_id", "severity"))
    truth = _from_files(store, TENANT, search.EventFilter()).filter(pl.col("id").is_in(ids))
    assert sorted(fetched.select("id", "org_id", "severity").rows()) == \
        sorted(truth.select("id", "org_id", "severity").rows())


def test_kept_reads_follow_appends_a_rewrite_and_a_compaction(tmp_path):
    store = ParquetEventStore(tmp_path / "events")
    for b in range(12):  # small segments, one a batch, the newest last
        rows = spread(30, end=END - timedelta(hours=12 - b), org_ids=[11, 12, None], key_prefix=f"b{b}")
        store.append(as_batch(rows), batch_id=b, now=END)
        _agrees(store)
        _agrees(store)  # the second time from what was kept
    # a rematch moves some events to the tenant and makes them high
    moved = _from_files(store, STAFF, search.EventFilter(org_id=12)).head(20)
    changes = moved.select("id", *[c for c in moved.columns if c in (
        "source_asn", "source_as_name", "source_cc", "partner_org_id", "constituent_sector", "constituent_cii",
        "gbt_category", "classification_taxonomy")]).with_columns(
        pl.lit(11, pl.Int64).alias("org_id"), pl.lit("high").alias("severity"))
    assert store.rewrite_match(changes) == 20
    _agrees(store)
    assert store.compact() > 1
    _agrees(store)
    store.append(as_batch(spread(25, end=END + timedelta(hours=1), org_ids=[11], key_prefix="late")), batch_id=99,
                 now=END)
    _agrees(store)
