"""``commonwatch events export``: filters, formats, the output file written whole, the audit record,
clear errors for bad filters and for a selection over the limit."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from commonwatch.access.models import AuditEntry


def test_export_to_a_file_with_filters(run, tmp_path, app, world, events_of):
    rows = events_of(500)
    out = tmp_path / "scanners.csv"
    result = run("events", "export", "--format", "csv", "--type", "scanner", "--min-severity", "medium",
                 "--from", "2026-11-25T00:00:00Z", "-o", str(out))
    assert result.exit_code == 0, result.output
    midnight = datetime(2026, 11, 25, tzinfo=UTC)
    expected = {r["id"] for r in rows if r["classification_type"] == "scanner"
                and r["severity"] in ("medium", "high", "critical") and r["time_source"] >= midnight}
    assert len(expected) < len([r for r in rows if r["classification_type"] == "scanner"])
    table = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert {int(r["id"]) for r in table} == expected
    assert f"exported {len(expected):,} event(s) as csv" in result.output
    assert not list(tmp_path.glob(".*.part"))
    with app.state.sessionmaker() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "export")).one()
    assert entry.actor == "cli"
    assert json.loads(entry.after)["filter"] == {"from": "2026-11-25T00:00:00+00:00", "type": "scanner",
                                                 "min_severity": "medium"}


def test_export_intelmq_and_json_lines(run, tmp_path, world, events_of):
    rows = events_of(120)
    for fmt, key in (("intelmq", "extra.commonwatch.event.key"), ("jsonl", "event.key")):
        out = tmp_path / f"events.{fmt}"
        result = run("events", "export", "--format", fmt, "--ip", "198.51.101.0/24", "-o", str(out))
        assert result.exit_code == 0, result.output
        keys = {json.loads(line)[key] for line in out.read_text(encoding="utf-8").splitlines()}
        assert keys == {r["event_key"] for r in rows if r["source_ip"].startswith("198.51.101.")}


def test_export_to_standard_output(run, world, events_of):
    events_of(10)
    result = run("events", "export", "--format", "json", "--country", "DE")
    assert result.exit_code == 0, result.output
    body = result.stdout
    assert all(e["source.geolocation.cc"] == "DE" for e in json.loads(body))


def test_bad_filters_and_oversized_selections_fail_clearly(run, tmp_path, world, events_of):
    events_of(50)
    out = tmp_path / "x.csv"
    bad = run("events", "export", "--ip", "10.0.0.1/8", "--severity", "loud", "-o", str(out))
    assert bad.exit_code == 1
    assert "--ip:" in bad.output and "--severity:" in bad.output and not out.exists()
    fmt = run("events", "export", "--format", "xml", "-o", str(out))
    assert fmt.exit_code == 1 and "--format:" in fmt.output
    big = run("events", "export", "-o", str(out), events_export_max_rows=10)
    assert big.exit_code == 1 and "export limit" in big.output and not out.exists()


def test_search_prints_the_page_untruncated_with_local_times_and_the_cursor(run, world, events_of):
    rows = events_of(120)
    result = run("events", "search", "--type", "scanner", "--limit", "5", timezone="Asia/Shanghai")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = lines[0].split("\t")
    assert header[:3] == ["id", "time.source", "classification.type"]
    scanners = sorted((r for r in rows if r["classification_type"] == "scanner"),
                      key=lambda r: (r["time_source"], r["id"]), reverse=True)
    got = [line.split("\t") for line in lines[1:]]
    assert [int(g[0]) for g in got] == [r["id"] for r in scanners[:5]]
    # Shown in the installation's zone with its offset, to the second.
    assert got[0][1] == scanners[0]["time_source"].astimezone(ZoneInfo("Asia/Shanghai")).replace(
        microsecond=0).isoformat()
    assert got[0][1].endswith("+08:00")
    assert f"{len(scanners)} event(s) match" in result.stderr and "--cursor " in result.stderr
    cursor = result.stderr.split("--cursor ")[1].split()[0]
    more = run("events", "search", "--type", "scanner", "--limit", "5", "--cursor", cursor)
    assert [int(x.split("\t")[0]) for x in more.stdout.splitlines()[1:]] == [r["id"] for r in scanners[5:10]]


def test_naive_times_on_the_command_line_are_read_in_the_installation_zone(run, world, events_of):
    rows = events_of(200)
    # 2026-11-25T08:00 in Shanghai is 00:00 UTC.
    result = run("events", "count", "--by", "type", "--from", "2026-11-25T08:00", timezone="Asia/Shanghai")
    assert result.exit_code == 0, result.output
    midnight = datetime(2026, 11, 25, tzinfo=UTC)
    expected: dict[str, int] = {}
    for r in rows:
        if r["time_source"] >= midnight:
            expected[r["classification_type"]] = expected.get(r["classification_type"], 0) + 1
    got = {line.split("\t")[0]: int(line.split("\t")[1]) for line in result.stdout.splitlines()[1:]}
    assert got == expected and result.stdout.splitlines()[0] == "type\tevents"


def test_count_and_search_name_the_bad_option(run, world):
    bad = run("events", "count", "--by", "colour")
    assert bad.exit_code == 1 and "--by:" in bad.output and "colour" in bad.output
    bad = run("events", "search", "--ip", "10.0.0.1/8")
    assert bad.exit_code == 1 and "--ip:" in bad.output


def test_help_is_plain_and_states_the_time_rule(run):
    result = run("events", "search", "--help")
    assert result.exit_code == 0
    assert "<bool>" not in result.output and "╭" not in result.output
    assert "installation's time zone" in result.output


def test_search_sorts_by_a_column_and_its_cursor_goes_on_in_that_order(run, world, events_of):
    rows = events_of(120)
    ranks = ("info", "low", "medium", "high", "critical")
    want = [r["id"] for r in sorted(rows, key=lambda r: (ranks.index(r["severity"]), r["id"]))]
    result = run("events", "search", "--sort", "severity", "--dir", "asc", "--limit", "7")
    assert result.exit_code == 0, result.output
    assert [int(x.split("\t")[0]) for x in result.stdout.splitlines()[1:]] == want[:7]
    cursor = result.stderr.split("--cursor ")[1].split()[0]
    more = run("events", "search", "--sort", "severity", "--dir", "asc", "--limit", "7", "--cursor", cursor)
    assert [int(x.split("\t")[0]) for x in more.stdout.splitlines()[1:]] == want[7:14]
    # A cursor of one order is refused in another, with the option named.
    other = run("events", "search", "--sort", "feed", "--cursor", cursor)
    assert other.exit_code == 1 and "--cursor:" in other.output
    bad = run("events", "search", "--sort", "colour", "--dir", "up")
    assert bad.exit_code == 1 and "--sort:" in bad.output and "--dir:" in bad.output
