"""Early-warning benchmark (run through ``bench/notify``).

Stores N events across M organisations (one contact each, every contact with an OpenPGP key),
then times one notification run: planning (events -> warnings -> ledger), assembling digests,
and sending them — rendered, CSV attached, signed and encrypted with GnuPG, delivered over SMTP
to an aiosmtpd sink on loopback. The floor to compare against is GnuPG's own cost per message
(sign + encrypt of a typical digest, with the same number of parallel workers): no sender that
signs and encrypts each message with gpg can go faster than that.

Contacts share a pool of keys (generating 10,000 keys would take longer than the run): the cost of
encrypting to a key does not depend on how many contacts share it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import func, insert, select

from commonwatch import capabilities
from commonwatch.clock import FrozenClock
from commonwatch.config import Settings
from commonwatch.constituency.models import Contact, Organisation
from commonwatch.db import is_sqlite, make_engine, make_sessionmaker, session_scope
from commonwatch.migrate import upgrade
from commonwatch.notify.config import NotifySettings
from commonwatch.notify.mail import content_entity
from commonwatch.notify.models import Delivery
from commonwatch.notify.pgp import Keyring
from commonwatch.notify.runner import Notifier
from commonwatch.web.templating import make_environment

TYPES = ["infected-system", "vulnerable-system", "ddos-amplifier", "potentially-unwanted-accessible", "scanner",
         "phishing"]
SEVERITIES = ["info", "low", "medium", "high", "critical"]
SEVERITY_WEIGHTS = [0.05, 0.30, 0.45, 0.15, 0.05]
EVENT_COLUMNS = ["event_key", "time_source", "time_observation", "feed_name", "feed_provider", "source_ip",
                 "source_port", "source_asn", "source_as_name", "source_cc", "classification_taxonomy",
                 "classification_type", "classification_identifier", "malware_name", "org_id", "constituent_cii",
                 "severity", "tlp", "created_at"]


#: The SMTP sink runs in a process of its own, as a real mail server would: in the sender's process
#: it would compete with the sender for the GIL and slow it down. It counts what it receives and
#: reports when its stdin closes.
SINK = r"""
import json, sys, threading
from aiosmtpd.controller import Controller

class CountingSink:
    def __init__(self):
        self.messages, self.bytes, self.lock = 0, 0, threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages += 1
            self.bytes += len(envelope.original_content or envelope.content)
        return "250 2.0.0 queued"

sink = CountingSink()
controller = Controller(sink, hostname="127.0.0.1", port=int(sys.argv[1]), decode_data=False,
                        data_size_limit=256 * 1024 * 1024)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
print(json.dumps({"messages": sink.messages, "bytes": sink.bytes}), flush=True)
"""


def start_sink(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SINK, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("the SMTP sink did not start")
    return proc


def stop_sink(proc: subprocess.Popen) -> dict:
    """Stop the sink; what it received."""
    out, _ = proc.communicate("", timeout=60)
    return json.loads(out.strip().splitlines()[-1])


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_events(n: int, org_ids: np.ndarray, cii: np.ndarray, now: datetime, rng) -> pl.DataFrame:
    """N synthetic events, 10 % of them re-observations of an earlier one."""
    org_idx = rng.integers(0, len(org_ids), n)
    host = np.arange(n)
    repeat = rng.random(n) < 0.10
    host[repeat] = rng.integers(0, max(1, n // 2), int(repeat.sum()))
    org_idx[repeat] = org_idx[host[repeat]]
    kinds = rng.integers(0, len(TYPES), n)
    kinds[repeat] = kinds[host[repeat]]
    sev = rng.choice(len(SEVERITIES), n, p=SEVERITY_WEIGHTS)
    seconds = rng.integers(0, 86_400, n)
    frame = pl.DataFrame({"i": np.arange(n), "host": host, "org_idx": org_idx, "kind": kinds, "sev": sev,
                          "sec": seconds})
    t0 = now - timedelta(hours=50)
    fmt = "%Y-%m-%d %H:%M:%S.000000"  # the text form SQLAlchemy stores in SQLite
    return frame.select(
        pl.format("bench-{}", pl.col("i")).alias("event_key"),
        (pl.lit(t0) + pl.duration(seconds=pl.col("sec"))).dt.strftime(fmt).alias("time_source"),
        (pl.lit(t0) + pl.duration(seconds=pl.col("sec") + 600)).dt.strftime(fmt).alias("time_observation"),
        pl.lit("shadowserver-bench").alias("feed_name"), pl.lit("Shadowserver").alias("feed_provider"),
        pl.format("10.{}.{}.{}", (pl.col("host") // 65536) % 256, (pl.col("host") // 256) % 256,
                  pl.col("host") % 256).alias("source_ip"),
        (pl.col("kind") * 1000 + 23).cast(pl.Int64).alias("source_port"),
        pl.lit(64500).alias("source_asn"), pl.lit("BENCH-AS").alias("source_as_name"), pl.lit("CN").alias("source_cc"),
        pl.lit("bench").alias("classification_taxonomy"),
        pl.col("kind").replace_strict(dict(enumerate(TYPES)), return_dtype=pl.String).alias("classification_type"),
        pl.lit("bench").alias("classification_identifier"), pl.lit(None, pl.String).alias("malware_name"),
        pl.col("org_idx").replace_strict(dict(enumerate(org_ids.tolist())), return_dtype=pl.Int64).alias("org_id"),
        pl.col("org_idx").replace_strict(dict(enumerate(cii.tolist())), return_dtype=pl.Boolean)
        .alias("constituent_cii"),
        pl.col("sev").replace_strict(dict(enumerate(SEVERITIES)), return_dtype=pl.String).alias("severity"),
        pl.lit("AMBER").alias("tlp"),
        pl.lit((now - timedelta(hours=25)).strftime(fmt)).alias("created_at"),
    )


def store_events(engine, frame: pl.DataFrame) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cols = ", ".join(EVENT_COLUMNS)
        if is_sqlite(engine):
            cur.execute("BEGIN")
            marks = ", ".join("?" for _ in EVENT_COLUMNS)
            for chunk in frame.iter_slices(200_000):
                cur.executemany(f"INSERT INTO events ({cols}) VALUES ({marks})", chunk.rows())
            cur.execute("COMMIT")
        else:
            with cur.copy(f"COPY events ({cols}) FROM STDIN") as copy:
                for row in frame.iter_rows():
                    copy.write_row(row)
            raw.commit()
    finally:
        raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="sending threads (gpg runs in its own processes)")
    parser.add_argument("--keys", type=int, default=20, help="contact keys in the pool")
    parser.add_argument("--db", default="", help="database URL (default: a SQLite file in a temp dir)")
    args = parser.parse_args()

    capabilities.import_models()
    tmp = Path(tempfile.mkdtemp(prefix="cwb"))
    # The events are written into the SQL store's table below, so every reader (the planner, the
    # renderer, and sending processes, which inherit the environment) must read that store.
    os.environ["COMMONWATCH_EVENT_STORE"] = "sql"
    os.environ["COMMONWATCH_DATA_DIR"] = str(tmp / "data")
    port = free_port()
    sink_proc = start_sink(port)
    received = {"messages": 0, "bytes": 0}
    now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    # Keys are made a day before the run's frozen clock: gpg is told that clock's time, and a key
    # made later (today) would not exist yet at it.
    key_clock = FrozenClock(now - timedelta(days=1))
    centre = Keyring(tmp / "c", key_clock)
    pool = Keyring(tmp / "r", key_clock)
    try:
        started = time.perf_counter()
        url = args.db or f"sqlite:///{tmp / 'bench.db'}"
        settings = Settings(data_dir=tmp / "data", database_url=url, smtp_host="127.0.0.1", smtp_port=port,
                            smtp_security="none", mail_from="cert@centre.example", gnupg_home=centre.home,
                            timezone="Asia/Shanghai")
        engine = make_engine(url)
        upgrade(engine)
        centre_fpr = centre.generate_centre_key("Bench CERT", "cert@centre.example")
        keys = []
        for i in range(args.keys):
            fpr = pool.generate_centre_key(f"Contact {i}", f"c{i}@bench.example")
            keys.append((fpr, pool.export_public(fpr)))
        rng = np.random.default_rng(20261125)
        sessions = make_sessionmaker(engine)
        with session_scope(sessions, actor="bench") as s:
            s.execute(insert(Organisation), [
                {"name": f"Bench Org {i:05d}", "name_local": f"测试单位 {i:05d}",
                 "kind": "cii-operator" if i % 10 == 0 else "network-operator",
                 "sector": "energy" if i % 10 == 0 else "telecom",
                 "country": "CN", "region": "", "notes": "", "created_at": now, "updated_at": now}
                for i in range(args.orgs)])
            org_rows = s.execute(select(Organisation.id, Organisation.kind).order_by(Organisation.id)).all()
            s.execute(insert(Contact), [
                {"org_id": oid, "email": f"abuse@org{oid}.bench.example", "name": "", "role": "abuse",
                 "language": "zh-CN" if oid % 2 else "en", "phone": "", "pgp_key": keys[oid % len(keys)][1],
                 "pgp_fingerprint": keys[oid % len(keys)][0], "pgp_expires_at": None,
                 "notices": ["early-warning"], "active": True, "created_at": now} for oid, _k in org_rows])
        org_ids = np.array([r[0] for r in org_rows])
        cii = np.array([r[1] == "cii-operator" for r in org_rows])
        setup_s = time.perf_counter() - started

        print(f"setup {setup_s:.1f} s", flush=True)
        started = time.perf_counter()
        store_events(engine, make_events(args.events, org_ids, cii, now, rng))
        ingest_s = time.perf_counter() - started
        print(f"storing events {ingest_s:.1f} s (not part of notify)", flush=True)

        nset = NotifySettings(send_workers=args.workers, send_batch=10**9)
        notifier = Notifier(settings=settings, sessions=sessions, clock=FrozenClock(now),
                            env=make_environment(settings.data_dir, settings.timezone), nset=nset)
        started = time.perf_counter()
        report = notifier.run(send=False)
        plan_s, assemble_s = report.seconds["plan"], report.seconds["assemble"]
        print(f"plan {plan_s:.1f} s, assemble {assemble_s:.1f} s", flush=True)
        started = time.perf_counter()
        sent = notifier.send_due()
        send_s = time.perf_counter() - started
        with session_scope(sessions) as s:
            statuses = dict(s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
        messages = sent.sent

        # The floor: sign + encrypt a typical digest (the median size) with the same parallelism.
        sample_text = "x" * 2000
        sample_csv = b"a,b,c\r\n" * (args.events // max(1, args.orgs)) * 30
        entity = content_entity(sample_text, [("bench.csv", "text/csv", sample_csv)])
        rounds = 60
        floor_started = time.perf_counter()

        def encrypt_many(k: int) -> None:
            own = Keyring(centre.home)
            for i in range(k):
                own.encrypt(entity, keys[i % len(keys)][0], centre_fpr)

        for fpr, key in keys:
            centre.ensure_public_key(fpr, key)
        threads = [threading.Thread(target=encrypt_many, args=(rounds // args.workers,)) for _ in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pgp_per_message = (time.perf_counter() - floor_started) / rounds
        floor = 1 / pgp_per_message
        ours = messages / send_s if send_s else 0.0
        end_to_end = messages / (plan_s + assemble_s + send_s)

        print(f"events {args.events:,} across {args.orgs:,} organisations; sending workers {args.workers}; db "
              f"{'sqlite' if is_sqlite(url) else 'postgresql'}")
        print(f"setup {setup_s:.1f} s, storing events {ingest_s:.1f} s (not part of notify)")
        print(f"plan {plan_s:.1f} s ({args.events / plan_s:,.0f} events/s): warned {report.plan.warned:,}, "
              f"repeats {report.plan.repeats:,}, ledger rows {report.plan.queued:,}")
        print(f"assemble {assemble_s:.1f} s: {report.assembled:,} deliveries")
        received = stop_sink(sink_proc)
        print(f"send {send_s:.1f} s: {messages:,} messages ({ours:.1f}/s), statuses {statuses}, "
              f"sink received {received['messages']:,} ({received['bytes'] / 1e6:.1f} MB)")
        print(f"per message: {1000 * send_s / max(messages, 1):.1f} ms sending, of which gpg sign+encrypt "
              f"{1000 * pgp_per_message:.1f} ms (measured alone, {args.workers} workers)")
        print(f"end to end {end_to_end:.1f} messages/s")
        assert received["messages"] == messages, "the sink must have received every message exactly once"
        print(f"RESULT notify ours={ours:.1f} peer={floor:.1f} unit=messages/s ratio={ours / floor:.2f} "
              f"goal=>=0.5")
    finally:
        if sink_proc.poll() is None:
            sink_proc.kill()
        centre.close()
        pool.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
