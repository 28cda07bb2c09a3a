"""Rendering a delivery: its events, a per-type summary, the plain-text body and subject from
Jinja2 templates (overridable from ``$COMMONWATCH_DATA_DIR/templates/notify/``), the CSV
attachment (through ``exports.write_csv``), IntelMQ JSON lines and the webhook body."""

from __future__ import annotations

import io
import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from jinja2 import Environment
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commonwatch import i18n
from commonwatch.access.principal import SYSTEM
from commonwatch.clock import ensure_utc
from commonwatch.events.export import intelmq_extra
from commonwatch.events.schema import BY_NAME, SEVERITIES, TLP_LABELS
from commonwatch.events.store import event_store
from commonwatch.exports import write_csv
from commonwatch.i18n import N_, _
from commonwatch.notify.advice import advice_for, severity_label, type_label
from commonwatch.notify.models import EventWarning, LedgerEntry
from commonwatch.web.templating import format_datetime

#: The attachment's columns: IntelMQ harmonisation names, then commonwatch's own.
CSV_FIELDS = ("time.source", "feed.name", "classification.taxonomy", "classification.type",
              "classification.identifier", "severity", "tlp", "source.ip", "source.port", "source.asn",
              "source.as_name", "source.geolocation.cc", "source.fqdn", "source.reverse_dns", "source.url",
              "destination.ip", "destination.port", "destination.fqdn", "protocol.transport",
              "protocol.application", "malware.name", "event.key", "extra")
_TLP_RANK = {t: i for i, t in enumerate(TLP_LABELS)}
_SEV_RANK = {s: i for i, s in enumerate(SEVERITIES)}
TLP_MEANINGS = {
    "CLEAR": N_("Disclosure is not limited."),
    "GREEN": N_("Share within your community, not through public channels."),
    "AMBER": N_("Share only within your organisation and its clients, on a need-to-know basis."),
    "AMBER+STRICT": N_("Share only within your organisation, on a need-to-know basis."),
    "RED": N_("For the named recipients only; do not share further."),
}
#: IntelMQ's TLP field knows TLP 1.0 names only.
_INTELMQ_TLP = {"CLEAR": "WHITE", "AMBER+STRICT": "AMBER"}


@dataclass
class Digest:
    subject: str
    text: str
    csv: bytes
    jsonl: bytes | None
    tlp: str
    count: int
    summary: list[dict[str, Any]]


def load_events(session: Session, delivery_id: int) -> pl.DataFrame:
    """The events of one delivery with their warning ids and how often each was seen again."""
    # The delivery's ledger names its events; the store gives their columns (it joins nothing).
    # The delivery's own scope was checked by its caller, so the events are read as the system.
    links = pl.DataFrame(session.execute(select(LedgerEntry.event_id, LedgerEntry.warning_id)
                                         .where(LedgerEntry.delivery_id == delivery_id)).all(),
                         schema={"event_id": pl.Int64, "warning_id": pl.Int64}, orient="row")
    names = {BY_NAME[name].column: name for name in CSV_FIELDS}
    events = event_store(session).fetch(SYSTEM, links["event_id"].to_list(), [*names, "org_id"])
    frame = (events.rename({"id": "event_id", **names}).join(links, on="event_id", how="inner")
             .sort(["time.source", "event_id"]).select([*CSV_FIELDS, "event_id", "warning_id", "org_id"]))
    if frame.is_empty():
        return frame.with_columns(pl.lit(0, pl.Int64).alias("repeats"))
    ids = frame["warning_id"].to_list()
    counts: list[tuple[int, int]] = []
    for start in range(0, len(ids), 5000):
        counts += session.execute(select(EventWarning.repeat_of_id, func.count())
                                  .where(EventWarning.repeat_of_id.in_(ids[start:start + 5000]))
                                  .group_by(EventWarning.repeat_of_id)).all()
    repeats = pl.DataFrame(counts, schema={"warning_id": pl.Int64, "repeats": pl.Int64}, orient="row")
    return frame.join(repeats, on="warning_id", how="left").with_columns(pl.col("repeats").fill_null(0))


def highest_tlp(values: list[str]) -> str:
    known = [v for v in values if v in _TLP_RANK]
    return max(known, key=_TLP_RANK.__getitem__) if known else "AMBER"


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(value: Any, width: int) -> str:
    """Left-align in a plain-text table; Chinese characters take two columns."""
    text = str(value)
    return text + " " * max(0, width - display_width(text))


def summarise(events: pl.DataFrame, examples: int) -> list[dict[str, Any]]:
    """One row per classification type: count, highest severity, re-observations and the first
    ``examples`` events by severity, then time (ties keep the delivery's order)."""
    groups = (events.lazy()
              .with_columns(pl.col("severity").replace_strict(_SEV_RANK, default=0, return_dtype=pl.Int32)
                            .alias("_rank"))
              .group_by("classification.type")
              .agg(pl.len().alias("count"), pl.col("_rank").max().alias("rank"), pl.col("repeats").sum(),
                   pl.col("source.ip").n_unique().alias("hosts"),
                   pl.struct(events.columns)
                   .sort_by(["_rank", "time.source"], descending=[True, False], maintain_order=True)
                   .head(max(examples, 0)).alias("examples"))
              .sort(["rank", "count", "classification.type"], descending=[True, True, False])
              .collect())
    return [{"type": row["classification.type"], "label": type_label(row["classification.type"]),
             "count": row["count"], "hosts": row["hosts"], "severity": SEVERITIES[row["rank"]],
             "severity_label": severity_label(SEVERITIES[row["rank"]]), "repeats": row["repeats"],
             "advice": advice_for(row["classification.type"]), "examples": row["examples"]}
            for row in groups.iter_rows(named=True)]


def csv_bytes(events: pl.DataFrame) -> bytes:
    """The attachment: one row per event, harmonisation names as header, formula-safe cells."""
    buf = io.StringIO()
    frame = events.select([pl.col("time.source").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                           *[pl.col(c) for c in CSV_FIELDS[1:]]])
    write_csv(buf, CSV_FIELDS, frame.iter_rows())
    return buf.getvalue().encode("utf-8")


def event_dicts(events: pl.DataFrame, *, intelmq: bool) -> list[dict[str, Any]]:
    """Events as harmonisation-named objects; ``intelmq`` keeps IntelMQ's fields and TLP names."""
    out = []
    fields = [f for f in CSV_FIELDS if f != "extra" and (not intelmq or BY_NAME[f].intelmq or f == "tlp")]
    frame = events.with_columns(pl.col("time.source").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
    for row in frame.iter_rows(named=True):
        item = {f: row[f] for f in fields if row[f] is not None and row[f] != ""}
        extra = json.loads(row["extra"]) if row["extra"] else None
        if intelmq:
            item["tlp"] = _INTELMQ_TLP.get(item.get("tlp", ""), item.get("tlp"))
            for key, value in intelmq_extra(extra or {}):
                item.setdefault(key, value)
        elif extra:
            item["extra"] = extra
        out.append(item)
    return out


def intelmq_jsonl(events: pl.DataFrame) -> bytes:
    lines = [json.dumps(e, ensure_ascii=False, sort_keys=True) for e in event_dicts(events, intelmq=True)]
    return ("\n".join(lines) + "\n").encode("utf-8")


def build_digest(env: Environment, *, delivery_id: int, language: str, events: pl.DataFrame, centre: str,
                 centre_zh: str, org_name: str, org_name_local: str, timezone: str, base_url: str,
                 attach_intelmq: bool, inline_per_type: int, partner: bool = False) -> Digest:
    """Render one digest in ``language`` (en or zh-CN)."""
    tlp = highest_tlp(events["tlp"].drop_nulls().unique().to_list()) if events.height else "AMBER"
    with i18n.use_language(language):
        summary = summarise(events, inline_per_type)
        times = events["time.source"]
        context = {
            "centre": i18n.pick(centre, centre_zh), "organisation": i18n.pick(org_name, org_name_local or org_name),
            "tlp": tlp, "tlp_meaning": _(TLP_MEANINGS.get(tlp, TLP_MEANINGS["AMBER"])),
            "count": events.height, "summary": summary, "delivery_id": delivery_id,
            "first": format_datetime(times.min(), timezone) if events.height else "",
            "last": format_datetime(times.max(), timezone) if events.height else "",
            "portal_url": base_url.rstrip("/") + "/warnings", "csv_name": f"commonwatch-{delivery_id}.csv",
            "jsonl_name": f"commonwatch-{delivery_id}.intelmq.jsonl" if attach_intelmq else "",
            "repeats": int(events["repeats"].sum()) if events.height else 0, "pad": pad,
            "label_width": max([display_width(_("Type"))] + [display_width(r["label"]) for r in summary]) + 2,
            "when": lambda v: format_datetime(v, timezone), "language": language, "partner": partner,
        }
        text = env.select_template([f"notify/digest.{language}.txt", "notify/digest.txt"]).render(**context)
        subject = env.select_template([f"notify/subject.{language}.txt", "notify/subject.txt"]).render(**context)
    return Digest(subject=" ".join(subject.split()), text=text, csv=csv_bytes(events),
                  jsonl=intelmq_jsonl(events) if attach_intelmq else None, tlp=tlp, count=events.height,
                  summary=[{k: v for k, v in row.items() if k != "examples"} for row in summary])


def webhook_payload(*, delivery_id: int, org_id: int, org_name: str, centre: str, tlp: str, events: pl.DataFrame,
                    summary: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    return {
        "delivery": delivery_id, "centre": centre, "organisation": {"id": org_id, "name": org_name},
        "generated_at": ensure_utc(now).isoformat(), "tlp": tlp, "count": events.height,
        "summary": [{"type": s["type"], "count": s["count"], "severity": s["severity"], "repeats": s["repeats"]}
                    for s in summary],
        "events": event_dicts(events, intelmq=False),
    }
