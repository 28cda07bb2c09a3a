"""Smaller parts: observation keys, the CLI for the centre's key, the server's job, the API log."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from typer.testing import CliRunner

from commonwatch.clock import FrozenClock
from commonwatch.db import session_scope
from commonwatch.notify.jobs import JOBS
from commonwatch.notify.keys import hash_strings, observation_keys
from commonwatch.runtime import Runtime, set_runtime
from tests.conftest import START
from tests.notify.conftest import event_row, insert_events


def _reference_hash(text: str) -> int:
    """The observation hash written out byte by byte, as documented in notify/keys.py."""
    base, mix, mask = 1_099_511_628_211, 0x9E3779B97F4A7C15, (1 << 64) - 1
    data = text.encode("utf-8")
    total = sum((b + 1) * pow(base, i, 1 << 64) for i, b in enumerate(data)) & mask
    return ((total ^ ((len(data) * mix) & mask)) * base) & mask


def test_observation_keys_are_stable_and_ignore_time_and_feed():
    frame = pl.DataFrame({
        "classification_type": ["infected-system", "infected-system", "infected-system", "scanner", None],
        "classification_identifier": ["mirai", "mirai", "mirai", None, None],
        "source_ip": ["198.51.100.7", "198.51.100.7", "198.51.100.8", "198.51.100.7", None],
        "source_port": [23, 23, 23, None, None], "source_fqdn": [None] * 5, "source_url": [None] * 5,
        "malware_name": ["mirai", "mirai", "mirai", None, None], "feed_name": ["a", "b", "a", "a", "a"],
    })
    keys = observation_keys(frame).to_list()
    assert keys[0] == keys[1] and len(set(keys)) == 4
    # Stored keys must never change between versions: the vectorised hash equals its definition.
    samples = ["", "a", "ab", "中文", "infected-system\x1fmirai\x1f198.51.100.7\x1f23", "x" * 300]
    assert hash_strings(pl.Series(samples)).tolist() == [_reference_hash(v) for v in samples]
    assert len(set(hash_strings(pl.Series([f"198.51.100.{i}" for i in range(256)])).tolist())) == 256


def test_cli_creates_and_shows_the_centre_key(settings, engine, tmp_path):
    from commonwatch.cli import app as cli

    settings.gnupg_home = tmp_path.parent / (tmp_path.name[:8] + "-g")
    set_runtime(Runtime(settings, FrozenClock(START)))
    try:
        runner = CliRunner()
        made = runner.invoke(cli, ["notify", "key", "init", "--email", "cert@centre.example"])
        assert made.exit_code == 0, made.output
        fingerprint = made.stdout.strip().splitlines()[-1]
        assert len(fingerprint) == 40
        again = runner.invoke(cli, ["notify", "key", "init"])
        assert again.exit_code == 0 and again.stdout.strip().splitlines()[-1] == fingerprint
        shown = runner.invoke(cli, ["notify", "key", "show"])
        assert "BEGIN PGP PUBLIC KEY BLOCK" in shown.stdout
        missing = runner.invoke(cli, ["notify", "key", "import", str(tmp_path / "nope.asc")])
        assert missing.exit_code != 0
        public = tmp_path / "public.asc"
        public.write_text(shown.stdout)
        refused = runner.invoke(cli, ["notify", "key", "import", str(public)])
        assert refused.exit_code == 1 and "private key block" in " ".join(refused.output.split())
    finally:
        from commonwatch.notify.pgp import Keyring

        Keyring(settings.gnupg_home).close()
        set_runtime(None)


def test_the_server_job_sends_what_is_due(app, world, clock):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, [event_row(world.org_a, at=clock.now() - timedelta(hours=1), severity="critical")])
    (job,) = [j for j in JOBS if j.name == "notify.run"]
    result = job.run(app.state)
    assert result["sent"] == 1 and result["warned"] == 1
    assert len(list((app.state.settings.data_dir / "notify" / "outbox").glob("*.eml"))) == 1


def test_api_log_resend_and_run(client, app, world, clock):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, [event_row(world.org_a, at=clock.now(), severity="high")])
    ran = client.post("/api/v1/notify/run", headers=world.auth("coordinator"))
    assert ran.status_code == 200 and ran.json()["sent"] == 1
    assert client.post("/api/v1/notify/run", headers=world.auth("analyst")).status_code == 403
    listing = client.get("/api/v1/notify/deliveries?status=sent", headers=world.auth("analyst")).json()
    (item,) = listing["items"]
    assert item["address"] == "noc@alpha.example" and item["signed"] is True and item["event_count"] == 1
    detail = client.get(f"/api/v1/notify/deliveries/{item['id']}", headers=world.auth("auditor")).json()
    assert [h["outcome"] for h in detail["history"]] == ["sent"]
    assert client.get("/api/v1/notify/deliveries", headers=world.auth("a")).status_code == 403
    resent = client.post(f"/api/v1/notify/deliveries/{item['id']}/resend", headers=world.auth("coordinator"))
    assert resent.status_code == 200
    again = client.post(f"/api/v1/notify/deliveries/{item['id']}/resend", headers=world.auth("coordinator"))
    assert again.status_code == 409
