"""Nothing lost, nothing twice: kill the ingest process with SIGKILL at random points, several
times, then run it again; the store ends with exactly the events (and quarantined records) of the
file. Real subprocesses, a real database."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

from commonwatch.db import make_engine
from commonwatch.pipeline.models import QuarantinedRecord
from tests.pipeline.helpers import count_events, seed_registry

ROWS = 24_000
BAD_EVERY = 1000  # one malformed row per thousand


def _write_report(path) -> tuple[int, int]:
    lines = ['"timestamp","ip","port","hostname","tag","asn","geo"']
    bad = 0
    for i in range(ROWS):
        if i % BAD_EVERY == 7:
            lines.append(f'"2026-11-24 01:00:00","10.{i}.0",23')  # too few fields
            bad += 1
            continue
        lines.append(f'"2026-11-24 0{i % 10}:00:00","198.{18 + (i >> 16) % 2}.{(i >> 8) & 255}.{i & 255}",23,"",'
                     f'"telnet",64502,"CN"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ROWS - bad, bad


def _ingest_cmd(path):
    return [sys.executable, "-c", "from commonwatch.cli import main; main()", "ingest", str(path),
            "--feed", "shadowserver"]


def _counts(url) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return (count_events(engine),
                    conn.execute(select(func.count()).select_from(QuarantinedRecord)).scalar_one())
    finally:
        engine.dispose()


def prepared_ingest(url, clock, tmp_path, **settings: str):
    """The demo registry in the database at ``url``, a report to ingest and the environment of an
    ingest subprocess (small batches, so a kill lands between commits); ``settings`` add to it."""
    engine = make_engine(url)
    seed_registry(engine, clock)
    engine.dispose()
    report = tmp_path / "2026-11-24-scan_telnet-asn-geo.csv"
    good, bad = _write_report(report)
    env = {**os.environ, "COMMONWATCH_DATABASE_URL": url, "COMMONWATCH_DATA_DIR": str(tmp_path / "data"),
           "COMMONWATCH_BATCH_ROWS": "500", **settings}
    return report, good, bad, env


def test_sigkill_at_random_points_then_rerun(any_db_url, clock, tmp_path):
    report, good, bad, env = prepared_ingest(any_db_url, clock, tmp_path)
    rng = random.Random(20261125)
    for _trial in range(4):
        proc = subprocess.Popen(_ingest_cmd(report), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 5.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stored, quarantined = _counts(any_db_url)
        assert stored <= good and quarantined <= bad
    final = subprocess.run(_ingest_cmd(report), env=env, capture_output=True, text=True, timeout=600, check=False)
    assert final.returncode == 0, final.stderr[-2000:]
    assert _counts(any_db_url) == (good, bad)
    # And once more: a complete re-run changes nothing.
    again = subprocess.run(_ingest_cmd(report), env=env, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0
    assert _counts(any_db_url) == (good, bad)
    assert "events stored" in again.stdout
