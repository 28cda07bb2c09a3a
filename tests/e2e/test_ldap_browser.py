"""In a real browser: the directory sign-in form against a slapd the test starts; an analyst
(no second factor required) lands on the page asked for."""

import pytest

from commonwatch.access.authsettings import AuthSettings
from tests.access.slapd import SUFFIX, Slapd, slapd_binary
from tests.conftest import require_service

pytestmark = [pytest.mark.browser, pytest.mark.in_process_server]  # it changes app.state or the clock


@pytest.fixture
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


def test_ldap_sign_in_in_a_browser(page, live_url, world, app, slapd, tmp_path):
    app.state.auth_settings = AuthSettings(
        mfa_required_roles=["admin", "coordinator"], mfa_key_file=tmp_path / "mfa.key", ldap_url=slapd.url,
        ldap_user_dn_template=f"uid={{username}},ou=people,{SUFFIX}", ldap_group_base_dn=f"ou=groups,{SUFFIX}",
        ldap_label="CERT directory")
    page.goto(f"{live_url}/login?next=/incidents")
    page.click("#sign-on-ldap")
    page.fill("#username", "lin")
    page.fill("#password", "wrong-password")
    page.click("main form button[type=submit]")
    assert "Wrong username or password." in page.locator(".alert").inner_text()
    page.fill("#password", "lin-password-1")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_url}/incidents")
    page.goto(f"{live_url}/account")
    assert "lin@dir.example" in page.locator("main").inner_text()
