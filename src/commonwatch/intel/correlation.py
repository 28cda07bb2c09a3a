"""Correlation: for one address, network, domain, URL or hash, everything that mentions it.

Computed when asked, by set joins, with no pairwise correlation table (which grows as the square of
the data): the event store answers which events mention the value (:meth:`EventStore.mentions`,
under the reader's tenancy), and the intel and incident tables answer which indicators (TLP rule),
sightings, incidents (through their linked events) and tasks do, each through ``db.scope``.

A value in more events than ``common_events`` (``rules/correlation.yaml``) is *common*: it is
counted, its events are not listed, as MISP's warninglists keep common values out of correlation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.db import scope
from commonwatch.errors import Invalid
from commonwatch.events.store import MENTION_COLUMNS, Probe, event_store
from commonwatch.i18n import _
from commonwatch.incidents.models import Incident, IncidentEvent, IncidentTask
from commonwatch.intel import stix
from commonwatch.intel.models import Indicator, Sighting
from commonwatch.rules import RulesError, load_rules, rules_path

#: Kinds of value the page looks up, and the event-store family each is looked for as.
FAMILY = {"ipv4": "ip", "ipv6": "ip", "cidr": "net", "domain": "domain", "url": "url",
          "md5": None, "sha1": None, "sha256": None}
#: Events listed on a value's page (newest first); the count is always the whole.
EVENTS_SHOWN = 50
#: Indicators, incidents and tasks listed on a page.
ROWS_SHOWN = 200
DEFAULT_COMMON = 1000


@dataclass(frozen=True)
class Settings:
    common_events: int = DEFAULT_COMMON


def correlation_settings(data_dir: Path | None) -> Settings:
    """``rules/correlation.yaml``: the common-value cap (refused with the file and the reason)."""
    data = load_rules("correlation.yaml", data_dir)
    origin = str(rules_path("correlation.yaml", data_dir))
    rule = data.get("common_events")
    value = rule.get("value") if isinstance(rule, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RulesError(origin, "common_events.value must be a whole number of at least 1")
    return Settings(common_events=value)


@dataclass(frozen=True)
class Subject:
    """A value as looked up: its kind, normalised text and the probe the event store takes."""

    kind: str
    value: str
    probe: Probe | None
    first: bytes | None = None
    last: bytes | None = None


def subject_of(text: str, field_name: str = "value") -> Subject:
    """The kind and normalised form of a value typed by a person; :class:`Invalid` names the field."""
    text = (text or "").strip()
    if not text:
        raise Invalid(field_name, _("is empty"))
    kind = stix.detect_kind(text)
    if kind not in FAMILY:
        raise Invalid(field_name, _("“{value}” is not an address, network, domain, URL or hash").format(
            value=text[:200]))
    v = stix.normalise_value(kind, text, field_name)
    family = FAMILY[kind]
    probe = Probe(v.key, family, v.first, v.last) if family else None
    return Subject(kind, v.key, probe, v.first, v.last)


def subject_or_none(text: str | None) -> Subject | None:
    try:
        return subject_of(text or "")
    except Invalid:
        return None


@dataclass
class Correlation:
    subject: Subject
    events: int = 0
    common: bool = False
    event_ids: list[int] = field(default_factory=list)
    indicators: list[Indicator] = field(default_factory=list)
    sightings: list[Sighting] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    tasks: list[IncidentTask] = field(default_factory=list)
    #: The warning lists the value is on.
    warning_lists: list[str] = field(default_factory=list)

    def line(self) -> str:
        """“seen in 3 incidents, 2 indicators, 1,204 events” (plurals per language)."""
        line = summary_line(len(self.incidents), len(self.indicators), self.events, self.common)
        if self.warning_lists:
            line += " · " + _("on warning list: {names}").format(names=", ".join(self.warning_lists))
        return line


def summary_line(incidents: int, indicators: int, events: int, common: bool = False) -> str:
    # One message per form, not ngettext: the message catalogues carry no plural forms (Chinese has none).
    line = _("seen in {incidents}, {indicators}, {events}").format(
        incidents=_("1 incident") if incidents == 1 else _("{count} incidents").format(count=f"{incidents:,}"),
        indicators=_("1 indicator") if indicators == 1 else _("{count} indicators").format(count=f"{indicators:,}"),
        events=_("1 event") if events == 1 else _("{count} events").format(count=f"{events:,}"))
    return line + (" " + _("(common value)") if common else "")


def _indicator_conditions(subject: Subject) -> list[Any]:
    """Indicators holding the value: the same value; for an address also the networks containing it,
    for a network also the addresses and networks inside or around it (byte ranges of the 16-byte
    keys). One condition per query, each served by an index, rather than one OR the planner scans."""
    kinds = {"ipv4": ("ipv4", "ipv6"), "ipv6": ("ipv4", "ipv6")}.get(subject.kind, (subject.kind,))
    out = [and_(Indicator.kind.in_(kinds), Indicator.value_key == subject.value)]
    if subject.first is not None:
        out.append(and_(Indicator.kind == "cidr", Indicator.first <= subject.last, Indicator.last >= subject.first))
        if subject.kind == "cidr":
            out.append(and_(Indicator.kind.in_(("ipv4", "ipv6")), Indicator.first >= subject.first,
                            Indicator.first <= subject.last))
    return out


def indicators_of(session: Session, principal: Principal, subject: Subject) -> list[Indicator]:
    """The readable, unrevoked indicators holding the value (TLP rule through ``db.scope``)."""
    found: dict[int, Indicator] = {}
    for cond in _indicator_conditions(subject):
        stmt = scope(select(Indicator), principal, Indicator).where(cond, Indicator.revoked.is_(False))
        found.update((i.id, i) for i in session.scalars(stmt.limit(ROWS_SHOWN)))
    return sorted(found.values(), key=lambda i: (i.modified, i.id), reverse=True)[:ROWS_SHOWN]


def _linked_incidents(session: Session, principal: Principal, event_ids: list[int]) -> list[Incident]:
    out: dict[int, Incident] = {}
    for start in range(0, len(event_ids), 5000):
        chunk = event_ids[start:start + 5000]
        stmt = scope(select(Incident), principal, Incident).where(Incident.id.in_(
            select(IncidentEvent.incident_id).where(IncidentEvent.event_id.in_(chunk))))
        out.update((i.id, i) for i in session.scalars(stmt))
    return sorted(out.values(), key=lambda i: i.id, reverse=True)


def _incidents_of_common(session: Session, principal: Principal, subject: Subject) -> list[Incident]:
    """A common value's events are not listed, so its incidents are found the other way round: the
    events linked to the reader's incidents, fetched from the store and joined on the value."""
    links = session.execute(select(IncidentEvent.incident_id, IncidentEvent.event_id).where(
        IncidentEvent.incident_id.in_(scope(select(Incident.id), principal, Incident)))).all()
    if not links or subject.probe is None:
        return []
    ids = sorted({e for _i, e in links})
    columns = sorted({c for cols in MENTION_COLUMNS.values() for c in cols} | {"source_ip_bin"})
    frame = event_store(session).fetch(principal, ids, columns)
    if subject.probe.family == "net":
        hit = (pl.col("source_ip_bin") >= subject.first) & (pl.col("source_ip_bin") <= subject.last)
    else:
        hit = pl.any_horizontal([pl.col(c) == subject.value for c in MENTION_COLUMNS[subject.probe.family]])
    matched = set(frame.filter(hit.fill_null(False))["id"].to_list())
    incident_ids = sorted({i for i, e in links if e in matched})
    if not incident_ids:
        return []
    return list(session.scalars(scope(select(Incident), principal, Incident).where(
        Incident.id.in_(incident_ids)).order_by(Incident.id.desc())))


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def tasks_of(session: Session, principal: Principal, subject: Subject, incidents: list[Incident]) -> list[IncidentTask]:
    """Readable coordination tasks of those incidents, and those whose title or body names the value."""
    names = or_(IncidentTask.title.ilike(_like(subject.value), escape="\\"),
                IncidentTask.body.ilike(_like(subject.value), escape="\\"))
    cond = or_(names, IncidentTask.incident_id.in_([i.id for i in incidents])) if incidents else names
    stmt = scope(select(IncidentTask), principal, IncidentTask).where(cond).order_by(IncidentTask.id.desc())
    return list(session.scalars(stmt.limit(ROWS_SHOWN)))


def lists_of(subject: Subject, data_dir: Path | None) -> list[str]:
    """The warning lists holding the value (none when no folder is given)."""
    if data_dir is None:
        return []
    from commonwatch.intel import warninglists

    key = subject.first if subject.kind in ("ipv4", "ipv6") else None
    found = warninglists.hits(pl.DataFrame({"value": [subject.value], "key": [key]},
                                           schema={"value": pl.String, "key": pl.Binary}),
                              warninglists.loaded(data_dir))
    return sorted(set(found["list"].to_list()))


def correlate(session: Session, principal: Principal, subject: Subject, *, common_events: int,
              data_dir: Path | None = None) -> Correlation:
    """Everything the principal may read that mentions the value (and the warning lists it is on)."""
    out = Correlation(subject, warning_lists=lists_of(subject, data_dir))
    if subject.probe is not None:
        row = event_store(session).mentions(principal, [subject.probe], cap=common_events).row(0, named=True)
        out.events, out.event_ids = int(row["events"]), list(row["ids"])
        out.common = out.events > common_events
    out.indicators = indicators_of(session, principal, subject)
    if out.indicators:
        out.sightings = list(session.scalars(scope(select(Sighting), principal, Sighting).where(
            Sighting.indicator_id.in_([i.id for i in out.indicators])).order_by(Sighting.last_seen.desc())))
    out.incidents = (_incidents_of_common(session, principal, subject) if out.common
                     else _linked_incidents(session, principal, out.event_ids))
    out.tasks = tasks_of(session, principal, subject, out.incidents)
    return out


@dataclass(frozen=True)
class Line:
    """The short line shown beside an event, indicator or incident for one of its values."""

    value: str
    text: str
    common: bool


def lines_for(session: Session, principal: Principal, values: list[str], *, common_events: int,
              limit: int = 10, data_dir: Path | None = None) -> list[Line]:
    """Summary lines for up to ``limit`` distinct values (those that are not values are skipped)."""
    out = []
    seen: set[str] = set()
    for text in values:
        subject = subject_or_none(text)
        if subject is None or subject.value in seen:
            continue
        seen.add(subject.value)
        c = correlate(session, principal, subject, common_events=common_events, data_dir=data_dir)
        out.append(Line(subject.value, c.line(), c.common))
        if len(out) >= limit:
            break
    return out


def event_values(event: Any) -> list[str]:
    """The values of an event a reader can correlate on, in field order."""
    return [v for c in ("source_ip", "destination_ip", "source_fqdn", "destination_fqdn", "source_url")
            if (v := getattr(event, c, None))]


def incident_values(session: Session, principal: Principal, incident_id: int, limit: int = 10) -> list[str]:
    """Distinct values of an incident's linked events (its observables), first ``limit`` of them."""
    ids = list(session.scalars(select(IncidentEvent.event_id).where(IncidentEvent.incident_id == incident_id)
                               .order_by(IncidentEvent.id).limit(500)))
    if not ids:
        return []
    frame = event_store(session).fetch(principal, ids, ["source_ip", "destination_ip", "source_fqdn",
                                                        "destination_fqdn", "source_url"])
    values: list[str] = []
    for row in frame.iter_rows(named=True):
        for v in event_values(SimpleNamespace(**row)):
            if v not in values:
                values.append(v)
    return values[:limit]


def lines_for_page(request: Any, session: Session, principal: Principal, values: list[str]) -> list[Line]:
    """The lines for a page's values, with the cap of the app's rules (events, indicator and incident
    pages call this; a rules file that cannot be read leaves the lines out rather than the page)."""
    data_dir = request.app.state.settings.data_dir
    try:
        cap = correlation_settings(data_dir).common_events
    except RulesError:
        return []
    return lines_for(session, principal, values, common_events=cap, data_dir=data_dir)
