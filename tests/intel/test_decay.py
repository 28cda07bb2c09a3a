"""Decay: the score falls with the time since last seen and a sighting raises it again; the
computed valid-until; expired indicators are not matched nor shared; an indicator imported with
valid_until in the past is kept as expired and said so; a malformed rules file is refused."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from sqlalchemy import select

from commonwatch.errors import Invalid
from commonwatch.intel import decay, exchange, jobs, services
from commonwatch.intel.models import Indicator
from tests.conftest import START
from tests.intel.conftest import indicator_obj


def test_score_falls_with_age_and_a_sighting_raises_it():
    models = decay.decay_models(None)
    common = {"kind": "ipv4", "source": "upload", "valid_from": START, "valid_until": None}
    fresh = decay.state_of(models, last_seen=None, now=START, **common)
    assert (fresh.model.id, fresh.score, fresh.expired) == ("addresses", 80.0, False)
    later = decay.state_of(models, last_seen=None, now=START + timedelta(days=14), **common)
    assert later.score == 40.0  # one half-life
    # 80 -> 20 is two half-lives: the computed valid-until is 28 days after last seen.
    assert later.valid_until == START + timedelta(days=28)
    assert decay.state_of(models, last_seen=None, now=START + timedelta(days=29), **common).expired
    sighted = decay.state_of(models, last_seen=START + timedelta(days=20), now=START + timedelta(days=29), **common)
    assert not sighted.expired and sighted.score > later.score
    own = decay.state_of(models, last_seen=None, now=START, **{**common, "valid_until": START + timedelta(days=2)})
    assert own.valid_until == START + timedelta(days=2)  # the indicator's own end is earlier: it wins
    assert decay.state_of(models, kind="sha256", source="x", valid_from=START, last_seen=None, valid_until=None,
                          now=START + timedelta(days=300)).score == 90.0  # a lifetime model


def test_the_frame_agrees_with_one_at_a_time():
    models = decay.decay_models(None)
    frame = decay.indicator_frame([(1, "a", "ipv4", "upload", START, None, None),
                                   (2, "b", "domain", "upload", START, None, None),
                                   (3, "c", "ipv4", "upload", START, START + timedelta(days=20), None)])
    now = START + timedelta(days=30)
    out = decay.decay_frame(frame, models, now)
    assert out["decay_model"].to_list() == ["addresses", "names", "addresses"]
    assert out["expired"].to_list() == [True, False, False]
    assert out["decay_until"][0] == START + timedelta(days=28)


@pytest.mark.parametrize(("text", "reason"), [
    ("models: []", "models"),
    ("models: [{id: x, base_score: 80, threshold: 10}]", "half_life_days or lifetime_days"),
    ("models: [{id: x, base_score: 80, threshold: 90, half_life_days: 3}]", "threshold must be below"),
    ("models: [{id: x, base_score: 'high', threshold: 10, half_life_days: 3}]", "base_score"),
])
def test_a_malformed_rules_file_is_refused(tmp_path, text, reason):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "indicator_decay.yaml").write_text(f"name: indicator_decay\nversion: 1\neffective: 2026-12-03\n{text}\n",
                                                encoding="utf-8")
    with pytest.raises(Invalid) as err:
        decay.decay_models(tmp_path)
    assert reason in str(err.value)


def _store(session, value, now, **extra):
    obj = indicator_obj(value, "GREEN", created="2026-10-01T00:00:00.000Z", **extra)
    report = services.store_objects(session, [obj], services.Origin("upload", None, None, may_update_any=True), now)
    return obj["id"], report


def test_expired_indicators_are_not_matched_nor_shared(db, world, clock):
    now = clock.now()
    old_id, _r = _store(db, "192.0.2.200", now)  # valid from 2026-10-01, never seen: decayed by now
    new_obj = indicator_obj("192.0.2.201", "GREEN", created=services.stix.timestamp(now - timedelta(days=1)))
    services.store_objects(db, [new_obj], services.Origin("upload", None, None, may_update_any=True), now)
    db.flush()
    live = jobs.live_indicators(db, now, None)
    keys = set(live["key"].to_list())
    assert "192.0.2.201" in keys and "192.0.2.200" not in keys
    shared, refused = exchange.outbound_objects(db, world.partner, [old_id, new_obj["id"]], now=now)
    assert [o["id"] for o in shared] == [new_obj["id"]] and refused == [old_id]
    # A sighting brings it back: it is matched and shared again.
    ind = db.scalar(select(Indicator).where(Indicator.stix_id == old_id))
    ind.last_seen = now - timedelta(hours=1)
    db.flush()
    assert "192.0.2.200" in set(jobs.live_indicators(db, now, None)["key"].to_list())


def test_an_indicator_imported_already_expired_is_kept_said_so_and_not_matched(db, clock):
    now = clock.now()
    sid, report = _store(db, "198.51.100.250", now, valid_until="2026-10-02T00:00:00.000Z")
    result = report.results[0]
    assert result.status == "added" and "expired" in result.reason and "2026-10-02" in result.reason
    db.flush()
    assert db.scalar(select(Indicator.id).where(Indicator.stix_id == sid)) is not None
    assert "198.51.100.250" not in set(jobs.live_indicators(db, now, None)["key"].to_list())
    events = pl.DataFrame({"id": [1], "source_ip": ["198.51.100.250"], "destination_ip": [None],
                           "source_fqdn": [None], "destination_fqdn": [None], "source_url": [None],
                           "source_ip_bin": [None]}, schema_overrides={"source_ip_bin": pl.Binary,
                                                                       "destination_ip": pl.String,
                                                                       "source_fqdn": pl.String,
                                                                       "destination_fqdn": pl.String,
                                                                       "source_url": pl.String})
    assert jobs.match_events(events, jobs.live_indicators(db, now, None)).is_empty()
