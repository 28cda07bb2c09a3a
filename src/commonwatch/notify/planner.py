"""Planning: stored events -> warnings per recipient organisation -> the delivery ledger.

Runs on batches of events as Polars frames: route each event to its owner and to the partner
CERT abroad it belongs to, apply each recipient's policy, fold re-observations of something
warned about recently, drop what a recipient declared a false positive, and queue one ledger row
per (recipient, event) with the time its digest is due. Then :func:`assemble` turns each
recipient's due ledger rows into one delivery (a message) in the same transaction.

Idempotent: events already routed are skipped (anti-join on the warnings table), ledger rows are
unique per (recipient, event), and a run that stops half-way is simply run again.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from commonwatch.access.principal import SYSTEM
from commonwatch.clock import ensure_utc
from commonwatch.constituency.models import Contact, Organisation
from commonwatch.events.schema import SEVERITIES
from commonwatch.events.store import event_store
from commonwatch.notify.bulk import insert_frame, read_frame
from commonwatch.notify.config import NotifySettings
from commonwatch.notify.keys import observation_keys
from commonwatch.notify.models import Delivery, EventWarning, LedgerEntry, PlannerState, Suppression
from commonwatch.notify.policies import CADENCE_SECONDS, Effective, effective_policies
from commonwatch.notify.reasons import Reason

EVENT_COLUMNS = ("id", "event_key", "created_at", "time_source", "org_id", "partner_org_id", "classification_type",
                 "classification_identifier", "severity", "constituent_cii", "feed_name", "source_ip",
                 "source_port", "source_fqdn", "source_url", "malware_name")
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_IN_CHUNK = 5000


@dataclass
class PlanReport:
    events: int = 0
    routed: int = 0
    warned: int = 0
    repeats: int = 0
    suppressed: int = 0
    queued: int = 0
    deliveries: int = 0
    held_no_contact: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: PlanReport) -> None:
        for name in ("events", "routed", "warned", "repeats", "suppressed", "queued"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _chunks(values: list, size: int = _IN_CHUNK):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _rows_frame(rows, schema: dict) -> pl.DataFrame:
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def plan(session: Session, now: datetime, nset: NotifySettings, data_dir: Path | None = None) -> PlanReport:
    """Route every event created since the last run (minus an overlap) and queue its warnings."""
    now = ensure_utc(now)
    state = session.get(PlannerState, 1)
    if state is None:
        state = PlannerState(id=1, planned_until=None)
        session.add(state)
        session.flush()
    since = (state.planned_until - timedelta(seconds=nset.overlap_seconds)
             if state.planned_until is not None else None)
    store = event_store(session)
    report = PlanReport()
    last_id = 0
    while True:
        # Every routed event stored since the watermark, whoever it belongs to: the planner works
        # for the centre, so it reads as the system.
        frame = store.scan(SYSTEM, EVENT_COLUMNS, after_id=last_id, limit=nset.plan_chunk, created_after=since,
                           routed=True)
        if frame.is_empty():
            break
        report.add(plan_frame(session, frame, now, data_dir))
        last_id = int(frame["id"].max())
        session.flush()
    state.planned_until = now
    session.flush()
    return report


def _policy_frame(policies: dict[int, Effective]) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = pl.DataFrame({
        "recipient": list(policies),
        "enabled": [p.enabled for p in policies.values()],
        "min_rank": [_SEVERITY_RANK.get(p.min_severity, 0) for p in policies.values()],
        "imm_rank": [_SEVERITY_RANK.get(p.immediate_severity, 99) for p in policies.values()],
        "cii_immediate": [p.cii_immediate for p in policies.values()],
        "cadence_s": [CADENCE_SECONDS.get(p.cadence, 86400) for p in policies.values()],
        "window_s": [p.repeat_window_hours * 3600 for p in policies.values()],
        "all_types": [not p.types for p in policies.values()],
    }, schema={"recipient": pl.Int64, "enabled": pl.Boolean, "min_rank": pl.Int32, "imm_rank": pl.Int32,
               "cii_immediate": pl.Boolean, "cadence_s": pl.Int64, "window_s": pl.Int64, "all_types": pl.Boolean})
    allowed = pl.DataFrame(
        [(o, t) for o, p in policies.items() for t in p.types],
        schema={"recipient": pl.Int64, "classification_type": pl.String}, orient="row")
    return frame, allowed


def _existing(session: Session, lo: int, hi: int) -> pl.DataFrame:
    return read_frame(session, "SELECT org_id, event_id, id FROM notify_warnings WHERE event_id BETWEEN ? AND ?",
                      (lo, hi), {"recipient": pl.Int64, "id": pl.Int64, "warning_id": pl.Int64})


def _suppressions(session: Session, orgs: list[int]) -> pl.DataFrame:
    rows = []
    for part in _chunks(orgs):
        rows += session.execute(select(Suppression.org_id, Suppression.obs_key)
                                .where(Suppression.active.is_(True), Suppression.org_id.in_(part))).all()
    return _rows_frame(rows, {"recipient": pl.Int64, "obs_key": pl.Int64})


def _recent_warnings(session: Session, orgs: list[int], since: datetime) -> pl.DataFrame:
    """The latest warned-about event per (recipient, observation) since ``since``."""
    schema = {"recipient": pl.Int64, "obs_key": pl.Int64, "prev_id": pl.Int64, "prev_time": pl.Datetime("us", "UTC")}
    parts = []
    for part in _chunks(orgs):
        marks = ", ".join("?" for _ in part)
        parts.append(read_frame(
            session, "SELECT org_id, obs_key, id, time_source FROM notify_warnings "  # noqa: S608 - placeholders only
            f"WHERE disposition = 'warn' AND time_source >= ? AND org_id IN ({marks})", (since, *part), schema))
    frame = pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=schema)
    return frame.sort("prev_time").unique(["recipient", "obs_key"], keep="last")


def route(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per (recipient organisation, event): the owner, and the partner CERT abroad."""
    owner = frame.filter(pl.col("org_id").is_not_null()).with_columns(
        pl.col("org_id").alias("recipient"), pl.lit(False).alias("via_partner"))
    partner = frame.filter(pl.col("partner_org_id").is_not_null()).with_columns(
        pl.col("partner_org_id").alias("recipient"), pl.lit(True).alias("via_partner"))
    return pl.concat([owner, partner], how="vertical")


def apply_policies(routes: pl.DataFrame, policy: pl.DataFrame, allowed: pl.DataFrame) -> pl.DataFrame:
    """Keep the rows each recipient's policy asks for; add the rank and timing columns."""
    ranked = routes.with_columns(
        pl.col("severity").replace_strict(_SEVERITY_RANK, default=0, return_dtype=pl.Int32).alias("sev_rank"))
    joined = ranked.join(policy, on="recipient", how="inner").filter(
        pl.col("enabled") & (pl.col("sev_rank") >= pl.col("min_rank")))
    every = joined.filter(pl.col("all_types"))
    some = joined.filter(~pl.col("all_types")).join(allowed, on=["recipient", "classification_type"], how="semi")
    return pl.concat([every, some], how="vertical")


def fold_repeats(rows: pl.DataFrame, recent: pl.DataFrame) -> pl.DataFrame:
    """Decide ``warn`` or ``repeat`` for each row; a repeat names the row it folds into.

    A row is a repeat when the recipient was warned about the same observation within its
    window (before this batch, or earlier in it). Within a batch each observation's events are
    bucketed by window from its first event: the first of each bucket is warned about.
    """
    rows = rows.join(recent, on=["recipient", "obs_key"], how="left")
    window = pl.duration(seconds=pl.col("window_s"))
    near_prev = pl.col("prev_time").is_not_null() & (
        (pl.col("time_source") - pl.col("prev_time")).abs() < window)
    known = rows.filter(near_prev).with_columns(pl.lit("repeat").alias("disposition"),
                                                pl.col("prev_id").alias("repeat_of_id"),
                                                pl.lit(None, pl.Int64).alias("anchor_event"))
    fresh = rows.filter(~near_prev).sort(["recipient", "obs_key", "time_source", "id"])
    t0 = pl.col("time_source").first().over(["recipient", "obs_key"])
    elapsed = (pl.col("time_source") - t0).dt.total_seconds()
    fresh = fresh.with_columns(
        pl.when(pl.col("window_s") > 0).then(elapsed // pl.col("window_s"))
        .otherwise(pl.int_range(pl.len()).over(["recipient", "obs_key"])).cast(pl.Int64).alias("bucket"))
    fresh = fresh.with_columns(pl.col("id").first().over(["recipient", "obs_key", "bucket"]).alias("anchor"))
    fresh = fresh.with_columns(
        pl.when(pl.col("id") == pl.col("anchor")).then(pl.lit("warn")).otherwise(pl.lit("repeat"))
        .alias("disposition"),
        pl.lit(None, pl.Int64).alias("repeat_of_id"),
        pl.when(pl.col("id") == pl.col("anchor")).then(None).otherwise(pl.col("anchor")).alias("anchor_event"))
    keep = [c for c in known.columns if c not in ("prev_id", "prev_time")]
    fresh = fresh.drop("bucket", "anchor")
    return pl.concat([known.select(keep), fresh.select(keep)], how="vertical")


def _warning_rows(frame: pl.DataFrame, now: datetime) -> pl.DataFrame:
    return frame.select(
        pl.col("recipient").alias("org_id"), pl.col("id").alias("event_id"), "obs_key", "time_source",
        "classification_type", "severity", pl.col("feed_name").fill_null(""), "disposition",
        pl.col("repeat_of_id").cast(pl.Int64), pl.lit("open").alias("status"), pl.lit("").alias("comment"),
        pl.lit(now).dt.cast_time_unit("us").alias("created_at"),
    )


def _listed(frame: pl.DataFrame, data_dir: Path | None) -> pl.DataFrame:
    """Ids of the events a warning list keeps out of warnings (``rules/warning_lists.yaml``)."""
    from commonwatch.config import get_settings
    from commonwatch.intel import warninglists  # the lists live with intelligence, which builds on notify

    return warninglists.suppressed_event_ids(frame, data_dir or get_settings().data_dir).select("id").unique()


def plan_frame(session: Session, frame: pl.DataFrame, now: datetime, data_dir: Path | None = None) -> PlanReport:
    """Plan one batch of events (a frame with :data:`EVENT_COLUMNS`)."""
    report = PlanReport(events=frame.height)
    if frame.is_empty():
        return report
    routes = route(frame)
    lo, hi = int(frame["id"].min()), int(frame["id"].max())
    routes = routes.join(_existing(session, lo, hi).drop("warning_id"), on=["recipient", "id"], how="anti")
    if routes.is_empty():
        return report
    recipients = sorted(set(routes["recipient"].to_list()))
    policies = effective_policies(session, recipients)
    policy, allowed = _policy_frame(policies)
    rows = apply_policies(routes, policy, allowed)
    report.routed = rows.height
    if rows.is_empty():
        return report
    rows = rows.with_columns(observation_keys(rows))
    suppressed = rows.join(_suppressions(session, recipients), on=["recipient", "obs_key"], how="semi")
    rows = rows.join(suppressed.select("recipient", "id"), on=["recipient", "id"], how="anti")
    listed = rows.join(_listed(frame, data_dir), on="id", how="semi")
    rows = rows.join(listed.select("recipient", "id"), on=["recipient", "id"], how="anti")
    max_window = int(rows["window_s"].max() or 0) if rows.height else 0
    since = (rows["time_source"].min() if rows.height else now) - timedelta(seconds=max_window)
    decided = fold_repeats(rows, _recent_warnings(session, recipients, since))
    warns = decided.filter(pl.col("disposition") == "warn")
    repeats = decided.filter(pl.col("disposition") == "repeat")
    suppressed = suppressed.with_columns(pl.lit("suppressed").alias("disposition"),
                                         pl.lit(None, pl.Int64).alias("repeat_of_id"))

    listed = listed.with_columns(pl.lit("listed").alias("disposition"), pl.lit(None, pl.Int64).alias("repeat_of_id"))
    insert_frame(session, EventWarning.__table__,
                 pl.concat([_warning_rows(warns, now), _warning_rows(suppressed, now), _warning_rows(listed, now)],
                           how="vertical"))
    ids = _existing(session, lo, hi)
    if not repeats.is_empty():
        anchors = ids.rename({"id": "anchor_event", "warning_id": "anchor_warning"})
        repeats = repeats.join(anchors, on=["recipient", "anchor_event"], how="left").with_columns(
            pl.coalesce("repeat_of_id", "anchor_warning").alias("repeat_of_id"))
        insert_frame(session, EventWarning.__table__, _warning_rows(repeats, now))
    report.warned, report.repeats, report.suppressed = warns.height, repeats.height, suppressed.height + listed.height
    report.queued = _queue(session, warns.join(ids, on=["recipient", "id"], how="inner"), policies, now)
    return report


def _recipients(session: Session, policies: dict[int, Effective]) -> pl.DataFrame:
    """Who hears about each organisation's warnings: its contacts taking early warnings (email),
    its webhook, or — when there is no one — a ``nobody`` row so the centre sees the gap."""
    orgs = sorted(policies)
    contacts: list[tuple] = []
    for part in _chunks(orgs):
        for cid, org_id, notices, active in session.execute(
                select(Contact.id, Contact.org_id, Contact.notices, Contact.active)
                .where(Contact.org_id.in_(part)).order_by(Contact.id)):
            if active and "early-warning" in (notices or []) and policies[org_id].wants_email:
                contacts.append((org_id, f"contact:{cid}", cid, "email"))
    hooks = [(o, f"webhook:{o}", None, "webhook") for o, p in policies.items() if p.wants_webhook and p.webhook_url]
    covered = {r[0] for r in contacts} | {r[0] for r in hooks}
    nobody = [(o, f"nobody:{o}", None, "none") for o in orgs if o not in covered]
    return pl.DataFrame(contacts + hooks + nobody, orient="row",
                        schema={"recipient": pl.Int64, "recipient_key": pl.String, "contact_id": pl.Int64,
                                "channel": pl.String})


def _queue(session: Session, warns: pl.DataFrame, policies: dict[int, Effective], now: datetime) -> int:
    if warns.is_empty():
        return 0
    immediate = ((pl.col("cadence_s") == 0) | (pl.col("sev_rank") >= pl.col("imm_rank"))
                 | (pl.col("constituent_cii") & pl.col("cii_immediate") & ~pl.col("via_partner")))
    timed = warns.with_columns(
        # A digest is due one period after its first event was stored (not after planning ran, so
        # a planning backlog does not delay it further).
        pl.when(immediate).then(pl.lit(now))
        .otherwise(pl.col("created_at").fill_null(pl.lit(now)) + pl.duration(seconds=pl.col("cadence_s")))
        .alias("due_at"))
    used = {int(o) for o in timed["recipient"].unique().to_list()}
    recipients = _recipients(session, {o: policies[o] for o in used})
    ledger = timed.select("recipient", pl.col("id").alias("event_id"), "warning_id", "due_at").join(
        recipients, on="recipient", how="inner")
    rows = ledger.select(pl.col("recipient").alias("org_id"), "recipient_key", "contact_id", "channel",
                         "warning_id", "event_id", pl.col("due_at").dt.cast_time_unit("us"),
                         pl.lit(now).dt.cast_time_unit("us").alias("created_at"))
    return insert_frame(session, LedgerEntry.__table__, rows)


# --- assembling deliveries ------------------------------------------------------------------------

def _message_id(delivery_id: int, mail_from: str) -> str:
    domain = mail_from.rsplit("@", 1)[-1].strip(">") or "commonwatch.invalid"
    return f"<cw-{delivery_id}-{secrets.token_hex(6)}@{domain}>"


def assemble(session: Session, now: datetime, nset: NotifySettings, *, mail_from: str,
             default_language: str = "en") -> tuple[int, int]:
    """Turn each recipient's due ledger rows into deliveries; returns (deliveries, held for no contact).

    Set-based: one read of the queue, one insert of the deliveries, one batched update binding the
    ledger rows (a recipient's rows are split over several messages past ``max_events_per_message``).
    """
    now = ensure_utc(now)
    due = set(session.scalars(
        select(LedgerEntry.recipient_key).where(LedgerEntry.delivery_id.is_(None))
        .group_by(LedgerEntry.recipient_key).having(func.min(LedgerEntry.due_at) <= now)).all())
    if not due:
        return 0, 0
    queued = read_frame(session, "SELECT id, recipient_key, org_id, channel FROM notify_ledger "
                                 "WHERE delivery_id IS NULL", (),
                        {"id": pl.Int64, "recipient_key": pl.String, "org_id": pl.Int64, "channel": pl.String})
    queued = queued.filter(pl.col("recipient_key").is_in(sorted(due))).sort("id").with_columns(
        (pl.int_range(pl.len()).over("recipient_key") // nset.max_events_per_message).alias("part"))
    parts = (queued.group_by(["recipient_key", "part"])
             .agg(pl.col("org_id").min(), pl.col("channel").first(), pl.col("id").min().alias("lo"),
                  pl.col("id").max().alias("hi"), pl.len().alias("n"))
             .sort(["lo"]))
    policies = effective_policies(session, set(parts["org_id"].to_list()))
    contact_ids = [int(k.split(":", 1)[1]) for k in due if k.startswith("contact:")]
    contacts = {c.id: c for part in _chunks(contact_ids)
                for c in session.scalars(select(Contact).where(Contact.id.in_(part)))}
    rows = list(parts.iter_rows(named=True))
    deliveries = [_new_delivery(r["recipient_key"], r["org_id"], r["channel"], policies[r["org_id"]], contacts, now,
                                default_language) for r in rows]
    for delivery, row in zip(deliveries, rows, strict=True):
        delivery.event_count = row["n"]
    session.add_all(deliveries)
    session.flush()
    for delivery in deliveries:
        delivery.message_id = _message_id(delivery.id, mail_from)
    session.flush()
    ledger = LedgerEntry.__table__
    session.connection().execute(
        update(ledger).where(ledger.c.recipient_key == bindparam("b_key"), ledger.c.delivery_id.is_(None),
                             ledger.c.id.between(bindparam("b_lo"), bindparam("b_hi")))
        .values(delivery_id=bindparam("b_delivery")),
        [{"b_key": r["recipient_key"], "b_lo": r["lo"], "b_hi": r["hi"], "b_delivery": d.id}
         for r, d in zip(rows, deliveries, strict=True)])
    return len(deliveries), sum(d.status == "held" for d in deliveries)


def _new_delivery(key: str, org_id: int, channel: str, policy: Effective, contacts: dict[int, Contact],
                  now: datetime, default_language: str) -> Delivery:
    delivery = Delivery(org_id=org_id, recipient_key=key, channel=channel, status="pending", attempts=0,
                        last_error="", history=[], next_attempt_at=now, created_at=now,
                        language=policy.language or default_language)
    kind, _sep, ident = key.partition(":")
    if kind == "contact":
        contact = contacts.get(int(ident))
        delivery.contact_id = contact.id if contact else None
        delivery.address = contact.email if contact else ""
        if contact is not None:
            delivery.language = policy.language or contact.language or default_language
        if contact is None or not contact.wants("early-warning") or contact.org_id != org_id:
            delivery.status = "cancelled"
            _because(delivery, "contact_gone")
    elif kind == "webhook":
        delivery.address = policy.webhook_url
        if not policy.wants_webhook or not policy.webhook_url:
            delivery.status = "cancelled"
            _because(delivery, "no_webhook")
    else:
        delivery.status = "held"
        _because(delivery, "nobody")
    return delivery


def _because(delivery: Delivery, code: str, **args) -> None:
    why = Reason(code, args)
    delivery.last_error, delivery.reason = why.english(), why.as_json()


def org_names(session: Session, org_ids: set[int]) -> dict[int, tuple[str, str]]:
    out: dict[int, tuple[str, str]] = {}
    for part in _chunks(sorted(org_ids)):
        for oid, name, local in session.execute(select(Organisation.id, Organisation.name, Organisation.name_local)
                                                .where(Organisation.id.in_(part))):
            out[oid] = (name, local)
    return out

