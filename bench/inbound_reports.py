"""Partner reports read from a real IMAP server (a Dovecot of the benchmark's own on loopback) into
events, by commonwatch and by IntelMQ's mail collector, in the same run.

    .venv/bin/python bench/inbound_reports.py [--reports N]

The mailbox holds N mails from a partner CERT, mixed IODEF v2 JSON (10 events), XARF v4 (a list of
10 reports) and ARF (one feedback report, the format carries one). commonwatch polls the mailbox
(``cooperation.imap.poll``: UIDVALIDITY/UID cursor, BODY.PEEK, parse, the pipeline's stages, events
stored in SQLite). IntelMQ 3.5 has no IODEF, XARF or ARF parser; what it covers is collection, so the
peer is IntelMQ's MailAttachCollectorBot (imbox) turning each mail's JSON attachment into a report,
with no parsing at all. The ratio is commonwatch's mails per second (collected, parsed, stored) over
IntelMQ's (collected only) on the same mailbox.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import START
from tests.cooperation.mails import PARTNER_EMAIL, Dovecot, arf, as_bytes, iodef, mail, xarf

from commonwatch.clock import FrozenClock
from commonwatch.config import get_settings
from commonwatch.constituency import services as registry
from commonwatch.cooperation.imap import poll
from commonwatch.db import make_engine, make_sessionmaker, session_scope
from commonwatch.migrate import upgrade

#: The run's own data dir (the Parquet event store is in it): events stored by an earlier run must not
#: make this run's events duplicates, and nothing is left behind in the working directory.
WORK = Path(tempfile.mkdtemp(prefix="cw-bench-inbound-"))


def build_mails(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        if i % 3 == 0:
            out.append(as_bytes(mail(iodef(10, first_ip=(i % 20) * 10 + 1))))
        elif i % 3 == 1:
            out.append(as_bytes(mail([xarf(f"198.51.{(i // 250) % 256}.{(i + k) % 250 + 1}") for k in range(10)],
                                     filename="xarf.json")))
        else:
            out.append(as_bytes(arf(f"203.0.113.{i % 250 + 1}")))
    return out


def run_commonwatch(server: Dovecot, workdir: Path, chunk: int = 500) -> dict:
    engine = make_engine(f"sqlite:///{workdir / 'cw.db'}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    clock = FrozenClock(START)
    with session_scope(sessions, actor="bench") as s:
        s.info["clock"] = clock
        org = registry.create_org(s, {"name": "CERT Partner", "kind": "partner-cert", "country": "DE"})
        registry.add_contact(s, org, {"email": PARTNER_EMAIL}, clock.now())
    t0 = time.perf_counter()
    result = poll(engine, sessions, host="127.0.0.1", port=server.port, user=server.user, password=server.password,
                  clock=clock, data_dir=WORK / "data", chunk=chunk)
    seconds = time.perf_counter() - t0
    from sqlalchemy import func, select

    from commonwatch.pipeline.models import IngestRun

    with sessions() as s:
        events = s.scalar(select(func.sum(IngestRun.events_stored))) or 0
        quarantined = s.scalar(select(func.sum(IngestRun.quarantined))) or 0
    engine.dispose()
    return {"mails": result.fetched, "ingested": result.ingested, "held": result.held, "events": int(events),
            "quarantined": int(quarantined), "seconds": seconds}


def run_intelmq(server: Dovecot) -> dict:
    from intelmq.bots.collectors.mail.collector_mail_attach import MailAttachCollectorBot
    from intelmq.lib.bot import BotLibSettings

    bot = MailAttachCollectorBot("mail-attach", settings=BotLibSettings | {
        "logging_level": "ERROR", "mail_host": "127.0.0.1", "mail_port": server.port, "mail_user": server.user,
        "mail_password": server.password, "mail_ssl": False, "folder": "INBOX", "attach_regex": r"\.json",
        "extract_files": False, "subject_regex": "", "name": "partner reports", "provider": "CERT Partner"})
    reports = []
    bot.send_message = lambda *msgs, **kw: reports.extend(msgs)  # collect instead of a broker
    t0 = time.perf_counter()
    bot.process()
    seconds = time.perf_counter() - t0
    return {"reports": len(reports), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=500, help="mails per FETCH, pipeline batch and commit")
    args = parser.parse_args()
    (WORK / "data").mkdir(parents=True, exist_ok=True)
    os.environ["COMMONWATCH_DATA_DIR"] = str(WORK / "data")
    get_settings.cache_clear()
    try:
        _main(args)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


def _main(args) -> None:
    server = Dovecot()
    try:
        t0 = time.perf_counter()
        raws = build_mails(args.reports)
        server.append(raws)
        print(f"mailbox: {len(raws):,} mails appended in {time.perf_counter() - t0:.1f} s", flush=True)
        cw = run_commonwatch(server, WORK, args.chunk)
        print("commonwatch:", json.dumps(cw), flush=True)
        peer = run_intelmq(server)
        print("IntelMQ MailAttachCollectorBot:", json.dumps(peer), flush=True)
    finally:
        server.stop()
    cw_rate = cw["mails"] / cw["seconds"]
    peer_rate = args.reports / peer["seconds"]
    print(f"commonwatch: {cw_rate:,.0f} mails/s collected+parsed+stored ({cw['events'] / cw['seconds']:,.0f} events/s)")
    print(f"IntelMQ:     {peer_rate:,.0f} mails/s collected only ({peer['reports']:,} JSON attachments as reports)")
    print(f"ratio: {cw_rate / peer_rate:.2f}x")


if __name__ == "__main__":
    main()
