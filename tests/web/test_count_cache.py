"""The per-tenant count cache: a write shows at once, a change no write stamp records never outlives
the TTL (the injected clock), and each tenant has its own counts."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import insert

from commonwatch.constituency.models import Organisation
from commonwatch.db import make_engine, session_scope
from commonwatch.web.counts import TTL_SECONDS, CountCache
from tests.events.eventdata import event_row, insert_events


def _organisations_shown(client, headers) -> int:
    html = client.get("/", headers=headers).text
    m = re.search(r'<span class="n">([\d,]+)</span>Organisations', html)
    assert m, html[:2000]
    return int(m.group(1).replace(",", ""))


def _events_total(client, headers) -> int:
    return client.get("/api/v1/events", params={"limit": 1}, headers=headers).json()["total"]


def test_an_event_write_shows_at_once_per_tenant(app, client, world, clock):
    def add(n: int, org: int, prefix: str) -> None:
        rows = [event_row(i, at=clock.now() - timedelta(minutes=i), org_id=org, key_prefix=prefix) for i in range(n)]
        with session_scope(app.state.sessionmaker, actor="test") as s:
            insert_events(s, rows)

    add(3, world.org_a, "a1")
    add(2, world.org_b, "b1")
    assert _events_total(client, world.auth("a")) == 3
    assert _events_total(client, world.auth("b")) == 2
    assert _events_total(client, world.auth("admin")) == 5
    add(4, world.org_a, "a2")  # the store's commit moves the generation: no waiting for the TTL
    assert _events_total(client, world.auth("a")) == 7
    assert _events_total(client, world.auth("b")) == 2
    assert _events_total(client, world.auth("admin")) == 9
    page = client.get("/events", headers=world.auth("a")).text
    assert "7" in page


def test_a_registry_write_shows_at_once(app, client, world):
    from commonwatch.constituency import services as registry

    before = _organisations_shown(client, world.auth("admin"))
    with session_scope(app.state.sessionmaker, actor="test") as s:
        registry.create_org(s, {"name": "Charlie Water", "kind": "cii-operator", "sector": "water", "country": "CN"})
    assert _organisations_shown(client, world.auth("admin")) == before + 1
    with app.state.engine.begin() as conn:  # a Core statement on the app's engine moves the stamp too
        conn.execute(insert(Organisation), [{"name": "Echo Rail", "kind": "cii-operator", "country": "CN"}])
    assert _organisations_shown(client, world.auth("admin")) == before + 2
    with session_scope(app.state.sessionmaker, actor="test") as s:
        registry.create_org(s, {"name": "Foxtrot Air", "kind": "network-operator", "country": "CN"})
        s.rollback()  # nothing written: the cached figure stands and is right
    assert _organisations_shown(client, world.auth("admin")) == before + 2


def test_an_unstamped_change_never_outlives_the_ttl(app, client, world, clock):
    before = _organisations_shown(client, world.auth("admin"))
    # A write by another program (its own engine: a CLI import, a SQL console) leaves no stamp: the
    # cached figure may be shown, for less than the TTL.
    other = make_engine(app.state.settings.effective_database_url)
    with other.begin() as conn:
        conn.execute(insert(Organisation), [{"name": "Delta Gas", "kind": "cii-operator", "country": "CN"}])
    assert _organisations_shown(client, world.auth("admin")) == before
    clock.advance(timedelta(seconds=TTL_SECONDS - 1))
    assert _organisations_shown(client, world.auth("admin")) == before
    clock.advance(timedelta(seconds=1))
    assert _organisations_shown(client, world.auth("admin")) == before + 1


def test_cache_keeps_a_value_for_the_ttl_and_its_generation_only(clock):
    generation = {"n": 0}
    computed = []

    def compute():
        computed.append(1)
        return len(computed)

    cache = CountCache(clock, {"t": lambda: generation["n"], "never": lambda: None}, ttl_seconds=5)
    assert cache.get("t", ("k",), compute) == 1
    assert cache.get("t", ("k",), compute) == 1
    assert cache.get("t", ("other",), compute) == 2
    generation["n"] += 1
    assert cache.get("t", ("k",), compute) == 3
    clock.advance(timedelta(seconds=4.9))
    assert cache.get("t", ("k",), compute) == 3
    clock.advance(timedelta(seconds=0.1))
    assert cache.get("t", ("k",), compute) == 4
    assert cache.get("never", ("k",), compute) == 5
    assert cache.get("never", ("k",), compute) == 6


def test_an_expired_count_is_counted_once_while_the_others_wait_for_it(clock):
    import threading
    import time

    calls = []

    def slow_count() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 42

    cache = CountCache(clock, {"t": lambda: 1}, ttl_seconds=5)
    answers: list[int] = []
    threads = [threading.Thread(target=lambda: answers.append(cache.get("t", ("k",), slow_count)))
               for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert answers == [42] * 10
    assert len(calls) == 1


def _feed_faults_shown(client, headers) -> list[str]:
    html = client.get("/", headers=headers).text
    return re.findall(r"(feed-[a-z]+): ", html)


def test_the_overview_panels_follow_a_write_at_once_and_an_unstamped_one_within_the_ttl(app, client, world, clock):
    from commonwatch.feeds.models import FeedFault

    admin = world.auth("admin")
    assert _feed_faults_shown(client, admin) == []
    with session_scope(app.state.sessionmaker, actor="test") as s:  # the app's engine: the stamp moves
        s.add(FeedFault(feed_name="feed-alpha", kind="empty", opened_at=clock.now(), detail={}))
    assert _feed_faults_shown(client, admin) == ["feed-alpha"]
    # A sign-in writes (a session row, the audit chain) without moving the overview; another
    # program's write (its own engine) is shown once the TTL has passed, not before.
    other = make_engine(app.state.settings.effective_database_url)
    with other.begin() as conn:
        conn.execute(insert(FeedFault), [{"feed_name": "feed-bravo", "kind": "empty", "opened_at": clock.now(),
                                          "detail": {}, "delivery": ""}])
    assert _feed_faults_shown(client, admin) == ["feed-alpha"]
    clock.advance(timedelta(seconds=TTL_SECONDS))
    assert sorted(_feed_faults_shown(client, admin)) == ["feed-alpha", "feed-bravo"]


def test_the_overview_is_the_viewers_own(app, client, world):
    """Kept per viewer and language: another tenant's or language's overview is never served."""
    staff = client.get("/", headers=world.auth("admin")).text
    member = client.get("/", headers=world.auth("a")).text
    assert "Feed health" in staff and "Feed health" not in member
    chinese = client.get("/", headers={**world.auth("admin"), "Accept-Language": "zh-CN"}).text
    assert "Feed health" not in chinese


def test_the_warnings_total_follows_a_warning_write(app, client, world, clock):
    from commonwatch.notify.models import EventWarning

    def total() -> int:
        html = client.get("/warnings", headers=world.auth("a")).text
        m = re.search(r'data-count="(\d+)"', html)
        assert m, html[:3000]
        return int(m.group(1))

    before = total()
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.add(EventWarning(org_id=world.org_a, event_id=1, obs_key=1, disposition="warn", status="open",
                           classification_type="scanner", feed_name="feed-alpha", severity="medium",
                           time_source=clock.now(), created_at=clock.now()))
    assert total() == before + 1
