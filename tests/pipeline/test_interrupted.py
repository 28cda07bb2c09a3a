"""An ingest killed mid-run does not stay "running" forever: the next start (another ingest, or the
server's job) marks it interrupted, and the runs page shows it (issue 15, item 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import select

from commonwatch.access.models import AuditEntry
from commonwatch.db import make_engine
from commonwatch.pipeline.models import IngestRun
from commonwatch.pipeline.runner import mark_interrupted
from tests.conftest import sign_in
from tests.pipeline.test_crash import _ingest_cmd, prepared_ingest


def _runs(url):
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(IngestRun.id, IngestRun.status, IngestRun.pid, IngestRun.events_stored,
                                       IngestRun.error).order_by(IngestRun.id)).all()
    finally:
        engine.dispose()


def _kill_mid_run(url, report, env) -> int:
    proc = subprocess.Popen(_ingest_cmd(report), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            while time.monotonic() < deadline:  # until the run exists, then at once
                conn.rollback()
                if conn.execute(select(IngestRun.id).where(IngestRun.status == "running")).first():
                    break
                time.sleep(0.01)
    finally:
        engine.dispose()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    runs = _runs(url)
    assert runs[-1].status == "running" and runs[-1].pid == proc.pid
    return runs[-1].id


def test_a_run_killed_with_sigkill_is_marked_interrupted_at_the_next_start(any_db_url, clock, tmp_path):
    report, good, bad, env = prepared_ingest(any_db_url, clock, tmp_path)
    killed = _kill_mid_run(any_db_url, report, env)
    # The next start: any ingest (here a small report of its own) finds the dead run first.
    small = tmp_path / "2026-11-25-scan_telnet-asn-geo.csv"
    small.write_text(report.read_text(encoding="utf-8").splitlines()[0] + "\n"
                     '"2026-11-25 01:00:00","198.18.0.1",23,"","telnet",64502,"CN"\n', encoding="utf-8")
    final = subprocess.run(_ingest_cmd(small), env=env, capture_output=True, text=True, timeout=600, check=False)
    assert final.returncode == 0, final.stderr[-2000:]
    runs = {r.id: r for r in _runs(any_db_url)}
    assert runs[killed].status == "interrupted" and f"process {runs[killed].pid}" in runs[killed].error
    assert runs[max(runs)].status == "done"
    engine = make_engine(any_db_url)
    try:
        with engine.connect() as conn:
            acts = conn.execute(select(AuditEntry.entity_id).where(AuditEntry.action == "ingest.interrupted")).all()
        assert [a.entity_id for a in acts] == [str(killed)]
    finally:
        engine.dispose()


def test_a_live_run_is_left_running(engine, clock):
    import socket

    with engine.begin() as conn:
        conn.execute(IngestRun.__table__.insert().values(
            feed="f", source="s", actor="t", status="running", started_at=clock.now(), notes=[], error="",
            rows_read=0, events_stored=0, duplicates=0, quarantined=0, pid=os.getppid(), host=socket.gethostname()))
        conn.execute(IngestRun.__table__.insert().values(
            feed="f", source="s", actor="t", status="running", started_at=clock.now(), notes=[], error="",
            rows_read=0, events_stored=0, duplicates=0, quarantined=0, pid=2**22 + 12345, host="elsewhere"))
    assert mark_interrupted(engine, clock) == []  # the parent is alive; the other host's is not ours


def test_the_runs_page_shows_an_interrupted_run(app, client, world, clock):
    from commonwatch.pipeline.jobs import interrupted_runs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    with app.state.engine.begin() as conn:
        conn.execute(IngestRun.__table__.insert().values(
            feed="shadowserver", source="killed.csv", actor="cli", status="running", started_at=clock.now(),
            notes=[], error="", rows_read=500, events_stored=480, duplicates=0, quarantined=20, pid=dead.pid,
            host=socket.gethostname()))
    assert interrupted_runs(app.state) == "1 runs marked interrupted"
    sign_in(client, world.users["analyst"])
    page = client.get("/ingest/runs", params={"status": "interrupted"})
    assert page.status_code == 200 and "killed.csv" in page.text and "interrupted" in page.text
    client.get("/lang/zh-CN")
    assert "已中断" in client.get("/ingest/runs").text
    assert client.get("/ingest/runs", headers=world.auth("a")).status_code in (401, 403)
