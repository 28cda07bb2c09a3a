"""The keyed audit chain and its anchors outside the database: the three ways a person with
database access could rewrite the log (issue 15, item 2) are each detected."""

import json
import os
import stat
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from commonwatch.access import anchor, audit
from commonwatch.access.models import AuditEntry, AuditHead
from commonwatch.cli import app as cli
from commonwatch.config import Settings
from commonwatch.constituency import services as registry
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.runtime import Runtime, set_runtime

KEY = b"k" * 64


def _write(engine, clock, n: int, prefix: str = "Org") -> None:
    factory = make_sessionmaker(engine)
    with session_scope(factory, actor="user:1 tester") as s:
        s.info["clock"] = clock
        for i in range(n):
            registry.create_org(s, {"name": f"{prefix} {i}", "kind": "other"})


def _settings(tmp_path, **kw) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url="sqlite://", **kw)


def _anchor(engine, settings, clock):
    clock.advance(timedelta(minutes=1))
    return anchor.anchor(settings, engine, clock.now())


def _verify(engine, settings):
    with engine.connect() as conn:
        return anchor.verify(conn, settings)


def _recompute_without_key(conn, from_seq: int) -> None:
    """What an attacker with database access but no key can do: recompute every hash from
    ``from_seq`` on with the plain hash and move the head along."""
    rows = conn.execute(select(AuditEntry).where(AuditEntry.seq >= from_seq).order_by(AuditEntry.seq)).all()
    prev = conn.execute(select(AuditEntry.hash).where(AuditEntry.seq == from_seq - 1)).scalar() or audit.GENESIS
    for r in rows:
        fields = dict(seq=r.seq, at=r.at, actor=r.actor, action=r.action, entity=r.entity,
                      entity_id=r.entity_id, before=r.before, after=r.after, prev_hash=prev)
        prev = audit.link_hash(**fields)
        conn.execute(text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE seq = :s"),
                     {"p": fields["prev_hash"], "h": prev, "s": r.seq})
    conn.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})


@pytest.fixture
def keyed(any_engine):
    audit.use_key(any_engine, KEY)
    yield any_engine
    audit.use_key(any_engine, None)


def test_links_are_hmac_keyed_and_the_head_says_from_where(keyed, clock, tmp_path):
    _write(keyed, clock, 3)
    with keyed.connect() as conn:
        first = conn.execute(select(AuditEntry).where(AuditEntry.seq == 1)).one()
        head = conn.execute(select(AuditHead)).one()
    fields = dict(seq=1, at=first.at, actor=first.actor, action=first.action, entity=first.entity,
                  entity_id=first.entity_id, before=first.before, after=first.after, prev_hash=first.prev_hash)
    assert first.hash == audit.link_hash(**fields, key=KEY) != audit.link_hash(**fields)
    assert head.keyed_from == 1
    assert _verify(keyed, _settings(tmp_path)).ok


def test_deleting_the_last_links_and_moving_the_head_back_is_a_truncation(keyed, clock, tmp_path):
    settings = _settings(tmp_path)
    _write(keyed, clock, 6)
    _anchor(keyed, settings, clock)
    with keyed.begin() as conn:
        last = conn.execute(text("SELECT max(seq) FROM audit_log")).scalar()
        conn.execute(text("DELETE FROM audit_log WHERE seq > :n"), {"n": last - 3})
        kept = conn.execute(text("SELECT hash FROM audit_log WHERE seq = :n"), {"n": last - 3}).scalar()
        conn.execute(text("UPDATE audit_head SET seq = :n, hash = :h"), {"n": last - 3, "h": kept})
    with keyed.connect() as conn:
        assert audit.verify(conn).ok  # the database alone cannot tell
    result = _verify(keyed, settings)
    assert not result.ok and result.seq == last - 2 and "truncated" in result.problem


def test_emptying_both_tables_is_detected(keyed, clock, tmp_path):
    settings = _settings(tmp_path)
    _write(keyed, clock, 4)
    _anchor(keyed, settings, clock)
    with keyed.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
        conn.execute(text("DELETE FROM audit_head"))
    with keyed.connect() as conn:
        assert audit.verify(conn).ok  # the database alone cannot tell
    result = _verify(keyed, settings)
    assert not result.ok and result.seq == 1 and "missing" in result.problem


def test_editing_a_link_and_recomputing_the_later_hashes_is_detected_at_that_link(keyed, clock, tmp_path):
    settings = _settings(tmp_path)
    _write(keyed, clock, 6)
    with keyed.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone else' WHERE seq = 3"))
        _recompute_without_key(conn, 3)
    result = _verify(keyed, settings)  # no anchor needed: the attacker has no key
    assert not result.ok and result.seq == 3 and "altered" in result.problem


def test_re_hashing_the_whole_chain_as_unkeyed_contradicts_the_anchors(keyed, clock, tmp_path):
    settings = _settings(tmp_path)
    _write(keyed, clock, 5)
    _anchor(keyed, settings, clock)
    with keyed.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone else' WHERE seq = 2"))
        conn.execute(text("UPDATE audit_head SET keyed_from = NULL"))
        _recompute_without_key(conn, 1)
    result = _verify(keyed, settings)
    assert not result.ok and "re-hashed" in result.problem


def test_an_anchored_link_rewritten_by_someone_with_the_key_is_reported(keyed, clock, tmp_path):
    settings = _settings(tmp_path)
    _write(keyed, clock, 5)
    _anchor(keyed, settings, clock)
    _write(keyed, clock, 2, prefix="Later")
    with keyed.begin() as conn:  # even the key holder cannot rewrite what was anchored
        conn.execute(text("UPDATE audit_log SET actor = 'someone else' WHERE seq = 2"))
        rows = conn.execute(select(AuditEntry).order_by(AuditEntry.seq)).all()
        prev = rows[0].hash
        for r in rows[1:]:
            h = audit.link_hash(seq=r.seq, at=r.at, actor=r.actor, action=r.action, entity=r.entity,
                                entity_id=r.entity_id, before=r.before, after=r.after, prev_hash=prev, key=KEY)
            conn.execute(text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE seq = :s"),
                         {"p": prev, "h": h, "s": r.seq})
            prev = h
        conn.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
    result = _verify(keyed, settings)
    assert not result.ok and result.seq == 5 and "rewritten after link 0" in result.problem


def test_an_unkeyed_chain_is_keyed_from_the_next_link_and_protects_the_older_ones(any_engine, clock, tmp_path):
    settings = _settings(tmp_path)
    _write(any_engine, clock, 3)  # written before any key existed
    audit.use_key(any_engine, KEY)
    try:
        _write(any_engine, clock, 2, prefix="Keyed")
        with any_engine.connect() as conn:
            head = conn.execute(select(AuditHead)).one()
        assert head.keyed_from == 4 and head.seq == 5
        assert _verify(any_engine, settings).ok
        with any_engine.begin() as conn:  # rewrite an old, plain link and recompute everything after it
            conn.execute(text("UPDATE audit_log SET actor = 'someone else' WHERE seq = 2"))
            _recompute_without_key(conn, 2)
        result = _verify(any_engine, settings)
        assert not result.ok and result.seq == 4
    finally:
        audit.use_key(any_engine, None)


def test_a_keyed_chain_refuses_to_grow_without_the_key(engine, clock):
    audit.use_key(engine, KEY)
    _write(engine, clock, 1)
    audit.use_key(engine, None)
    with pytest.raises(audit.AuditKeyMissing, match="keyed from link 1"):
        _write(engine, clock, 1, prefix="Unkeyed")


def test_the_key_file_is_made_once_with_mode_0600(tmp_path):
    settings = _settings(tmp_path)
    key = audit.load_key(settings)
    path = tmp_path / "data" / "audit.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert audit.load_key(settings) == key and len(key) >= 32
    assert audit.load_key(_settings(tmp_path, audit_key="x" * 40)) == b"x" * 40


def test_anchoring_refuses_a_head_behind_the_last_anchor(keyed, clock, tmp_path):
    settings = _settings(tmp_path)
    _write(keyed, clock, 3)
    _anchor(keyed, settings, clock)
    with keyed.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
        conn.execute(text("UPDATE audit_head SET seq = 2"))
    with pytest.raises(anchor.AnchorError, match="last anchor recorded link 3"):
        _anchor(keyed, settings, clock)


def test_a_malformed_anchor_line_is_named(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"seq": 1, "hash": "' + "0" * 64 + '", "at": "2026-01-01T00:00:00+00:00"}\nnot json\n')
    with pytest.raises(anchor.AnchorError, match="line 2"):
        anchor.read_anchors(path)


def test_the_anchor_is_posted_to_a_witness_and_the_job_follows_its_schedule(engine, clock, tmp_path):
    received: list[dict] = []

    class Witness(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Witness)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        settings = _settings(tmp_path, audit_anchor_webhook=f"{base}/anchors", outbound_allowlist=[base],
                             audit_anchor_every_minutes=60)
        audit.use_key(engine, KEY)
        _write(engine, clock, 2)

        class State:
            pass

        state = State()
        state.settings, state.engine, state.clock = settings, engine, clock
        from commonwatch.access.jobs import anchor_audit

        assert anchor_audit(state) == "anchored link 2"
        assert anchor_audit(state) == "not due"
        clock.advance(timedelta(minutes=61))
        _write(engine, clock, 1, prefix="More")
        assert anchor_audit(state) == "anchored link 3"
    finally:
        httpd.shutdown()
        httpd.server_close()
        audit.use_key(engine, None)
    assert [r["seq"] for r in received] == [2, 3] and received[0]["type"] == "commonwatch-audit-anchor"
    assert [a.seq for a in anchor.read_anchors(anchor.anchor_path(settings))] == [2, 3]


def test_cli_anchor_then_verify_reports_the_truncation(engine, clock, sqlite_url, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", database_url=sqlite_url)
    set_runtime(Runtime(settings, clock))
    try:
        from commonwatch.runtime import get_runtime

        rt_engine = get_runtime().engine  # keyed with the data dir's key file, made now
        _write(rt_engine, clock, 4)
        out = CliRunner().invoke(cli, ["audit", "anchor"])
        assert out.exit_code == 0 and "anchored link 4" in out.output
        ok = CliRunner().invoke(cli, ["audit", "verify"])
        assert ok.exit_code == 0 and "keyed from link 1" in ok.output and "1 anchors agree" in ok.output
        with rt_engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log WHERE seq = 4"))
            h = conn.execute(text("SELECT hash FROM audit_log WHERE seq = 3")).scalar()
            conn.execute(text("UPDATE audit_head SET seq = 3, hash = :h"), {"h": h})
        bad = CliRunner().invoke(cli, ["audit", "verify"])
        assert bad.exit_code == 1 and "link 4" in bad.output and "truncated" in bad.output
    finally:
        set_runtime(None)


def test_the_anchor_is_mailed_to_a_witness(engine, clock, tmp_path):
    from tests.notify.conftest import Sink

    sink = Sink()
    sink.start()
    try:
        settings = _settings(tmp_path, audit_anchor_mail_to="witness@other.example", smtp_host="127.0.0.1",
                             smtp_port=sink.port, smtp_security="none", mail_from="cert@centre.example")
        audit.use_key(engine, KEY)
        _write(engine, clock, 3)
        head = _anchor(engine, settings, clock)
    finally:
        sink.stop()
        audit.use_key(engine, None)
    (msg,) = sink.messages
    assert msg.recipients == ["witness@other.example"]
    assert head.as_json().encode() in msg.data and b"audit anchor: link 3" in msg.data
