"""Decay changes what is shared: an indicator whose decay valid-until has passed is not served by our
TAXII collections (objects, one object, its versions, the manifest) and not in STIX or MISP exports;
a sighting brings it back; TLP and tenancy are unchanged. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from commonwatch.config import Settings
from commonwatch.db import session_scope
from commonwatch.intel.models import Indicator
from tests.intel.conftest import EXPECTED, taxii_headers


@pytest.fixture
def app(tmp_path, any_db_url, any_engine, clock):
    """The app on SQLite and on PostgreSQL (the module's tests run on both)."""
    from commonwatch.app import create_app

    settings = Settings(data_dir=tmp_path / "data", database_url=any_db_url, timezone="Asia/Shanghai",
                        log_format="text")
    return create_app(settings, clock=clock, engine=any_engine)


def _names(intel, ids) -> set[str]:
    by_id = {sid: name for name, sid in intel.ids.items()}
    return {by_id[i] for i in ids if i in by_id}


def _age(app, clock, intel, *, sighted: tuple[str, ...] = ()) -> None:
    """Five days on, every arranged address indicator (valid from 2026-11-01, addresses expire 28 days
    after last seen) has decayed; those ``sighted`` were seen a day ago."""
    clock.advance(timedelta(days=5))
    with session_scope(app.state.sessionmaker, actor="test") as s:
        for name in sighted:
            s.execute(update(Indicator).where(Indicator.stix_id == intel.ids[name])
                      .values(last_seen=clock.now() - timedelta(days=1)))


def test_taxii_reads_leave_out_what_decay_expired(client, world, intel, app, clock):
    base = f"/taxii2/api/collections/{intel.collection}"
    h = taxii_headers(world.tokens["partner"])
    before = client.get(f"{base}/objects/", headers=h).json()
    assert _names(intel, [o["id"] for o in before["objects"]]) == {"clear", "green", "amber_partner"}
    _age(app, clock, intel, sighted=("green",))
    objects = client.get(f"{base}/objects/", headers=h).json()
    assert _names(intel, [o["id"] for o in objects["objects"]]) == {"green"}
    manifest = client.get(f"{base}/manifest/", headers=h).json()
    assert _names(intel, [o["id"] for o in manifest["objects"]]) == {"green"}
    for path in (f"objects/{intel.ids['clear']}/", f"objects/{intel.ids['clear']}/versions/"):
        assert client.get(f"{base}/{path}", headers=h).status_code == 404, path
    assert client.get(f"{base}/objects/{intel.ids['green']}/versions/", headers=h).status_code == 200
    # Tenancy and TLP are unchanged: a sighting of an indicator the partner may not read shows nothing.
    _age(app, clock, intel, sighted=("green", "amber_a"))
    objects = client.get(f"{base}/objects/", headers=h).json()
    assert _names(intel, [o["id"] for o in objects["objects"]]) == {"green"}
    staff = client.get(f"{base}/objects/", headers=taxii_headers(world.tokens["admin"])).json()
    assert _names(intel, [o["id"] for o in staff["objects"]]) == {"green", "amber_a"}


def test_a_page_is_filled_past_expired_indicators_and_next_goes_on(client, world, intel, app, clock):
    base = f"/taxii2/api/collections/{intel.collection}/objects/"
    h = taxii_headers(world.tokens["admin"])
    _age(app, clock, intel, sighted=("clear", "amber_centre"))  # the first and the last in the collection
    first = client.get(base + "?limit=1", headers=h).json()
    assert _names(intel, [o["id"] for o in first["objects"]]) == {"clear"} and first["more"] is True
    rest = client.get(base + f"?limit=1&next={first['next']}", headers=h).json()
    assert _names(intel, [o["id"] for o in rest["objects"]]) == {"amber_centre"}  # seven expired ones skipped
    assert rest["more"] is False


def test_stix_and_misp_exports_leave_out_what_decay_expired_csv_lists_all(client, world, intel, app, clock):
    _age(app, clock, intel, sighted=("green", "amber_b"))
    for who in ("admin", "b"):
        stix_bundle = client.get("/api/v1/indicators/export?format=stix", headers=world.auth(who)).json()
        assert _names(intel, [o["id"] for o in stix_bundle["objects"]]) == EXPECTED[who] & {"green", "amber_b"}
        event = client.get("/intel/export?format=misp", headers=world.auth(who)).json()["Event"]
        uuids = {f"indicator--{a['uuid']}" for a in event.get("Attribute", [])}
        assert _names(intel, uuids) == EXPECTED[who] & {"green", "amber_b"}
        text = client.get("/api/v1/indicators/export?format=csv", headers=world.auth(who)).text
        assert _names(intel, [r["stix_id"] for r in csv.DictReader(io.StringIO(text))]) == EXPECTED[who]
    with session_scope(app.state.sessionmaker) as s:  # nothing was changed by reading
        assert s.scalar(select(Indicator.last_seen).where(Indicator.stix_id == intel.ids["clear"])) is None
