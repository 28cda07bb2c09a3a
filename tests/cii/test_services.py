"""asset_frame: one row per visible asset, the stable columns and types, tenancy."""

from __future__ import annotations

import polars as pl

from commonwatch.cii.models import Asset, CiiSystem
from commonwatch.cii.services import asset_frame
from commonwatch.db import session_scope
from tests.cii.conftest import COORDINATOR, constituent_of

EXPECTED = {"asset_id": pl.Int64, "org_id": pl.Int64, "system_id": pl.Int64, "mlps_level": pl.Int8,
            "cpe": pl.Utf8, "purl": pl.Utf8, "version": pl.Utf8}


def test_asset_frame_columns_types_and_tenancy(store):
    factory, _clock, world = store
    with session_scope(factory, actor="test") as s:
        sys_b = CiiSystem(org_id=world.org_b, name="SCADA", mlps_level=3)
        s.add(sys_b)
        s.flush()
        s.add_all([
            Asset(org_id=world.org_b, system_id=sys_b.id, name="nginx", version="1.24.0",
                  cpe="cpe:2.3:a:f5:nginx:1.24.0:*:*:*:*:*:*:*", source="api"),
            Asset(org_id=world.org_b, name="requests", purl="pkg:pypi/requests@2.31.0", source="api"),
            Asset(org_id=world.org_a, name="router", kind="hardware", source="form"),
        ])
    with session_scope(factory, actor="test") as s:
        everything = asset_frame(s, COORDINATOR)
        mine = asset_frame(s, constituent_of(world.org_a))
        only_b = asset_frame(s, COORDINATOR, org_ids=[world.org_b])
        nobody = asset_frame(s, constituent_of())
    assert dict(everything.schema) == EXPECTED
    assert list(everything.columns) == list(EXPECTED)
    assert everything.height == 3
    assert mine["org_id"].to_list() == [world.org_a]
    assert mine["mlps_level"].to_list() == [None] and mine["cpe"].to_list() == [None]
    rows = only_b.sort("asset_id").to_dicts()
    assert rows[0]["mlps_level"] == 3 and rows[0]["system_id"] is not None
    assert rows[0]["cpe"] == "cpe:2.3:a:f5:nginx:1.24.0:*:*:*:*:*:*:*"
    assert rows[1]["system_id"] is None and rows[1]["purl"] == "pkg:pypi/requests@2.31.0"
    assert nobody.height == 0 and dict(nobody.schema) == EXPECTED


def test_import_and_reminders_on_each_engine(store):
    from datetime import date

    from commonwatch.access.principal import SYSTEM
    from commonwatch.cii import services as cii
    from commonwatch.cii.models import QuarantinedRow, SupervisionReminder
    from tests.cii.samples import CSV_WITH_BAD_ROWS, SPDX_GOOD

    factory, clock, world = store
    with session_scope(factory, actor="test") as s:
        system = cii.create_system(s, SYSTEM, world.org_b, {"name": "HMI", "mlps_level": 2}, date(2026, 11, 25))
        first = cii.import_assets(s, SYSTEM, world.org_b, "", SPDX_GOOD, system_id=system.id, now=clock.now())
        again = cii.import_assets(s, SYSTEM, world.org_b, "spdx", SPDX_GOOD, system_id=system.id, now=clock.now())
        csv = cii.import_assets(s, SYSTEM, world.org_b, "csv", CSV_WITH_BAD_ROWS, now=clock.now())
        assert (first.format, first.added, first.quarantined) == ("spdx", 2, 1)
        assert (again.added, again.unchanged, again.quarantined) == (0, 2, 1)  # each batch keeps its bad rows
        assert (csv.added, csv.quarantined) == (1, 4)
        made = cii.run_reminders(s, date(2026, 11, 25))
        assert {(r.kind, r.state) for r in made} == {("mlps", "unknown"), ("inspection", "unknown")}
        assert cii.run_reminders(s, date(2026, 11, 26)) == []
    with session_scope(factory, actor="test") as s:
        frame = asset_frame(s, COORDINATOR, org_ids=[world.org_b])
        assert frame.height == 3 and sorted(frame["mlps_level"].to_list(), key=str) == [2, 2, None]
        assert s.query(QuarantinedRow).count() == 6 and s.query(SupervisionReminder).count() == 2


def test_an_inventory_row_with_a_nul_is_quarantined_on_each_engine(store):
    """PostgreSQL cannot store NUL in text: the row is quarantined naming the line and field, its
    original kept without the control character, and the good rows are added (issue 14, item 6)."""
    from sqlalchemy import select

    from commonwatch.access.principal import SYSTEM
    from commonwatch.cii import services as cii
    from commonwatch.cii.models import QuarantinedRow

    factory, clock, world = store
    data = b"name,vendor,version\nnginx,F5,1.24.0\nopenssh,Open\x00BSD,9.6\n"
    with session_scope(factory, actor="test") as s:
        batch = cii.import_assets(s, SYSTEM, world.org_b, "csv", data, filename="inv\x07.csv", now=clock.now())
        assert (batch.added, batch.quarantined, batch.filename) == (1, 1, "inv.csv")
    with session_scope(factory, actor="test") as s:
        [row] = s.scalars(select(QuarantinedRow))
        assert (row.location, row.field, row.raw) == ("line 3", "vendor", "openssh,OpenBSD,9.6")
        assert "U+0000" in row.reason
