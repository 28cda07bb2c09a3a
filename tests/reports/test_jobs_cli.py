"""The scheduled mailing (through notify's outbox, each period once), the recipients policy's
refusals, and the CLI's build and rebuild."""

from __future__ import annotations

import email
from datetime import date

import pytest
from typer.testing import CliRunner

from commonwatch.errors import Invalid
from commonwatch.reports.jobs import JOBS, last_complete
from commonwatch.reports.policy import load_policy


def test_the_job_mails_each_due_report_once_with_its_pdf(app, filled):
    data_dir = app.state.settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "reports-policy.yaml").write_text(
        "recipients:\n  - {address: duty@cert.example, language: zh-CN, periods: [month]}\n"
        "  - {address: chief@cert.example, periods: [month, year]}\n", encoding="utf-8")
    assert JOBS[0].run(app.state) == 3  # October to both, last year to one
    mailed = sorted((data_dir / "notify" / "outbox").glob("report-*.eml"))
    assert len(mailed) == 3
    msg = email.message_from_bytes(next(m for m in mailed if "month" in m.name).read_bytes())
    parts = [p.get_content_type() for p in msg.walk()]
    assert "application/pdf" in parts
    assert JOBS[0].run(app.state) == 0  # nothing twice


def test_policy_refusals_name_the_entry(tmp_path):
    (tmp_path / "reports-policy.yaml").write_text("recipients:\n  - {address: not-an-address}\n", encoding="utf-8")
    with pytest.raises(Invalid, match=r"recipients\[1\]"):
        load_policy(tmp_path)
    (tmp_path / "reports-policy.yaml").write_text("recipients:\n  - {address: a@b.example, periods: [daily]}\n",
                                                  encoding="utf-8")
    with pytest.raises(Invalid, match="daily"):
        load_policy(tmp_path)
    assert last_complete("month", date(2026, 12, 2)) == "2026-11"
    assert last_complete("week", date(2026, 12, 2)) == "2026-W48"


def test_cli_build_and_rebuild(app, filled, tmp_path, monkeypatch):
    from commonwatch.cli import app as cli
    from commonwatch.runtime import Runtime, set_runtime

    set_runtime(Runtime(app.state.settings, app.state.clock))
    try:
        runner = CliRunner()
        out = tmp_path / "nov.pdf"
        res = runner.invoke(cli, ["reports", "build", "--period", "month", "--month", "2026-10", "--output", str(out)])
        assert res.exit_code == 0, res.output
        assert out.read_bytes().startswith(b"%PDF") and "Monthly situation report" in res.output
        html = tmp_path / "nov.html"
        res = runner.invoke(cli, ["reports", "build", "--period", "month", "--month", "2026-10", "--output", str(html)])
        assert res.exit_code == 0 and "<svg" in html.read_text(encoding="utf-8")
        res = runner.invoke(cli, ["reports", "rebuild", "--since", "2026-09-01"])
        assert res.exit_code == 0 and "from 3,000 events" in res.output, res.output
        bad = runner.invoke(cli, ["reports", "build", "--period", "month", "--month", "2026-13"])
        assert bad.exit_code != 0 and "2026-13" in bad.output
    finally:
        set_runtime(None)
