"""LDAP sign-in against a real slapd started by the test (tests/access/slapd.py): bind as the
person (by DN template, or search then bind), groups mapped to roles, the second-factor policy,
rate limiting, and a directory that is down."""

import pytest
from sqlalchemy import select

from commonwatch.access import directory
from commonwatch.access.authsettings import AuthSettings
from commonwatch.access.models import AuditEntry, User
from tests.access.slapd import ROOT_DN, ROOT_PW, SUFFIX, Slapd, slapd_binary
from tests.conftest import require_service


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    binary = slapd_binary()
    if binary is None:
        require_service("slapd", "no slapd binary (apt-get install slapd ldap-utils)")
    server = Slapd(tmp_path_factory.mktemp("slapd"), binary).start()
    try:
        server.seed()
        yield server
    finally:
        server.stop()


def _auth(slapd, tmp_path, **extra) -> AuthSettings:
    values = {"mfa_required_roles": ["admin", "coordinator"], "mfa_key_file": tmp_path / "mfa.key",
              "ldap_url": slapd.url, "ldap_user_dn_template": f"uid={{username}},ou=people,{SUFFIX}",
              "ldap_group_base_dn": f"ou=groups,{SUFFIX}", "ldap_label": "CERT directory", **extra}
    return AuthSettings(**values)


def _form(client):
    page = client.get("/login/ldap?next=/incidents")
    assert page.status_code == 200
    return page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def ldap_sign_in(client, username, password):
    token = _form(client)
    return client.post("/login/ldap", data={"username": username, "password": password, "csrf_token": token,
                                            "next": "/incidents"}, follow_redirects=False)


def test_bind_as_the_person_and_read_groups(slapd, tmp_path):
    auth = _auth(slapd, tmp_path)
    found = directory.authenticate(auth, "lin", "lin-password-1")
    assert found.email == "lin@dir.example" and found.name == "Lin Wei" and "commonwatch-analysts" in found.groups
    assert directory.authenticate(auth, "lin", "wrong") is None
    assert directory.authenticate(auth, "lin", "") is None  # never an anonymous bind
    assert directory.authenticate(auth, "nobody", "x-password") is None
    # A name that tries to change the DN or the filter is escaped.
    assert directory.authenticate(auth, "lin,ou=people", "lin-password-1") is None


def test_search_then_bind_with_a_service_account(slapd, tmp_path):
    auth = _auth(slapd, tmp_path, ldap_user_dn_template="", ldap_base_dn=SUFFIX, ldap_bind_dn=ROOT_DN,
                 ldap_bind_password=ROOT_PW, ldap_user_filter="(|(uid={username})(mail={username}))")
    assert directory.authenticate(auth, "zhao@dir.example", "zhao-password-1").dn.startswith("uid=zhao")
    assert directory.authenticate(auth, "*", "zhao-password-1") is None


def test_ldap_sign_in_provisions_the_user_with_the_mapped_role(app, client, world, slapd, tmp_path):
    app.state.auth_settings = _auth(slapd, tmp_path)
    assert "Sign in with CERT directory" in client.get("/login").text
    resp = ldap_sign_in(client, "lin", "lin-password-1")
    assert resp.status_code == 303 and resp.headers["location"] == "/incidents"
    me = client.get("/api/v1/me").json()
    assert me["email"] == "lin@dir.example" and me["role"] == "analyst"
    with app.state.sessionmaker() as s:
        assert s.scalar(select(User.password_hash).where(User.email == "lin@dir.example")) is None
        assert any('"method": "ldap"' in (e.after or "") for e in s.scalars(select(AuditEntry).where(
            AuditEntry.action == "signin")))


def test_an_ldap_coordinator_is_held_for_the_second_factor(app, client, world, slapd, tmp_path):
    app.state.auth_settings = _auth(slapd, tmp_path)
    resp = ldap_sign_in(client, "zhao", "zhao-password-1")
    assert resp.status_code == 303 and resp.headers["location"].startswith("/mfa?next=")
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/mfa", follow_redirects=False).headers["location"].startswith("/mfa/enrol")


def test_wrong_password_no_group_rate_limit_and_a_directory_that_is_down(app, client, world, slapd, tmp_path,
                                                                           settings):
    app.state.auth_settings = _auth(slapd, tmp_path)
    assert ldap_sign_in(client, "lin", "wrong-password").status_code == 401
    refused = ldap_sign_in(client, "nogroup", "nogroup-password-1")
    assert refused.status_code == 403 and "none of your groups" in refused.text
    for _i in range(settings.login_max_failures - 1):
        ldap_sign_in(client, "lin", "wrong-password")
    assert ldap_sign_in(client, "lin", "lin-password-1").status_code == 429
    app.state.auth_settings = _auth(slapd, tmp_path, ldap_url="ldap://127.0.0.1:9")
    down = ldap_sign_in(client, "zhao", "zhao-password-1")
    assert down.status_code == 503 and "Local accounts can still sign in" in down.text
