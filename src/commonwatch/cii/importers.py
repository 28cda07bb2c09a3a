"""Readers for asset inventories: CSV, CycloneDX JSON (1.4, 1.5, 1.6), SPDX 2.3 JSON and nmap XML
(``-sV``, with ``-O`` for operating systems).

Each reader takes the file's bytes and returns a :class:`Parsed`: the good rows (asset fields with
CPE and purl normalised) and the bad ones, each with where it is (the CSV line, or the path in the
JSON/XML document), the field, the reason and its raw input. A file that cannot be read at all (not
JSON, an SBOM of another spec version, too large, too many rows) raises :class:`ImportRefused` and
nothing of it is imported; otherwise the good rows are imported together and the bad ones
quarantined (per-row quarantine)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from commonwatch.cii.identifiers import IdentifierError, normalise_cpe, normalise_purl
from commonwatch.cii.models import ASSET_KINDS
from commonwatch.errors import Invalid
from commonwatch.i18n import _
from commonwatch.textio import control_char_errors, decode_bytes, strip_control_text

FORMATS = ("csv", "cyclonedx", "spdx", "nmap")
MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
CYCLONEDX_VERSIONS = ("1.4", "1.5", "1.6")
SPDX_VERSION = "SPDX-2.3"
TEXT_LIMITS = {"name": 300, "vendor": 300, "product": 300, "version": 200, "host": 300, "network": 100,
               "owner": 300}
CSV_COLUMNS = ("kind", "name", "vendor", "product", "version", "cpe", "purl", "host", "network", "owner")


class ImportRefused(Exception):
    """The whole file is refused; ``str()`` is the reason."""


@dataclass
class Bad:
    where: str  # "line 7" or "/components/3"
    field: str
    reason: str
    raw: str

    def __post_init__(self) -> None:
        # The quarantined original is kept as text: without control characters, which PostgreSQL
        # cannot store (NUL) and which hide text from the reader; the reason says which was there.
        self.raw = strip_control_text(self.raw)[0]


@dataclass
class Parsed:
    format: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    bad: list[Bad] = field(default_factory=list)
    spec_version: str = ""


def _raw(obj: Any) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)
    return text[:2000]


def clean_row(data: dict[str, Any], where: str, raw: str, source: str, out: Parsed) -> None:
    """Check one asset's fields; a good row goes to ``out.rows``, a bad one to ``out.bad`` (first
    problem named)."""
    row: dict[str, Any] = {"source": source}
    controls = control_char_errors({k: data[k] for k in ("kind", *TEXT_LIMITS, "cpe", "purl") if k in data})
    if controls:  # a file a person hands in: the row is refused naming the line and field (textio)
        out.bad.append(Bad(where, controls[0].field, controls[0].reason, raw))
        return
    kind = (str(data.get("kind") or "software")).strip().lower()
    if kind not in ASSET_KINDS:
        out.bad.append(Bad(where, "kind", _("must be one of {kinds}").format(kinds=", ".join(ASSET_KINDS)), raw))
        return
    row["kind"] = kind
    for key, limit in TEXT_LIMITS.items():
        value = data.get(key)
        value = "" if value is None else str(value).strip()
        if len(value) > limit:
            out.bad.append(Bad(where, key, _("is longer than {n} characters").format(n=limit), raw))
            return
        row[key] = value
    row["version"] = row["version"] or None
    for key, normalise in (("cpe", normalise_cpe), ("purl", normalise_purl)):
        value = (str(data.get(key) or "")).strip()
        if not value:
            row[key] = None
            continue
        try:
            row[key] = normalise(value)
        except IdentifierError as exc:
            out.bad.append(Bad(where, key, str(exc), raw))
            return
    if not row["name"]:
        row["name"] = row["product"]
    if not row["name"]:
        out.bad.append(Bad(where, "name", _("is required (or a product)"), raw))
        return
    out.rows.append(row)
    if len(out.rows) + len(out.bad) > MAX_ROWS:
        raise ImportRefused(_("has more than {n} assets; split it").format(n=MAX_ROWS))


def _check_size(raw: bytes) -> None:
    if len(raw) > MAX_BYTES:
        raise ImportRefused(_("is larger than {n} MB").format(n=MAX_BYTES // (1024 * 1024)))
    if not raw.strip():
        raise ImportRefused(_("is empty"))


def _json(raw: bytes, what: str) -> Any:
    _check_size(raw)
    try:
        return json.loads(decode_bytes(raw))
    except Invalid as exc:
        raise ImportRefused(exc.errors[0].reason) from None
    except ValueError as exc:
        reason = str(exc)[:200]
        raise ImportRefused(_("is not valid JSON ({what}): {reason}").format(what=what, reason=reason)) from None


# --- CSV ---------------------------------------------------------------------------------------------

def read_csv(raw: bytes) -> Parsed:
    """A header line naming some of kind, name, vendor, product, version, cpe, purl, host, network,
    owner (other columns are refused, so a misspelt one is not silently lost)."""
    _check_size(raw)
    try:
        text = decode_bytes(raw)
    except Invalid as exc:
        raise ImportRefused(exc.errors[0].reason) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRefused(_("is empty")) from None
    except csv.Error as exc:
        raise ImportRefused(_("line {line}: {reason}").format(line=1, reason=str(exc))) from None
    names = [h.strip().lower().lstrip("\ufeff") for h in header]
    unknown = [h for h in names if h not in CSV_COLUMNS]
    if unknown:
        raise ImportRefused(_("line 1: unknown column(s) {cols}; the columns are {known}").format(
            cols=", ".join(unknown), known=", ".join(CSV_COLUMNS)))
    if "name" not in names and "product" not in names:
        raise ImportRefused(_("line 1: a name or product column is required"))
    if len(set(names)) != len(names):
        raise ImportRefused(_("line 1: a column is named twice"))
    out = Parsed("csv")
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.bad.append(Bad(_("line {n}").format(n=reader.line_num), "", str(exc), ""))
            continue
        where = _("line {n}").format(n=reader.line_num)
        if not any(c.strip() for c in cells):
            continue
        raw_line = ",".join(cells)
        if len(cells) != len(names):
            out.bad.append(Bad(where, "", _("has {got} cells, the header has {want}").format(
                got=len(cells), want=len(names)), raw_line[:2000]))
            continue
        clean_row(dict(zip(names, cells, strict=True)), where, raw_line[:2000], "csv", out)
    return out


# --- CycloneDX ---------------------------------------------------------------------------------------

_CDX_KINDS = {"operating-system": "os", "device": "hardware", "firmware": "hardware"}


def read_cyclonedx(raw: bytes) -> Parsed:
    doc = _json(raw, "CycloneDX")
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise ImportRefused(_("is not a CycloneDX JSON document (bomFormat must be CycloneDX)"))
    version = str(doc.get("specVersion", ""))
    if version not in CYCLONEDX_VERSIONS:
        raise ImportRefused(_("is CycloneDX {version}; only specVersion {known} is read").format(
            version=version or "?", known=", ".join(CYCLONEDX_VERSIONS)))
    components = doc.get("components", [])
    if not isinstance(components, list):
        raise ImportRefused(_("/components must be a list"))
    out = Parsed("cyclonedx", spec_version=version)
    stack: list[tuple[str, Any]] = [(f"/components/{i}", c) for i, c in enumerate(components)][::-1]
    while stack:
        path, comp = stack.pop()
        if not isinstance(comp, dict):
            out.bad.append(Bad(path, "", _("must be an object"), _raw(comp)))
            continue
        nested = comp.get("components")
        if isinstance(nested, list):
            stack.extend([(f"{path}/components/{i}", c) for i, c in enumerate(nested)][::-1])
        supplier = comp.get("supplier") if isinstance(comp.get("supplier"), dict) else {}
        manufacturer = comp.get("manufacturer") if isinstance(comp.get("manufacturer"), dict) else {}
        vendor = comp.get("publisher") or supplier.get("name") or manufacturer.get("name") or comp.get("group") or ""
        name = comp.get("name") or ""
        if comp.get("group"):
            name = f"{comp['group']}/{name}" if name else ""
        data = {"kind": _CDX_KINDS.get(str(comp.get("type", "")), "software"), "name": name,
                "vendor": vendor, "product": comp.get("name") or "", "version": comp.get("version"),
                "cpe": comp.get("cpe"), "purl": comp.get("purl")}
        clean_row(data, path, _raw({k: v for k, v in comp.items() if k != "components"}), "cyclonedx", out)
    return out


# --- SPDX 2.3 -----------------------------------------------------------------------------------------

_SPDX_KINDS = {"OPERATING-SYSTEM": "os", "DEVICE": "hardware", "FIRMWARE": "hardware"}


def _spdx_supplier(value: Any) -> str:
    text = str(value or "")
    if text in ("NOASSERTION", "NONE"):
        return ""
    for prefix in ("Organization:", "Person:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text.split("(")[0].strip()


def read_spdx(raw: bytes) -> Parsed:
    doc = _json(raw, "SPDX")
    if not isinstance(doc, dict) or "spdxVersion" not in doc:
        raise ImportRefused(_("is not an SPDX JSON document (spdxVersion is missing)"))
    version = str(doc.get("spdxVersion"))
    if version != SPDX_VERSION:
        raise ImportRefused(_("is {version}; only {known} JSON is read").format(version=version, known=SPDX_VERSION))
    packages = doc.get("packages", [])
    if not isinstance(packages, list):
        raise ImportRefused(_("/packages must be a list"))
    out = Parsed("spdx", spec_version=version)
    for i, pkg in enumerate(packages):
        path = f"/packages/{i}"
        if not isinstance(pkg, dict):
            out.bad.append(Bad(path, "", _("must be an object"), _raw(pkg)))
            continue
        cpe = purl = None
        refs = pkg.get("externalRefs") or []
        if not isinstance(refs, list):
            out.bad.append(Bad(path, "externalRefs", _("must be a list"), _raw(pkg)))
            continue
        for ref in refs:
            if not isinstance(ref, dict):
                continue
            rtype, locator = ref.get("referenceType"), ref.get("referenceLocator")
            if rtype == "purl" and purl is None:
                purl = locator
            elif rtype in ("cpe23Type", "cpe22Type") and cpe is None:
                cpe = locator
        version_info = pkg.get("versionInfo")
        data = {"kind": _SPDX_KINDS.get(str(pkg.get("primaryPackagePurpose", "")), "software"),
                "name": pkg.get("name") or "", "product": pkg.get("name") or "",
                "vendor": _spdx_supplier(pkg.get("supplier") or pkg.get("originator")),
                "version": None if version_info in (None, "NOASSERTION") else version_info, "cpe": cpe, "purl": purl}
        clean_row(data, path, _raw(pkg), "spdx", out)
    return out


# --- nmap XML -----------------------------------------------------------------------------------------

def read_nmap(raw: bytes) -> Parsed:
    """Open ports with their service (``-sV``: product, version, CPE) and the best OS match (``-O``)."""
    _check_size(raw)
    try:
        root = SafeET.fromstring(raw)
    except DefusedXmlException as exc:
        raise ImportRefused(_("is refused: the XML uses a forbidden construct ({what})").format(
            what=type(exc).__name__)) from None
    except SafeET.ParseError as exc:
        raise ImportRefused(_("is not well-formed XML: {reason}").format(reason=str(exc)[:200])) from None
    if root.tag != "nmaprun":
        raise ImportRefused(_("is not nmap XML output (the root element must be nmaprun)"))
    out = Parsed("nmap", spec_version=root.get("xmloutputversion", ""))
    for h, host in enumerate(root.findall("host"), start=1):
        addresses = [a for a in host.findall("address") if a.get("addrtype") in ("ipv4", "ipv6")]
        hostname = host.find("hostnames/hostname")
        ip = addresses[0].get("addr", "") if addresses else ""
        label = ip or (hostname.get("name", "") if hostname is not None else "")
        for port in host.findall("ports/port"):
            state = port.find("state")
            if state is None or state.get("state") != "open":
                continue
            where = f"host[{h}] {label} port {port.get('portid', '?')}/{port.get('protocol', '?')}"
            service = port.find("service")
            if service is None:
                continue
            cpes = [c.text or "" for c in service.findall("cpe")]
            app = next((c for c in cpes if c.startswith("cpe:/a")), cpes[0] if cpes else "")
            product = service.get("product") or service.get("name") or ""
            data = {"kind": "service", "name": f"{product} {port.get('portid', '')}/{port.get('protocol', '')}".strip(),
                    "product": product, "vendor": "", "version": service.get("version"), "cpe": app or None,
                    "host": label}
            clean_row(data, where, _raw(SafeET.tostring(port, encoding="unicode")), "nmap", out)
        osclass = host.find("os/osmatch/osclass")
        if osclass is not None:
            cpe = osclass.find("cpe")
            match = host.find("os/osmatch")
            data = {"kind": "os", "name": match.get("name", "") if match is not None else "",
                    "vendor": osclass.get("vendor", ""), "product": osclass.get("osfamily", ""),
                    "version": osclass.get("osgen"), "cpe": cpe.text if cpe is not None else None, "host": label}
            clean_row(data, f"host[{h}] {label} os", _raw(data), "nmap", out)
    return out


READERS = {"csv": read_csv, "cyclonedx": read_cyclonedx, "spdx": read_spdx, "nmap": read_nmap}


def read(fmt: str, raw: bytes) -> Parsed:
    if fmt not in READERS:
        raise ImportRefused(_("format must be one of {formats}").format(formats=", ".join(FORMATS)))
    return READERS[fmt](raw)


def sniff(raw: bytes) -> str | None:
    """The format of a file by its content, when it is clear."""
    head = raw[:4096].lstrip()
    if head.startswith(b"<"):
        return "nmap"
    if head.startswith(b"{"):
        if b'"bomFormat"' in raw[:65536]:
            return "cyclonedx"
        if b'"spdxVersion"' in raw[:65536]:
            return "spdx"
        return None
    return "csv"
