"""TAXII POSTs sent at once over real HTTP (uvicorn on loopback) share the group commit: every
envelope is stored exactly once, with a status resource that tells what happened to each object;
and an envelope whose store fails in the database is answered with an error, leaves nothing of
itself behind, and does not take the envelopes committed with it down. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import httpx
import pytest
from sqlalchemy import func, select, text

from commonwatch.config import Settings
from commonwatch.db import session_scope
from commonwatch.intel.models import CollectionEntry, IntelCollection, IntelObject, TaxiiStatus
from tests.intel.conftest import indicator_obj, taxii_headers
from tests.intel.peers import serve_app

SENDERS = 8


@pytest.fixture
def app(tmp_path, any_db_url, any_engine, clock):
    """The app on SQLite and on PostgreSQL (the module's tests run on both)."""
    from commonwatch.app import create_app

    settings = Settings(data_dir=tmp_path / "data", database_url=any_db_url, timezone="Asia/Shanghai",
                        log_format="text")
    return create_app(settings, clock=clock, engine=any_engine)


@pytest.fixture
def db(app):
    with session_scope(app.state.sessionmaker, actor="test") as session:
        yield session


def _refuse(engine, stix_id: str) -> None:
    """Make the database itself refuse to store ``stix_id``: a real failure inside the store's
    transaction, not a stand-in."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(f"CREATE TRIGGER refuse_poison BEFORE INSERT ON intel_objects "
                              f"WHEN NEW.stix_id = '{stix_id}' BEGIN SELECT RAISE(ABORT, 'refused'); END"))
            return
        conn.execute(text(f"CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
                          f"IF NEW.stix_id = '{stix_id}' THEN RAISE EXCEPTION 'refused'; END IF; "
                          f"RETURN NEW; END $$ LANGUAGE plpgsql"))
        conn.execute(text("CREATE TRIGGER refuse_poison BEFORE INSERT ON intel_objects "
                          "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"))


def _post_all(base: str, url: str, headers: dict, envelopes: list[dict]) -> list[httpx.Response]:
    """POST each envelope from a thread of its own, all released at once."""
    start = threading.Barrier(len(envelopes))
    answers: list[httpx.Response | None] = [None] * len(envelopes)

    def send(i: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            start.wait()
            answers[i] = client.post(url, headers=headers, json=envelopes[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(envelopes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers  # type: ignore[return-value]


def _collection_pk(db, uuid_: str) -> int:
    return db.scalar(select(IntelCollection.id).where(IntelCollection.uuid == uuid_))


def test_concurrent_posts_are_each_stored_once_with_a_true_status(app, world, intel, db):
    shared = indicator_obj("203.0.113.250", "GREEN", name="sent by everyone")
    envelopes = [{"objects": [indicator_obj(f"198.18.{k}.{i}", "GREEN") for i in range(20)] + [shared]}
                 for k in range(SENDERS)]
    url = f"/taxii2/api/collections/{intel.collection}/objects/"
    headers = taxii_headers(world.tokens["partner"], post=True)
    with serve_app(app) as base:
        answers = _post_all(base, url, headers, envelopes)
        assert [a.status_code for a in answers] == [202] * SENDERS
        statuses = [a.json() for a in answers]
        for status, envelope in zip(statuses, envelopes, strict=True):
            assert status["status"] == "complete" and status["pending_count"] == 0
            assert status["total_count"] == status["success_count"] == 21 and status["failure_count"] == 0
            assert {s["id"] for s in status["successes"]} == {o["id"] for o in envelope["objects"]}
            polled = httpx.get(f"{base}/taxii2/api/status/{status['id']}/",
                               headers=taxii_headers(world.tokens["partner"]))
            assert polled.json() == status
    messages = sorted(s["message"] for st in statuses for s in st["successes"] if s["id"] == shared["id"])
    assert messages == ["added"] + ["unchanged"] * (SENDERS - 1)  # the shared object: added once
    pk = _collection_pk(db, intel.collection)
    sent = {o["id"] for e in envelopes for o in e["objects"]}
    rows = db.execute(select(IntelObject.stix_id, func.count()).where(IntelObject.stix_id.in_(sent))
                      .group_by(IntelObject.stix_id)).all()
    assert len(rows) == len(sent) == SENDERS * 20 + 1 and {n for _id, n in rows} == {1}
    entries = db.scalar(select(func.count()).select_from(CollectionEntry).join(
        IntelObject, IntelObject.id == CollectionEntry.object_id).where(
        CollectionEntry.collection_id == pk, IntelObject.stix_id.in_(sent)))
    assert entries == len(sent)
    assert db.scalar(select(func.count()).select_from(TaxiiStatus)) == SENDERS


def test_an_envelope_that_fails_in_the_database_leaves_nothing_and_the_others_are_stored(app, world, intel, db):
    poison = indicator_obj("203.0.113.66", "GREEN", name="the database refuses this one")
    _refuse(app.state.engine, poison["id"])
    envelopes = [{"objects": [indicator_obj(f"198.19.{k}.{i}", "GREEN") for i in range(10)]} for k in range(SENDERS)]
    envelopes[3]["objects"].append(poison)
    url = f"/taxii2/api/collections/{intel.collection}/objects/"
    with serve_app(app) as base:
        answers = _post_all(base, url, taxii_headers(world.tokens["partner"], post=True), envelopes)
    codes = [a.status_code for a in answers]
    assert codes[3] >= 400 and codes[:3] + codes[4:] == [202] * (SENDERS - 1)
    stored = set(db.scalars(select(IntelObject.stix_id)))
    for k, envelope in enumerate(envelopes):
        ids = {o["id"] for o in envelope["objects"]}
        assert (ids <= stored) if k != 3 else not (ids & stored)  # the failed one: not even its good objects
    statuses = db.scalars(select(TaxiiStatus)).all()
    assert len(statuses) == SENDERS - 1 and all(s.status == "complete" and s.success_count == 10 for s in statuses)


def test_envelopes_stored_together_are_reported_as_if_stored_alone(app, intel, clock):
    from commonwatch.intel import services

    one, two, three = (indicator_obj(f"198.20.0.{i}", "GREEN") for i in range(3))
    origin = services.Origin("taxii:test", None, None, may_update_any=True)
    parts = [services.check_objects(objs, origin) for objs in ([one, "not an object"],
                                                               [{"type": "indicator"}, two, one], [three])]
    with session_scope(app.state.sessionmaker, actor="test") as session:
        session.info["clock"] = clock
        target = session.scalar(select(IntelCollection).where(IntelCollection.uuid == intel.collection))
        reports = services.store_checked_together(session, parts, origin, clock.now(), target)
    seen = [sorted((r.index, r.stix_id, r.status) for r in report.results) for report in reports]
    assert seen == [[(0, one["id"], "added"), (1, None, "failed")],
                    [(0, None, "failed"), (1, two["id"], "added"), (2, one["id"], "unchanged")],
                    [(0, three["id"], "added")]]
