"""The audit log records every change, hash-chained, and verify finds tampering."""

import json

from sqlalchemy import select, text

from commonwatch.access import audit
from commonwatch.access.models import AuditEntry
from commonwatch.constituency import services as registry
from commonwatch.db import make_sessionmaker, session_scope


def _org(session, name="Audited Org"):
    return registry.create_org(session, {"name": name, "kind": "other"})


def _fill(engine, clock):
    factory = make_sessionmaker(engine)
    with session_scope(factory, actor="user:1 tester") as s:
        s.info["clock"] = clock
        org = _org(s)
        registry.add_network(s, org, "192.0.2.0/24")
    with session_scope(factory, actor="user:2 editor") as s:
        org = s.scalar(select(registry.Organisation))
        org.region = "Tianjin"
    with session_scope(factory, actor="user:2 editor") as s:
        for i in range(3):
            _org(s, f"Org {i}")
    return factory


def test_every_change_is_logged_with_actor_and_before_after(any_engine, clock):
    factory = _fill(any_engine, clock)
    with factory() as s:
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    creates = [e for e in entries if e.action == "create" and e.entity == "organisations"]
    assert len(creates) == 4
    assert creates[0].actor == "user:1 tester"
    update = next(e for e in entries if e.action == "update")
    assert json.loads(update.before) == {"region": ""}
    assert json.loads(update.after)["region"] == "Tianjin"
    assert update.actor == "user:2 editor"
    assert audit.verify(s).ok


def test_secrets_are_redacted(engine, clock):
    from commonwatch.access import services as access

    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        access.create_user(s, "x@test.example", "admin", "long-enough-password")
    with factory() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.entity == "users"))
    assert "argon2" not in entry.after and "[redacted]" in entry.after


def test_verify_detects_an_edited_row(any_engine, clock):
    _fill(any_engine, clock)
    with any_engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone else' WHERE seq = 3"))
    with any_engine.connect() as conn:
        result = audit.verify(conn)
    assert not result.ok and result.seq == 3 and "altered" in result.problem


def test_verify_detects_a_deleted_row(any_engine, clock):
    _fill(any_engine, clock)
    with any_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    with any_engine.connect() as conn:
        result = audit.verify(conn)
    assert not result.ok and result.seq == 2 and "missing" in result.problem


def test_verify_detects_a_deleted_tail(any_engine, clock):
    _fill(any_engine, clock)
    with any_engine.begin() as conn:
        last = conn.execute(text("SELECT max(seq) FROM audit_log")).scalar()
        conn.execute(text(f"DELETE FROM audit_log WHERE seq = {last}"))
    with any_engine.connect() as conn:
        result = audit.verify(conn)
    assert not result.ok and "missing" in result.problem


def test_verify_detects_reordered_rows(any_engine, clock):
    _fill(any_engine, clock)
    with any_engine.begin() as conn:
        # Swap the positions of links 2 and 3, keeping each row's own content and hash.
        conn.execute(text("UPDATE audit_log SET seq = -2 WHERE seq = 2"))
        conn.execute(text("UPDATE audit_log SET seq = 2 WHERE seq = 3"))
        conn.execute(text("UPDATE audit_log SET seq = 3 WHERE seq = -2"))
    with any_engine.connect() as conn:
        result = audit.verify(conn)
    assert not result.ok and result.seq == 2


def test_cli_audit_verify_reports_the_broken_link(engine, clock, sqlite_url, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from commonwatch.cli import app as cli
    from commonwatch.config import Settings
    from commonwatch.runtime import Runtime, set_runtime

    _fill(engine, clock)
    set_runtime(Runtime(Settings(data_dir=tmp_path, database_url=sqlite_url), clock))
    try:
        ok = CliRunner().invoke(cli, ["audit", "verify"])
        assert ok.exit_code == 0 and "intact" in ok.output
        with engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET after = '{}' WHERE seq = 4"))
        bad = CliRunner().invoke(cli, ["audit", "verify"])
        assert bad.exit_code == 1 and "link 4" in bad.output
    finally:
        set_runtime(None)
