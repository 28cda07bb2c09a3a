"""Warning lists: MISP warninglist JSON and plain lists loaded from files, matched on whole columns,
malformed files refused naming the field or line (nothing stored), a ten-million-line list loaded
in bounded memory, and the policy keeping listed events out of warnings and promotion."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import polars as pl
import pytest

from commonwatch.errors import Invalid
from commonwatch.intel import warninglists as wl
from commonwatch.net import ip_key
from tests.conftest import START


def _misp(tmp_path, name, kind, entries, **extra):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "version": 3, "description": "test", "type": kind,
                                "list": entries, **extra}), encoding="utf-8")
    return path


@pytest.fixture
def lists(tmp_path):
    data = tmp_path / "data"
    wl.load_file(_misp(tmp_path, "resolvers", "cidr", ["8.8.8.0/24", "1.1.1.1", "2001:4860::/32"]), data, START)
    wl.load_file(_misp(tmp_path, "top sites", "hostname", ["example.com", ".cdn.example"]), data, START)
    wl.load_file(_misp(tmp_path, "exact", "string", ["Benign.Example.ORG"]), data, START)
    wl.load_file(_misp(tmp_path, "trackers", "substring", ["tracker"]), data, START)
    wl.load_file(_misp(tmp_path, "mail", "regex", ["/^mx[0-9]+\\.mail\\./i"]), data, START)
    return data


def test_each_type_of_list_matches_its_values(lists):
    values = pl.DataFrame({"value": ["8.8.8.8", "8.8.9.1", "1.1.1.1", "2001:4860:1::1", "www.example.com",
                                     "example.community", "http://a.cdn.example/x", "benign.example.org",
                                     "my-tracker.net", "MX12.mail.example.net", "evil.example.net"],
                           "key": [ip_key("8.8.8.8"), ip_key("8.8.9.1"), None, ip_key("2001:4860:1::1"),
                                   *[None] * 7]}, schema={"value": pl.String, "key": pl.Binary})
    found = wl.hits(values, wl.loaded(lists))
    assert set(found.iter_rows()) == {
        ("8.8.8.8", "resolvers"), ("1.1.1.1", "resolvers"), ("2001:4860:1::1", "resolvers"),
        ("www.example.com", "top sites"), ("http://a.cdn.example/x", "top sites"),
        ("benign.example.org", "exact"), ("my-tracker.net", "trackers"), ("MX12.mail.example.net", "mail")}
    assert [(w.name, w.type, w.entries) for w in wl.stored(lists)] == [
        ("exact", "string", 1), ("mail", "regex", 1), ("resolvers", "cidr", 3), ("top sites", "hostname", 2),
        ("trackers", "substring", 1)]


@pytest.mark.parametrize(("document", "field"), [
    ("{not json", "bad.json"),
    ('["a list"]', "bad.json"),
    ('{"version": 1, "type": "string", "list": []}', "name"),
    ('{"name": "x", "version": "one", "type": "string", "list": []}', "version"),
    ('{"name": "x", "version": 1, "type": "ip-src", "list": []}', "type"),
    ('{"name": "x", "version": 1, "type": "string"}', "list"),
    ('{"name": "x", "version": 1, "type": "string", "list": ["a", "b", 3]}', "list[2]"),
])
def test_malformed_json_is_refused_naming_the_field_and_nothing_is_stored(tmp_path, document, field):
    path = tmp_path / "bad.json"
    path.write_text(document, encoding="utf-8")
    with pytest.raises(Invalid) as err:
        wl.load_file(path, tmp_path / "data", START)
    assert field in [e.field for e in err.value.errors], err.value
    assert wl.stored(tmp_path / "data") == []


def test_a_bad_line_of_a_plain_list_names_the_line_and_keeps_the_old_list(tmp_path):
    data = tmp_path / "data"
    good = tmp_path / "nets.txt"
    good.write_text("# resolvers\n8.8.8.0/24\n\n9.9.9.9\n", encoding="utf-8")
    assert wl.load_file(good, data, START, kind="cidr").entries == 2
    good.write_text("# resolvers\n8.8.8.0/24\n10.0.0.0/33\n", encoding="utf-8")
    with pytest.raises(Invalid) as err:
        wl.load_file(good, data, START, kind="cidr")
    assert err.value.errors[0].field == "nets.txt:3" and "10.0.0.0/33" in err.value.errors[0].reason
    good.write_text("8.8.8.1/24\n", encoding="utf-8")  # host bits set: not a network
    with pytest.raises(Invalid):
        wl.load_file(good, data, START, kind="cidr")
    assert [(w.name, w.entries) for w in wl.stored(data)] == [("nets", 2)]  # the old list, whole
    assert not list((data / "warninglists").glob(".*tmp"))


def test_a_ten_million_line_list_loads_in_bounded_memory(tmp_path):
    """Loaded in its own process, so the peak resident memory measured is the load's alone."""
    path = tmp_path / "big.txt"
    i = pl.col("i")
    (pl.LazyFrame().select(pl.int_range(0, 10_000_000, dtype=pl.Int64).alias("i"))
     .select(pl.format("{}.{}.{}.0", i // 65536 % 256 + 10, i // 256 % 256, i % 256).alias("v"))
     .sink_csv(path, include_header=False))
    script = textwrap.dedent(f"""
        from datetime import datetime, UTC
        from pathlib import Path
        from commonwatch.intel import warninglists as wl
        meta = wl.load_file(Path({str(path)!r}), Path({str(tmp_path / "data")!r}), datetime(2026, 12, 1, tzinfo=UTC),
                            kind="cidr")
        # VmHWM is this program's own peak; ru_maxrss would carry the forking pytest's across exec.
        hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
        print(meta.entries, hwm)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=True)
    entries, peak_kib = map(int, out.stdout.split())
    assert entries == 10_000_000
    assert peak_kib < 1_500_000, f"peak RSS {peak_kib} KiB"


def test_listed_values_are_not_promoted(tmp_path):
    from commonwatch.intel.jobs import _listed_values

    data = tmp_path / "data"
    wl.load_file(_misp(tmp_path, "top", "hostname", ["example.com"]), data, START)
    cand = pl.DataFrame({"value": ["c2.example.com", "c2.evil.example"]})
    assert _listed_values(cand, data)["value"].to_list() == ["c2.example.com"]


def test_the_cli_loads_and_lists(tmp_path, sqlite_url, clock):
    from typer.testing import CliRunner

    from commonwatch.cli import app as cli_app
    from commonwatch.config import Settings
    from commonwatch.runtime import Runtime, set_runtime

    set_runtime(Runtime(Settings(data_dir=tmp_path / "data", database_url=sqlite_url), clock))

    path = _misp(tmp_path, "resolvers", "cidr", ["8.8.8.0/24"])
    runner = CliRunner()
    loaded = runner.invoke(cli_app, ["intel", "warninglists", "load", str(path)])
    assert loaded.exit_code == 0, loaded.output
    assert "resolvers: 1 cidr entries" in loaded.output
    assert "resolvers\tcidr\t1" in runner.invoke(cli_app, ["intel", "warninglists", "list"]).output
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "version": 1, "type": "nope", "list": []}', encoding="utf-8")
    refused = runner.invoke(cli_app, ["intel", "warninglists", "load", str(bad)])
    assert refused.exit_code != 0 and "type" in refused.output
    set_runtime(None)
