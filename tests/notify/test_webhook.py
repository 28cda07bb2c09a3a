"""Webhooks against a real HTTP receiver on loopback that checks the HMAC signature."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from commonwatch.errors import Invalid
from commonwatch.notify import policies
from commonwatch.notify.models import Delivery, Policy
from commonwatch.notify.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, verify_signature
from commonwatch.outbound import check as check_destination
from tests.notify.conftest import event_row, insert_events


class Receiver:
    def __init__(self):
        self.secret = ""
        self.mode = "ok"
        self.received: list[dict] = []
        self.rejected = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.mode == "hang":
                    time.sleep(3)  # longer than the sender waits; then it gives up without processing
                    self.send_response(504)
                    self.end_headers()
                    return
                if receiver.mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"database is down")
                    return
                if not verify_signature(receiver.secret, self.headers.get(SIGNATURE_HEADER, ""), body):
                    receiver.rejected += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.received.append({"delivery": self.headers[DELIVERY_HEADER], "body": json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/commonwatch"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _setup(nenv, receiver) -> None:
    nenv.settings.outbound_allowlist = [receiver.url.rsplit("/", 1)[0] + "/"]
    with nenv.session() as s:
        _policy, secret = policies.save_policy(
            s, nenv.world.org_a, {"channel": "webhook", "webhook_url": receiver.url, "cadence": "immediate"},
            allowlist=nenv.settings.outbound_allowlist, keyring=nenv.centre)
        stored = s.scalar(select(Policy.webhook_secret).where(Policy.org_id == nenv.world.org_a))
    assert secret and secret not in stored and stored.startswith("pgp:-----BEGIN PGP MESSAGE-----")
    receiver.secret = secret


def _delivery(nenv) -> Delivery:
    with nenv.session() as s:
        return s.scalars(select(Delivery).where(Delivery.channel == "webhook")).one()


def test_signed_json_reaches_the_receiver_once(nenv, receiver, sink):
    _setup(nenv, receiver)
    now = nenv.clock.now()
    rows = [event_row(nenv.world.org_a, at=now, ip=f"198.51.100.{i}", extra={"n": i}) for i in (1, 2)]
    with nenv.session() as s:
        insert_events(s, rows)
    assert nenv.notifier().run().sent == 1
    (got,) = receiver.received
    body = got["body"]
    assert got["delivery"] == str(_delivery(nenv).id) and body["organisation"]["name"] == "Alpha Telecom"
    assert {e["event.key"] for e in body["events"]} == {r["event_key"] for r in rows}
    assert body["events"][0]["extra"] == {"n": 1} and body["summary"][0]["type"] == "infected-system"
    assert not sink.messages  # the policy says webhook only
    assert nenv.notifier().run().sent == 0 and len(receiver.received) == 1


def test_a_wrong_secret_is_refused_by_the_receiver(nenv, receiver):
    _setup(nenv, receiver)
    receiver.secret = "not-the-secret"
    with nenv.session() as s:
        insert_events(s, [event_row(nenv.world.org_a, at=nenv.clock.now())])
    assert nenv.notifier().run().dead == 1
    assert receiver.rejected == 1 and _delivery(nenv).last_error.startswith("HTTP 401")


def test_server_errors_and_hangs_are_retried_with_the_reason(nenv, receiver):
    _setup(nenv, receiver)
    with nenv.session() as s:
        insert_events(s, [event_row(nenv.world.org_a, at=nenv.clock.now())])
    receiver.mode = "error"
    assert nenv.notifier().run().retry == 1
    assert _delivery(nenv).last_error == "HTTP 500: database is down"
    receiver.mode = "hang"
    nenv.clock.advance(timedelta(seconds=61))
    assert nenv.notifier().run().retry == 1
    assert _delivery(nenv).last_error == "no answer within 1 s"
    receiver.mode = "ok"
    nenv.clock.advance(timedelta(seconds=301))
    assert nenv.notifier().run().sent == 1
    d = _delivery(nenv)
    assert d.attempts == 3 and len(receiver.received) == 1


def test_destinations_outside_the_allowlist_are_refused_and_held(nenv, receiver):
    allow = ["https://hooks.example/"]
    for bad in ("https://hooks.example.evil.test/x", "ftp://hooks.example/x", "https://user:pw@hooks.example/x",
                "http://hooks.example/x"):
        with pytest.raises(Invalid):
            check_destination(bad, allow)
    assert check_destination("https://hooks.example/cert?x=1", allow)
    _setup(nenv, receiver)
    nenv.settings.outbound_allowlist = ["https://elsewhere.example/"]
    with nenv.session() as s:
        insert_events(s, [event_row(nenv.world.org_a, at=nenv.clock.now())])
    assert nenv.notifier().run().held == 1
    assert "not in the outbound allowlist" in _delivery(nenv).last_error and not receiver.received
