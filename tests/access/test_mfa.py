"""Second factors through real HTTP: the per-role policy, TOTP enrolment and sign-in, replay,
recovery codes, the limit on wrong codes, and an administrator's reset (API, page, CLI)."""

import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from commonwatch.access.authsettings import AuthSettings
from commonwatch.access.mfa_models import RecoveryCode, TotpFactor
from commonwatch.access.models import AuditEntry, WebSession
from tests.conftest import PASSWORD, csrf_of

ROLES = ["admin", "coordinator"]


@pytest.fixture
def policy(app, tmp_path):
    app.state.auth_settings = AuthSettings(mfa_required_roles=ROLES, mfa_key_file=tmp_path / "mfa.key")
    return app.state.auth_settings


def _form_token(html: str) -> str:
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def password_step(client, email: str, password: str = PASSWORD):
    page = client.get("/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": _form_token(page.text),
                                       "next": "/incidents"}, follow_redirects=False)


def enrol_totp(client, clock) -> tuple[str, list[str]]:
    page = client.get("/mfa/enrol?next=/incidents")
    token = _form_token(page.text)
    started = client.post("/mfa/enrol/totp", data={"csrf_token": token, "next": "/incidents"})
    assert started.status_code == 200
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', started.text).group(1)
    assert "<svg" in started.text
    code = pyotp.TOTP(secret).at(clock.now())
    done = client.post("/mfa/enrol/totp/confirm", data={"csrf_token": token, "code": code, "next": "/incidents"})
    assert done.status_code == 200, done.text[:300]
    codes = re.findall(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", done.text)
    return secret, codes


def test_a_required_role_without_a_factor_is_sent_to_enrolment_and_can_do_nothing_else(
        app, client, world, policy, clock, tmp_path):
    resp = password_step(client, world.users["coordinator"])
    assert resp.status_code == 303 and resp.headers["location"] == "/mfa?next=/incidents"
    assert client.get("/mfa", follow_redirects=False).headers["location"].startswith("/mfa/enrol")
    # Half signed in: no page, no API call, no token.
    assert client.get("/incidents", follow_redirects=False).headers["location"].startswith("/login")
    assert client.get("/api/v1/me").status_code == 401
    token = _form_token(client.get("/mfa/enrol").text)
    assert client.post("/account/tokens", data={"csrf_token": token, "name": "x"},
                       follow_redirects=False).headers["location"].startswith("/login")

    wrong = client.post("/mfa/enrol/totp", data={"csrf_token": token})
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', wrong.text).group(1)
    bad = client.post("/mfa/enrol/totp/confirm", data={"csrf_token": token, "code": "000000"})
    assert bad.status_code == 422 and "not right" in bad.text
    good = client.post("/mfa/enrol/totp/confirm", data={"csrf_token": token, "code": pyotp.TOTP(secret).at(clock.now())})
    codes = re.findall(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", good.text)
    assert len(codes) == 10
    assert client.get("/incidents").status_code == 200
    assert client.get("/api/v1/me").json()["role"] == "coordinator"

    # The secret is stored encrypted, kept out of the audit log, and never shown again.
    with app.state.sessionmaker() as s:
        stored = s.scalar(select(TotpFactor.secret_enc))
        assert secret not in stored
        assert all(secret not in (e.after or "") + (e.before or "") for e in s.scalars(select(AuditEntry)))
        assert all(c not in str(s.scalars(select(RecoveryCode.code_hash)).all()) for c in codes)
    assert (tmp_path / "mfa.key").stat().st_mode & 0o077 == 0
    assert secret not in client.get("/mfa/enrol").text and secret not in client.get("/account/mfa").text


def test_totp_sign_in_refuses_a_replayed_code_and_accepts_the_next(client, world, policy, clock):
    password_step(client, world.users["coordinator"])
    secret, _codes = enrol_totp(client, clock)
    client.post("/logout", data={"csrf_token": csrf_of(client)})

    resp = password_step(client, world.users["coordinator"])
    assert resp.headers["location"] == "/mfa?next=/incidents"
    page = client.get("/mfa?next=/incidents")
    assert 'action="/mfa/totp"' in page.text
    token = _form_token(page.text)
    replay = client.post("/mfa/totp", data={"csrf_token": token, "code": pyotp.TOTP(secret).at(clock.now()),
                                            "next": "/incidents"}, follow_redirects=False)
    assert replay.status_code == 401 and "used already" in replay.text
    clock.advance(timedelta(seconds=30))
    ok = client.post("/mfa/totp", data={"csrf_token": token, "code": pyotp.TOTP(secret).at(clock.now()),
                                        "next": "/incidents"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/incidents"
    assert client.get("/incidents").status_code == 200


def test_codes_in_the_window_count_and_older_ones_do_not(client, world, policy, clock):
    password_step(client, world.users["coordinator"])
    secret, _codes = enrol_totp(client, clock)
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    clock.advance(timedelta(minutes=5))
    password_step(client, world.users["coordinator"])
    token = _form_token(client.get("/mfa").text)
    stale = pyotp.TOTP(secret).at(clock.now() - timedelta(seconds=90))
    assert client.post("/mfa/totp", data={"csrf_token": token, "code": stale}).status_code == 401
    previous = pyotp.TOTP(secret).at(clock.now() - timedelta(seconds=30))
    assert client.post("/mfa/totp", data={"csrf_token": token, "code": previous},
                       follow_redirects=False).status_code == 303


def test_a_recovery_code_signs_in_once(client, world, policy, clock):
    password_step(client, world.users["coordinator"])
    _secret, codes = enrol_totp(client, clock)
    for attempt in range(2):
        client.post("/logout", data={"csrf_token": csrf_of(client)})
        password_step(client, world.users["coordinator"])
        token = _form_token(client.get("/mfa").text)
        resp = client.post("/mfa/recovery", data={"csrf_token": token, "code": codes[0].upper(), "next": "/"},
                           follow_redirects=False)
        if attempt == 0:
            assert resp.status_code == 303
        else:
            assert resp.status_code == 401 and "used already" in resp.text


def test_too_many_wrong_codes_end_the_half_signed_in_session(app, client, world, policy, clock):
    password_step(client, world.users["coordinator"])
    enrol_totp(client, clock)
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    password_step(client, world.users["coordinator"])
    token = _form_token(client.get("/mfa").text)
    for _i in range(policy.mfa_max_failures - 1):
        assert client.post("/mfa/totp", data={"csrf_token": token, "code": "123456"}).status_code == 401
    last = client.post("/mfa/totp", data={"csrf_token": token, "code": "123456"}, follow_redirects=False)
    assert last.status_code == 303 and last.headers["location"] == "/login"
    assert client.get("/mfa", follow_redirects=False).headers["location"].startswith("/login")


def test_a_half_signed_in_session_expires(client, world, policy, clock):
    password_step(client, world.users["coordinator"])
    clock.advance(timedelta(minutes=policy.mfa_pending_minutes + 1))
    assert client.get("/mfa/enrol", follow_redirects=False).headers["location"].startswith("/login")


def test_a_role_outside_the_policy_signs_in_with_a_password_and_tokens_are_unaffected(client, world, policy):
    resp = password_step(client, world.users["analyst"])
    assert resp.status_code == 303 and resp.headers["location"] == "/incidents"
    assert client.get("/api/v1/me", headers=world.auth("coordinator")).json()["role"] == "coordinator"


def test_the_csrf_token_is_checked_on_second_factor_forms(client, world, policy):
    password_step(client, world.users["coordinator"])
    assert client.post("/mfa/enrol/totp", data={"csrf_token": "forged"}).status_code == 403


def test_an_admin_resets_a_lost_factor_by_api_page_and_cli(app, client, anon, world, policy, clock, tmp_path,
                                                           sqlite_url):
    password_step(client, world.users["coordinator"])
    enrol_totp(client, clock)
    uid = world.ids["user_coordinator"]
    status = anon.get(f"/api/v1/users/{uid}/mfa", headers=world.auth("auditor")).json()
    assert status == {"user_id": uid, "totp": True, "security_keys": 0, "recovery_codes_left": 10, "required": True}
    assert anon.delete(f"/api/v1/users/{uid}/mfa", headers=world.auth("coordinator")).status_code == 403
    reset = anon.delete(f"/api/v1/users/{uid}/mfa", headers=world.auth("admin"))
    assert reset.json()["totp"] is False and reset.json()["recovery_codes_left"] == 0
    # The coordinator's sessions ended; the next sign-in enrols again.
    assert client.get("/incidents", follow_redirects=False).status_code == 303
    assert password_step(client, world.users["coordinator"]).headers["location"].startswith("/mfa")
    assert client.get("/mfa", follow_redirects=False).headers["location"].startswith("/mfa/enrol")
    with app.state.sessionmaker() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "mfa.reset")).one()
        assert entry.entity_id == str(uid) and entry.actor.startswith(f"user:{world.ids['user_admin']}")
        assert s.scalar(select(WebSession.id).where(WebSession.user_id == uid, WebSession.mfa_stage.is_(None))) is None

    # The page: an admin outside the policy here, so a password signs them in.
    app.state.auth_settings = AuthSettings(mfa_required_roles=["coordinator"], mfa_key_file=tmp_path / "mfa.key")
    enrol_totp(client, clock)
    password_step(anon, world.users["admin"])
    page = anon.get(f"/admin/users/{uid}")
    assert 'id="mfa-reset"' in page.text
    done = anon.post(f"/admin/users/{uid}/mfa/reset", data={"csrf_token": _form_token(page.text)},
                     follow_redirects=False)
    assert done.status_code == 303
    assert anon.get(f"/api/v1/users/{uid}/mfa", headers=world.auth("admin")).json()["totp"] is False

    # The CLI.
    from commonwatch.cli import app as cli
    from commonwatch.config import Settings
    from commonwatch.runtime import Runtime, set_runtime

    password_step(client, world.users["coordinator"])
    enrol_totp(client, clock)
    set_runtime(Runtime(Settings(data_dir=tmp_path, database_url=sqlite_url), clock))
    try:
        runner = CliRunner()
        assert "totp yes" in runner.invoke(cli, ["user", "mfa-status", world.users["coordinator"]]).stdout
        out = runner.invoke(cli, ["user", "mfa-reset", world.users["coordinator"]])
        assert out.exit_code == 0 and "10 recovery codes removed" in out.output
        assert "totp no" in runner.invoke(cli, ["user", "mfa-status", world.users["coordinator"]]).stdout
        assert runner.invoke(cli, ["user", "mfa-reset", "nobody@x.example"]).exit_code == 1
    finally:
        set_runtime(None)
    with app.state.sessionmaker() as s:
        assert len(s.scalars(select(AuditEntry).where(AuditEntry.action == "mfa.reset")).all()) == 3


def test_security_key_routes_answer_bad_input_with_a_clear_4xx(client, world, policy):
    password_step(client, world.users["coordinator"])
    csrf = {"X-CSRF-Token": _form_token(client.get("/mfa/enrol").text)}
    no_ceremony = client.post("/mfa/webauthn/register", json={"credential": {"id": "x"}}, headers=csrf)
    assert no_ceremony.status_code == 400 and "no security key ceremony" in no_ceremony.json()["error"]
    options = client.post("/mfa/webauthn/register/options", headers=csrf).json()
    assert options["rp"]["id"] == "127.0.0.1" and options["user"]["name"] == world.users["coordinator"]
    garbage = client.post("/mfa/webauthn/register", json={"credential": {"id": "x", "response": {}}}, headers=csrf)
    assert garbage.status_code == 400 and "not accepted" in garbage.json()["error"]
    # Half signed in to enrol, not to verify: the sign-in ceremony is refused.
    assert client.post("/mfa/webauthn/options", headers=csrf).status_code == 409
    assert client.post("/mfa/webauthn/register/options").status_code == 403  # no CSRF token


def test_the_factor_pages_end_an_idle_full_session_like_every_other_page(client, world, policy, clock, settings):
    password_step(client, world.users["analyst"])
    assert client.get("/account/mfa").status_code == 200
    clock.advance(timedelta(minutes=settings.session_idle_minutes + 1))
    assert client.get("/account/mfa", follow_redirects=False).headers["location"].startswith("/login")
