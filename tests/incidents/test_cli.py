"""``commonwatch incidents list``: the cases as the incidents page lists them, filters, full values
when piped, local times."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from commonwatch.db import session_scope
from commonwatch.incidents import services as svc
from tests.incidents.conftest import principal, report


def test_list_shows_every_case_in_full_with_filters(cli_run, app, world, clock, rules):
    long_title = "Ransomware on the billing cluster, 账单系统 — encrypted shares\tand backups " + "x" * 120
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        a = principal(s, world, "a")
        first = svc.file_incident(s, a, report(title=long_title), now=clock.now(), rules=rules)
        second = svc.file_incident(s, a, report(title="Phishing wave", discovered_at="2026-11-25T07:00:00+08:00"),
                                   now=clock.now(), rules=rules)
        refs, discovered = (first.ref, second.ref), first.discovered_at
    result = cli_run("incidents", "list", timezone="Asia/Shanghai")
    assert result.exit_code == 0, result.output
    header, *rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert header == ["ref", "level", "status", "organisation", "discovered", "title"]
    assert [r[0] for r in rows] == list(refs)  # newest discovery first
    # Not cut, and the tab inside the title does not break the row.
    assert rows[0][5] == long_title.replace("\t", "\\t") and len(rows[0]) == 6
    assert rows[0][4] == discovered.astimezone(ZoneInfo("Asia/Shanghai")).isoformat()
    assert "2 of 2 incident(s)" in result.stderr
    only = cli_run("incidents", "list", "--search", "phishing")
    assert [line.split("\t")[0] for line in only.stdout.splitlines()[1:]] == [refs[1]]
