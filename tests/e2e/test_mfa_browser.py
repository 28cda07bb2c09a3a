"""In a real browser: a coordinator (whose role requires a second factor) signs in with a
password, is sent to enrolment, sets up an authenticator app from the page's key, keeps the
recovery codes, and later signs in with password + TOTP code."""

import re
from datetime import timedelta

import pyotp
import pytest

from commonwatch.access.authsettings import AuthSettings
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.in_process_server]  # it changes app.state or the clock


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


def _virtual_authenticator(page):
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "usb", "hasResidentKey": False, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp


def test_security_key_registration_sign_in_and_the_sign_counter(page, live_url, world, app, tmp_path):
    from sqlalchemy import select, update

    from commonwatch.access.mfa_models import WebAuthnCredential

    # WebAuthn wants a domain as the relying party id, so the browser uses localhost.
    url = live_url.replace("127.0.0.1", "localhost")
    app.state.auth_settings = AuthSettings(mfa_required_roles=["admin", "coordinator"],
                                           mfa_key_file=tmp_path / "mfa.key", webauthn_rp_id="localhost",
                                           webauthn_origin=url)
    _virtual_authenticator(page)
    _password(page, url, world.users["coordinator"])
    page.wait_for_url(re.compile(r"/mfa/enrol\?next="))
    page.fill("#key-name", "desk key")
    page.click("#webauthn-register")
    page.wait_for_selector("#recovery-codes li")
    assert page.locator("#recovery-codes li").count() == 10
    page.click("#continue")
    page.wait_for_url(f"{url}/incidents")
    with app.state.sessionmaker() as s:
        key = s.scalars(select(WebAuthnCredential)).one()
        assert key.name == "desk key" and key.user_id == world.ids["user_coordinator"]
        first_count = key.sign_count
    page.goto(f"{url}/account/mfa")
    assert "desk key" in page.locator("#security-keys").inner_text()

    page.context.clear_cookies()
    _password(page, url, world.users["coordinator"])
    page.wait_for_url(re.compile(r"/mfa\?next="))
    assert page.locator("#totp-form").count() == 0
    page.click("#webauthn-signin")
    page.wait_for_url(f"{url}/incidents")
    with app.state.sessionmaker() as s:
        used = s.scalars(select(WebAuthnCredential)).one()
        assert used.sign_count > first_count and used.last_used_at is not None

    # A counter that does not grow (a cloned key) is refused.
    with app.state.sessionmaker() as s:
        s.execute(update(WebAuthnCredential).values(sign_count=10**9))
        s.commit()
    page.context.clear_cookies()
    _password(page, url, world.users["coordinator"])
    page.wait_for_url(re.compile(r"/mfa\?next="))
    page.click("#webauthn-signin")
    page.wait_for_selector("#webauthn-error:not([hidden])")
    assert "counter" in page.locator("#webauthn-error").inner_text()
    page.goto(f"{url}/incidents")
    assert "/login" in page.url
