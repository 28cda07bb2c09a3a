"""The SMTP connection's socket: the end-of-data marker goes out at once, not after a delayed ACK."""

from __future__ import annotations

import socket

from commonwatch.config import Settings
from commonwatch.notify.mail import Envelope, SmtpTransport


def test_the_smtp_connection_sends_without_nagle_delay(sink, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", smtp_host="127.0.0.1", smtp_port=sink.port,
                        smtp_security="none", mail_from="cert@centre.example")
    transport = SmtpTransport(settings)
    message = b"Subject: test\r\n\r\nbody\r\n"
    try:
        outcome = transport.send(Envelope("cert@centre.example", "abuse@org.example", message, False, False),
                                 lambda: None)
        assert outcome.status == "sent"
        # The marker is a small write after the message's: with Nagle it waits for the server's ACK.
        assert transport._conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        transport.close()
    assert [m.recipients for m in sink.messages] == [["abuse@org.example"]]
