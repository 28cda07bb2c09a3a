"""STIX 2.1: markings (TLP 2.0 and 1.0), the centre's identity, indicator patterns, validation of
incoming objects one by one, and the mapping between an indicator's JSON and its columns.

Pure functions: plain values in, plain values out. Storage is in ``services``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from commonwatch.errors import Invalid
from commonwatch.i18n import _
from commonwatch.intel import tlp as tlpmod
from commonwatch.net import network_bounds
from commonwatch.validation import normalise_domain, normalise_email, parse_cidr

SPEC = "2.1"
TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_MARKINGS: dict[str, str] = {
    "CLEAR": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "GREEN": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "AMBER": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "AMBER+STRICT": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "RED": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
#: TLP 1.0 as STIX 2.1 defines it (WHITE is CLEAR in TLP 2.0).
TLP1_MARKINGS: dict[str, str] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "CLEAR",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "GREEN",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "AMBER",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "RED",
}
MARKING_TLP: dict[str, str] = {**{v: k for k, v in TLP2_MARKINGS.items()}, **TLP1_MARKINGS}
#: The OASIS TLP 2.0 extension definition, shipped with every export that uses TLP 2.0 markings.
TLP2_EXTENSION_OBJECT: dict[str, Any] = {
    "type": "extension-definition", "spec_version": SPEC, "id": TLP2_EXTENSION,
    "created_by_ref": "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01",
    "created": "2022-09-02T20:37:54.000Z", "modified": "2022-09-02T20:37:54.000Z", "name": "TLP 2.0",
    "description": "This marking definition extension allows for the representation of TLP 2.0 markings.",
    "schema": "https://github.com/oasis-open/cti-stix-common-objects/tree/main/extension-definition-specifications/tlp-2.0",
    "version": "1.0.0", "extension_types": ["property-extension"],
}

#: commonwatch's own STIX 2.1 property extension: what commonwatch adds to objects it produces (the
#: evidence of a promoted indicator, the MISP attribute an indicator came from, a software object's
#: purl). Its JSON schema ships in ``intel/schemas/`` and is carried, as text, in the extension
#: definition itself (air-gapped readers cannot follow a URL). Fixed ids: the same definition in every installation.
EXTENSION = "extension-definition--c22005f3-9b10-46b6-b6f7-50f17b65034a"
#: The author of the extension definition: the commonwatch project (not a centre).
PROJECT_IDENTITY: dict[str, Any] = {
    "type": "identity", "spec_version": SPEC, "id": "identity--0679f5f0-b008-47b9-aa8b-11fc9380ce42",
    "created": "2026-12-01T00:00:00.000Z", "modified": "2026-12-01T00:00:00.000Z", "name": "commonwatch project",
    "description": "The authors of the commonwatch platform, who define its STIX extension.",
    "identity_class": "organization"}
SCHEMA_DIR = Path(__file__).parent / "schemas"
EXTENSION_SCHEMA = (SCHEMA_DIR / f"{EXTENSION}.json").read_text(encoding="utf-8")
EXTENSION_OBJECT: dict[str, Any] = {
    "type": "extension-definition", "spec_version": SPEC, "id": EXTENSION,
    "created_by_ref": PROJECT_IDENTITY["id"], "created": "2026-12-01T00:00:00.000Z",
    "modified": "2026-12-04T00:00:00.000Z", "name": "commonwatch provenance",
    "description": "Properties commonwatch adds to the objects it produces: `evidence` (the events and feeds "
                   "that confirmed an indicator promoted from feed events), `decay_until` (the valid_until decay gave "
                   "it), `misp` (the MISP attribute an indicator was converted from) and `purl` (the package URL of "
                   "a software object, which STIX 2.1 has no property for). The schema property holds the JSON "
                   "schema.",
    "schema": EXTENSION_SCHEMA, "version": "1.2.0", "extension_types": ["property-extension"]}
#: Custom properties older versions wrote at the top level, and where each lives in the extension now.
LEGACY_PROPERTIES: dict[str, tuple[str, str | None]] = {
    "x_commonwatch_evidence": ("evidence", None), "x_misp_type": ("misp", "attribute_type"),
    "x_misp_category": ("misp", "category"), "x_misp_to_ids": ("misp", "to_ids"),
    "x_misp_event_uuid": ("misp", "event_uuid")}


def with_extension(obj: dict[str, Any], **props: Any) -> dict[str, Any]:
    """``obj`` with commonwatch's extension carrying ``props`` (merged with what it already carries)."""
    extensions = dict(obj.get("extensions") or {})
    mine = {"extension_type": "property-extension", **(extensions.get(EXTENSION) or {})}
    mine.update({k: v for k, v in props.items() if v is not None})
    extensions[EXTENSION] = mine
    return {**obj, "extensions": extensions}


def extension_of(obj: dict[str, Any]) -> dict[str, Any]:
    """What commonwatch's extension holds on an object, reading the old custom properties too."""
    out: dict[str, Any] = {}
    for key, (part, name) in LEGACY_PROPERTIES.items():
        if key in obj:
            if name is None:
                out[part] = obj[key]
            else:
                out.setdefault(part, {})[name] = obj[key]
    mine = (obj.get("extensions") or {}).get(EXTENSION) or {}
    for part, value in mine.items():
        if part != "extension_type":
            out[part] = {**out.get(part, {}), **value} if isinstance(value, dict) else value
    return out


def upgrade_legacy(obj: dict[str, Any]) -> dict[str, Any]:
    """An object older versions produced, with its custom properties moved into the extension."""
    if not any(key in obj for key in LEGACY_PROPERTIES):
        return obj
    props = extension_of(obj)
    return with_extension({k: v for k, v in obj.items() if k not in LEGACY_PROPERTIES}, **props)


SDO_TYPES = frozenset({
    "attack-pattern", "campaign", "course-of-action", "grouping", "identity", "incident", "indicator",
    "infrastructure", "intrusion-set", "location", "malware", "malware-analysis", "note", "observed-data",
    "opinion", "report", "threat-actor", "tool", "vulnerability"})
SRO_TYPES = frozenset({"relationship", "sighting"})
SCO_TYPES = frozenset({
    "artifact", "autonomous-system", "directory", "domain-name", "email-addr", "email-message", "file",
    "ipv4-addr", "ipv6-addr", "mac-addr", "mutex", "network-traffic", "process", "software", "url",
    "user-account", "windows-registry-key", "x509-certificate"})
META_TYPES = frozenset({"marking-definition", "extension-definition", "language-content"})
KNOWN_TYPES = SDO_TYPES | SRO_TYPES | SCO_TYPES | META_TYPES

KINDS: tuple[str, ...] = ("ipv4", "ipv6", "cidr", "domain", "url", "email", "md5", "sha1", "sha256", "pattern")
#: Indicator properties that have a column; the rest are kept in the JSON and listed as unmapped.
MAPPED = frozenset({
    "type", "spec_version", "id", "created", "modified", "name", "description", "pattern", "pattern_type",
    "valid_from", "valid_until", "indicator_types", "labels", "kill_chain_phases", "confidence", "revoked",
    "object_marking_refs", "created_by_ref"})

_ID_RE = re.compile(r"^([a-z0-9][a-z0-9-]*[a-z0-9])--([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_HASH_LEN = {"md5": 32, "sha1": 40, "sha256": 64}
_PATTERN_OBJ = {
    "ipv4": ("ipv4-addr:value", "="), "ipv6": ("ipv6-addr:value", "="), "domain": ("domain-name:value", "="),
    "url": ("url:value", "="), "email": ("email-addr:value", "="), "md5": ("file:hashes.MD5", "="),
    "sha1": ("file:hashes.'SHA-1'", "="), "sha256": ("file:hashes.'SHA-256'", "="),
}
_SIMPLE_RE = re.compile(
    r"^\[\s*(ipv4-addr|ipv6-addr|domain-name|url|email-addr|file)\s*:\s*"
    r"(value|hashes\.MD5|hashes\.'MD5'|hashes\.'SHA-1'|hashes\.SHA1|hashes\.'SHA-256'|hashes\.SHA256)\s*"
    r"(=|ISSUBSET)\s*'((?:[^'\\]|\\.)*)'\s*\]$")


# --- time -----------------------------------------------------------------------------------------

def timestamp(value: datetime) -> str:
    """A STIX timestamp (UTC, millisecond precision, ``Z``)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_timestamp(value: Any, field_name: str) -> datetime:
    if not isinstance(value, str) or not _TS_RE.match(value):
        raise Invalid(field_name, _("is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.sss]Z)"))
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(field_name, _("is not a valid date and time")) from None


# --- markings and identity --------------------------------------------------------------------------

def marking_object(label: str) -> dict[str, Any]:
    """The TLP 2.0 marking definition for a label, as the OASIS extension defines it."""
    return {
        "type": "marking-definition", "spec_version": SPEC, "id": TLP2_MARKINGS[label],
        "created": "2022-10-01T00:00:00.000Z", "name": f"TLP:{label}",
        "extensions": {TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": label.lower()}},
    }


def tlp_of(obj: dict[str, Any]) -> str | None:
    """The strictest TLP label among an object's markings, or None if it carries none."""
    found = [MARKING_TLP[ref] for ref in obj.get("object_marking_refs") or [] if ref in MARKING_TLP]
    if not found:
        return None
    return max(found, key=lambda label: tlpmod.RANK[label])


def with_tlp(obj: dict[str, Any], label: str) -> dict[str, Any]:
    """``obj`` marked with ``label`` (other, non-TLP markings are kept)."""
    others = [ref for ref in obj.get("object_marking_refs") or [] if ref not in MARKING_TLP]
    return {**obj, "object_marking_refs": [TLP2_MARKINGS[label], *others]}


def centre_identity(name: str, base_url: str, ident: str) -> dict[str, Any]:
    """The coordination centre as a STIX identity. ``ident`` is the installation's own random UUIDv4,
    made once and kept (``services.centre_uuid``): STIX 2.1 wants UUIDv4 for every object that is not
    a cyber-observable, so the id is not derived from the name or the URL."""
    return {"type": "identity", "spec_version": SPEC, "id": f"identity--{ident}",
            "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
            "name": name, "description": f"The coordination centre at {base_url.rstrip('/')}",
            "identity_class": "organization", "sectors": ["government-national"]}


def new_id(kind: str) -> str:
    return f"{kind}--{uuid.uuid4()}"


# --- indicator values and patterns ---------------------------------------------------------------------

@dataclass(frozen=True)
class Value:
    kind: str
    value: str
    key: str
    first: bytes | None = None
    last: bytes | None = None


def detect_kind(value: str) -> str:
    """The kind of a bare value: an address, a network, a URL, an email address, a hash or a domain."""
    text = value.strip()
    try:
        return "ipv4" if ipaddress.ip_address(text).version == 4 else "ipv6"
    except ValueError:
        pass
    if "/" in text and not re.match(r"^[a-z][a-z0-9+.-]*://", text, re.I):
        return "cidr"
    if re.match(r"^[a-z][a-z0-9+.-]*://", text, re.I):
        return "url"
    if "@" in text:
        return "email"
    if re.fullmatch(r"[0-9a-fA-F]+", text) and len(text) in (32, 40, 64):
        return {32: "md5", 40: "sha1", 64: "sha256"}[len(text)]
    return "domain"


def normalise_value(kind: str, value: str, field_name: str = "value") -> Value:
    """Check a value of a kind and give its matching key; raises :class:`Invalid` naming the field."""
    text = (value or "").strip()
    if not text:
        raise Invalid(field_name, _("is empty"))
    if kind in ("ipv4", "ipv6"):
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise Invalid(field_name, _("“{value}” is not an IP address").format(value=text)) from None
        if (ip.version == 4) != (kind == "ipv4"):
            raise Invalid(field_name, _("“{value}” is not an {kind} address").format(
                value=text, kind="IPv4" if kind == "ipv4" else "IPv6"))
        net = ipaddress.ip_network(ip)
        first, last = network_bounds(net)
        return Value(kind, str(ip), str(ip), first, last)
    if kind == "cidr":
        net = parse_cidr(text, field_name)
        first, last = network_bounds(net)
        return Value(kind, str(net), str(net), first, last)
    if kind == "domain":
        name = normalise_domain(text, field_name)
        return Value(kind, name, name)
    if kind == "url":
        if len(text) > 2048 or not re.match(r"^(https?|ftp)://[^\s/?#]+[^\s]*$", text, re.I):
            raise Invalid(field_name, _("“{value}” is not an http, https or ftp URL").format(value=text[:200]))
        return Value(kind, text, text)
    if kind == "email":
        address = normalise_email(text, field_name)
        return Value(kind, address, address)
    if kind in _HASH_LEN:
        if not re.fullmatch(r"[0-9a-fA-F]+", text) or len(text) != _HASH_LEN[kind]:
            raise Invalid(field_name, _("is not a {kind} hash ({n} hexadecimal digits)").format(
                kind=kind.upper(), n=_HASH_LEN[kind]))
        return Value(kind, text.lower(), text.lower())
    raise Invalid("kind", _("“{kind}” is not one of {kinds}").format(kind=kind, kinds=", ".join(KINDS)))


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def pattern_for(v: Value) -> str:
    """The STIX pattern of a single value."""
    if v.kind == "cidr":
        prefix = "ipv4-addr" if ":" not in v.value else "ipv6-addr"
        return f"[{prefix}:value ISSUBSET '{_quote(v.value)}']"
    path, op = _PATTERN_OBJ[v.kind]
    return f"[{path} {op} '{_quote(v.value)}']"


def value_of_pattern(pattern: str) -> Value | None:
    """The single value a simple pattern tests (``[ipv4-addr:value = '…']``), or None."""
    m = _SIMPLE_RE.match(pattern.strip())
    if not m:
        return None
    obj, prop, op, raw = m.groups()
    text = re.sub(r"\\(.)", r"\1", raw)
    if obj == "file":
        kind = "md5" if "MD5" in prop else ("sha1" if "SHA" in prop and "1" in prop else "sha256")
    elif op == "ISSUBSET":
        if obj not in ("ipv4-addr", "ipv6-addr"):
            return None
        kind = "cidr"
    else:
        kind = {"ipv4-addr": "ipv4", "ipv6-addr": "ipv6", "domain-name": "domain", "url": "url",
                "email-addr": "email"}[obj]
    if prop != "value" and obj != "file":
        return None
    try:
        return normalise_value(kind, text, "pattern")
    except Invalid:
        return None


def check_pattern(pattern: str, field_name: str = "pattern") -> None:
    """Raise :class:`Invalid` with the parser's message if ``pattern`` is not a valid STIX 2.1 pattern."""
    from stix2patterns.validator import run_validator

    if not isinstance(pattern, str) or not pattern.strip():
        raise Invalid(field_name, _("is empty"))
    errors = run_validator(pattern, stix_version=SPEC)
    if errors:
        raise Invalid(field_name, _("is not a valid STIX pattern: {reason}").format(reason="; ".join(errors)))


# --- checking incoming objects ---------------------------------------------------------------------------

@dataclass
class Checked:
    """An incoming object that passed the checks, with what commonwatch makes of it."""

    obj: dict[str, Any]
    stix_id: str
    type: str
    version: datetime | None
    created: datetime | None
    tlp: str | None
    indicator: dict[str, Any] | None = None  # the typed columns, for indicators
    unmapped: list[str] = field(default_factory=list)


def check_object(obj: Any) -> Checked:
    """Check one STIX 2.1 object; raises :class:`Invalid` naming the property and the reason."""
    if not isinstance(obj, dict):
        raise Invalid("object", _("is not a JSON object"))
    kind = obj.get("type")
    if not isinstance(kind, str) or not kind:
        raise Invalid("type", _("is missing"))
    ident = obj.get("id")
    m = _ID_RE.match(ident) if isinstance(ident, str) else None
    if m is None or m.group(1) != kind:
        raise Invalid("id", _("must be “{type}--” followed by a UUID").format(type=kind))
    if kind not in KNOWN_TYPES:
        raise Invalid("type", _("“{type}” is not a STIX 2.1 object type commonwatch accepts").format(type=kind))
    spec = obj.get("spec_version")
    if kind in SCO_TYPES:
        if spec is not None and spec != SPEC:
            raise Invalid("spec_version", _("must be 2.1, not {value}").format(value=spec))
    elif spec != SPEC:
        raise Invalid("spec_version", _("must be 2.1, not {value}").format(value=spec))
    created = parse_timestamp(obj["created"], "created") if "created" in obj else None
    modified = parse_timestamp(obj["modified"], "modified") if "modified" in obj else None
    if kind in SDO_TYPES | SRO_TYPES and (created is None or modified is None):
        raise Invalid("created" if created is None else "modified", _("is required"))
    if created and modified and modified < created:
        raise Invalid("modified", _("is earlier than created"))
    refs = obj.get("object_marking_refs", [])
    if not isinstance(refs, list) or not all(isinstance(r, str) and r.startswith("marking-definition--")
                                             for r in refs):
        raise Invalid("object_marking_refs", _("must be a list of marking-definition ids"))
    checked = Checked(obj=obj, stix_id=ident, type=kind, version=modified or created, created=created,
                      tlp=tlp_of(obj))
    if kind == "indicator":
        checked.indicator = indicator_columns(obj)
        checked.unmapped = sorted(k for k in obj if k not in MAPPED)
    elif kind not in ("marking-definition", "extension-definition"):
        _check_with_library(obj)
    return checked


def _check_with_library(obj: dict[str, Any]) -> None:
    """The stix2 library's property checks for the object types we do not map ourselves."""
    import stix2
    from stix2.exceptions import STIXError

    try:
        stix2.parse(dict(obj), allow_custom=True, version=SPEC)
    except STIXError as exc:
        prop = getattr(exc, "prop_name", None) or "object"
        raise Invalid(str(prop), str(exc)) from None
    except (ValueError, TypeError) as exc:
        raise Invalid("object", str(exc)) from None


def _string_list(obj: dict[str, Any], key: str) -> list[str]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(key, _("must be a list of strings"))
    return list(value)


def indicator_columns(obj: dict[str, Any]) -> dict[str, Any]:
    """The typed columns of a STIX indicator; raises :class:`Invalid` on a bad property."""
    pattern = obj.get("pattern")
    if obj.get("pattern_type") != "stix":
        raise Invalid("pattern_type", _("only STIX patterns are supported, not {value}").format(
            value=obj.get("pattern_type")))
    if not isinstance(pattern, str):
        raise Invalid("pattern", _("is required"))
    value = value_of_pattern(pattern)
    if value is None:
        check_pattern(pattern)
    valid_from = parse_timestamp(obj.get("valid_from"), "valid_from")
    valid_until = parse_timestamp(obj["valid_until"], "valid_until") if obj.get("valid_until") else None
    if valid_until is not None and valid_until <= valid_from:
        raise Invalid("valid_until", _("must be later than valid_from"))
    confidence = obj.get("confidence")
    if confidence is not None and (not isinstance(confidence, int) or isinstance(confidence, bool)
                                   or not 0 <= confidence <= 100):
        raise Invalid("confidence", _("must be a whole number from 0 to 100"))
    phases = obj.get("kill_chain_phases", [])
    if not isinstance(phases, list) or not all(
            isinstance(p, dict) and isinstance(p.get("kill_chain_name"), str) and isinstance(p.get("phase_name"), str)
            for p in phases):
        raise Invalid("kill_chain_phases", _("must be a list of {kill_chain_name, phase_name}"))
    for key in ("name", "description"):
        if key in obj and not isinstance(obj[key], str):
            raise Invalid(key, _("must be a string"))
    return {
        "kind": value.kind if value else "pattern", "value": value.value if value else "",
        "value_key": value.key if value else "", "first": value.first if value else None,
        "last": value.last if value else None, "pattern": pattern, "name": obj.get("name", ""),
        "description": obj.get("description", ""), "indicator_types": _string_list(obj, "indicator_types"),
        "labels": _string_list(obj, "labels"), "kill_chain_phases": phases, "confidence": confidence,
        "valid_from": valid_from, "valid_until": valid_until, "revoked": bool(obj.get("revoked", False)),
        "extra": {k: v for k, v in obj.items() if k not in MAPPED},
    }


def dumps(obj: dict[str, Any]) -> str:
    """The JSON we store and serve: compact, key order kept, non-ASCII as it is."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
