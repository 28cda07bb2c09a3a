from __future__ import annotations

from sqlalchemy import select


def test_demo_gives_the_grid_operator_ranked_warnings_and_is_idempotent(tmp_path, clock):
    from commonwatch.access.principal import SYSTEM
    from commonwatch.config import Settings
    from commonwatch.demo import load_demo
    from commonwatch.migrate import upgrade
    from commonwatch.runtime import Runtime
    from commonwatch.vulns import services as svc
    from commonwatch.vulns.models import VulnFinding

    rt = Runtime(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'demo.db'}"), clock)
    upgrade(rt.engine)
    load_demo(rt)
    load_demo(rt)
    with rt.session() as s:
        from commonwatch.cii.models import CiiSystem

        system = s.scalars(select(CiiSystem).where(CiiSystem.name == "SCADA front end (demo)")).one()
        mine = s.scalars(select(VulnFinding).where(VulnFinding.system_id == system.id)).all()
        assert len(mine) == 3   # the cii demo's own inventory may add findings of its own
        ranked = svc.ranked_findings(s, SYSTEM)
        ranked = ranked.filter(ranked["system_id"] == system.id)
        assert ranked["vuln_id"].to_list()[:2] == ["CVE-2021-44228", "CVE-2021-41773"]   # KEV, CVSS 10 then 9.8
        # CVE-2024-3400 needs GlobalProtect on the firewall's system (an AND configuration): not in the demo
        assert set(ranked["vuln_id"]) == {"CVE-2021-44228", "CVE-2021-41773", "CVE-2021-23337"}
        gw = [r for r in ranked.iter_rows(named=True) if "acme_gateway" in r["identifier"]]
        assert gw == []   # the vendor's VEX says its build is not affected
