"""In a real browser: a coordinator (whose role requires a second factor) signs in with a
password, is sent to enrolment, sets up an authenticator app from the page's key, keeps the
recovery codes, and later signs in with password + TOTP code."""

import re
from datetime import timedelta

import pyotp
import pytest

from commonwatch.access.authsettings import AuthSettings
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _password(page, url, email):
    page.goto(f"{url}/login?next=/incidents")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def test_password_then_totp_enrolment_and_sign_in(page, live_url, world, app, clock, tmp_path):
    app.state.auth_settings = AuthSettings(mfa_required_roles=["admin", "coordinator"],
                                           mfa_key_file=tmp_path / "mfa.key")
    _password(page, live_url, world.users["coordinator"])
    page.wait_for_url(re.compile(r"/mfa/enrol\?next="))
    # Half signed in: any other page sends the browser back to the sign-in form.
    page.goto(f"{live_url}/incidents")
    assert "/login" in page.url
    page.goto(f"{live_url}/mfa/enrol?next=/incidents")
    page.click("#totp-start")
    secret = page.locator("#totp-secret").inner_text()
    assert page.locator(".qr svg").count() == 1
    page.fill("#code", pyotp.TOTP(secret).at(clock.now()))
    page.click("main form button[type=submit]")
    assert page.locator("#recovery-codes li").count() == 10
    page.click("#continue")
    page.wait_for_url(f"{live_url}/incidents")

    page.context.clear_cookies()
    clock.advance(timedelta(seconds=30))
    _password(page, live_url, world.users["coordinator"])
    page.wait_for_url(re.compile(r"/mfa\?next="))
    page.fill("#code", "000000")
    page.click("#totp-form button[type=submit]")
    assert "not right" in page.locator("#mfa-error").inner_text()
    page.fill("#code", pyotp.TOTP(secret).at(clock.now()))
    page.click("#totp-form button[type=submit]")
    page.wait_for_url(f"{live_url}/incidents")
    assert page.locator("h1").count() >= 1 and "/login" not in page.url
