"""Sign-in limits behind a reverse proxy (issue 15, item 3): limits per account and per client
address, the client address from forwarding headers only when the peer is a trusted proxy, 429
with Retry-After, and an admin clearing a lock."""

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from commonwatch.access.models import AuditEntry
from commonwatch.access.signin_limits import client_address, forwarded_chain
from commonwatch.config import Settings
from tests.conftest import PASSWORD, csrf_of, sign_in
from tests.e2e.conftest import LiveServer


@pytest.fixture
def settings(tmp_path, sqlite_url) -> Settings:
    # The test client connects from 127.0.0.1: here that is the reverse proxy.
    return Settings(data_dir=tmp_path / "data", database_url=sqlite_url, log_format="text",
                    trusted_proxies=["127.0.0.1/32", "::1"])


@pytest.fixture
def live(app, world):
    server = LiveServer(app)
    # As `commonwatch serve` runs it: uvicorn's own proxy-header handling off, commonwatch decides.
    server.server.config.proxy_headers = False
    url = server.start()
    yield url
    server.stop()


def _attempt(client: httpx.Client, email: str, password: str, forwarded_for: str | None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    page = client.get("/login", headers=headers)
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       headers=headers, follow_redirects=False)


def test_behind_a_trusted_proxy_one_attackers_failures_do_not_lock_out_other_users(live, world, settings):
    victim = world.users["b"]
    with httpx.Client(base_url=live) as attacker:
        for i in range(settings.login_max_failures_per_ip):
            email = victim if i < settings.login_max_failures else f"guess{i}@test.example"
            assert _attempt(attacker, email, "wrong-password!", "203.0.113.9").status_code == 401
        refused = _attempt(attacker, world.users["a"], PASSWORD, "203.0.113.9")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == 15 * 60
    # The same proxy, other clients: neither the victim's account nor anyone else is locked out.
    for who, address in (("b", "198.51.100.7"), ("a", "198.51.100.8")):
        with httpx.Client(base_url=live) as person:
            ok = _attempt(person, world.users[who], PASSWORD, f"{address}, 127.0.0.1")
            assert ok.status_code == 303, ok.text[:300]


def test_forwarding_headers_from_an_untrusted_peer_are_ignored(app, live, world, settings):
    app.state.settings = settings.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]})
    with httpx.Client(base_url=live) as attacker:
        for i in range(settings.login_max_failures):  # a new "address" each time does not help
            assert _attempt(attacker, world.users["b"], "wrong-password!", f"192.0.2.{i + 1}").status_code == 401
        locked = _attempt(attacker, world.users["b"], PASSWORD, "192.0.2.200")
        assert locked.status_code == 429 and "Retry-After" in locked.headers
    with app.state.sessionmaker() as s:
        actors = s.scalars(select(AuditEntry.actor).where(AuditEntry.action == "signin.failed")).all()
    assert actors and set(actors) == {"anonymous 127.0.0.1"}


def test_retry_after_counts_down_with_the_window(app, anon, world, settings, clock):
    for _ in range(settings.login_max_failures):
        _attempt(anon, world.users["b"], "wrong-password!", None)
    clock.advance(timedelta(minutes=5))
    resp = _attempt(anon, world.users["b"], PASSWORD, None)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == str(10 * 60)
    assert "10 minutes" in resp.text


def test_an_admin_clears_a_lock_through_the_api_and_it_is_audited(app, anon, client, world, settings):
    for _ in range(settings.login_max_failures):
        _attempt(anon, world.users["b"], "wrong-password!", None)
    assert _attempt(anon, world.users["b"], PASSWORD, None).status_code == 429
    locks = client.get("/api/v1/signin-locks", headers=world.auth("admin")).json()
    assert [(lk["kind"], lk["email"]) for lk in locks] == [("account_from_address", world.users["b"])]
    assert client.get("/api/v1/signin-locks", headers=world.auth("coordinator")).status_code == 403
    assert client.post("/api/v1/signin-locks/clear", json={}, headers=world.auth("admin")).status_code == 422
    cleared = client.post("/api/v1/signin-locks/clear", json={"email": world.users["b"]}, headers=world.auth("admin"))
    assert cleared.status_code == 200 and cleared.json() == {"cleared": settings.login_max_failures}
    assert _attempt(anon, world.users["b"], PASSWORD, None).status_code == 303
    with app.state.sessionmaker() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "signin.unlock"))
    assert entry.actor.endswith(world.users["admin"]) or "admin" in entry.actor


def test_an_admin_clears_a_lock_on_the_page(anon, client, world, settings):
    for _ in range(settings.login_max_failures):
        _attempt(anon, world.users["b"], "wrong-password!", None)
    sign_in(client, world.users["admin"])
    page = client.get("/admin/signin-locks")
    assert page.status_code == 200 and world.users["b"] in page.text
    csrf = csrf_of(client, "/admin/signin-locks")
    resp = client.post("/admin/signin-locks/clear", data={"email": world.users["b"], "ip": "testclient",
                                                         "csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 303
    assert world.users["b"] not in client.get("/admin/signin-locks").text
    assert _attempt(anon, world.users["b"], PASSWORD, None).status_code == 303


def test_cli_lists_and_clears_locks(app, anon, world, settings, clock):
    from commonwatch.cli import app as cli
    from commonwatch.runtime import Runtime, set_runtime

    for _ in range(settings.login_max_failures):
        _attempt(anon, world.users["b"], "wrong-password!", None)
    set_runtime(Runtime(settings, clock))
    try:
        listed = CliRunner().invoke(cli, ["signin", "locks"])
        assert listed.exit_code == 0 and world.users["b"] in listed.output
        out = CliRunner().invoke(cli, ["signin", "unlock", "--ip", "testclient"])
        assert out.exit_code == 0, out.output
        assert CliRunner().invoke(cli, ["signin", "locks"]).output.strip() == ""
        assert CliRunner().invoke(cli, ["signin", "unlock"]).exit_code != 0
    finally:
        set_runtime(None)


@pytest.mark.parametrize(("peer", "headers", "expected"), [
    ("10.0.0.5", {"x-forwarded-for": "198.51.100.7"}, "198.51.100.7"),
    ("10.0.0.5", {"x-forwarded-for": "1.2.3.4, 198.51.100.7, 10.0.0.9"}, "198.51.100.7"),  # spoofed left part
    ("10.0.0.5", {"forwarded": 'for="[2001:db8:cafe::17]:4711";proto=https'}, "2001:db8:cafe::17"),
    ("10.0.0.5", {"forwarded": "for=192.0.2.60, for=10.0.0.7", "x-forwarded-for": "6.6.6.6"}, "192.0.2.60"),
    ("10.0.0.5", {"x-forwarded-for": "garbage, 10.0.0.8"}, "10.0.0.8"),
    ("10.0.0.5", {}, "10.0.0.5"),
    ("192.0.2.1", {"x-forwarded-for": "198.51.100.7"}, "192.0.2.1"),  # not a trusted proxy
])
def test_client_address(peer, headers, expected):
    assert client_address(peer, headers, ["10.0.0.0/8"]) == expected


def test_forwarded_chain_reads_every_element():
    assert forwarded_chain({"forwarded": "for=unknown, for=192.0.2.1:80"}) == [None, "192.0.2.1"]


def test_a_malformed_trusted_proxy_stops_the_settings():
    with pytest.raises(ValueError, match="trusted_proxies"):
        Settings(trusted_proxies=["10.0.0.0/33"])
