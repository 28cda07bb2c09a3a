"""Re-processing stored events after the registry, the enrichment data or the taxonomy changed:
enrich (where AS or country is missing), match and classify again, chunk by chunk, updating only
the rows whose outcome changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl
from sqlalchemy.engine import Engine

from commonwatch.access.audit import record
from commonwatch.access.principal import SYSTEM
from commonwatch.constituency.index import match_constituents, parse_ips
from commonwatch.enrichment.services import enrich
from commonwatch.events.store import MATCH_COLUMNS, event_store
from commonwatch.events.taxonomy import classify
from commonwatch.pipeline.stages import References

CHUNK = 50_000
_READ = {"id": "id", "source_ip": "source.ip", "source_asn": "source.asn", "source_as_name": "source.as_name",
         "source_cc": "source.geolocation.cc", "source_fqdn": "source.fqdn",
         "classification_type": "classification.type", "classification_identifier": "classification.identifier",
         "classification_taxonomy": "old_taxonomy", "org_id": "old_org", "partner_org_id": "old_partner",
         "constituent_sector": "old_sector", "constituent_cii": "old_cii", "severity": "old_severity",
         "gbt_category": "old_gbt"}
#: The outcome of each of the store's MATCH_COLUMNS, by the batch name it has after classify.
_NEW = dict(zip(MATCH_COLUMNS, ("source.asn", "source.as_name", "source.geolocation.cc", "constituent.org_id",
                                "constituent.partner_org_id", "constituent.sector", "constituent.cii", "severity",
                                "gbt20986.category", "classification.taxonomy"), strict=True))


@dataclass
class RematchResult:
    examined: int = 0
    changed: int = 0


def rematch(engine: Engine, sessionmaker, refs: References, since: datetime, *, actor: str = "cli",
            clock=None, chunk: int = CHUNK) -> RematchResult:
    """Re-run enrich, match and classify on events with ``time.source >= since``."""
    result = RematchResult()
    last_id = 0
    while True:
        with engine.begin() as conn:
            store = event_store(conn)
            # Rematch works for the centre over every tenant's events: it reads as the system.
            frame = store.scan(SYSTEM, list(_READ), after_id=last_id, limit=chunk, since=since).rename(_READ)
            if frame.is_empty():
                break
            last_id = int(frame["id"].max())
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
            result.changed += store.rewrite_match(
                changed.select("id", *(pl.col(new).alias(column) for column, new in _NEW.items())))
    with sessionmaker() as session:
        session.info["actor"] = actor
        if clock is not None:
            session.info["clock"] = clock
        record(session, "events.rematch", "events", "", after={"since": since.isoformat(),
                                                               "examined": result.examined,
                                                               "changed": result.changed})
        session.commit()
    return result
