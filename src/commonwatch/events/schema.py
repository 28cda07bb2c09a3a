"""The canonical event: field names of the IntelMQ harmonisation plus commonwatch's own.

Each field has its harmonisation name (``source.ip``), the column that stores it
(``source_ip``), a Polars type for batches, and a description. IntelMQ interoperability (import of
IntelMQ JSON lines, ``events export --format intelmq``) goes through :data:`FIELDS`; fields that
are not columns travel in ``extra`` (``extra.*``).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Field:
    name: str  # harmonisation name, e.g. "source.ip"
    column: str  # events table column, e.g. "source_ip"
    dtype: type[pl.DataType] | pl.DataType
    description: str
    intelmq: bool = True  # part of the IntelMQ harmonisation (exported under the same name)


FIELDS: tuple[Field, ...] = (
    Field("time.source", "time_source", pl.Datetime("us", "UTC"), "When the feed saw it (UTC)."),
    Field("time.observation", "time_observation", pl.Datetime("us", "UTC"), "When commonwatch collected it (UTC)."),
    Field("feed.name", "feed_name", pl.String, "The feed, e.g. shadowserver-scan_http."),
    Field("feed.provider", "feed_provider", pl.String, "Who publishes the feed."),
    Field("source.ip", "source_ip", pl.String, "The address the observation is about."),
    Field("source.port", "source_port", pl.Int32, "Its port."),
    Field("source.asn", "source_asn", pl.Int64, "Autonomous system of source.ip."),
    Field("source.as_name", "source_as_name", pl.String, "Name of that AS."),
    Field("source.geolocation.cc", "source_cc", pl.String, "ISO 3166-1 country of source.ip."),
    Field("source.fqdn", "source_fqdn", pl.String, "Host name (ASCII/IDNA form)."),
    Field("source.url", "source_url", pl.String, "URL, e.g. of a phishing page."),
    Field("source.reverse_dns", "source_reverse_dns", pl.String, "PTR name of source.ip."),
    Field("destination.ip", "destination_ip", pl.String, "The other end, e.g. a sinkhole."),
    Field("destination.port", "destination_port", pl.Int32, "Its port."),
    Field("destination.fqdn", "destination_fqdn", pl.String, "Its host name."),
    Field("protocol.transport", "protocol_transport", pl.String, "tcp, udp, icmp, ..."),
    Field("protocol.application", "protocol_application", pl.String, "http, rdp, smb, dns, ..."),
    Field("classification.taxonomy", "classification_taxonomy", pl.String, "RSIT class (machine value)."),
    Field("classification.type", "classification_type", pl.String, "RSIT type (machine value)."),
    Field("classification.identifier", "classification_identifier", pl.String, "What exactly, e.g. open-rdp."),
    Field("malware.name", "malware_name", pl.String, "Malware family, lower case."),
    Field("extra", "extra", pl.String, "Everything else the feed said, as a JSON object."),
    Field("event.key", "event_key", pl.String, "Stable identity of the observation (dedup key).", False),
    Field("constituent.org_id", "org_id", pl.Int64, "Organisation whose network it is in.", False),
    Field("constituent.partner_org_id", "partner_org_id", pl.Int64, "Partner CERT it is routed to.", False),
    Field("constituent.sector", "constituent_sector", pl.String, "CII sector of that organisation.", False),
    Field("constituent.cii", "constituent_cii", pl.Boolean, "Is that organisation a CII operator.", False),
    Field("severity", "severity", pl.String, "info, low, medium, high or critical.", False),
    Field("gbt20986.category", "gbt_category", pl.String, "GB/T 20986-2023 category code.", False),
    Field("tlp", "tlp", pl.String, "TLP 2.0 label: CLEAR, GREEN, AMBER, AMBER+STRICT or RED.", False),
)

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
BY_COLUMN: dict[str, Field] = {f.column: f for f in FIELDS}
SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
TLP_LABELS: tuple[str, ...] = ("CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED")


def column_for(name: str) -> str | None:
    """The table column of a harmonisation field, or None if it belongs in ``extra``."""
    field = BY_NAME.get(name)
    return field.column if field else None
