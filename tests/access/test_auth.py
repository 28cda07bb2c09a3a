"""Sign-in, sessions, CSRF, rate limiting and API tokens, through real HTTP requests."""

from datetime import timedelta

from sqlalchemy import select

from commonwatch.access.models import ApiToken, LoginAttempt
from tests.conftest import PASSWORD, csrf_of, sign_in


def test_pages_need_a_sign_in_and_the_api_answers_401(anon):
    page = anon.get("/organisations", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=/organisations")
    api = anon.get("/api/v1/organisations")
    assert api.status_code == 401 and api.headers["www-authenticate"].startswith("Bearer")


def test_sign_in_sets_a_session_and_sign_out_ends_it(client, world):
    sign_in(client, world.users["coordinator"])
    assert client.get("/organisations").status_code == 200
    csrf = csrf_of(client)
    resp = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 303
    assert client.get("/organisations", follow_redirects=False).status_code == 303


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(anon, world):
    page = anon.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    for email in (world.users["a"], "nobody@test.example"):
        resp = anon.post("/login", data={"email": email, "password": "wrong-password!", "csrf_token": token})
        assert resp.status_code == 401 and "Wrong email or password." in resp.text


def test_login_form_needs_its_csrf_cookie(anon, world):
    resp = anon.post("/login", data={"email": world.users["a"], "password": PASSWORD, "csrf_token": "forged"})
    assert resp.status_code == 403


def test_sign_in_is_rate_limited(anon, world, settings):
    page = anon.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    for _ in range(settings.login_max_failures):
        anon.post("/login", data={"email": world.users["b"], "password": "nope-nope-nope", "csrf_token": token})
    # Even the right password is refused while the window lasts.
    resp = anon.post("/login", data={"email": world.users["b"], "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 429


def test_rate_limit_window_passes(app, anon, world, settings, clock):
    page = anon.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    for _ in range(settings.login_max_failures):
        anon.post("/login", data={"email": world.users["b"], "password": "nope-nope-nope", "csrf_token": token})
    clock.advance(timedelta(minutes=settings.login_window_minutes + 1))
    resp = anon.post("/login", data={"email": world.users["b"], "password": PASSWORD, "csrf_token": token},
                     follow_redirects=False)
    assert resp.status_code == 303
    with app.state.sessionmaker() as s:
        assert s.scalar(select(LoginAttempt).where(LoginAttempt.success.is_(True))) is not None


def test_forms_without_csrf_token_are_refused(client, world):
    sign_in(client, world.users["coordinator"])
    resp = client.post("/organisations", data={"name": "No CSRF", "kind": "other"})
    assert resp.status_code == 403
    resp = client.post("/organisations", data={"name": "Bad CSRF", "kind": "other", "csrf_token": "x" * 43})
    assert resp.status_code == 403
    ok = client.post("/organisations", data={"name": "With CSRF", "kind": "other", "csrf_token": csrf_of(client)},
                     follow_redirects=False)
    assert ok.status_code == 303


def test_session_expires_when_idle(client, world, clock, settings):
    sign_in(client, world.users["coordinator"])
    clock.advance(timedelta(minutes=settings.session_idle_minutes + 1))
    assert client.get("/organisations", follow_redirects=False).status_code == 303
    assert client.get("/api/v1/me").status_code == 401


def test_session_expires_after_its_lifetime_even_when_active(client, world, clock, settings):
    sign_in(client, world.users["coordinator"])
    steps = int(settings.session_hours * 60 / 30) + 1
    for _ in range(steps):
        clock.advance(timedelta(minutes=30))
        client.get("/account")
    assert client.get("/organisations", follow_redirects=False).status_code == 303


def test_token_is_shown_once_stored_hashed_and_revocable(app, anon, world):
    created = anon.post("/api/v1/tokens", json={"name": "script", "expires_days": 1}, headers=world.auth("a"))
    assert created.status_code == 201
    secret = created.json()["token"]
    with app.state.sessionmaker() as s:
        row = s.get(ApiToken, created.json()["id"])
        assert secret not in (row.token_hash, row.prefix) and row.token_hash != secret
    headers = {"Authorization": f"Bearer {secret}"}
    assert anon.get("/api/v1/me", headers=headers).json()["email"] == world.users["a"]
    assert "token" not in anon.get("/api/v1/tokens", headers=headers).json()[0]
    assert anon.delete(f"/api/v1/tokens/{created.json()['id']}", headers=headers).status_code == 204
    revoked = anon.get("/api/v1/me", headers=headers)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]


def test_token_expires(anon, world, clock):
    created = anon.post("/api/v1/tokens", json={"expires_days": 1}, headers=world.auth("a")).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert anon.get("/api/v1/me", headers=headers).status_code == 200
    clock.advance(timedelta(days=1, seconds=1))
    assert anon.get("/api/v1/me", headers=headers).status_code == 401


def test_malformed_authorization_is_401(anon):
    for value in ("Basic abc", "Bearer", "Bearer cw_notatoken", "Bearer something-else"):
        assert anon.get("/api/v1/me", headers={"Authorization": value}).status_code == 401


def test_bearer_requests_need_no_csrf(anon, world):
    resp = anon.post("/api/v1/organisations", json={"name": "Via token", "kind": "other"},
                     headers=world.auth("coordinator"))
    assert resp.status_code == 201


def test_cookie_authenticated_api_writes_need_the_csrf_header(client, world):
    sign_in(client, world.users["coordinator"])
    resp = client.post("/api/v1/organisations", json={"name": "Cookie no CSRF", "kind": "other"})
    assert resp.status_code == 403
    resp = client.post("/api/v1/organisations", json={"name": "Cookie CSRF", "kind": "other"},
                       headers={"X-CSRF-Token": csrf_of(client)})
    assert resp.status_code == 201


def test_changing_the_password_ends_sessions(client, world):
    sign_in(client, world.users["a"])
    resp = client.post("/account/password", data={"current": PASSWORD, "new": "another-long-password",
                                                   "csrf_token": csrf_of(client)}, follow_redirects=False)
    assert resp.status_code == 303
    assert client.get("/account", follow_redirects=False).status_code == 303
    sign_in(client, world.users["a"], "another-long-password")


def test_inactive_user_cannot_sign_in_or_use_tokens(client, anon, world):
    resp = anon.patch(f"/api/v1/users/{world.ids['user_a']}", json={"active": False}, headers=world.auth("admin"))
    assert resp.status_code == 200
    assert anon.get("/api/v1/me", headers=world.auth("a")).status_code == 401
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert client.post("/login", data={"email": world.users["a"], "password": PASSWORD,
                                       "csrf_token": token}).status_code == 401


def test_security_headers(anon):
    resp = anon.get("/login")
    assert "default-src 'self'" in resp.headers["content-security-policy"]
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["x-content-type-options"] == "nosniff"
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
