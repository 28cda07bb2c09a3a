"""``commonwatch vulns import`` and ``vulns match`` on a real SQLite database."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from commonwatch.cii.models import Asset
from commonwatch.cli import app as cli_app
from commonwatch.config import Settings
from commonwatch.constituency import services as registry
from commonwatch.runtime import Runtime, set_runtime
from commonwatch.vulns.models import VulnFinding, VulnRecord

SAMPLES = Path(__file__).parents[2] / "src" / "commonwatch" / "vulns" / "samples"


@pytest.fixture
def runtime(tmp_path, sqlite_url, clock):
    rt = Runtime(Settings(data_dir=tmp_path / "data", database_url=sqlite_url), clock)
    set_runtime(rt)
    yield rt
    set_runtime(None)


def test_import_then_match(runtime):
    with runtime.session("test") as s:
        org = registry.create_org(s, {"name": "Grid", "kind": "cii-operator", "sector": "energy"}).id
        s.add(Asset(org_id=org, name="web", cpe="cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*"))
    r = CliRunner().invoke(cli_app, ["vulns", "import", str(SAMPLES / "nvd-page.json"),
                                     str(SAMPLES / "kev.json"), str(SAMPLES / "epss.csv")])
    assert r.exit_code == 0, r.output
    assert "2 added" in r.output and "2 KEV entries" in r.output and "4 EPSS scores" in r.output
    assert "1 new finding(s)" in r.output
    again = CliRunner().invoke(cli_app, ["vulns", "import", str(SAMPLES / "nvd-page.json")])
    assert "0 added, 0 updated, 2 unchanged" in again.output
    m = CliRunner().invoke(cli_app, ["vulns", "match"])
    assert m.exit_code == 0 and "0 new finding(s), 1 seen again" in m.output
    with runtime.session("test") as s:
        assert s.scalar(select(func.count()).select_from(VulnRecord)) == 2
        assert s.scalars(select(VulnFinding)).one().vuln_id == "CVE-2021-41773"


def test_refused_zip_is_a_clear_error(runtime, tmp_path):
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("CVE-2021-0001.json", b"0" * (5 * 1024 * 1024))
    r = CliRunner().invoke(cli_app, ["vulns", "import", str(z)])
    assert r.exit_code == 1 and "zip bomb" in " ".join(r.output.split())
    missing = CliRunner().invoke(cli_app, ["vulns", "import", str(tmp_path / "nothing.json")])
    assert missing.exit_code == 1 and "no such file" in " ".join(missing.output.split())
