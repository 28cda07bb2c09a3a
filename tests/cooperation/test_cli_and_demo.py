"""The command line (partners export/import, requests as a named user, counts) and the demo data."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from commonwatch.cli import app as cli_app
from commonwatch.config import Settings
from commonwatch.cooperation.models import AgreementReminder, AssistanceRequest, PartnerProfile
from commonwatch.demo import load_demo
from commonwatch.migrate import upgrade
from commonwatch.runtime import Runtime, set_runtime


@pytest.fixture
def rt(tmp_path, clock):
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'demo.db'}")
    runtime = Runtime(settings, clock)
    upgrade(runtime.engine)
    set_runtime(runtime)
    yield runtime
    set_runtime(None)


def test_demo_then_cli(rt, tmp_path):
    load_demo(rt)
    load_demo(rt)
    with rt.session() as s:
        assert s.scalar(select(func.count()).select_from(PartnerProfile)) == 3
        assert s.scalar(select(func.count()).select_from(AssistanceRequest)) == 2
        assert s.scalar(select(AgreementReminder.kind)) == "soon"
        coordinator = s.scalar(select(AssistanceRequest.created_by))
        assert coordinator
    runner = CliRunner(env={"COLUMNS": "250"})
    out = runner.invoke(cli_app, ["cooperation", "partners", "export", "--format", "json"])
    assert out.exit_code == 0, out.output
    items = json.loads(out.output)["items"]
    assert {p["country"] for p in items} >= {"DE", "SG", "JP"}
    path = tmp_path / "p.csv"
    out = runner.invoke(cli_app, ["cooperation", "partners", "export", "--format", "csv", "-o", str(path)])
    assert out.exit_code == 0 and path.read_text().startswith("name,")
    out = runner.invoke(cli_app, ["cooperation", "partners", "import", str(path)])
    assert out.exit_code == 0 and "0 created" in out.output, out.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "X", "country": "Atlantis"}]))
    out = runner.invoke(cli_app, ["cooperation", "partners", "import", str(bad)])
    assert out.exit_code != 0 and "record 1: country" in out.output

    listing = runner.invoke(cli_app, ["cooperation", "requests", "list", "--as", "coordinator@centre.example"])
    refs = [line.split("\t")[0] for line in listing.output.splitlines() if line.startswith("AR-")]
    assert len(refs) == 2, listing.output
    nope = runner.invoke(cli_app, ["cooperation", "requests", "list", "--as", "analyst@centre.example"])
    assert not [line for line in nope.output.splitlines() if line.startswith("AR-")]
    moved = runner.invoke(cli_app, ["cooperation", "requests", "status", refs[-1], "acknowledged", "--as",
                                    "coordinator@centre.example"])
    assert moved.exit_code == 0 and "acknowledged" in moved.output, moved.output
    pdf = tmp_path / "r.pdf"
    out = runner.invoke(cli_app, ["cooperation", "requests", "record", refs[0], "-o", str(pdf), "--as",
                                  "coordinator@centre.example"])
    assert out.exit_code == 0 and pdf.read_bytes().startswith(b"%PDF")
    counts = runner.invoke(cli_app, ["cooperation", "counts", "--period", "year"])
    assert counts.exit_code == 0 and json.loads(counts.output)["requests"]
