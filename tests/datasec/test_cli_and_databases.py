"""``commonwatch datasec scan`` on files and databases (SQLite and PostgreSQL, sampled or full); a
database that refuses the connection gets a clear message and nothing is recorded."""

from __future__ import annotations

import json
import random
import socket

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select
from typer.testing import CliRunner

from commonwatch.cli import app as cli_app
from commonwatch.config import Settings
from commonwatch.datasec import synthetic as syn
from commonwatch.datasec.demo import sample_file
from commonwatch.datasec.models import Scan
from commonwatch.datasec.scanner import scan_database
from commonwatch.db import normalise_url, session_scope
from commonwatch.errors import Invalid
from commonwatch.runtime import Runtime, set_runtime

TODAY = __import__("datetime").date(2026, 11, 25)


@pytest.fixture
def runtime(tmp_path, sqlite_url, clock):
    rt = Runtime(Settings(data_dir=tmp_path / "data", database_url=sqlite_url), clock)
    set_runtime(rt)
    yield rt
    set_runtime(None)


def _sample_identifiers() -> list[str]:
    import csv

    with sample_file().open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    return [v for row in rows for v in (row[2], row[3], row[5])]


def test_cli_scan_prints_masked_samples_only(runtime):
    result = CliRunner().invoke(cli_app, ["datasec", "scan", str(sample_file())], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "cn_resident_id" in said(result) and "****" in said(result)
    assert not [v for v in _sample_identifiers() if v in result.output]


def test_cli_scan_json_and_record_for_an_organisation(runtime, clock):
    from tests.conftest import build_world

    with session_scope(runtime.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        world = build_world(s, clock)
    result = CliRunner().invoke(cli_app, ["datasec", "scan", str(sample_file()), "--format", "json",
                                          "--org", str(world.org_a)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["scan_id"] and "identity_documents" in data["sensitive_categories"]
    assert "minors_under_14" in data["sensitive_categories"]  # the sample holds one child's ID number
    assert not [v for v in _sample_identifiers() if v in result.stdout]
    with session_scope(runtime.sessionmaker) as s:
        assert s.get(Scan, data["scan_id"]).org_id == world.org_a
    missing = CliRunner().invoke(cli_app, ["datasec", "scan", str(sample_file()), "--org", "9999"])
    assert missing.exit_code == 1 and "not recorded" in said(missing)


def test_cli_reports_bad_input_clearly(runtime, tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 100)
    result = CliRunner().invoke(cli_app, ["datasec", "scan", str(tmp_path / "x.bin")])
    assert result.exit_code == 1 and "binary" in said(result)
    result = CliRunner().invoke(cli_app, ["datasec", "scan", str(tmp_path / "nothing.csv")])
    assert result.exit_code == 1 and "no such file" in said(result)


def said(result) -> str:
    """The command's output with Rich's line wrapping undone."""
    return " ".join(result.output.split())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_database_that_refuses_the_connection(runtime):
    url = f"postgresql://scanner:hunter2@127.0.0.1:{_closed_port()}/crm"
    with pytest.raises(Invalid, match="could not connect") as info:
        scan_database(url, today=TODAY)
    assert "hunter2" not in str(info.value) and "***" in str(info.value)
    result = CliRunner().invoke(cli_app, ["datasec", "scan", url, "--org", "1"])
    assert result.exit_code == 1 and "could not connect" in said(result) and "hunter2" not in said(result)
    with session_scope(runtime.sessionmaker) as s:
        assert s.scalar(select(Scan.id)) is None
    bad = CliRunner().invoke(cli_app, ["datasec", "scan", "nosuchdriver://x/y"])
    assert bad.exit_code == 1 and "not a usable database URL" in said(bad)


def _fill(url: str, n: int) -> list[str]:
    rng = random.Random(5)
    engine = create_engine(normalise_url(url))
    meta = MetaData()
    customers = Table("customers_scan", meta, Column("id", Integer, primary_key=True), Column("name", String(50)),
                      Column("id_no", String(18)), Column("mobile", String(20)), Column("note", String(200)))
    orders = Table("orders_scan", meta, Column("id", Integer, primary_key=True), Column("order_no", String(30)),
                   Column("amount", Integer))
    meta.drop_all(engine)
    meta.create_all(engine)
    ids = []
    with engine.begin() as conn:
        rows = []
        for i in range(n):
            rows.append({"id": i + 1, "name": syn.person_name(rng), "id_no": syn.resident_id(rng),
                         "mobile": syn.mobile(rng), "note": f"card {syn.unionpay_card(rng)}"})
            ids.append(rows[-1]["id_no"])
        conn.execute(insert(customers), rows)
        conn.execute(insert(orders), [{"id": i + 1, "order_no": f"2026{i:014d}", "amount": i} for i in range(n)])
    engine.dispose()
    return ids


def _check_database_scan(url: str) -> None:
    ids = _fill(url, 300)
    sampled = scan_database(url, today=TODAY, sample_rows=100, tables=["customers_scan", "orders_scan"])
    by = {(f.part, f.field, f.detector): f for f in sampled.findings}
    assert by[("customers_scan", "id_no", "cn_resident_id")].count == 100
    assert by[("customers_scan", "note", "cn_bank_card")].count == 100
    assert not [k for k in by if k[0] == "orders_scan"]
    assert sampled.sampled and sampled.parts == {"customers_scan": 100, "orders_scan": 100}
    full = scan_database(url, today=TODAY, sample_rows=None, tables=["customers_scan"])
    assert {(f.field, f.detector, f.count) for f in full.findings} >= {("id_no", "cn_resident_id", 300),
                                                                         ("mobile", "cn_mobile", 300)}
    assert not full.sampled
    text = json.dumps(full.as_dict(), ensure_ascii=False)
    assert not [i for i in ids if i in text]


def test_scan_a_sqlite_database(tmp_path):
    _check_database_scan(f"sqlite:///{tmp_path / 'crm.db'}")


@pytest.mark.postgres
def test_scan_a_postgresql_database(pg_url):
    _check_database_scan(pg_url)
