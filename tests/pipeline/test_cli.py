"""The command line: ingest with its summary, feeds list, update-schema, events rematch, quarantine."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from commonwatch.cli import app
from commonwatch.pipeline.demo import samples_dir
from commonwatch.runtime import Runtime, set_runtime
from tests.pipeline.helpers import count_events, seed_registry


def text(result) -> str:
    """The output with Rich's line wrapping undone."""
    return " ".join(result.output.split())


@pytest.fixture
def cli(settings, engine, clock):
    seed_registry(engine, clock)
    set_runtime(Runtime(settings, clock))
    yield CliRunner()
    set_runtime(None)


def test_ingest_prints_a_summary(cli, engine):
    path = samples_dir() / "threatfox.json"
    result = cli.invoke(app, ["ingest", str(path), "--feed", "threatfox"])
    assert result.exit_code == 0, result.output
    for wanted in ("rows read", "events stored", "quarantined", "commonwatch quarantine list --run"):
        assert wanted in text(result)
    assert count_events(engine) == 3
    listed = cli.invoke(app, ["quarantine", "list"])
    assert "no source.ip, source.fqdn or source.url" in text(listed) and "threatfox.json:4" in text(listed)


def test_ingest_refuses_unknown_feeds_and_paths(cli, tmp_path):
    result = cli.invoke(app, ["ingest", str(samples_dir() / "urlhaus.csv"), "--feed", "nonsense"])
    assert result.exit_code == 1 and "unknown feed nonsense" in text(result)
    result = cli.invoke(app, ["ingest", str(tmp_path / "missing.csv"), "--feed", "urlhaus"])
    assert result.exit_code == 1 and "does not exist" in text(result)
    result = cli.invoke(app, ["ingest", "https://feeds.example/x.csv", "--feed", "urlhaus"])
    assert result.exit_code == 1 and "outbound allowlist" in text(result)


def test_ingest_a_folder(cli, engine, tmp_path):
    for name in ("2026-11-24-scan_dns-asn-region-geo.csv", "2026-11-24-scan_ntp-asn-region-geo.csv"):
        (tmp_path / name).write_bytes((samples_dir() / name).read_bytes())
    (tmp_path / ".hidden.csv").write_text("ignored")
    result = cli.invoke(app, ["ingest", str(tmp_path), "--feed", "shadowserver"])
    assert result.exit_code == 0, result.output
    assert count_events(engine) == 4 + 5


def test_feeds_list_and_update_schema(cli, tmp_path):
    listed = cli.invoke(app, ["feeds", "list"])
    for name in ("shadowserver", "urlhaus", "feodotracker", "threatfox", "spamhaus-drop", "spamhaus-edrop",
                 "openphish", "phishtank", "intelmq", "generic:MAPPING_FILE", "scan_http"):
        assert name in text(listed)
    schema = json.loads((samples_dir().parent / "data" / "shadowserver-schema.json").read_text())
    schema["scan_new"] = {"required_fields": [["time.source", "timestamp"], ["source.ip", "ip"]]}
    new = tmp_path / "schema.json"
    new.write_text(json.dumps(schema))
    result = cli.invoke(app, ["feeds", "update-schema", str(new)])
    assert result.exit_code == 0 and "1 new report type(s): scan_new" in text(result)
    assert "scan_new" in text(cli.invoke(app, ["feeds", "list"]))


def test_events_rematch(cli, engine):
    cli.invoke(app, ["ingest", str(samples_dir() / "feodotracker.csv"), "--feed", "feodotracker"])
    result = cli.invoke(app, ["events", "rematch", "--since", "2026-11-01"])
    assert result.exit_code == 0 and "examined 3 event(s), changed 0" in text(result)
    bad = cli.invoke(app, ["events", "rematch", "--since", "last tuesday"])
    assert bad.exit_code == 1 and "not an ISO 8601 date" in text(bad)
