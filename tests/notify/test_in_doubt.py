"""Deliveries a killed run left behind (issue 15, item 5): the outbox's record decides where there
is one; a message handed to an SMTP server stays held in doubt until someone resends it with one
click, and the resent message tells its recipient it may repeat an earlier one (en and zh-CN)."""

from __future__ import annotations

import email
from datetime import timedelta
from email.header import decode_header, make_header

from sqlalchemy import select, update

from commonwatch.access.principal import SYSTEM
from commonwatch.db import session_scope
from commonwatch.notify import services
from commonwatch.notify.config import NotifySettings
from commonwatch.notify.models import Delivery
from commonwatch.notify.runner import Notifier
from tests.conftest import sign_in
from tests.notify.conftest import event_row, insert_events
from tests.notify.helpers import entity_parts, signed_parts

EN = "This may repeat an earlier message"
ZH = "本消息可能与之前的一条消息重复"


def _killed_after_handoff(session, now) -> None:
    """What a run killed after handing the message over leaves: sending, handed off, lease run out."""
    session.execute(update(Delivery).values(status="sending", attempts=1, handoff_at=now - timedelta(minutes=20),
                                            lease_until=now - timedelta(minutes=1)))


def _text_and_subject(raw: bytes) -> tuple[str, str]:
    text, _files = entity_parts(signed_parts(raw)[0])
    return text, str(make_header(decode_header(email.message_from_bytes(raw)["Subject"])))


def test_an_smtp_delivery_in_doubt_is_held_then_resent_saying_it_may_repeat(nenv, sink):
    w, now = nenv.world, nenv.clock.now()
    with nenv.session() as s:
        insert_events(s, [event_row(w.org_a, at=now, severity="high")])
    assert nenv.notifier().run().sent == 1
    first_text, _first_subject = _text_and_subject(sink.messages[0].data)
    assert EN not in first_text and ZH not in first_text
    with nenv.session() as s:
        _killed_after_handoff(s, now)
    report = nenv.notifier().run()
    assert report.recovered == 1 and report.sent == 0 and len(sink.messages) == 1
    with nenv.session() as s:
        d = s.scalar(select(Delivery))
        assert d.status == "held" and services.in_doubt(d)
        d.language = "en"
        services.resend(s, SYSTEM, d.id, now)
    assert nenv.notifier().run().sent == 1 and len(sink.messages) == 2
    text, subject = _text_and_subject(sink.messages[1].data)
    assert EN in text and subject.startswith("[may repeat an earlier message] ")
    # A delivery resent for another reason (it was dead) says nothing of the kind.
    with nenv.session() as s:
        s.execute(update(Delivery).values(status="dead", history=[], reason=None))
        services.resend(s, SYSTEM, s.scalar(select(Delivery.id)), now)
    assert nenv.notifier().run().sent == 1
    assert EN not in _text_and_subject(sink.messages[2].data)[0] and len(sink.messages) == 3


def _outbox_run(app):
    state = app.state
    return Notifier(settings=state.settings, sessions=state.sessionmaker, clock=state.clock, env=state.jinja,
                    nset=NotifySettings()).run()


def test_the_outbox_record_settles_a_delivery_a_killed_run_left(app, world, clock):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, [event_row(world.org_a, at=clock.now(), severity="high")])
    assert _outbox_run(app).sent == 1
    outbox = app.state.settings.data_dir / "notify" / "outbox"
    (written,) = outbox.glob("*.eml")
    with session_scope(app.state.sessionmaker, actor="test") as s:
        _killed_after_handoff(s, clock.now())
    report = _outbox_run(app)  # the file is there: it was written, so it is sent, not sent again
    assert report.recovered == 1 and report.sent == 0
    with app.state.sessionmaker() as s:
        d = s.scalar(select(Delivery))
    assert d.status == "sent" and "found in the outbox" in d.history[-1]["server"]
    written.unlink()  # killed before the file was moved into place: it was never written
    with session_scope(app.state.sessionmaker, actor="test") as s:
        _killed_after_handoff(s, clock.now())
    report = _outbox_run(app)
    assert report.recovered == 1 and report.sent == 1 and written.exists()
    with app.state.sessionmaker() as s:
        assert [h["outcome"] for h in s.scalar(select(Delivery)).history][-2:] == ["retry", "sent"]


def test_one_click_resend_on_the_deliveries_page_says_it_may_repeat_in_chinese(client, app, world, clock):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, [event_row(world.org_a, at=clock.now(), severity="high")])
    _outbox_run(app)
    with session_scope(app.state.sessionmaker, actor="test") as s:  # as an SMTP run's recovery leaves it
        d = s.scalar(select(Delivery))
        d.status, d.language = "held", "zh-CN"
        d.reason = {"code": "in_doubt", "args": {"at": clock.now().isoformat(), "message_id": d.message_id}}
        d.last_error = "in doubt"
        delivery_id = d.id
    token = sign_in(client, world.users["coordinator"])
    page = client.get("/notify?status=held")
    assert "Resend, saying it may repeat" in page.text
    assert "may repeat an earlier message" in client.get(f"/notify/deliveries/{delivery_id}").text
    resp = client.post(f"/notify/deliveries/{delivery_id}/resend", data={"csrf_token": token},
                       follow_redirects=False)
    assert resp.status_code == 303
    assert _outbox_run(app).sent == 1
    (written,) = (app.state.settings.data_dir / "notify" / "outbox").glob("*.eml")
    text, subject = _text_and_subject(written.read_bytes())
    assert ZH in text and subject.startswith("[可能重复")
    client.cookies.set("cw_lang", "zh-CN")
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.execute(update(Delivery).values(status="held", reason={"code": "in_doubt_connection", "args": {}}))
    assert "重新发送并说明可能重复" in client.get("/notify?status=held").text
