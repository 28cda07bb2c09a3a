"""Other people's data through the whole pipeline (issue 14): IntelMQ events without
``time.source`` stored with the run's note, harmonisation fields without a column kept under their
own names and exported back under them, control characters removed (PostgreSQL stores no NUL),
and zone offsets in every ISO 8601 spelling."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from commonwatch.db import make_engine, make_sessionmaker
from commonwatch.events.export import intelmq_extra
from commonwatch.pipeline.models import QuarantinedRecord
from tests.pipeline.helpers import events, ingest, seed_registry


@pytest.fixture
def db(any_db_url):
    eng = make_engine(any_db_url)
    yield eng
    eng.dispose()


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def intelmq_event(i: int, **fields) -> dict:
    return {"__type": "Event", "feed.name": "Demo Partner", "feed.provider": "Demo CERT",
            "time.observation": "2026-11-24T09:30:00+00:00", "source.ip": f"198.51.100.{i}",
            "classification.taxonomy": "vulnerable", "classification.type": "vulnerable-system",
            "classification.identifier": "open-redis", "raw": "cmVkaXM=", **fields}


def test_intelmq_array_without_time_source_is_stored_with_a_note(db, clock, tmp_path):
    seed_registry(db, clock)
    doc = [intelmq_event(1), intelmq_event(2, **{"time.source": "2026-11-24T16:00:00+08"}),
           intelmq_event(3, **{"event_description.text": "Redis without a password",
                               "source.geolocation.region": "Zhejiang"})]
    run = ingest(db, write(tmp_path, "events.json", json.dumps(doc, indent=1)), "intelmq", clock)
    assert (run.events_stored, run.quarantined) == (3, 0)
    assert "2 event(s) without time.source: their time.observation was used" in run.notes
    rows = events(db)
    assert [r.time_source.replace(tzinfo=UTC) for r in rows] == [
        datetime(2026, 11, 24, 9, 30, tzinfo=UTC), datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 9, 30, tzinfo=UTC)]
    assert all("__type" not in (r.extra or {}) for r in rows)
    extra = rows[2].extra
    assert extra["event_description.text"] == "Redis without a password"
    assert dict(intelmq_extra(extra))["source.geolocation.region"] == "Zhejiang"
    assert dict(intelmq_extra(extra))["event_description.text"] == "Redis without a password"


def test_control_characters_are_removed_and_said(db, clock, tmp_path):
    seed_registry(db, clock)
    lines = [intelmq_event(4, **{"time.source": "2026-11-24T09:00:00Z", "source.reverse_dns": "host\x00.example",
                                 "extra.banner": "-ERR\x00\x1b[31m unknown\r\ncommand\t'x'"}),
             intelmq_event(5, **{"time.source": "2026-11-24T09:00:00Z"})]
    text = "\n".join(json.dumps(e) for e in lines) + "\n" + '{"source.ip": "198.51.100.6", "oops\u0000\n'
    run = ingest(db, write(tmp_path, "events.jsonl", text), "intelmq", clock)
    assert (run.events_stored, run.quarantined) == (2, 1)
    assert ("control characters (NUL and the like) were removed from 2 value(s) in extra.banner, "
            "source.reverse_dns") in run.notes
    first = events(db, source_ip="198.51.100.4")[0]
    assert first.source_reverse_dns == "host.example"
    assert first.extra["banner"] == "-ERR[31m unknown\r\ncommand\t'x'"
    with make_sessionmaker(db)() as session:
        [bad] = session.scalars(select(QuarantinedRecord)).all()
    assert "\x00" not in bad.raw and "oops\ufffd" in bad.raw
