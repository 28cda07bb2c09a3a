"""In a real browser: "Sign in with …" goes to an OpenID Connect provider on loopback and comes
back signed in with the role the provider's groups map to."""

import pytest

from commonwatch.access.authsettings import AuthSettings
from commonwatch.config import Settings
from tests.access.oidc_provider import Provider

pytestmark = [pytest.mark.browser, pytest.mark.in_process_server]  # it changes app.state or the clock


@pytest.fixture
def provider(clock):
    p = Provider(now=lambda: int(clock.now().timestamp())).start()
    yield p
    p.stop()


@pytest.fixture
def settings(tmp_path, sqlite_url, provider):
    return Settings(data_dir=tmp_path / "data", database_url=sqlite_url, timezone="Asia/Shanghai", log_format="text",
                    outbound_allowlist=[provider.url])


def test_oidc_sign_in_in_a_browser(page, live_url, world, app, provider, tmp_path):
    app.state.auth_settings = AuthSettings(
        mfa_required_roles=["admin", "coordinator"], mfa_key_file=tmp_path / "mfa.key", oidc_issuer=provider.url,
        oidc_client_id="commonwatch", oidc_client_secret="s3cret", oidc_label="Example IdP",
        oidc_redirect_uri=f"{live_url}/login/oidc/callback")
    page.goto(f"{live_url}/login?next=/incidents")
    page.click("#sign-on-oidc")
    page.wait_for_url(f"{live_url}/incidents")
    page.goto(f"{live_url}/account")
    assert "ana@idp.example" in page.locator("main").inner_text()
    assert "Coordinator" in page.locator("main").inner_text()
