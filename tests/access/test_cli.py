"""The command line as scripts use it: users, tokens printed alone on stdout, init and demo."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from commonwatch.cli import app as cli
from commonwatch.config import Settings
from commonwatch.runtime import Runtime, set_runtime


@pytest.fixture
def runtime(tmp_path, sqlite_url, clock):
    rt = Runtime(Settings(data_dir=tmp_path, database_url=sqlite_url), clock)
    set_runtime(rt)
    yield rt
    set_runtime(None)


def test_user_add_with_password_on_stdin_then_token_create(runtime, world_orgs):
    runner = CliRunner()
    added = runner.invoke(cli, ["user", "add", "ops@x.example", "--role", "constituent", "--org",
                                str(world_orgs), "--password-stdin"], input="a-long-password\n")
    assert added.exit_code == 0, added.output
    token = runner.invoke(cli, ["token", "create", "ops@x.example", "--expires", "7"])
    assert token.exit_code == 0
    assert token.stdout.count("\n") == 1 and token.stdout.startswith("cw_")
    listed = runner.invoke(cli, ["token", "list", "ops@x.example"])
    assert token.stdout.strip()[:10] in listed.stdout and token.stdout.strip() not in listed.stdout


def test_user_add_refuses_bad_input_clearly(runtime, world_orgs):
    runner = CliRunner()
    bad = runner.invoke(cli, ["user", "add", "not-an-email", "--role", "boss", "--password-stdin"], input="short\n")
    assert bad.exit_code == 1
    assert "email" in bad.output and "role" in bad.output and "password" in bad.output
    orphan = runner.invoke(cli, ["user", "add", "p@x.example", "--role", "partner", "--password-stdin"],
                           input="a-long-password\n")
    assert orphan.exit_code == 1 and "organisation" in orphan.output
    assert runner.invoke(cli, ["token", "create", "nobody@x.example"]).exit_code == 1


@pytest.fixture
def world_orgs(runtime):
    from commonwatch.constituency import services as registry

    with runtime.session("test") as s:
        return registry.create_org(s, {"name": "CLI Org", "kind": "other"}).id


def test_console_script_init_and_demo(tmp_path):
    env = {"COMMONWATCH_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    exe = [sys.executable, "-m", "commonwatch.cli"]
    init = subprocess.run([*exe, "init"], env=env, capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "data" / "commonwatch.db").exists()
    demo = subprocess.run([*exe, "demo"], env=env, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr
    assert "coordinator@centre.example" in demo.stderr and "demo-password" in demo.stderr
    again = subprocess.run([*exe, "demo"], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    verify = subprocess.run([*exe, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and "intact" in verify.stdout


def test_audit_list_filters_the_log_newest_first(runtime, world_orgs):
    runner = CliRunner()
    for email in ("one@x.example", "two@x.example"):
        added = runner.invoke(cli, ["user", "add", email, "--role", "constituent", "--org", str(world_orgs),
                                    "--password-stdin"], input="a-long-password\n")
        assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["audit", "list", "--entity", "users", "--limit", "5"])
    assert listed.exit_code == 0, listed.output
    header, *rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert header == ["seq", "at", "actor", "action", "entity", "id"]
    assert rows and all(r[4] == "users" for r in rows)
    seqs = [int(r[0]) for r in rows]
    assert seqs == sorted(seqs, reverse=True)
    assert rows[0][1].endswith("+08:00")  # the installation's zone (Asia/Shanghai by default)
    bad = runner.invoke(cli, ["audit", "list", "--since", "yesterday"])
    assert bad.exit_code == 1 and "--since" in bad.output
