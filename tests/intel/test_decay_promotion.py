"""Promotion follows decay (rules/indicator_decay.yaml): a promoted indicator's valid-until is the
last time its events saw it plus its model's days to the threshold; events too old are not promoted;
an expired indicator comes back only with a newer sighting, never with the same old file again; a
valid-until set by a person is never moved. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from commonwatch.access.principal import SYSTEM
from commonwatch.db import session_scope
from commonwatch.intel import jobs, services, stix
from commonwatch.intel.models import Indicator, IntelObject
from tests.events.eventdata import insert_events
from tests.intel.test_jobs import env, event  # noqa: F401  (the fixture is used by name)

ADDRESS_DAYS = 28  # the "addresses" model: 80 halves every 14 days down to 20


def _c2(clock, ip: str, seen, feeds=("feed-a", "feed-b")) -> list[dict]:
    return [event(clock, ip=ip, classification_type="c2-server", feed_name=f, time_source=seen) for f in feeds]


def _indicator(sm, ip: str) -> tuple[Indicator, int, dict]:
    with session_scope(sm) as s:
        ind = s.scalar(select(Indicator).where(Indicator.value == ip))
        versions = s.scalar(select(func.count()).select_from(IntelObject).where(IntelObject.stix_id == ind.stix_id))
        body = json.loads(s.scalar(select(IntelObject.body).where(IntelObject.stix_id == ind.stix_id,
                                                                 IntelObject.latest.is_(True))))
        s.expunge(ind)
        return ind, versions, body


def _live(sm, clock, settings) -> set[str]:
    with session_scope(sm) as s:
        return set(jobs.live_indicators(s, clock.now(), settings.data_dir)["key"].to_list())


def test_a_promoted_indicator_is_valid_until_decay_says(env):  # noqa: F811
    sm, clock, settings, _org = env
    seen = clock.now() - timedelta(hours=3)
    with session_scope(sm, actor="test") as s:
        insert_events(s, _c2(clock, "192.0.2.10", seen) + _c2(clock, "192.0.2.11", clock.now() - timedelta(days=40)))
    assert jobs.process_events(sm, settings, clock).promoted == 1  # the other one's events are too old
    ind, versions, body = _indicator(sm, "192.0.2.10")
    assert ind.valid_until == stix.parse_timestamp(stix.timestamp(seen + timedelta(days=ADDRESS_DAYS)), "v")
    assert stix.extension_of(body)["decay_until"] == body["valid_until"] and versions == 1
    with session_scope(sm) as s:
        assert s.scalar(select(Indicator.id).where(Indicator.value == "192.0.2.11")) is None


def test_an_expired_indicator_returns_only_with_a_newer_sighting(env):  # noqa: F811
    sm, clock, settings, _org = env
    first = clock.now() - timedelta(hours=1)
    with session_scope(sm, actor="test") as s:
        insert_events(s, _c2(clock, "192.0.2.20", first))
    jobs.process_events(sm, settings, clock)
    clock.advance(timedelta(days=ADDRESS_DAYS + 2))
    assert "192.0.2.20" not in _live(sm, clock, settings)
    # The feeds send the same old observations again (new files, same times): nothing is refreshed.
    with session_scope(sm, actor="test") as s:
        insert_events(s, _c2(clock, "192.0.2.20", first, feeds=("feed-a", "feed-b", "feed-c")))
    assert jobs.process_events(sm, settings, clock).promoted == 0
    ind, versions, _body = _indicator(sm, "192.0.2.20")
    assert versions == 1 and ind.valid_until <= clock.now() and "192.0.2.20" not in _live(sm, clock, settings)
    # Seen again now: the same indicator (not a second one) gets a new version valid 28 days on.
    again = clock.now() - timedelta(minutes=10)
    with session_scope(sm, actor="test") as s:
        insert_events(s, _c2(clock, "192.0.2.20", again))
    assert jobs.process_events(sm, settings, clock).promoted == 0
    refreshed, versions, body = _indicator(sm, "192.0.2.20")
    assert refreshed.stix_id == ind.stix_id and versions == 2
    assert refreshed.valid_until == stix.parse_timestamp(stix.timestamp(again + timedelta(days=ADDRESS_DAYS)), "v")
    assert stix.extension_of(body)["decay_until"] == body["valid_until"]
    assert "192.0.2.20" in _live(sm, clock, settings)
    with session_scope(sm) as s:
        assert s.scalar(select(func.count()).select_from(Indicator).where(Indicator.value == "192.0.2.20")) == 1


def test_a_valid_until_set_by_a_person_is_not_moved(env):  # noqa: F811
    sm, clock, settings, _org = env
    with session_scope(sm, actor="test") as s:
        insert_events(s, _c2(clock, "192.0.2.30", clock.now() - timedelta(hours=1)))
    jobs.process_events(sm, settings, clock)
    clock.advance(timedelta(hours=2))
    with session_scope(sm, actor="test") as s:
        ind = s.scalar(select(Indicator).where(Indicator.value == "192.0.2.30"))
        services.expire_indicator(s, SYSTEM, ind, clock.now(), centre_id=services.centre(s, settings)["id"])
    ended = _indicator(sm, "192.0.2.30")[0].valid_until
    clock.advance(timedelta(hours=1))
    with session_scope(sm, actor="test") as s:
        insert_events(s, _c2(clock, "192.0.2.30", clock.now() - timedelta(minutes=5)))
    jobs.process_events(sm, settings, clock)
    ind, versions, _body = _indicator(sm, "192.0.2.30")
    assert ind.valid_until == ended and versions == 2  # promoted, then expired by hand; nothing after
    assert "192.0.2.30" not in _live(sm, clock, settings)
