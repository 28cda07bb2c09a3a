"""The demo loads the grid operator's two systems and the shipped inventory (idempotently), and the
CLI lists systems, due items and imports a file."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from commonwatch.access.principal import SYSTEM
from commonwatch.cii import services as cii
from commonwatch.cii.models import Asset, AssetImport, CiiSystem
from tests.cii import samples


def _runtime(tmp_path, clock):
    from commonwatch.config import Settings
    from commonwatch.migrate import upgrade
    from commonwatch.runtime import Runtime

    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'demo.db'}")
    rt = Runtime(settings, clock)
    upgrade(rt.engine)
    return rt


def test_demo_loads_and_is_idempotent(tmp_path, clock):
    from commonwatch.demo import load_demo

    rt = _runtime(tmp_path, clock)
    load_demo(rt)
    load_demo(rt)
    with rt.session() as s:
        # Other capabilities' demos may add systems of their own (vulns adds one); ours are there once.
        ours = ("Dispatch SCADA", "Substation automation")
        systems = s.scalars(select(CiiSystem).where(CiiSystem.name.in_(ours)).order_by(CiiSystem.id)).all()
        assert [x.name for x in systems] == list(ours)
        states = {(r["system"].name, r["due"].kind): r["due"].state
                  for r in cii.due_overview(s, SYSTEM, cii.local_today(clock.now()), only_action=True)
                  if r["system"].name in ours}
        assert states == {("Dispatch SCADA", "mlps"): "due_soon", ("Dispatch SCADA", "inspection"): "overdue"}
        imports = s.scalars(select(AssetImport).order_by(AssetImport.id)).all()
        assert [(b.format, b.quarantined) for b in imports] == [("cyclonedx", 0), ("nmap", 0), ("csv", 1)]
        frame = cii.asset_frame(s, SYSTEM)
        assert frame.height == s.query(Asset).count() >= sum(b.added for b in imports) >= 14
        assert frame.filter(frame["cpe"] == "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*")["mlps_level"].to_list() == [3]


@pytest.fixture
def cli_runtime(tmp_path, clock):
    from commonwatch.runtime import set_runtime

    rt = _runtime(tmp_path, clock)
    set_runtime(rt)
    yield rt
    set_runtime(None)


def test_cli_import_systems_due_and_export(cli_runtime, tmp_path, clock):
    from commonwatch.cli import app as cli_app
    from commonwatch.db import session_scope
    from tests.conftest import build_world

    rt = cli_runtime
    with session_scope(rt.sessionmaker, actor="test") as s:
        world = build_world(s, clock)
        cii.create_system(s, SYSTEM, world.org_b, {"name": "Grid SCADA", "mlps_level": 3,
                                                   "last_mlps_assessment": "2025-01-01"}, cii.local_today(clock.now()))
    path = tmp_path / "bom.json"
    path.write_bytes(samples.CYCLONEDX_GOOD)
    runner = CliRunner()
    result = runner.invoke(cli_app, ["cii", "import", str(path), "--org", str(world.org_b)])
    assert result.exit_code == 0, result.output
    assert "3 added, 0 unchanged, 1 quarantined" in result.output
    bad = tmp_path / "old.json"
    bad.write_bytes(samples.CYCLONEDX_GOOD.replace(b'"1.5"', b'"1.1"'))
    result = runner.invoke(cli_app, ["cii", "import", str(bad), "--org", str(world.org_b)])
    assert result.exit_code == 1 and "1.1" in result.output
    result = runner.invoke(cli_app, ["cii", "due"])
    assert result.exit_code == 1 and "overdue" in result.output and "Grid SCADA" in result.output
    result = runner.invoke(cli_app, ["cii", "export", "--org", str(world.org_b)])
    assert result.exit_code == 0 and "pkg:pypi/requests@2.31.0" in result.output
    result = runner.invoke(cli_app, ["cii", "systems"])
    assert result.exit_code == 0 and "Grid SCADA" in result.output
