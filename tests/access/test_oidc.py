"""OpenID Connect sign-in against a real provider on loopback (tests/access/oidc_provider.py):
PKCE, state, nonce, the ID token's issuer, audience, expiry and signature, the mapping of groups
to roles and organisations, and local accounts beside it."""

from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from commonwatch.access.authsettings import AuthSettings
from commonwatch.access.models import AuditEntry, User
from commonwatch.access.sso import load_mapping
from commonwatch.config import Settings
from commonwatch.errors import Invalid
from tests.access.oidc_provider import Provider, signing_key
from tests.access.test_mfa import password_step


@pytest.fixture
def provider(clock):
    p = Provider(now=lambda: int(clock.now().timestamp())).start()
    yield p
    p.stop()


@pytest.fixture
def settings(tmp_path, sqlite_url, provider):
    return Settings(data_dir=tmp_path / "data", database_url=sqlite_url, timezone="Asia/Shanghai", log_format="text",
                    outbound_allowlist=[provider.url], base_url="http://testserver")


@pytest.fixture
def oidc_on(app, provider, tmp_path):
    app.state.auth_settings = AuthSettings(mfa_required_roles=["admin", "coordinator"],
                                           mfa_key_file=tmp_path / "mfa.key", oidc_issuer=provider.url,
                                           oidc_client_id="commonwatch", oidc_client_secret="s3cret",
                                           oidc_label="Example IdP")
    return app.state.auth_settings


def sso_sign_in(client, next_url="/incidents", *, state=None):
    start = client.get(f"/login/oidc?next={next_url}", follow_redirects=False)
    assert start.status_code == 303, start.text[:300]
    authorize = start.headers["location"]
    query = dict(p.split("=", 1) for p in urlsplit(authorize).query.split("&"))
    assert query["code_challenge_method"] == "S256" and query["nonce"] and query["state"]
    back = httpx.get(authorize, follow_redirects=False)
    assert back.status_code == 302, back.text
    target = urlsplit(back.headers["location"])
    assert target.path == "/login/oidc/callback"
    path = f"{target.path}?{target.query}"
    if state is not None:
        path = path.replace(f"state={query['state']}", f"state={state}")
    return client.get(path, follow_redirects=False)


def test_oidc_sign_in_creates_the_user_from_the_mapping_and_signs_in_again(app, client, world, oidc_on, provider):
    assert "Sign in with Example IdP" in client.get("/login").text
    resp = sso_sign_in(client)
    assert resp.status_code == 303 and resp.headers["location"] == "/incidents"
    me = client.get("/api/v1/me").json()
    assert me["email"] == "ana@idp.example" and me["role"] == "coordinator"
    # The provider's groups decide the role at every sign-in.
    client.cookies.clear()
    provider.person["groups"] = "staff commonwatch-analysts"
    assert sso_sign_in(client).status_code == 303
    assert client.get("/api/v1/me").json()["role"] == "analyst"
    with app.state.sessionmaker() as s:
        users = s.scalars(select(User).where(User.email == "ana@idp.example")).all()
        assert len(users) == 1 and users[0].password_hash is None
        signins = s.scalars(select(AuditEntry).where(AuditEntry.action == "signin")).all()
        assert len(signins) == 2 and all('"method": "oidc"' in e.after for e in signins)


def test_local_accounts_still_sign_in_beside_it(client, world, oidc_on):
    assert password_step(client, world.users["analyst"]).headers["location"] == "/incidents"


@pytest.mark.parametrize("tamper, reason", [
    ({"aud": "someone-else"}, "aud"),
    ({"iss": "http://127.0.0.1:9/"}, "iss"),
    ({"nonce": "replayed"}, "nonce"),
    ({"exp": 1}, "exp"),
])
def test_an_id_token_for_another_client_issuer_nonce_or_time_is_refused(client, world, oidc_on, provider, tamper,
                                                                         reason):
    provider.tamper = tamper
    resp = sso_sign_in(client)
    assert resp.status_code == 401 and "Single sign-on failed" in resp.text and reason in resp.text
    assert client.get("/api/v1/me").status_code == 401


def test_an_id_token_signed_with_another_key_is_refused(client, world, oidc_on, provider):
    provider.sign_with = signing_key("another")
    resp = sso_sign_in(client)
    assert resp.status_code == 401 and "signature" in resp.text


def test_a_state_that_does_not_match_is_refused(client, world, oidc_on):
    resp = sso_sign_in(client, state="forged")
    assert resp.status_code == 401 and "state does not match" in resp.text


def test_an_old_attempt_is_refused(client, world, oidc_on, clock):
    start = client.get("/login/oidc", follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False)
    clock.advance(timedelta(minutes=11))
    target = urlsplit(back.headers["location"])
    resp = client.get(f"{target.path}?{target.query}")
    assert resp.status_code == 401 and "older than 10 minutes" in resp.text


def test_a_provider_off_the_outbound_allowlist_is_not_contacted(app, client, world, oidc_on, tmp_path):
    app.state.auth_settings = oidc_on.model_copy(update={"oidc_issuer": "http://127.0.0.1:9"})
    resp = client.get("/login/oidc")
    assert resp.status_code == 502 and "not available" in resp.text


def test_no_group_for_a_role_or_an_unverified_email_of_a_local_account_is_refused(app, client, world, oidc_on,
                                                                                   provider):
    provider.person["groups"] = ["staff"]
    resp = sso_sign_in(client)
    assert resp.status_code == 403 and "none of your groups" in resp.text
    provider.person.update(groups=["commonwatch-admins"], email=world.users["analyst"], email_verified=False,
                           sub="u-2")
    resp = sso_sign_in(client)
    assert resp.status_code == 403 and "not verified" in resp.text
    with app.state.sessionmaker() as s:
        assert s.scalar(select(User.role).where(User.email == world.users["analyst"])) == "analyst"
        assert s.scalars(select(AuditEntry).where(AuditEntry.action == "signin.refused")).all()


def test_groups_map_to_organisations_from_a_mapping_file(app, client, world, oidc_on, provider, tmp_path):
    mapping = tmp_path / "map.yaml"
    mapping.write_text("roles:\n  - {group: alpha-noc, role: constituent}\n"
                       "organisations:\n  - {group: alpha-noc, organisation: Alpha Telecom}\n", encoding="utf-8")
    app.state.auth_settings = oidc_on.model_copy(update={"sso_mapping_file": mapping})
    provider.person["groups"] = ["alpha-noc"]
    assert sso_sign_in(client).status_code == 303
    me = client.get("/api/v1/me").json()
    assert me["role"] == "constituent" and world.org_a in me["org_ids"] and world.org_b not in me["org_ids"]


def test_a_mapping_file_with_a_bad_row_says_which(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("roles:\n  - {group: x, role: boss}\norganisations:\n  - {group: y}\n", encoding="utf-8")
    with pytest.raises(Invalid) as exc:
        load_mapping(bad)
    text = str(exc.value)
    assert "roles row 1" in text and "organisations row 1" in text
    assert load_mapping().role_for({"commonwatch-admins"}) == "admin"


def test_local_second_factor_can_be_required_for_oidc_too(app, client, world, oidc_on):
    app.state.auth_settings = oidc_on.model_copy(update={"oidc_local_mfa": True})
    resp = sso_sign_in(client)
    assert resp.headers["location"].startswith("/mfa?next=")
    assert client.get("/api/v1/me").status_code == 401


def test_the_sign_in_button_has_a_translated_default_label(app, client, world, oidc_on):
    app.state.auth_settings = oidc_on.model_copy(update={"oidc_label": ""})
    client.get("/lang/zh-CN")
    assert "使用单点登录登录" in client.get("/login").text
