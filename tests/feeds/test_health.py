"""Feed health: every kind of fault raises one alert per episode, a healthy feed none; on SQLite and
PostgreSQL, with the clock injected. Feeds are ingested through the real pipeline."""

from __future__ import annotations

import email
from datetime import timedelta
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from sqlalchemy import select

from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.feeds import health
from commonwatch.feeds.models import FeedFault, FeedRunStats
from tests.conftest import sign_in
from tests.pipeline.helpers import events, ingest, seed_registry

FEED = "shadowserver-scan_http"
HEADER = ["timestamp", "ip", "port", "hostname", "protocol", "tag", "asn", "geo", "region", "city", "naics", "sic",
          "sector", "severity", "http", "http_code", "http_reason", "content_type", "server"]


def report(folder: Path, day: int, rows: int = 20, *, bad: int = 0, header: list[str] | None = None,
           extra: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> Path:
    """A scan_http report of ``rows`` rows (``bad`` of them with an address that is none), different
    each ``day``, with ``extra`` columns added and ``drop`` columns left out."""
    cols = [c for c in HEADER if c not in drop] + list(extra or {})
    names = header or cols
    lines = [",".join(f'"{c}"' for c in names)]
    for i in range(rows):
        values = {"timestamp": f"2026-11-{1 + day % 28:02d} {i % 24:02d}:10:00",
                  "ip": "not-an-address" if i < bad else f"198.51.100.{(day * 7 + i) % 250 + 1}",
                  "port": "80", "hostname": f"host{i}.example", "protocol": "tcp", "tag": "http", "asn": "64500",
                  "geo": "CN", "region": "BEIJING", "city": "BEIJING", "naics": "517311", "sic": "0",
                  "sector": "Communications", "severity": "medium", "http": "HTTP/1.1", "http_code": "200",
                  "http_reason": "OK", "content_type": "text/html", "server": "nginx", **(extra or {})}
        lines.append(",".join(f'"{values[c]}"' for c in cols))
    path = folder / f"day{day:03d}" / "2026-11-24-scan_http-asn-region-geo.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def healthy_history(engine, clock, folder: Path, days: int = 8) -> None:
    """A daily feed that ran well for ``days`` days; the clock ends an hour after the last run."""
    for day in range(days):
        run = ingest(engine, report(folder, day, rows=20 + day % 3), "shadowserver", clock)
        assert run.status == "done", run.error
        clock.advance(timedelta(days=1))
    clock.advance(timedelta(hours=-23))


def check(engine, clock) -> tuple[set[str], set[str]]:
    """Run the episode update once: (kinds opened, kinds closed) for the feed."""
    with session_scope(make_sessionmaker(engine), actor="test") as session:
        session.info["clock"] = clock
        opened, closed = health.update_faults(session, clock.now(), health.load_health_rules())
        return ({f.kind for f in opened if f.feed_name == FEED}, {f.kind for f in closed if f.feed_name == FEED})


def open_faults(engine) -> list[FeedFault]:
    with make_sessionmaker(engine)() as session:
        return list(session.scalars(select(FeedFault).where(FeedFault.closed_at.is_(None))))


def test_a_healthy_feed_raises_nothing(any_engine, clock, tmp_path):
    seed_registry(any_engine, clock)
    healthy_history(any_engine, clock, tmp_path)
    assert check(any_engine, clock) == (set(), set())
    with make_sessionmaker(any_engine)() as session:
        [feed] = health.overview(session, clock.now(), health.load_health_rules())
    assert feed.name == FEED and feed.cadence == pytest.approx(24 * 60) and feed.cadence_source == "learned"
    assert feed.quarantine_rate == 0 and feed.matched_share == 1.0 and feed.runs.height == 8
    assert feed.new_columns == [] and feed.missing_columns == []


def test_run_figures_are_recorded_at_ingest(any_engine, clock, tmp_path):
    seed_registry(any_engine, clock)
    run = ingest(any_engine, report(tmp_path, 1, rows=10, bad=2), "shadowserver", clock)
    with make_sessionmaker(any_engine)() as session:
        [stats] = session.scalars(select(FeedRunStats).where(FeedRunStats.run_id == run.run_id)).all()
    assert (stats.feed_name, stats.rows, stats.events, stats.quarantined, stats.matched) == (FEED, 10, 8, 2, 8)
    assert stats.header == HEADER and stats.new_columns == [] and stats.missing_columns == []
    assert stats.has_mapping and stats.known_columns == len(HEADER) and len(stats.content_hash) == 64


def test_late(any_engine, clock, tmp_path):
    healthy_history(any_engine, clock, tmp_path)
    clock.advance(timedelta(days=1))  # 25 h since the last run: within 2 x 24 h
    assert check(any_engine, clock) == (set(), set())
    clock.advance(timedelta(days=1, hours=1))  # 49 h
    assert check(any_engine, clock) == ({"late"}, set())
    clock.advance(timedelta(minutes=10))
    assert check(any_engine, clock) == (set(), set())  # the same episode: no second alert
    [fault] = open_faults(any_engine)
    assert fault.detail["cadence_minutes"] == pytest.approx(1440) and "1440" in health.reason(fault.kind, fault.detail)
    ingest(any_engine, report(tmp_path, 99), "shadowserver", clock)
    assert check(any_engine, clock) == (set(), {"late"})


def test_empty(any_engine, clock, tmp_path):
    healthy_history(any_engine, clock, tmp_path)
    ingest(any_engine, report(tmp_path, 50, rows=0), "shadowserver", clock)
    opened, _closed = check(any_engine, clock)
    assert "empty" in opened


def test_an_empty_file_of_no_bytes_is_still_the_feed(any_engine, clock, tmp_path):
    healthy_history(any_engine, clock, tmp_path)
    path = tmp_path / "zero" / "2026-11-24-scan_http-asn-region-geo.csv"
    path.parent.mkdir()
    path.write_bytes(b"")
    ingest(any_engine, path, "shadowserver", clock)
    assert "empty" in check(any_engine, clock)[0]


def test_new_column_is_kept_under_extra_and_named(any_engine, clock, tmp_path):
    healthy_history(any_engine, clock, tmp_path)
    run = ingest(any_engine, report(tmp_path, 50, extra={"tls_ja4": "t13d1516h2"}), "shadowserver", clock)
    assert check(any_engine, clock)[0] == {"new_column"}
    [fault] = open_faults(any_engine)
    assert fault.detail["columns"] == ["tls_ja4"] and "tls_ja4" in health.reason(fault.kind, fault.detail)
    stored = events(any_engine, batch_id=run.run_id)
    assert stored and all(ev.extra.get("tls_ja4") == "t13d1516h2" for ev in stored)  # never lost


def test_missing_column(any_engine, clock, tmp_path):
    healthy_history(any_engine, clock, tmp_path)
    ingest(any_engine, report(tmp_path, 50, drop=("timestamp",)), "shadowserver", clock)
    opened, _closed = check(any_engine, clock)
    assert "missing_column" in opened
    fault = next(f for f in open_faults(any_engine) if f.kind == "missing_column")
    assert fault.detail["columns"] == ["timestamp"]


def test_all_columns_renamed(any_engine, clock, tmp_path):
    healthy_history(any_engine, clock, tmp_path)
    renamed = [f"col_{i}" for i in range(len(HEADER))]
    ingest(any_engine, report(tmp_path, 50, header=renamed), "shadowserver", clock)
    opened, _closed = check(any_engine, clock)
    assert "renamed" in opened and "new_column" not in opened and "missing_column" not in opened
    fault = next(f for f in open_faults(any_engine) if f.kind == "renamed")
    assert fault.detail["count"] == len(HEADER) and "col_0" in health.reason(fault.kind, fault.detail)


def test_quarantine_spike(any_engine, clock, tmp_path):
    healthy_history(any_engine, clock, tmp_path)
    ingest(any_engine, report(tmp_path, 50, rows=20, bad=8), "shadowserver", clock)
    assert check(any_engine, clock)[0] == {"quarantine"}
    [fault] = open_faults(any_engine)
    assert fault.detail["rate"] == pytest.approx(0.4)
    clock.advance(timedelta(days=1))
    ingest(any_engine, report(tmp_path, 51), "shadowserver", clock)
    assert check(any_engine, clock) == (set(), {"quarantine"})


def test_volume_out_of_band(any_engine, clock, tmp_path):
    healthy_history(any_engine, clock, tmp_path)
    ingest(any_engine, report(tmp_path, 50, rows=200), "shadowserver", clock)
    assert check(any_engine, clock)[0] == {"volume"}


def test_the_same_file_again_and_again(any_engine, clock, tmp_path):
    healthy_history(any_engine, clock, tmp_path)
    same = report(tmp_path, 50)
    for _ in range(2):
        ingest(any_engine, same, "shadowserver", clock)
        assert "same_file" not in check(any_engine, clock)[0]
        clock.advance(timedelta(days=1))
    ingest(any_engine, same, "shadowserver", clock)
    assert "same_file" in check(any_engine, clock)[0]


def test_a_bad_rules_file_names_the_key(tmp_path):
    from commonwatch.rules import RulesError

    (tmp_path / "rules").mkdir()
    src = Path(health.__file__).parent.parent / "rules" / health.RULES_FILE
    (tmp_path / "rules" / health.RULES_FILE).write_text(
        src.read_text(encoding="utf-8").replace("factor: 2.0", "factor: soon"), encoding="utf-8")
    with pytest.raises(RulesError, match="late.factor"):
        health.load_health_rules(tmp_path)


# --- alerts through notify, the page -----------------------------------------------------------------

def _subjects(folder: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in sorted(folder.glob("feed-health-*.eml")):
        msg = email.message_from_bytes(p.read_bytes())
        out.setdefault(msg["To"], []).append(str(make_header(decode_header(msg["Subject"]))))
    return out


def test_each_fault_alerts_the_coordinators_once_in_their_language(app, world, clock, tmp_path):
    from commonwatch.access.models import User
    from commonwatch.feeds.jobs import check_health

    st = app.state
    with session_scope(st.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        s.scalars(select(User).where(User.email == world.users["coordinator"])).one().language = "zh-CN"
    healthy_history(st.engine, clock, tmp_path)
    assert check_health(st) == "0 fault(s) opened, 0 closed; 0 alerted"
    ingest(st.engine, report(tmp_path, 50, extra={"tls_ja4": "x"}), "shadowserver", clock)
    assert check_health(st) == "1 fault(s) opened, 0 closed; 1 alerted"
    clock.advance(timedelta(minutes=10))
    assert check_health(st) == "0 fault(s) opened, 0 closed; 0 alerted"  # one alert per episode
    outbox = st.settings.data_dir / "notify" / "outbox"
    subjects = _subjects(outbox)
    assert list(subjects) == [world.users["coordinator"]]  # coordinators only
    [subject] = subjects[world.users["coordinator"]]
    assert FEED in subject and "新列" in subject
    body = next(outbox.glob("feed-health-*.eml")).read_bytes()
    msg = email.message_from_bytes(body)
    text = next(x for x in msg.walk() if x.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert "tls_ja4" in text and "extra.*" in text


def test_the_feeds_page_for_coordinators_not_constituents(app, client, world, clock, tmp_path):
    st = app.state
    healthy_history(st.engine, clock, tmp_path)
    ingest(st.engine, report(tmp_path, 50, rows=20, bad=8), "shadowserver", clock)
    from commonwatch.feeds.jobs import check_health

    check_health(st)
    sign_in(client, world.users["coordinator"])
    page = client.get("/feeds/health")
    assert page.status_code == 200, page.text[:300]
    assert FEED in page.text and "<svg" in page.text and "quarantine rate 40.0%" in page.text
    assert "style=" not in page.text.split("<svg", 1)[0]
    one = client.get("/feeds/health/feed", params={"name": FEED})
    assert one.status_code == 200 and "40.0%" in one.text
    assert client.get("/feeds/health/feed", params={"name": "no-such-feed"}).status_code == 404
    client.get("/lang/zh-CN")
    zh = client.get("/feeds/health").text
    assert "数据源" in zh and "隔离率" in zh and "需要查看" in zh
    assert client.get("/", follow_redirects=True).status_code == 200
    for who in ("a", "partner"):
        assert client.get("/feeds/health", headers=world.auth(who)).status_code in (401, 403)
        assert client.get("/feeds/health/feed", params={"name": FEED},
                          headers=world.auth(who)).status_code in (401, 403)


def test_a_scheduled_feed_is_late_by_its_own_schedule(any_engine, clock):
    from commonwatch.feeds.collect import sources_from_path
    from commonwatch.feeds.models import FeedSubscription
    from commonwatch.feeds.registry import get_parser
    from commonwatch.pipeline.demo import samples_dir
    from commonwatch.pipeline.runner import ingest_sources

    with session_scope(make_sessionmaker(any_engine), actor="test") as session:
        session.info["clock"] = clock
        session.add(FeedSubscription(name="urlhaus-recent", url="https://urlhaus.example/csv", feed="urlhaus",
                                     every_minutes=60, enabled=True, etag="", last_modified="", last_status=""))
    path = samples_dir() / "urlhaus.csv"
    ingest_sources(any_engine, make_sessionmaker(any_engine), sources_from_path(path, clock.now()),
                   get_parser("urlhaus"), feed_label="urlhaus", source_label="https://urlhaus.example/csv",
                   clock=clock, data_dir=None, actor="feed:urlhaus-recent")
    rules = health.load_health_rules()
    with make_sessionmaker(any_engine)() as session:
        [feed] = health.overview(session, clock.now(), rules)
    assert (feed.cadence, feed.cadence_source) == (60.0, "set")  # one run, yet a known cadence
    clock.advance(timedelta(minutes=119))
    with session_scope(make_sessionmaker(any_engine), actor="test") as session:
        assert health.update_faults(session, clock.now(), rules) == ([], [])
    clock.advance(timedelta(minutes=2))
    with session_scope(make_sessionmaker(any_engine), actor="test") as session:
        opened, _closed = health.update_faults(session, clock.now(), rules)
        assert [(f.feed_name, f.kind) for f in opened] == [(feed.name, "late")]
