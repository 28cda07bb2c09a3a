"""Import and export of the registry: all-or-nothing, bad rows by line, --partial, CSV injection."""

import csv
import io
import json

from sqlalchemy import func, select
from typer.testing import CliRunner

from commonwatch.cli import app as cli
from commonwatch.config import Settings
from commonwatch.constituency.models import Contact, Network, Organisation
from commonwatch.runtime import Runtime, set_runtime

GOOD_CSV = """name,name_local,kind,sector,country,region,parent,networks,asns,domains,contacts,notes
Delta ISP,德尔塔网络,network-operator,telecom,CN,Sichuan,,100.100.0.0/16;2001:db8:d::/48,AS65001,delta.example,abuse@delta.example|abuse|zh-CN,
Delta Cloud,,network-operator,telecom,CN,Sichuan,Delta ISP,100.100.8.0/24,,cloud.delta.example,noc@cloud.delta.example|technical|en|early-warning,
"""

BAD_CSV = """name,kind,sector,networks,asns,contacts
Echo One,network-operator,telecom,192.0.2.0/24,AS65010,
Echo Two,network-operator,telecom,192.0.2.1/24,,
Echo Three,network-operator,teleco,,AS0,
Echo Four,network-operator,telecom,,,not-an-email
Echo Five,network-operator,telecom,::ffff:0:0/96,,
"""


def _count(engine, model):
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_csv_import_over_the_api(client, world, engine):
    resp = client.post("/api/v1/organisations/import", content=GOOD_CSV.encode(),
                       headers={**world.auth("coordinator"), "Content-Type": "text/csv"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"applied": True, "created": 2, "updated": 0, "errors": []}
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        cloud = s.scalar(select(Organisation).where(Organisation.name == "Delta Cloud"))
        isp = s.scalar(select(Organisation).where(Organisation.name == "Delta ISP"))
        assert cloud.parent_id == isp.id and isp.name_local == "德尔塔网络"
        assert {n.cidr for n in isp.networks} == {"100.100.0.0/16", "2001:db8:d::/48"}
        assert [c.notices for c in cloud.contacts] == [["early-warning"]]
    # Importing again updates instead of duplicating.
    again = client.post("/api/v1/organisations/import", content=GOOD_CSV.encode(),
                        headers={**world.auth("coordinator"), "Content-Type": "text/csv"}).json()
    assert again["created"] == 0 and again["updated"] == 2
    assert _count(engine, Network) == 2 + 3


def test_bad_rows_change_nothing_and_are_reported_by_line(client, world, engine):
    before = (_count(engine, Organisation), _count(engine, Network))
    resp = client.post("/api/v1/organisations/import", content=BAD_CSV.encode(),
                       headers={**world.auth("coordinator"), "Content-Type": "text/csv"})
    assert resp.status_code == 422
    body = resp.json()
    assert body["applied"] is False
    lines = {(e["line"], e["field"]) for e in body["errors"]}
    assert lines == {(3, "networks"), (4, "sector"), (4, "asns"), (5, "email"), (6, "networks")}, body["errors"]
    assert (_count(engine, Organisation), _count(engine, Network)) == before


def test_partial_import_keeps_good_rows(client, world, engine):
    resp = client.post("/api/v1/organisations/import?partial=true", content=BAD_CSV.encode(),
                       headers={**world.auth("coordinator"), "Content-Type": "text/csv"})
    body = resp.json()
    assert resp.status_code == 200 and body["applied"] is True and body["created"] == 1
    assert {e["line"] for e in body["errors"]} == {3, 4, 5, 6}
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        assert s.scalar(select(Organisation).where(Organisation.name == "Echo One")) is not None
        assert s.scalar(select(Organisation).where(Organisation.name == "Echo Two")) is None


def test_json_import_reports_line_numbers(client, world):
    doc = {"organisations": [
        {"name": "Foxtrot", "kind": "government", "sector": "e-government", "domains": ["foxtrot.example"]},
        {"name": "Golf", "kind": "nope"},
        "not an object",
    ]}
    text = json.dumps(doc, indent=2)
    resp = client.post("/api/v1/organisations/import", content=text.encode(),
                       headers={**world.auth("coordinator"), "Content-Type": "application/json"})
    assert resp.status_code == 422
    errors = resp.json()["errors"]
    golf_line = text.splitlines().index("    {") + 1  # first object starts here
    assert [e["field"] for e in errors] == ["kind", "organisation"]
    assert errors[0]["line"] > golf_line


def test_broken_files_are_reported_not_crashed(client, world):
    for body, ctype in ((b'{"organisations": [', "application/json"), (b"\xff\xfe\x00garbage", "text/csv"),
                        (b"", "text/csv"), (b"nom,kind\nx,y\n", "text/csv"), (b"name,kind,extra\n", "text/csv")):
        resp = client.post("/api/v1/organisations/import", content=body,
                           headers={**world.auth("coordinator"), "Content-Type": ctype})
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["errors"], body


def test_gb18030_csv_is_decoded(client, world, engine):
    text = "name,name_local,kind\nHotel Power,酒店电力公司,other\n"
    resp = client.post("/api/v1/organisations/import", content=text.encode("gb18030"),
                       headers={**world.auth("coordinator"), "Content-Type": "text/csv"})
    assert resp.status_code == 200
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        assert s.scalar(select(Organisation.name_local).where(Organisation.name == "Hotel Power")) == "酒店电力公司"


def test_export_csv_is_injection_safe_and_scoped(client, world):
    coord = world.auth("coordinator")
    client.patch(f"/api/v1/organisations/{world.org_a}", json={"notes": "=HYPERLINK(\"http://x\")"}, headers=coord)
    text = client.get("/api/v1/organisations/export?format=csv", headers=coord).text
    rows = list(csv.DictReader(io.StringIO(text)))
    alpha = next(r for r in rows if r["name"] == "Alpha Telecom")
    assert alpha["notes"].startswith("'=")
    mine = client.get("/api/v1/organisations/export?format=json", headers=world.auth("a")).json()
    assert {o["name"] for o in mine["organisations"]} == {"Alpha Telecom", "Alpha Telecom Labs"}


def test_export_then_import_round_trips(client, world, tmp_path, sqlite_template, clock):
    exported = client.get("/api/v1/organisations/export?format=json", headers=world.auth("coordinator")).text
    import shutil

    fresh = tmp_path / "fresh.db"
    shutil.copy(sqlite_template, fresh)
    path = tmp_path / "orgs.json"
    path.write_text(exported, encoding="utf-8")
    set_runtime(Runtime(Settings(data_dir=tmp_path, database_url=f"sqlite:///{fresh}"), clock))
    try:
        result = CliRunner().invoke(cli, ["org", "import", str(path)])
        assert result.exit_code == 0, result.output
        again = CliRunner().invoke(cli, ["org", "export", "--format", "json"])
    finally:
        set_runtime(None)
    strip = lambda doc: [{k: v for k, v in o.items() if k != "id"} for o in json.loads(doc)["organisations"]]  # noqa: E731
    assert strip(again.stdout) == strip(exported)


def test_cli_import_reports_bad_lines_and_exits_1(tmp_path, sqlite_url, clock, engine):
    path = tmp_path / "bad.csv"
    path.write_text(BAD_CSV, encoding="utf-8")
    set_runtime(Runtime(Settings(data_dir=tmp_path, database_url=sqlite_url), clock))
    try:
        result = CliRunner().invoke(cli, ["org", "import", str(path)])
        assert result.exit_code == 1
        assert f"{path}:3: networks:" in result.output and "nothing imported" in result.output
        assert _count(engine, Organisation) == 0
        partial = CliRunner().invoke(cli, ["org", "import", str(path), "--partial"])
        assert partial.exit_code == 1 and "1 created" in partial.output
        assert _count(engine, Contact) == 0
    finally:
        set_runtime(None)
