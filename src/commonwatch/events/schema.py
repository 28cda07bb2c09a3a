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
#: The event fields of IntelMQ 3.5's harmonisation (``intelmq/etc/harmonization.conf``). Those the
#: store has no column for (``source.geolocation.region``, ``malware.hash.sha256``, ...) are kept in
#: ``extra`` under their own names and go back to those names in IntelMQ exports.
INTELMQ_FIELDS: frozenset[str] = frozenset({
    "classification.identifier", "classification.taxonomy", "classification.type", "comment", "constituency",
    "destination.abuse_contact", "destination.account", "destination.allocated", "destination.as_name",
    "destination.asn", "destination.domain_suffix", "destination.fqdn", "destination.geolocation.cc",
    "destination.geolocation.city", "destination.geolocation.country", "destination.geolocation.latitude",
    "destination.geolocation.longitude", "destination.geolocation.region", "destination.geolocation.state",
    "destination.ip", "destination.local_hostname", "destination.local_ip", "destination.network",
    "destination.port", "destination.registry", "destination.reverse_dns", "destination.tor_node",
    "destination.url", "destination.urlpath", "event_description.target", "event_description.text",
    "event_description.url", "event_hash", "feed.accuracy", "feed.code", "feed.documentation", "feed.name",
    "feed.provider", "feed.url", "malware.hash.md5", "malware.hash.sha1", "malware.hash.sha256", "malware.name",
    "malware.version", "misp.attribute_uuid", "misp.event_uuid", "output", "product.full_name", "product.name",
    "product.vendor", "product.version", "product.vulnerabilities", "protocol.application", "protocol.transport",
    "raw", "rtir_id", "screenshot_url", "severity", "source.abuse_contact", "source.account", "source.allocated",
    "source.as_name", "source.asn", "source.domain_suffix", "source.fqdn", "source.geolocation.cc",
    "source.geolocation.city", "source.geolocation.country", "source.geolocation.cymru_cc",
    "source.geolocation.geoip_cc", "source.geolocation.latitude", "source.geolocation.longitude",
    "source.geolocation.region", "source.geolocation.state", "source.ip", "source.local_hostname",
    "source.local_ip", "source.network", "source.port", "source.registry", "source.reverse_dns",
    "source.tor_node", "source.url", "source.urlpath", "status", "time.observation", "time.source", "tlp",
})
BY_COLUMN: dict[str, Field] = {f.column: f for f in FIELDS}
SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
TLP_LABELS: tuple[str, ...] = ("CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED")


def column_for(name: str) -> str | None:
    """The table column of a harmonisation field, or None if it belongs in ``extra``."""
    field = BY_NAME.get(name)
    return field.column if field else None
