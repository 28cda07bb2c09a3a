"""Periodic intelligence work: promote events to indicators by rule, record sightings of live
indicators in new events, and poll partners' TAXII collections and MISP instances.

The event jobs read ``events`` past a stored watermark (``events.id``) in chunks and work on whole
columns with Polars joins: no Python loop per event.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access import audit
from commonwatch.access.principal import SYSTEM
from commonwatch.db import session_scope
from commonwatch.errors import Invalid
from commonwatch.events.schema import SEVERITIES
from commonwatch.events.store import event_store
from commonwatch.intel import services, stix
from commonwatch.intel import tlp as tlpmod
from commonwatch.intel.models import Indicator, IntelShare, IntelState, Sighting
from commonwatch.rules import RulesError, load_rules
from commonwatch.scheduler import Job

log = logging.getLogger("commonwatch.intel.jobs")
WATERMARK = "events.watermark"
CHUNK = 50_000
VALUE_FIELDS = {"source.ip": "source_ip", "source.fqdn": "source_fqdn", "source.url": "source_url",
                "destination.ip": "destination_ip", "destination.fqdn": "destination_fqdn"}
_RULE_KEYS = {"id", "en", "zh", "citation", "status", "types", "value"}


# --- rules --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PromotionRule:
    id: str
    en: str
    zh: str
    types: tuple[str, ...]
    value: str
    min_severity: str = "info"
    min_feeds: int = 1
    trusted_feeds: tuple[str, ...] = ()
    tlp: str = "AMBER"
    valid_days: float = 30
    confidence: int = 70
    indicator_types: tuple[str, ...] = ("malicious-activity",)
    kill_chain_phase: str = ""


def parse_promotion_rules(data: dict[str, Any], origin: str) -> list[PromotionRule]:
    """Check a promotion rules file; a malformed one is refused naming the rule and the problem."""
    rules = data.get("rules")
    if not isinstance(rules, list) or not rules:
        raise RulesError(origin, "needs a non-empty list `rules`")
    out = []
    for i, r in enumerate(rules):
        where = f"rule {i + 1}"
        if not isinstance(r, dict):
            raise RulesError(origin, f"{where} is not a mapping")
        missing = sorted(_RULE_KEYS - set(r))
        if missing:
            raise RulesError(origin, f"{where} ({r.get('id', '?')}) lacks {', '.join(missing)}")
        if r["status"] not in ("verified", "provisional"):
            raise RulesError(origin, f"{where} ({r['id']}): status must be verified or provisional")
        if not isinstance(r["citation"], dict) or not r["citation"].get("en"):
            raise RulesError(origin, f"{where} ({r['id']}): citation needs en (and zh)")
        if r["value"] not in VALUE_FIELDS:
            raise RulesError(origin, f"{where} ({r['id']}): value must be one of {', '.join(VALUE_FIELDS)}")
        if not isinstance(r["types"], list) or not r["types"]:
            raise RulesError(origin, f"{where} ({r['id']}): types must be a non-empty list")
        if r.get("min_severity", "info") not in SEVERITIES:
            raise RulesError(origin, f"{where} ({r['id']}): min_severity must be one of {', '.join(SEVERITIES)}")
        try:
            label = tlpmod.normalise(r.get("tlp", "AMBER"))
        except ValueError:
            raise RulesError(origin, f"{where} ({r['id']}): tlp must be one of {', '.join(tlpmod.LEVELS)}") from None
        try:
            rule = PromotionRule(
                id=str(r["id"]), en=str(r["en"]), zh=str(r["zh"]), types=tuple(r["types"]), value=r["value"],
                min_severity=r.get("min_severity", "info"), min_feeds=int(r.get("min_feeds", 1)),
                trusted_feeds=tuple(r.get("trusted_feeds") or ()), tlp=label,
                valid_days=float(r.get("valid_days", 30)), confidence=int(r.get("confidence", 70)),
                indicator_types=tuple(r.get("indicator_types") or ("malicious-activity",)),
                kill_chain_phase=str(r.get("kill_chain_phase", "")))
        except (TypeError, ValueError) as exc:
            raise RulesError(origin, f"{where} ({r['id']}): {exc}") from None
        if rule.min_feeds < 1 or not 0 <= rule.confidence <= 100 or rule.valid_days <= 0:
            raise RulesError(origin, f"{where} ({r['id']}): min_feeds >= 1, 0 <= confidence <= 100, valid_days > 0")
        out.append(rule)
    return out


def promotion_rules(data_dir: Path | None) -> list[PromotionRule]:
    from commonwatch.rules import rules_path

    return parse_promotion_rules(load_rules("intel_promotion.yaml", data_dir),
                                 str(rules_path("intel_promotion.yaml", data_dir)))


# --- reading events ---------------------------------------------------------------------------------------

_EVENT_COLUMNS = ("id", "time_source", "feed_name", "source_ip", "source_ip_bin", "source_fqdn", "source_url",
                  "destination_ip", "destination_fqdn", "classification_type", "malware_name", "org_id", "severity",
                  "tlp")
def read_events(session: Session, after_id: int, limit: int = CHUNK) -> pl.DataFrame:
    """Events with ``id > after_id`` (at most ``limit``), as columns. Promotion and sightings work
    for the centre over every tenant's events, so they read as the system."""
    return event_store(session).scan(SYSTEM, _EVENT_COLUMNS, after_id=after_id, limit=limit)


def _tlp_rank(column: str) -> pl.Expr:
    return pl.col(column).fill_null("AMBER").replace_strict(tlpmod.RANK, default=tlpmod.RANK["RED"],
                                                            return_dtype=pl.Int8)


def _label(rank: int) -> str:
    return tlpmod.LEVELS[int(rank)]


# --- promotion ----------------------------------------------------------------------------------------------

def promotion_candidates(events: pl.DataFrame, rule: PromotionRule) -> pl.DataFrame:
    """Values a rule promotes: one row per value with its feeds, organisations, times and TLP rank."""
    column = VALUE_FIELDS[rule.value]
    sev_rank = {s: i for i, s in enumerate(SEVERITIES)}
    df = events.filter(pl.col("classification_type").is_in(list(rule.types)) & pl.col(column).is_not_null()
                       & (pl.col(column) != "")
                       & (pl.col("severity").replace_strict(sev_rank, default=0, return_dtype=pl.Int8)
                          >= sev_rank[rule.min_severity]))
    if df.is_empty():
        return pl.DataFrame()
    grouped = df.group_by(pl.col(column).alias("value")).agg(
        pl.col("feed_name").n_unique().alias("feeds"),
        pl.col("feed_name").is_in(list(rule.trusted_feeds)).any().alias("trusted"),
        pl.col("org_id").drop_nulls().unique().alias("orgs"),
        pl.col("malware_name").drop_nulls().unique().alias("malware"),
        pl.col("time_source").min().alias("first_seen"),
        pl.col("time_source").max().alias("last_seen"),
        _tlp_rank("tlp").max().alias("tlp_rank"),
        pl.len().alias("events"),
    )
    return grouped.filter((pl.col("feeds") >= rule.min_feeds) | pl.col("trusted")).sort("value")


def promote(session: Session, events: pl.DataFrame, rules: list[PromotionRule], now: datetime,
            centre_id: str, data_dir: Path | None = None) -> int:
    """Create indicators for the values the rules confirm and that no indicator holds yet; values on
    a warning list whose policy suppresses them are not promoted.

    Decay (``rules/indicator_decay.yaml``) sets the valid-until: the last time the events saw the
    value plus the days its model takes to fall to the threshold (the rule's ``valid_days`` only when
    no model applies). A value whose events are so old that it would be born expired is not promoted.
    An indicator a rule promoted before is not promoted again: it is refreshed (a new version with a
    later valid-until) only when the events saw it after what it was last valid from, so that an
    expired one comes back only with a new sighting and a feed sending the same old file again keeps
    nothing alive. A valid-until a person set (an expiry by hand, an edit) is never moved."""
    from commonwatch.intel import decay

    models = decay.decay_models(data_dir)
    created = 0
    for rule in rules:
        cand = promotion_candidates(events, rule)
        if not cand.is_empty() and data_dir is not None:
            cand = cand.join(_listed_values(cand, data_dir), on="value", how="anti")
        if cand.is_empty():
            continue
        objects, shares, refreshes = [], {}, []
        for row in cand.iter_rows(named=True):  # one row per distinct confirmed value, not per event
            try:
                kind = stix.detect_kind(row["value"]) if rule.value.endswith(".ip") else \
                    ("domain" if rule.value.endswith("fqdn") else "url")
                value = stix.normalise_value(kind, row["value"])
            except Invalid:
                continue
            label = tlpmod.stricter(rule.tlp, _label(row["tlp_rank"]))
            if label == "RED":
                continue  # RED events stay with their named recipients; they are never promoted
            until = _decay_until(models, value.kind, f"rule:{rule.id}", min(row["last_seen"], now), now,
                                 rule.valid_days)
            held = session.scalar(select(Indicator).where(Indicator.kind == value.kind,
                                                          Indicator.value_key == value.key,
                                                          Indicator.revoked.is_(False))
                                  .order_by(Indicator.valid_until.desc()).limit(1))
            if held is not None:
                if until > now and held.source.startswith("rule:") and (
                        held.valid_until is None or until > held.valid_until):
                    refreshes.append((held, until, min(row["last_seen"], now)))
                continue
            if until <= now:
                continue  # seen too long ago: it would be expired at birth
            stamp = stix.timestamp(now)
            obj = {"type": "indicator", "spec_version": stix.SPEC, "id": stix.new_id("indicator"), "created": stamp,
                   "modified": stamp, "created_by_ref": centre_id, "name": f"{rule.en}: {value.value}",
                   "pattern": stix.pattern_for(value), "pattern_type": "stix", "valid_from": stamp,
                   "valid_until": stix.timestamp(until),
                   "indicator_types": list(rule.indicator_types), "confidence": rule.confidence,
                   "description": f"Promoted by rule {rule.id} ({rule.en}) from {row['events']} events reported "
                                  f"by {row['feeds']} feed(s), first seen {stix.timestamp(row['first_seen'])}.",
                   "labels": [f"rule:{rule.id}", *[f"malware:{m}" for m in row["malware"]]]}
            obj = stix.with_extension(obj, evidence={"events": row["events"], "feeds": row["feeds"],
                                                     "first_seen": stix.timestamp(row["first_seen"])},
                                      decay_until=stix.timestamp(until))
            if rule.kill_chain_phase:
                obj["kill_chain_phases"] = [{"kill_chain_name": services.KILL_CHAIN,
                                             "phase_name": rule.kill_chain_phase}]
            objects.append(stix.with_tlp(obj, label))
            shares[obj["id"]] = list(row["orgs"])
        _refresh(session, refreshes, now)
        if not objects:
            continue
        origin = services.Origin(source=f"rule:{rule.id}", owner_org_id=None, author_user_id=None,
                                 may_update_any=True, accept_red=False)
        report = services.store_objects(session, objects, origin, now)
        for sid, orgs in shares.items():
            services.set_shares(session, sid, orgs, [])
        created += report.count("added")
    return created


def _decay_until(models: list, kind: str, source: str, seen: datetime, now: datetime,
                 fallback_days: float) -> datetime:
    """When an indicator last seen at ``seen`` falls to its model's threshold (at STIX's precision)."""
    from commonwatch.intel import decay

    model = decay.model_for(models, kind, source)
    until = seen + timedelta(days=model.days_to_threshold) if model else now + timedelta(days=fallback_days)
    return stix.parse_timestamp(stix.timestamp(until), "valid_until")


def _refresh(session: Session, refreshes: list[tuple[Indicator, datetime, datetime]], now: datetime) -> int:
    """New versions of promoted indicators seen again, with the later valid-until decay gives and
    their last seen moved on (decay counts from it); one whose valid-until is no longer the one
    decay set (a person changed it) is left alone."""
    objects, origins, seen_at = [], [], []
    for ind, until, seen in refreshes:
        row = services._latest_row(session, ind.stix_id)
        body = json.loads(row.body)
        if stix.extension_of(body).get("decay_until") != body.get("valid_until"):
            continue
        body["valid_until"] = stix.timestamp(until)
        body["modified"] = stix.timestamp(services._bump(now, ind.modified))
        objects.append(stix.with_extension(body, decay_until=stix.timestamp(until)))
        origins.append(services.Origin(source=ind.source, owner_org_id=ind.owner_org_id,
                                       author_user_id=ind.author_user_id, default_tlp=ind.tlp, may_update_any=True,
                                       accept_red=False))
        seen_at.append(seen)
    for obj, origin, seen in zip(objects, origins, seen_at, strict=True):
        report = services.store_objects(session, [obj], origin, now)
        if report.failures:
            log.warning("indicator not refreshed", extra={"stix_id": obj["id"], "error": report.failures[0].reason})
            continue
        ind = session.scalar(select(Indicator).where(Indicator.stix_id == obj["id"]))
        ind.last_seen = max(ind.last_seen or seen, seen)
    return len(objects)


def _listed_values(cand: pl.DataFrame, data_dir: Path) -> pl.DataFrame:
    from commonwatch.intel import warninglists

    found = warninglists.hits(cand.select("value"), warninglists.loaded(data_dir))
    keep = warninglists.policy(data_dir).suppressing(sorted(set(found["list"].to_list())))
    return found.filter(pl.col("list").is_in(keep)).select("value").unique()


# --- sightings ---------------------------------------------------------------------------------------------

def _halves(keys: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """16-byte big-endian keys -> (high, low) 64-bit halves, vectorised."""
    if keys.len() == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64)
    arr = np.frombuffer(b"".join(keys.to_list()), dtype=">u8").reshape(-1, 2)
    return arr[:, 0].astype(np.uint64), arr[:, 1].astype(np.uint64)


def live_indicators(session: Session, now: datetime, data_dir: Path | None = None) -> pl.DataFrame:
    """Indicators events are matched against: not revoked, valid now, and not expired by decay
    (``rules/indicator_decay.yaml``: the score, falling since last seen, is above its threshold)."""
    frame = _unexpired(session, now, data_dir)
    if frame.is_empty():
        return frame
    from commonwatch.intel import decay

    extra = session.execute(select(Indicator.id, Indicator.stix_id, Indicator.kind, Indicator.source,
                                   Indicator.valid_from, Indicator.last_seen, Indicator.valid_until).where(
        Indicator.id.in_(frame["indicator_id"].to_list()))).all()
    aged = decay.decay_frame(decay.indicator_frame([tuple(r) for r in extra]), decay.decay_models(data_dir), now)
    return frame.join(aged.filter(~pl.col("expired")).select(pl.col("id").alias("indicator_id")), on="indicator_id",
                      how="semi")


def _unexpired(session: Session, now: datetime, data_dir: Path | None) -> pl.DataFrame:
    rows = session.execute(select(Indicator.id, Indicator.kind, Indicator.value_key, Indicator.first,
                                  Indicator.last, Indicator.tlp).where(
        Indicator.revoked.is_(False), Indicator.valid_from <= now,
        (Indicator.valid_until.is_(None)) | (Indicator.valid_until > now),
        Indicator.kind.in_(["ipv4", "ipv6", "cidr", "domain", "url"]))).all()
    cols = ("indicator_id", "kind", "key", "first", "last", "ind_tlp")
    data = {c: list(v) for c, v in zip(cols, zip(*rows, strict=True), strict=True)} if rows else {c: [] for c in cols}
    return pl.DataFrame(data, schema={"indicator_id": pl.Int64, "kind": pl.String, "key": pl.String,
                                      "first": pl.Binary, "last": pl.Binary, "ind_tlp": pl.String})


def match_events(events: pl.DataFrame, indicators: pl.DataFrame) -> pl.DataFrame:
    """(event, indicator) pairs: exact address/domain/URL matches and source addresses inside CIDRs."""
    empty = pl.DataFrame(schema={"id": pl.Int64, "indicator_id": pl.Int64})
    if events.is_empty() or indicators.is_empty():
        return empty
    observed = pl.concat([
        events.select("id", pl.col("source_ip").alias("key"), pl.lit("ip").alias("family")),
        events.select("id", pl.col("destination_ip").alias("key"), pl.lit("ip").alias("family")),
        events.select("id", pl.col("source_fqdn").str.to_lowercase().str.strip_suffix(".").alias("key"),
                      pl.lit("domain").alias("family")),
        events.select("id", pl.col("destination_fqdn").str.to_lowercase().str.strip_suffix(".").alias("key"),
                      pl.lit("domain").alias("family")),
        events.select("id", pl.col("source_url").alias("key"), pl.lit("url").alias("family")),
    ]).drop_nulls("key")
    exact = indicators.filter(pl.col("kind") != "cidr").with_columns(
        pl.col("kind").replace({"ipv4": "ip", "ipv6": "ip"}).alias("family"))
    pairs = [observed.join(exact.select("indicator_id", "key", "family"), on=["key", "family"], how="inner")
             .select("id", "indicator_id")]
    cidrs = indicators.filter(pl.col("kind") == "cidr")
    with_bin = events.filter(pl.col("source_ip_bin").is_not_null() & (pl.col("source_ip_bin").bin.size() == 16))
    if not cidrs.is_empty() and not with_bin.is_empty():
        hi, lo = _halves(with_bin["source_ip_bin"])
        ev = pl.DataFrame({"id": with_bin["id"], "hi": hi, "lo": lo})
        fh, fl = _halves(cidrs["first"])
        lh, ll = _halves(cidrs["last"])
        ranges = pl.DataFrame({"indicator_id": cidrs["indicator_id"], "f_hi": fh, "f_lo": fl, "l_hi": lh, "l_lo": ll})
        # CIDR bounds are aligned, so (hi, lo) inside [first, last] is four independent inequalities.
        pairs.append(ev.join_where(ranges, pl.col("hi") >= pl.col("f_hi"), pl.col("hi") <= pl.col("l_hi"),
                                   pl.col("lo") >= pl.col("f_lo"), pl.col("lo") <= pl.col("l_lo"))
                     .select("id", "indicator_id"))
    return pl.concat(pairs).unique()


def aggregate_sightings(events: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """One row per (indicator, organisation): count, first/last seen, last event, strictest TLP."""
    if pairs.is_empty():
        return pl.DataFrame()
    joined = pairs.join(events.select("id", "time_source", "org_id", "tlp"), on="id")
    return joined.with_columns(pl.col("org_id").fill_null(0).alias("org_key")).group_by(
        "indicator_id", "org_key").agg(
        pl.len().alias("count"), pl.col("time_source").min().alias("first_seen"),
        pl.col("time_source").max().alias("last_seen"), pl.col("id").max().alias("last_event_id"),
        _tlp_rank("tlp").max().alias("tlp_rank")).sort("indicator_id", "org_key")


def record_sightings(session: Session, agg: pl.DataFrame, now: datetime, centre_id: str) -> int:
    """Add the aggregated counts to the sightings (one STIX sighting per indicator and organisation)."""
    if agg.is_empty():
        return 0
    ind_ids = agg["indicator_id"].unique().to_list()
    indicators = {i.id: i for i in session.scalars(select(Indicator).where(Indicator.id.in_(ind_ids)))}
    current = {(s.indicator_id, s.org_key): s for s in session.scalars(
        select(Sighting).where(Sighting.indicator_id.in_(ind_ids)))}
    objects, share_plan = [], []
    for row in agg.iter_rows(named=True):  # one row per indicator x organisation
        ind = indicators[row["indicator_id"]]
        key = (row["indicator_id"], row["org_key"])
        label = tlpmod.stricter(ind.tlp, _label(row["tlp_rank"]))
        s = current.get(key)
        if s is None:
            s = Sighting(stix_id=stix.new_id("sighting"), indicator_id=ind.id, org_id=row["org_key"] or None,
                         org_key=row["org_key"], count=0, first_seen=row["first_seen"], last_seen=row["last_seen"],
                         last_event_id=0, owner_org_id=None, author_user_id=ind.author_user_id, modified=now)
            session.add(s)
        s.count += row["count"]
        s.first_seen = min(s.first_seen, row["first_seen"])
        s.last_seen = max(s.last_seen, row["last_seen"])
        s.last_event_id = max(s.last_event_id, row["last_event_id"])
        s.tlp = tlpmod.stricter(s.tlp or label, label) if s.id else label
        s.modified = _next_modified(now, s.modified if s.id else None)
        ind.sighting_count = (ind.sighting_count or 0) + row["count"]
        ind.last_seen = max(ind.last_seen or row["last_seen"], row["last_seen"])
        objects.append(stix.with_tlp({
            "type": "sighting", "spec_version": stix.SPEC, "id": s.stix_id, "created": stix.timestamp(now)
            if not s.id else None, "modified": stix.timestamp(s.modified), "created_by_ref": centre_id,
            "sighting_of_ref": ind.stix_id, "count": min(s.count, 999_999_999),
            "first_seen": stix.timestamp(s.first_seen), "last_seen": stix.timestamp(s.last_seen),
            "where_sighted_refs": [centre_id]}, s.tlp))
        share_plan.append((s, ind))
    session.flush()
    for obj, (s, _ind) in zip(objects, share_plan, strict=True):
        if obj["created"] is None:
            obj["created"] = stix.timestamp(_created_of(session, s.stix_id) or now)
    origin = services.Origin(source="events", owner_org_id=None, author_user_id=None, may_update_any=True)
    services.store_objects(session, objects, origin, now)
    for s, ind in share_plan:
        users = set(session.scalars(select(IntelShare.user_id).where(IntelShare.stix_id == ind.stix_id,
                                                                     IntelShare.user_id.is_not(None))))
        services.set_shares(session, s.stix_id, [s.org_id] if s.org_id else [], sorted(users))
    return len(objects)


def _next_modified(now: datetime, previous: datetime | None) -> datetime:
    stamp = stix.parse_timestamp(stix.timestamp(now), "modified")
    if previous is not None and stamp <= previous:
        stamp = stix.parse_timestamp(stix.timestamp(previous + services.MS), "modified")
    return stamp


def _created_of(session: Session, stix_id: str) -> datetime | None:
    from commonwatch.intel.models import IntelObject

    body = session.scalar(select(IntelObject.body).where(IntelObject.stix_id == stix_id, IntelObject.latest.is_(True)))
    if body is None:
        return None
    return stix.parse_timestamp(json.loads(body)["created"], "created")


# --- the job -----------------------------------------------------------------------------------------------

@dataclass
class EventPass:
    events: int = 0
    promoted: int = 0
    sightings: int = 0
    watermark: int = 0
    chunks: list[int] = field(default_factory=list)


def get_state(session: Session, key: str, default: str = "") -> str:
    row = session.get(IntelState, key)
    return row.value if row else default


def set_state(session: Session, key: str, value: str) -> None:
    row = session.get(IntelState, key)
    if row is None:
        session.add(IntelState(key=key, value=value))
    else:
        row.value = value


def process_events(sessionmaker, settings, clock, *, chunk: int = CHUNK, max_chunks: int = 20) -> EventPass:
    """Promote and sight events past the watermark; each chunk commits with its new watermark."""
    rules = promotion_rules(settings.data_dir)
    with session_scope(sessionmaker, actor="system intel-events") as session:
        centre = services.centre(session, settings)["id"]
    result = EventPass()
    for _ in range(max_chunks):
        with session_scope(sessionmaker, actor="system intel-events") as session:
            session.info["clock"] = clock
            now = clock.now()
            mark = int(get_state(session, WATERMARK, "0"))
            events = read_events(session, mark, chunk)
            if events.is_empty():
                result.watermark = mark
                break
            promoted = promote(session, events, rules, now, centre, settings.data_dir)
            session.flush()
            agg = aggregate_sightings(events, match_events(events, live_indicators(session, now, settings.data_dir)))
            sighted = record_sightings(session, agg, now, centre)
            new_mark = int(events["id"].max())
            set_state(session, WATERMARK, str(new_mark))
            audit.record(session, "intel.events", "events", f"{mark + 1}-{new_mark}", after={
                "events": events.height, "promoted": promoted, "sightings": sighted})
        result.events += events.height
        result.promoted += promoted
        result.sightings += sighted
        result.watermark = new_mark
        result.chunks.append(events.height)
        if events.height < chunk:
            break
    return result


def _events_job(state) -> EventPass:
    return process_events(state.sessionmaker, state.settings, state.clock)


def _feeds_job(state) -> dict[str, Any]:
    from commonwatch.intel import exchange

    return exchange.poll_due(state.sessionmaker, state.settings, state.clock)


JOBS = [Job("intel-events", 60.0, _events_job), Job("intel-feeds", 60.0, _feeds_job)]
