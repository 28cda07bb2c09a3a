"""Vulnerability workflows: storing records (no-op on re-import, history on a newer version,
quarantine with the reason), KEV and EPSS, and matching the inventory into findings whose status
(a false positive with its reason, an accepted risk) survives every later match."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch import db
from commonwatch.access import audit
from commonwatch.access.principal import SYSTEM, Principal
from commonwatch.cii.services import asset_frame
from commonwatch.errors import Forbidden, Invalid, NotFound
from commonwatch.vulns import intake
from commonwatch.vulns.intake import IntakeError, Record
from commonwatch.vulns.matching import criteria_frame, match
from commonwatch.vulns.models import (
    FINDING_STATUSES,
    VulnEpss,
    VulnFinding,
    VulnKev,
    VulnQuarantine,
    VulnRecord,
    VulnRecordVersion,
)

QUARANTINE_RAW_LIMIT = 1024 * 1024


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0            # an older version than the one held: not applied
    quarantined: int = 0
    reasons: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)   # records added or updated

    def merge(self, other: ImportReport) -> None:
        for k in ("added", "updated", "unchanged", "stale", "quarantined"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.reasons += other.reasons
        self.keys += other.keys


def _raw_text(raw: bytes) -> str:
    return raw[:QUARANTINE_RAW_LIMIT].decode("utf-8", "replace")


def quarantine(session: Session, name: str, reason: str, raw: bytes, now: datetime,
               failures: list[dict[str, str]] | None = None) -> None:
    session.add(VulnQuarantine(name=name[:500], reason=reason, raw=_raw_text(raw), created_at=now,
                               failures=failures or None))


def store_records(session: Session, records: Iterable[Record], now: datetime) -> ImportReport:
    """Insert new records; the same content again changes nothing; a newer ``modified`` replaces
    the record and keeps the one it replaces in ``vuln_record_versions``; an older one is skipped."""
    rep = ImportReport()
    for rec in records:
        row = session.scalars(select(VulnRecord).where(VulnRecord.record_key == rec.key)).first()
        values = dict(source=rec.source, record_id=rec.record_id, vuln_id=rec.vuln_id, state=rec.state,
                      modified=rec.modified, content_hash=rec.content_hash, title=rec.title[:5000],
                      summary=rec.summary, aliases=rec.aliases, cvss=rec.cvss, cwes=rec.cwes, kev=rec.kev,
                      criteria=rec.criteria, raw=rec.raw.decode("utf-8", "replace"))
        if row is None:
            session.add(VulnRecord(record_key=rec.key, imported_at=now, updated_at=now, **values))
            rep.added += 1
            rep.keys.append(rec.key)
        elif row.content_hash == rec.content_hash:
            rep.unchanged += 1
        elif rec.modified and row.modified and rec.modified < row.modified:
            rep.stale += 1
        else:
            session.add(VulnRecordVersion(record_id=row.id, version=row.version, modified=row.modified,
                                          content_hash=row.content_hash, raw=row.raw, replaced_at=now))
            for k, v in values.items():
                setattr(row, k, v)
            row.version += 1
            row.updated_at = now
            rep.updated += 1
            rep.keys.append(rec.key)
    session.flush()
    return rep


def import_document(session: Session, raw: bytes, name: str, now: datetime) -> ImportReport:
    """One JSON document: all its records are stored, or none (it is quarantined with the reason)."""
    try:
        records = intake.read_document(raw, name)
    except IntakeError as exc:
        quarantine(session, name, str(exc), raw, now, exc.failures)
        return ImportReport(quarantined=1, reasons=[f"{name}: {exc}"])
    with session.begin_nested():
        return store_records(session, records, now)


def _members(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        yield from intake.iter_folder(path)
    elif path.suffix.lower() == ".zip":
        yield from intake.iter_zip(path)
    else:
        if path.stat().st_size > intake.MAX_RECORD_BYTES * 8:
            raise IntakeError(str(path), "too large for one document")
        yield path.name, path.read_bytes()


def import_path(session: Session, path: Path, now: datetime) -> ImportReport:
    """A file (CVE 5, NVD page, OSV, CSAF), a cvelistV5 folder or a release/delta zip. A refused
    archive (a zip bomb, too large) raises :class:`IntakeError` before any record is stored."""
    if path.suffix.lower() == ".zip":
        list(intake.iter_zip_headers(path))  # every header checked before anything is stored
    rep = ImportReport()
    for name, raw in _members(path):
        rep.merge(import_document(session, raw, name, now))
    audit.record(session, "vulns.import", "vuln_records", str(path.name),
                 after={"added": rep.added, "updated": rep.updated, "unchanged": rep.unchanged,
                        "stale": rep.stale, "quarantined": rep.quarantined})
    return rep


def import_kev(session: Session, raw: bytes, now: datetime) -> int:
    header, items = intake.read_kev(intake.loads(raw, "kev"))
    with session.begin_nested():
        for it in items:
            row = session.get(VulnKev, it["cveID"]) or VulnKev(cve_id=it["cveID"])
            row.vendor_project, row.product = it["vendorProject"][:300], it["product"][:300]
            row.name, row.date_added, row.due_date = it["vulnerabilityName"], it["dateAdded"], it["dueDate"]
            row.required_action = it["requiredAction"]
            row.ransomware = it.get("knownRansomwareCampaignUse", "Unknown")[:16]
            row.catalog_version = str(header.get("catalogVersion") or "")[:32]
            session.add(row)
    audit.record(session, "vulns.import_kev", "vuln_kev", str(header.get("catalogVersion") or ""),
                 after={"items": len(items)})
    return len(items)


def import_epss(session: Session, text: str, now: datetime) -> int:
    meta, rows = intake.read_epss(text)
    with session.begin_nested():
        for cve, epss, pct in rows:
            row = session.get(VulnEpss, cve) or VulnEpss(cve_id=cve)
            row.epss, row.percentile, row.score_date = epss, pct, meta.get("score_date", "")[:32]
            session.add(row)
    audit.record(session, "vulns.import_epss", "vuln_epss", meta.get("score_date", ""), after={"rows": len(rows)})
    return len(rows)


def criteria_from_db(session: Session, record_keys: Iterable[str] | None = None) -> pl.DataFrame:
    stmt = select(VulnRecord.record_key, VulnRecord.criteria).where(VulnRecord.state == "PUBLISHED")
    if record_keys is not None:
        keys = list(record_keys)
        if not keys:
            return criteria_frame([])
        stmt = stmt.where(VulnRecord.record_key.in_(keys))
    rows, cfgs = [], {}
    for key, crits in session.execute(stmt):
        for c in crits or []:
            c = dict(c)
            local = c.pop("cfg_local", None)
            if local is not None:
                c["cfg"] = cfgs.setdefault((key, local), len(cfgs))
            rows.append(c)
    return criteria_frame(rows)


@dataclass
class MatchSummary:
    new: list[int] = field(default_factory=list)        # finding ids first seen in this run
    seen: int = 0
    closed: int = 0
    suppressed_by_vex: int = 0
    rejected: list[tuple[str, str, str]] = field(default_factory=list)


def run_match(session: Session, now: datetime, *, record_keys: Iterable[str] | None = None,
              org_ids: Iterable[int] | None = None) -> MatchSummary:
    """Match the inventory (through ``cii.services.asset_frame``) against the records (all, or the
    ``record_keys`` of a delta) and bring the findings up to date. A finding keeps its status;
    a full run marks findings it no longer finds as not matched (VEX, a changed version)."""
    assets = asset_frame(session, SYSTEM, org_ids)
    delta = record_keys is not None
    crits = criteria_from_db(session, record_keys)
    if delta and crits.height:
        # VEX statements for the same vulnerabilities held in other records still suppress.
        vulns = crits["vuln_id"].unique().to_list()
        others = session.execute(select(VulnRecord.record_key).where(VulnRecord.vuln_id.in_(vulns))).scalars().all()
        crits = criteria_from_db(session, set(others) | set(record_keys))
    result = match(assets, crits)
    summary = MatchSummary(suppressed_by_vex=result.suppressed.height,
                           rejected=list(result.rejected.iter_rows()))
    m = result.matches.unique(["asset_id", "vuln_id"], keep="first", maintain_order=True)
    existing = {(f.asset_id, f.vuln_id): f for f in session.scalars(
        select(VulnFinding).where(VulnFinding.vuln_id.in_(m["vuln_id"].unique().to_list()))
        if delta else select(VulnFinding))}
    found = set()
    for row in m.iter_rows(named=True):
        key = (row["asset_id"], row["vuln_id"])
        found.add(key)
        f = existing.get(key)
        if f is None:
            f = VulnFinding(org_id=row["org_id"], asset_id=row["asset_id"], system_id=row["system_id"],
                            vuln_id=row["vuln_id"], record_key=row["record_key"], identifier=row["identifier"][:1100],
                            reason=row["reason"], status="open", first_seen=now, last_seen=now)
            session.add(f)
            session.flush()
            summary.new.append(f.id)
        else:
            f.last_seen, f.reason, f.record_key, f.matched = now, row["reason"], row["record_key"], True
            summary.seen += 1
    if not delta:
        live_assets = set(assets["asset_id"].to_list())
        for key, f in existing.items():
            if key not in found and f.matched:
                f.matched = False
                summary.closed += 1
            if f.asset_id not in live_assets:
                session.delete(f)
    session.flush()
    audit.record(session, "vulns.match", "vuln_findings", "delta" if delta else "full",
                 after={"new": len(summary.new), "seen": summary.seen, "closed": summary.closed})
    return summary


def set_status(session: Session, principal: Principal, finding_id: int, status: str, reason: str,
               now: datetime) -> VulnFinding:
    """Change a finding's status; a false positive or an accepted risk needs a reason. The status
    survives every later match, so a false positive stays suppressed."""
    f = db.get_scoped(session, principal, VulnFinding, finding_id)
    if f is None:
        raise NotFound("finding")
    # Centre staff triage (vulns.write); an operator triages its own (it may edit its assets).
    if not (principal.can("vulns.write", f.org_id) or principal.can("assets.write", f.org_id)):
        raise Forbidden("triage this finding")
    if status not in FINDING_STATUSES:
        raise Invalid("status", f"{status!r} is not one of {', '.join(FINDING_STATUSES)}")
    if status in ("false_positive", "accepted_risk") and not reason.strip():
        raise Invalid("reason", "a reason is required for a false positive or an accepted risk")
    f.status, f.status_reason = status, reason.strip()
    return f  # not flushed: the request's session commits what is dirty


def open_findings(session: Session, principal: Principal, org_id: int | None = None) -> list[VulnFinding]:
    """Findings the principal may read that still need work (open, matched), most recent first."""
    stmt = db.scope(select(VulnFinding), principal, VulnFinding).where(
        VulnFinding.status == "open", VulnFinding.matched.is_(True))
    if org_id is not None:
        stmt = stmt.where(VulnFinding.org_id == org_id)
    return list(session.scalars(stmt.order_by(VulnFinding.first_seen.desc(), VulnFinding.id)))


def ranked_findings(session: Session, principal: Principal, *, org_id: int | None = None,
                    sector: str | None = None, statuses: Iterable[str] = ("open",),
                    data_dir: Path | None = None) -> pl.DataFrame:
    """The findings the principal may read, ranked (KEV, CVSS, EPSS, MLPS level) with severity and
    remediation deadline from ``rules/vuln_remediation.yaml``. ``sector`` is the coordinator's view
    across a sector's organisations."""
    from commonwatch.constituency.models import Organisation
    from commonwatch.vulns import ranking

    rules = ranking.load(data_dir)
    stmt = db.scope(select(VulnFinding), principal, VulnFinding).where(VulnFinding.status.in_(list(statuses)),
                                                                       VulnFinding.matched.is_(True))
    if org_id is not None:
        stmt = stmt.where(VulnFinding.org_id == org_id)
    if sector is not None:
        stmt = stmt.where(VulnFinding.org_id.in_(select(Organisation.id).where(Organisation.sector == sector)))
    rows = list(session.scalars(stmt))
    schema = {"id": pl.Int64, "org_id": pl.Int64, "asset_id": pl.Int64, "system_id": pl.Int64, "vuln_id": pl.Utf8,
              "identifier": pl.Utf8, "reason": pl.Utf8, "status": pl.Utf8, "status_reason": pl.Utf8,
              "first_seen": pl.Datetime("us", "UTC"), "record_key": pl.Utf8}
    if not rows:
        return pl.DataFrame(schema=schema | {"kev": pl.Boolean, "cvss_base": pl.Float64, "severity": pl.Utf8,
                                             "provider_role": pl.Utf8, "integrity": pl.Utf8,
                                             "epss": pl.Float64, "mlps_level": pl.Int8, "due": pl.Date,
                                             "rank": pl.UInt32})
    f = pl.DataFrame([{k: getattr(r, k) for k in schema} for r in rows], schema=schema)
    vulns = f["vuln_id"].unique().to_list()
    scores, provenance = {}, {}
    for key, cvss, prov in session.execute(select(VulnRecord.record_key, VulnRecord.cvss, VulnRecord.provenance)
                                           .where(VulnRecord.record_key.in_(f["record_key"].unique().to_list()))):
        scores[key] = ranking.score(cvss)
        provenance[key] = prov or {}
    kev = {k.cve_id: k.due_date for k in session.scalars(select(VulnKev).where(VulnKev.cve_id.in_(vulns)))}
    kev_records = {v for v, k in session.execute(select(VulnRecord.vuln_id, VulnRecord.kev).where(
        VulnRecord.vuln_id.in_(vulns))) if k}
    epss = {e.cve_id: e.epss for e in session.scalars(select(VulnEpss).where(VulnEpss.cve_id.in_(vulns)))}
    mlps = asset_frame(session, SYSTEM, f["org_id"].unique().to_list()).select("asset_id", "mlps_level")
    none = ranking.Score(None, None, None, "unknown")
    f = f.with_columns(
        kev=pl.col("vuln_id").is_in(list(set(kev) | kev_records)),
        cvss_base=pl.Series([scores.get(k, none).base for k in f["record_key"]], dtype=pl.Float64),
        severity=pl.Series([scores.get(k, none).severity for k in f["record_key"]], dtype=pl.Utf8),
        # a CSAF record's provider role and the advisory's integrity (R18–R20); null for other sources
        provider_role=pl.Series([provenance.get(k, {}).get("role") for k in f["record_key"]], dtype=pl.Utf8),
        integrity=pl.Series([provenance.get(k, {}).get("integrity") for k in f["record_key"]], dtype=pl.Utf8),
        epss=pl.col("vuln_id").replace_strict(epss, default=None, return_dtype=pl.Float64),
    ).join(mlps, on="asset_id", how="left")
    f = f.with_columns(due=pl.Series([ranking.due(fs, sev, kev.get(v), rules) for fs, sev, v in
                                      zip(f["first_seen"], f["severity"], f["vuln_id"], strict=True)], dtype=pl.Date))
    return ranking.rank(f)


def import_url(session: Session, url: str, settings, now: datetime, kind: str = "records") -> str:
    """Fetch ``url`` through the collector's outbound policy (allowlist, size and time limits) as a
    conditional request with the validators of the last fetch; an unchanged source costs one round
    trip. Returns what happened, also kept on the source row."""
    return fetch_source(session, url, settings, now, kind)[0]


def fetch_source(session: Session, url: str, settings, now: datetime, kind: str = "records"
                 ) -> tuple[str, list[str]]:
    """:func:`import_url`, and the keys of the records it added or updated (the delta to match).
    ``kind`` csaf-provider reads a CSAF provider (:mod:`commonwatch.vulns.csaf_provider`)."""
    import gzip

    from commonwatch import outbound
    from commonwatch.feeds.collect import fetch_url
    from commonwatch.vulns.models import VulnSource

    src = session.scalars(select(VulnSource).where(VulnSource.url == url)).first()
    if src is None:
        src = VulnSource(url=url, kind=kind, etag="", last_modified="", last_status="", cursor="")
        session.add(src)
    if src.kind == "csaf-provider":
        from commonwatch.vulns.csaf_provider import import_provider

        rep = import_provider(session, url, settings, now)
        src = session.scalars(select(VulnSource).where(VulnSource.url == url)).one()
        src.last_status, src.fetched_at = rep.summary(), now
        return src.last_status, rep.keys
    result = fetch_url(url, outbound.Policy.of(settings), etag=src.etag, last_modified=src.last_modified)
    src.fetched_at = now
    if result.not_modified:
        src.last_status = "304 not modified"
        return src.last_status, []
    try:
        raw = result.body.read_bytes() if result.body else b""
    finally:
        if result.body:
            result.body.unlink(missing_ok=True)
    if url.lower().endswith(".gz"):
        raw = gzip.decompress(raw)
    keys: list[str] = []
    if src.kind == "kev":
        status = f"{import_kev(session, raw, now)} KEV entries"
    elif src.kind == "epss":
        status = f"{import_epss(session, raw.decode('utf-8'), now)} EPSS scores"
    else:
        rep = import_document(session, raw, url, now)
        keys = rep.keys
        status = (f"{rep.added} added, {rep.updated} updated, {rep.unchanged} unchanged, "
                  f"{rep.quarantined} quarantined")
    src.etag, src.last_modified, src.last_status = result.etag[:500], result.last_modified[:100], status
    return status, keys


SUBSCRIBED_KINDS = ("records", "kev", "epss", "csaf-provider")


@dataclass
class PollReport:
    lines: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    failed: int = 0
    match: MatchSummary | None = None


def poll_sources(session: Session, settings, now: datetime) -> PollReport:
    """Fetch every subscribed source (a URL given to ``vulns import`` or ``vulns provider``; the
    per-advisory and listing rows a provider leaves are not polled on their own), each in its own
    savepoint so one failing source leaves the others' records; then match only the records added
    or updated (the delta) against all assets, in one pass."""
    from commonwatch.vulns.models import VulnSource

    rep = PollReport()
    for src in list(session.scalars(select(VulnSource).where(VulnSource.kind.in_(SUBSCRIBED_KINDS))
                                    .order_by(VulnSource.id))):
        url = src.url
        try:
            with session.begin_nested():
                status, keys = fetch_source(session, url, settings, now, src.kind)
        except (Invalid, IntakeError, OSError, UnicodeDecodeError) as exc:
            rep.failed += 1
            status, keys = f"failed: {exc}"[:4000], []
            src.last_status, src.fetched_at = status, now
        rep.lines.append(f"{url}: {status}")
        rep.keys += keys
    if rep.keys:
        rep.match = run_match(session, now, record_keys=list(dict.fromkeys(rep.keys)))
    return rep
