"""Re-processing stored events after the registry, the enrichment data or the taxonomy changed:
enrich (where AS or country is missing), match and classify again, chunk by chunk, updating only
the rows whose outcome changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl
from sqlalchemy import select
from sqlalchemy.engine import Engine

from commonwatch.access.audit import record
from commonwatch.constituency.index import match_constituents, parse_ips
from commonwatch.enrichment.services import enrich
from commonwatch.events.models import Event
from commonwatch.events.taxonomy import classify
from commonwatch.pipeline.stages import References

CHUNK = 50_000
_READ = {"id": "id", "source_ip": "source.ip", "source_asn": "source.asn", "source_as_name": "source.as_name",
         "source_cc": "source.geolocation.cc", "source_fqdn": "source.fqdn",
         "classification_type": "classification.type", "classification_identifier": "classification.identifier",
         "classification_taxonomy": "old_taxonomy", "org_id": "old_org", "partner_org_id": "old_partner",
         "constituent_sector": "old_sector", "constituent_cii": "old_cii", "severity": "old_severity",
         "gbt_category": "old_gbt"}
_SCHEMA = {"id": pl.Int64, "source.ip": pl.String, "source.asn": pl.Int64, "source.as_name": pl.String,
           "source.geolocation.cc": pl.String, "source.fqdn": pl.String, "classification.type": pl.String,
           "classification.identifier": pl.String, "old_taxonomy": pl.String, "old_org": pl.Int64,
           "old_partner": pl.Int64, "old_sector": pl.String, "old_cii": pl.Boolean, "old_severity": pl.String,
           "old_gbt": pl.String}
_NEW = ["source.asn", "source.as_name", "source.geolocation.cc", "constituent.org_id", "constituent.partner_org_id",
        "constituent.sector", "constituent.cii", "severity", "gbt20986.category", "classification.taxonomy", "id"]


@dataclass
class RematchResult:
    examined: int = 0
    changed: int = 0


def rematch(engine: Engine, sessionmaker, refs: References, since: datetime, *, actor: str = "cli",
            clock=None, chunk: int = CHUNK) -> RematchResult:
    """Re-run enrich, match and classify on events with ``time.source >= since``."""
    result = RematchResult()
    last_id = 0
    cols = [getattr(Event, c) for c in _READ]
    while True:
        with engine.begin() as conn:
            rows = conn.execute(select(*cols).where(Event.time_source >= since, Event.id > last_id)
                                .order_by(Event.id).limit(chunk)).all()
            if not rows:
                break
            last_id = rows[-1][0]
            frame = pl.DataFrame([tuple(r) for r in rows], schema=_SCHEMA, orient="row")
            result.examined += frame.height
            frame = frame.with_columns(pl.col("source.asn").alias("old_asn"),
                                       pl.col("source.geolocation.cc").alias("old_cc"))
            ips = parse_ips(frame["source.ip"])
            frame = enrich(frame, refs.enrichment, ips)
            frame = match_constituents(frame, refs.index, ips.ip4, ips.ip6)
            frame = classify(frame, refs.taxonomy)
            changed = frame.filter(
                pl.col("constituent.org_id").ne_missing(pl.col("old_org"))
                | pl.col("constituent.partner_org_id").ne_missing(pl.col("old_partner"))
                | pl.col("constituent.sector").ne_missing(pl.col("old_sector"))
                | pl.col("constituent.cii").ne_missing(pl.col("old_cii"))
                | pl.col("severity").ne_missing(pl.col("old_severity"))
                | pl.col("gbt20986.category").ne_missing(pl.col("old_gbt"))
                | pl.col("classification.taxonomy").ne_missing(pl.col("old_taxonomy"))
                | pl.col("source.asn").ne_missing(pl.col("old_asn"))
                | pl.col("source.geolocation.cc").ne_missing(pl.col("old_cc"))
            )
            if changed.height:
                marker = "?" if conn.dialect.name == "sqlite" else "%s"
                sets = ", ".join(f"{c}={marker}" for c in (
                    "source_asn", "source_as_name", "source_cc", "org_id", "partner_org_id", "constituent_sector",
                    "constituent_cii", "severity", "gbt_category", "classification_taxonomy"))
                sql = f"UPDATE events SET {sets} WHERE id={marker}"  # noqa: S608
                conn.exec_driver_sql(sql, changed.select(_NEW).rows())
                result.changed += changed.height
    with sessionmaker() as session:
        session.info["actor"] = actor
        if clock is not None:
            session.info["clock"] = clock
        record(session, "events.rematch", "events", "", after={"since": since.isoformat(),
                                                               "examined": result.examined,
                                                               "changed": result.changed})
        session.commit()
    return result
