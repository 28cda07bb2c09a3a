"""/metrics needs a token or a loopback peer; cookies are Secure and HSTS is sent when the public
URL is https (issue 15, item 6)."""

import httpx
import pytest
from fastapi.testclient import TestClient

from commonwatch.app import create_app
from commonwatch.config import Settings
from tests.conftest import PASSWORD
from tests.e2e.conftest import LiveServer


def _app(tmp_path, sqlite_url, engine, clock, **kw):
    settings = Settings(data_dir=tmp_path / "data", database_url=sqlite_url, log_format="text", **kw)
    return create_app(settings, clock=clock, engine=engine)


def test_metrics_with_a_token_refuses_without_it_and_answers_with_it(tmp_path, sqlite_url, engine, clock):
    app = _app(tmp_path, sqlite_url, engine, clock, metrics_token="m" * 32)
    with TestClient(app) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = c.get("/metrics", headers={"Authorization": "Bearer " + "m" * 32})
        assert ok.status_code == 200 and "commonwatch_build_info" in ok.text


def test_metrics_without_a_token_answer_only_to_loopback(tmp_path, sqlite_url, engine, clock):
    app = _app(tmp_path, sqlite_url, engine, clock)
    with TestClient(app, client=("192.0.2.10", 5555)) as c:
        assert c.get("/metrics").status_code == 403
    server = LiveServer(app)
    server.server.config.proxy_headers = False
    url = server.start()
    try:
        ok = httpx.get(f"{url}/metrics")
        assert ok.status_code == 200 and "commonwatch_build_info" in ok.text
        # The same loopback peer, named a trusted proxy: its requests come from anywhere.
        app.state.settings = app.state.settings.model_copy(update={"trusted_proxies": ["127.0.0.1"]})
        assert httpx.get(f"{url}/metrics").status_code == 403
    finally:
        server.stop()


def _sign_in(c, email):
    page = c.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return page, c.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token},
                        follow_redirects=False)


@pytest.mark.parametrize("public", ["https://cert.example", "http://127.0.0.1:8000"])
def test_cookies_are_secure_and_hsts_is_sent_when_the_public_url_is_https(tmp_path, sqlite_url, engine, clock,
                                                                          public):
    from commonwatch.db import session_scope
    from tests.conftest import build_world

    app = _app(tmp_path, sqlite_url, engine, clock, base_url=public)
    with session_scope(app.state.sessionmaker, actor="test") as s:
        world = build_world(s, clock)
    https = public.startswith("https")
    with TestClient(app, base_url="https://testserver" if https else "http://testserver") as c:
        page, resp = _sign_in(c, world.users["a"])
        assert resp.status_code == 303
        cookies = page.headers.get_list("set-cookie") + resp.headers.get_list("set-cookie")
        named: dict[str, str] = {}
        for h in cookies:  # the first Set-Cookie of each name (the login form's cookie is later deleted)
            named.setdefault(h.split("=", 1)[0], h)
        assert {"cw_session", "cw_login_csrf"} <= named.keys()
        for name in ("cw_session", "cw_login_csrf", "cw_lang"):
            assert ("; secure" in named[name].lower()) is https, named[name]
        # A one-time message set by any page's redirect is Secure too (sign-out sets one).
        csrf = c.get("/").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        flash = [h for h in c.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
                 .headers.get_list("set-cookie") if h.startswith("cw_flash=")]
        assert flash and all(("; secure" in h.lower()) is https for h in flash), flash
        hsts = c.get("/healthz").headers.get("strict-transport-security")
        assert (hsts == "max-age=31536000; includeSubDomains") if https else hsts is None
