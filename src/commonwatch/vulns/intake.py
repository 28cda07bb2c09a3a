"""Readers of vulnerability and advisory formats, pure: bytes or parsed JSON in, :class:`Record` out.

Formats: CVE JSON 5 (one record, a cvelistV5 folder, a release zip or delta zip), NVD CVE API 2.0
pages, CSAF 2.0 advisories (the CSAF 2.0 JSON schema and the mandatory tests that apply, see
:mod:`commonwatch.vulns.csaf`), OSV JSON, the CISA KEV catalogue and the FIRST EPSS CSV.

Each record becomes a :class:`Record` with its applicability criteria in the rows of
``matching.CRITERIA_SCHEMA``. A reader refuses bad input with :class:`IntakeError`, naming the
field and the reason; a whole file is refused rather than half-read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packageurl import PackageURL
from univers.version_range import VersionRange

from commonwatch.vulns import cpe as cpelib
from commonwatch.vulns import csaf as csaflib
from commonwatch.vulns import versions as vlib

CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,19}$")
CNVD_RE = re.compile(r"\bCNVD-\d{4}-\d{4,6}\b")
CNNVD_RE = re.compile(r"\bCNNVD-\d{6}-\d{3,5}\b")
CWE_RE = re.compile(r"^CWE-\d+$")

MAX_RECORD_BYTES = 8 * 1024 * 1024          # one CVE / OSV / CSAF document
MAX_ZIP_MEMBERS = 2_000_000
MAX_ZIP_TOTAL = 4 * 1024 * 1024 * 1024       # uncompressed, over the whole archive
MAX_RATIO = 200                              # uncompressed / compressed, per member


class IntakeError(ValueError):
    """A document commonwatch refuses; ``field`` names where, the message says why."""

    def __init__(self, field_name: str, reason: str, failures: list[dict[str, str]] | None = None):
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason
        self.failures = failures or []   # CSAF: {test, path, reason} of each failed check


@dataclass
class Record:
    source: str                      # cve5 | nvd | osv | csaf
    record_id: str                   # the id in its source (CVE id, OSV id, CSAF tracking id)
    vuln_id: str                     # the vulnerability it is about (a CVE id when there is one)
    modified: str                    # the source's own "last updated" stamp (ISO 8601)
    title: str = ""
    summary: str = ""
    state: str = "PUBLISHED"
    aliases: list[str] = field(default_factory=list)
    cvss: list[dict[str, Any]] = field(default_factory=list)   # {version, vector, score?}
    cwes: list[str] = field(default_factory=list)
    kev: dict[str, Any] | None = None
    criteria: list[dict[str, Any]] = field(default_factory=list)
    raw: bytes = b""

    @property
    def key(self) -> str:
        return f"{self.source}:{self.record_id}"

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


def loads(raw: bytes, field_name: str = "file") -> Any:
    if len(raw) > MAX_RECORD_BYTES:
        raise IntakeError(field_name, f"larger than {MAX_RECORD_BYTES // (1024 * 1024)} MiB")
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise IntakeError(field_name, f"not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise IntakeError(field_name, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise IntakeError(where, "must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise IntakeError(where, "must be a list")
    return value


def _str(value: Any, where: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise IntakeError(where, "a non-empty string is required")
    return value


def _aliases(texts: list[str]) -> list[str]:
    found: set[str] = set()
    for t in texts:
        found.update(CNVD_RE.findall(t))
        found.update(CNNVD_RE.findall(t))
    return sorted(found)


def _check_cpe(text: str, where: str) -> str:
    problem = cpelib.check(text)
    if problem:
        raise IntakeError(where, problem)
    return text


def _cpe_version_any(text: str) -> bool:
    return cpelib.parse(text)[3].kind == "a"


# --- CVE JSON 5 --------------------------------------------------------------------------------------

def _cve5_metrics(container: dict[str, Any], where: str, rec: Record) -> None:
    for i, m in enumerate(_list(container.get("metrics"), f"{where}.metrics")):
        m = _obj(m, f"{where}.metrics[{i}]")
        for key, version in (("cvssV4_0", "4.0"), ("cvssV3_1", "3.1"), ("cvssV3_0", "3.0")):
            if key in m:
                body = _obj(m[key], f"{where}.metrics[{i}].{key}")
                rec.cvss.append({"version": version, "vector": _str(body.get("vectorString"),
                                 f"{where}.metrics[{i}].{key}.vectorString"), "score": body.get("baseScore")})
        other = m.get("other")
        if isinstance(other, dict) and other.get("type") == "kev" and isinstance(other.get("content"), dict):
            rec.kev = {"dateAdded": other["content"].get("dateAdded"), "source": "CISA-ADP"}


def _cve5_versions(entry: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """versions[] -> criterion ranges (lo/hi/exact + effect); versionType 'custom'/'git' refused."""
    out = []
    default = entry.get("defaultStatus", "unknown")
    for i, v in enumerate(_list(entry.get("versions"), f"{where}.versions")):
        v = _obj(v, f"{where}.versions[{i}]")
        status = v.get("status")
        if status not in ("affected", "unaffected", "unknown"):
            raise IntakeError(f"{where}.versions[{i}].status", f"{status!r} is not affected, unaffected or unknown")
        if status == "unknown":
            continue
        effect = "affected" if status == "affected" else "not_affected"
        start = _str(v.get("version"), f"{where}.versions[{i}].version")
        less, less_eq = v.get("lessThan"), v.get("lessThanOrEqual")
        if less is None and less_eq is None:
            out.append({"effect": effect, "exact": start})
            continue
        vtype = v.get("versionType")
        if not vtype:
            raise IntakeError(f"{where}.versions[{i}].versionType", "required with lessThan/lessThanOrEqual")
        if vtype in ("custom", "git"):
            continue  # not comparable by any order (CVE schema versions.md); kept in the raw record
        hi = less if less is not None else less_eq
        out.append({"effect": effect, "lo": None if start in ("0", "") else start,
                    "hi": None if hi == "*" else hi, "hi_incl": less is None,
                    "scheme": {"python": "pypi"}.get(vtype, vtype)})
    if not out and default == "affected":
        out.append({"effect": "affected"})
    return out


def _norm_token(text: str) -> str:
    """A CVE 5 vendor/product name -> a CPE attribute value (lowercase, spaces as _, escaped)."""
    t = re.sub(r"\s+", "_", text.strip().lower())
    return "".join(c if (c.isascii() and c.isalnum()) or c in "_-." else "\\" + c for c in t) or "-"


def read_cve5(doc: Any, raw: bytes = b"", where: str = "record") -> Record:
    doc = _obj(doc, where)
    if doc.get("dataType") != "CVE_RECORD":
        raise IntakeError(f"{where}.dataType", f"{doc.get('dataType')!r} is not CVE_RECORD")
    if not str(doc.get("dataVersion", "")).startswith("5."):
        raise IntakeError(f"{where}.dataVersion", f"{doc.get('dataVersion')!r}: CVE JSON 5.x expected")
    meta = _obj(doc.get("cveMetadata"), f"{where}.cveMetadata")
    cve_id = _str(meta.get("cveId"), f"{where}.cveMetadata.cveId")
    if not CVE_RE.match(cve_id):
        raise IntakeError(f"{where}.cveMetadata.cveId", f"{cve_id!r} is not a CVE id")
    state = _str(meta.get("state"), f"{where}.cveMetadata.state")
    if state not in ("PUBLISHED", "REJECTED"):
        raise IntakeError(f"{where}.cveMetadata.state", f"{state!r} is not PUBLISHED or REJECTED")
    modified = meta.get("dateUpdated") or meta.get("datePublished") or meta.get("dateReserved") or ""
    rec = Record("cve5", cve_id, cve_id, str(modified), state=state,
                 raw=raw or json.dumps(doc, sort_keys=True).encode())
    containers = _obj(doc.get("containers"), f"{where}.containers")
    cna = _obj(containers.get("cna", {}), f"{where}.containers.cna")
    rec.title = str(cna.get("title") or "")
    for d in _list(cna.get("descriptions"), f"{where}.containers.cna.descriptions"):
        if isinstance(d, dict) and d.get("lang", "").startswith("en") and not rec.summary:
            rec.summary = str(d.get("value", ""))
    texts = [rec.summary] + [str(r.get("url", "")) + " " + " ".join(map(str, r.get("tags", [])))
                             for r in _list(cna.get("references"), f"{where}.containers.cna.references")
                             if isinstance(r, dict)]
    _cve5_metrics(cna, f"{where}.containers.cna", rec)
    blocks = [(f"{where}.containers.cna", cna)]
    for j, adp in enumerate(_list(containers.get("adp"), f"{where}.containers.adp")):
        adp = _obj(adp, f"{where}.containers.adp[{j}]")
        if not rec.cvss:
            _cve5_metrics(adp, f"{where}.containers.adp[{j}]", rec)
        else:
            _cve5_metrics({"metrics": [m for m in adp.get("metrics", []) if isinstance(m, dict) and "other" in m]},
                          f"{where}.containers.adp[{j}]", rec)
        if not cna.get("affected"):
            blocks.append((f"{where}.containers.adp[{j}]", adp))
    rec.aliases = _aliases(texts)
    if state == "REJECTED":
        return rec
    for bwhere, block in blocks:
        for i, entry in enumerate(_list(block.get("affected"), f"{bwhere}.affected")):
            ewhere = f"{bwhere}.affected[{i}]"
            entry = _obj(entry, ewhere)
            ranges = _cve5_versions(entry, ewhere)
            cpes = [_check_cpe(c, f"{ewhere}.cpes[{k}]")
                    for k, c in enumerate(_list(entry.get("cpes"), f"{ewhere}.cpes"))]
            purl = entry.get("packageURL")
            if purl:
                _purl_check(purl, f"{ewhere}.packageURL")
                for r in ranges:
                    rec.criteria.append(_crit(rec, "purl", purl.split("@")[0], r | {"scheme": r.get("scheme")
                                              if vlib.version_class(r.get("scheme") or "") else None}))
                continue
            if not cpes and entry.get("vendor") and entry.get("product"):
                cpes = [f"cpe:2.3:a:{_norm_token(entry['vendor'])}:{_norm_token(entry['product'])}:*:*:*:*:*:*:*:*"]
            for c in cpes:
                for r in ranges:
                    r = dict(r)
                    r.pop("scheme", None)
                    if r.get("exact") is not None and _cpe_version_any(c):
                        parts = cpelib._split_fs(c[8:])
                        parts[3] = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "_-." else "\\" + ch
                                           for ch in r.pop("exact"))
                        c2 = "cpe:2.3:" + ":".join(parts)
                        rec.criteria.append(_crit(rec, "cpe", c2, r))
                    elif r.get("exact") is None and not _cpe_version_any(c) and (r.get("lo") or r.get("hi")):
                        continue  # a range on a CPE with a fixed version: the CPE decides (NVD convention)
                    else:
                        r.pop("exact", None)
                        rec.criteria.append(_crit(rec, "cpe", c, r))
    return rec


def _crit(rec: Record, kind: str, criteria: str, extra: dict[str, Any]) -> dict[str, Any]:
    row = {"vuln_id": rec.vuln_id, "record_key": rec.key, "source": rec.source, "kind": kind, "criteria": criteria}
    row.update({k: v for k, v in extra.items() if v is not None})
    return row


def _purl_check(text: Any, where: str) -> PackageURL:
    try:
        return PackageURL.from_string(_str(text, where))
    except ValueError as exc:
        raise IntakeError(where, f"not a purl: {exc}") from exc


# --- NVD CVE API 2.0 -----------------------------------------------------------------------------------

def read_nvd_page(doc: Any, raw: bytes = b"", where: str = "page") -> list[Record]:
    doc = _obj(doc, where)
    if not str(doc.get("format", "NVD_CVE")).startswith("NVD_CVE"):
        raise IntakeError(f"{where}.format", f"{doc.get('format')!r} is not NVD_CVE")
    out = []
    for i, item in enumerate(_list(doc.get("vulnerabilities"), f"{where}.vulnerabilities")):
        iw = f"{where}.vulnerabilities[{i}].cve"
        cve = _obj(_obj(item, f"{where}.vulnerabilities[{i}]").get("cve"), iw)
        cve_id = _str(cve.get("id"), f"{iw}.id")
        if not CVE_RE.match(cve_id):
            raise IntakeError(f"{iw}.id", f"{cve_id!r} is not a CVE id")
        status = str(cve.get("vulnStatus", ""))
        rec = Record("nvd", cve_id, cve_id, str(cve.get("lastModified", "")),
                     state="REJECTED" if status == "Rejected" else "PUBLISHED",
                     raw=json.dumps(cve, sort_keys=True).encode())
        for d in _list(cve.get("descriptions"), f"{iw}.descriptions"):
            if isinstance(d, dict) and d.get("lang") == "en":
                rec.summary = str(d.get("value", ""))
        metrics = _obj(cve.get("metrics", {}), f"{iw}.metrics")
        for key, version in (("cvssMetricV40", "4.0"), ("cvssMetricV31", "3.1"), ("cvssMetricV30", "3.0")):
            for k, m in enumerate(_list(metrics.get(key), f"{iw}.metrics.{key}")):
                data = _obj(_obj(m, f"{iw}.metrics.{key}[{k}]").get("cvssData"), f"{iw}.metrics.{key}[{k}].cvssData")
                rec.cvss.append({"version": version, "vector": _str(data.get("vectorString"),
                                 f"{iw}.metrics.{key}[{k}].cvssData.vectorString"), "score": data.get("baseScore"),
                                 "type": m.get("type")})
        if cve.get("cisaExploitAdd"):
            rec.kev = {"dateAdded": cve["cisaExploitAdd"], "source": "NVD"}
        rec.aliases = _aliases([rec.summary] + [str(r.get("url", "")) for r in _list(cve.get("references"),
                                                 f"{iw}.references") if isinstance(r, dict)])
        for j, w in enumerate(_list(cve.get("weaknesses"), f"{iw}.weaknesses")):
            for d in _list(_obj(w, f"{iw}.weaknesses[{j}]").get("description"), f"{iw}.weaknesses[{j}]"):
                if isinstance(d, dict) and CWE_RE.match(str(d.get("value", ""))):
                    rec.cwes.append(d["value"])
        for c, conf in enumerate(_list(cve.get("configurations"), f"{iw}.configurations")):
            cw = f"{iw}.configurations[{c}]"
            conf = _obj(conf, cw)
            nodes = _list(conf.get("nodes"), f"{cw}.nodes")
            op = str(conf.get("operator", "OR")).upper()
            cfg_and = op == "AND" and len(nodes) > 1
            for n, node in enumerate(nodes):
                node = _obj(node, f"{cw}.nodes[{n}]")
                if node.get("negate"):
                    continue  # a negated node excludes platforms; commonwatch does not infer from absence
                for m, cm in enumerate(_list(node.get("cpeMatch"), f"{cw}.nodes[{n}].cpeMatch")):
                    mw = f"{cw}.nodes[{n}].cpeMatch[{m}]"
                    cm = _obj(cm, mw)
                    crit = _check_cpe(_str(cm.get("criteria"), f"{mw}.criteria"), f"{mw}.criteria")
                    if not isinstance(cm.get("vulnerable"), bool):
                        raise IntakeError(f"{mw}.vulnerable", "must be true or false")
                    if not cm["vulnerable"] and not cfg_and:
                        continue
                    lo_i, lo_x = cm.get("versionStartIncluding"), cm.get("versionStartExcluding")
                    hi_i, hi_x = cm.get("versionEndIncluding"), cm.get("versionEndExcluding")
                    if lo_i is not None and lo_x is not None or hi_i is not None and hi_x is not None:
                        raise IntakeError(mw, "both the including and the excluding form of one end")
                    rec.criteria.append(_crit(rec, "cpe", crit, {
                        "lo": lo_i if lo_i is not None else lo_x, "lo_incl": lo_x is None,
                        "hi": hi_i if hi_i is not None else hi_x, "hi_incl": hi_i is not None,
                        "cfg_local": c if cfg_and else None, "node": n, "cfg_and": cfg_and,
                        "vulnerable": cm["vulnerable"]}))
        out.append(rec)
    return out


# --- OSV ---------------------------------------------------------------------------------------------------

OSV_ECOSYSTEMS = {"npm": "npm", "pypi": "pypi", "maven": "maven", "go": "golang", "crates.io": "cargo",
                  "rubygems": "gem", "packagist": "composer", "nuget": "nuget", "debian": "deb", "alpine": "apk",
                  "hex": "hex", "pub": "pub", "ubuntu": "deb"}


def _osv_purl(pkg: dict[str, Any], where: str) -> str:
    if pkg.get("purl"):
        p = _purl_check(pkg["purl"], f"{where}.purl")
        return PackageURL(p.type, p.namespace, p.name).to_string()
    eco = str(pkg.get("ecosystem", "")).split(":")[0].lower()
    ptype = OSV_ECOSYSTEMS.get(eco)
    name = _str(pkg.get("name"), f"{where}.name")
    if ptype is None:
        raise IntakeError(f"{where}.ecosystem", f"{pkg.get('ecosystem')!r}: no purl type is known for it")
    if ptype == "maven" and ":" in name:
        ns, nm = name.split(":", 1)
        return PackageURL(ptype, ns, nm).to_string()
    if "/" in name and ptype in ("npm", "golang", "composer"):
        ns, nm = name.rsplit("/", 1)
        return PackageURL(ptype, ns, nm).to_string()
    return PackageURL(ptype, None, name).to_string()


def _osv_intervals(events: list[Any], scheme: str, where: str) -> list[dict[str, Any]]:
    """OSV events -> [introduced, fixed) / [introduced, last_affected] intervals, in the scheme's order."""
    cls = vlib.version_class(scheme)
    parsed = []
    limit = None
    for i, e in enumerate(events):
        e = _obj(e, f"{where}.events[{i}]")
        if len(e) != 1:
            raise IntakeError(f"{where}.events[{i}]", "exactly one of introduced, fixed, last_affected, limit")
        (kind, value), = e.items()
        if kind not in ("introduced", "fixed", "last_affected", "limit"):
            raise IntakeError(f"{where}.events[{i}]", f"unknown event {kind!r}")
        value = _str(value, f"{where}.events[{i}].{kind}")
        if kind == "limit":
            limit = None if value == "*" else value
            continue
        if kind == "introduced" and value == "0":
            parsed.append((None, kind, value))
            continue
        if cls is None:
            raise IntakeError(f"{where}.type", f"no version order is known for {scheme!r}")
        try:
            parsed.append((cls(value), kind, value))
        except Exception as exc:
            raise IntakeError(f"{where}.events[{i}].{kind}", f"{value!r} is not a valid {scheme} version") from exc
    if not any(k == "introduced" for _, k, _ in parsed):
        raise IntakeError(f"{where}.events", "at least one 'introduced' is required")
    if any(k == "fixed" for _, k, _ in parsed) and any(k == "last_affected" for _, k, _ in parsed):
        raise IntakeError(f"{where}.events", "'fixed' and 'last_affected' may not both appear")
    parsed.sort(key=lambda p: (p[0] is not None, p[0]) if p[0] is not None else (False, 0))
    out, start = [], None
    for obj, kind, value in parsed:
        if kind == "introduced":
            if start is None:
                start = (obj, value)
        elif start is not None:
            out.append({"lo": start[1] if start[0] is not None else None, "hi": value,
                        "hi_incl": kind == "last_affected"})
            start = None
    if start is not None:
        out.append({"lo": start[1] if start[0] is not None else None, "hi": limit, "hi_incl": False})
    return out


def read_osv(doc: Any, raw: bytes = b"", where: str = "osv") -> Record:
    doc = _obj(doc, where)
    osv_id = _str(doc.get("id"), f"{where}.id")
    modified = _str(doc.get("modified"), f"{where}.modified")
    aliases = [a for a in _list(doc.get("aliases"), f"{where}.aliases") if isinstance(a, str)]
    cves = sorted(a for a in [osv_id, *aliases] if CVE_RE.match(a))
    rec = Record("osv", osv_id, cves[0] if cves else osv_id, modified, title=str(doc.get("summary", "")),
                 summary=str(doc.get("details", "")), raw=raw or json.dumps(doc, sort_keys=True).encode())
    rec.aliases = sorted(set(aliases) - set(cves[:1]) | set(_aliases([rec.summary, *aliases])))
    if doc.get("withdrawn"):
        rec.state = "REJECTED"
        return rec
    for s in _list(doc.get("severity"), f"{where}.severity"):
        if isinstance(s, dict) and s.get("type") in ("CVSS_V3", "CVSS_V4"):
            rec.cvss.append({"version": "4.0" if s["type"] == "CVSS_V4" else "3.1", "vector": str(s.get("score"))})
    for i, aff in enumerate(_list(doc.get("affected"), f"{where}.affected")):
        aw = f"{where}.affected[{i}]"
        aff = _obj(aff, aw)
        pkg = _obj(aff.get("package"), f"{aw}.package")
        purl = _osv_purl(pkg, f"{aw}.package")
        ptype = PackageURL.from_string(purl).type
        for v in _list(aff.get("versions"), f"{aw}.versions"):
            rec.criteria.append(_crit(rec, "purl", purl, {"exact": _str(v, f"{aw}.versions[]")}))
        for j, rng in enumerate(_list(aff.get("ranges"), f"{aw}.ranges")):
            rw = f"{aw}.ranges[{j}]"
            rng = _obj(rng, rw)
            rtype = rng.get("type")
            if rtype == "GIT":
                continue  # commits: the versions[] list above carries them
            if rtype not in ("SEMVER", "ECOSYSTEM"):
                raise IntakeError(f"{rw}.type", f"{rtype!r} is not SEMVER, ECOSYSTEM or GIT")
            scheme = "semver" if rtype == "SEMVER" else ptype
            for iv in _osv_intervals(_list(rng.get("events"), f"{rw}.events"), scheme, rw):
                rec.criteria.append(_crit(rec, "purl", purl, iv | {"scheme": scheme}))
    return rec


# --- CSAF 2.0 ----------------------------------------------------------------------------------------------

CSAF_PROFILES = {"csaf_base", "csaf_security_incident_response", "csaf_informational_advisory",
                 "csaf_security_advisory", "csaf_vex"}
_AFFECTED = ("first_affected", "known_affected", "last_affected")
_SUPPRESS = {"known_not_affected": "not_affected", "fixed": "fixed", "first_fixed": "fixed"}


@dataclass
class CsafProduct:
    product_id: str
    name: str
    cpe: str | None = None
    purl: str | None = None
    version: str | None = None
    version_range: str | None = None


def _walk_branches(branches: list[Any], where: str, inherited: dict[str, str], out: list[tuple[str, Any, dict]]):
    for i, b in enumerate(branches):
        bw = f"{where}[{i}]"
        b = _obj(b, bw)
        cat = _str(b.get("category"), f"{bw}.category")
        name = _str(b.get("name"), f"{bw}.name")
        ctx = dict(inherited)
        ctx[cat] = name
        if ("branches" in b) == ("product" in b):
            raise IntakeError(bw, "a branch holds either branches or a product")
        if "product" in b:
            out.append((f"{bw}.product", b["product"], ctx))
        else:
            _walk_branches(_list(b["branches"], f"{bw}.branches"), f"{bw}.branches", ctx, out)


def csaf_check(doc: Any) -> tuple[list[csaflib.Failure], dict[str, CsafProduct]]:
    """The CSAF 2.0 schema and the mandatory tests (:mod:`commonwatch.vulns.csaf`), plus
    commonwatch's own reading of the identification helpers (a CPE must parse as CPE 2.3, a purl
    with packageurl-python: 6.1.13). Returns (failures, products)."""
    fails = csaflib.failures(doc)
    products: dict[str, CsafProduct] = {}
    if not isinstance(doc, dict) or not isinstance(doc.get("document"), dict):
        return fails or [csaflib.Failure("schema", "/document", "required")], products
    tree = doc.get("product_tree") if isinstance(doc.get("product_tree"), dict) else {}
    found: list[tuple[str, Any, dict]] = []
    try:
        _walk_branches(_list(tree.get("branches"), "/product_tree/branches"), "/product_tree/branches", {}, found)
        for i, fpn in enumerate(_list(tree.get("full_product_names"), "/product_tree/full_product_names")):
            found.append((f"/product_tree/full_product_names/{i}", fpn, {}))
        for i, rel in enumerate(_list(tree.get("relationships"), "/product_tree/relationships")):
            if isinstance(rel, dict):
                found.append((f"/product_tree/relationships/{i}/full_product_name", rel.get("full_product_name"), {}))
    except IntakeError as exc:
        fails.append(csaflib.Failure("schema", exc.field, exc.reason))
    for where, fpn, ctx in found:
        if not isinstance(fpn, dict) or not isinstance(fpn.get("product_id"), str):
            continue
        pid = fpn["product_id"]
        if pid in products:
            continue  # 6.1.2, reported above
        helper = fpn.get("product_identification_helper") if isinstance(fpn.get("product_identification_helper"),
                                                                         dict) else {}
        p = CsafProduct(pid, str(fpn.get("name", "")), version=ctx.get("product_version"),
                        version_range=ctx.get("product_version_range"))
        if isinstance(helper.get("cpe"), str):
            problem = cpelib.check(helper["cpe"])
            if problem:
                fails.append(csaflib.Failure("cpe", f"{where}/product_identification_helper/cpe", problem))
            else:
                p.cpe = helper["cpe"]
        if isinstance(helper.get("purl"), str):
            try:
                PackageURL.from_string(helper["purl"])
                p.purl = helper["purl"]
            except ValueError:
                pass  # 6.1.13, reported above
        products[pid] = p
    return fails, products


def check_csaf(doc: Any) -> tuple[list[str], dict[str, CsafProduct]]:
    """:func:`csaf_check` with each failure as one line ``pointer: test reason``."""
    fails, products = csaf_check(doc)
    return [str(f) for f in fails], products


def _vers_intervals(text: str) -> list[dict[str, Any]]:
    """A ``vers:`` range -> intervals (univers parses it; constraints come sorted)."""
    vr = VersionRange.from_string(text)
    out, lo = [], None
    for c in vr.constraints:
        comp, v = c.comparator, c.version.string
        if comp == "=":
            out.append({"exact": v})
        elif comp in (">=", ">"):
            lo = {"lo": v, "lo_incl": comp == ">="}
        elif comp in ("<", "<="):
            out.append((lo or {}) | {"hi": v, "hi_incl": comp == "<="})
            lo = None
        elif comp == "*":
            out.append({})
    if lo is not None:
        out.append(lo)
    return [iv | {"scheme": vr.scheme} for iv in out]


def read_csaf(doc: Any, raw: bytes = b"") -> list[Record]:
    fails, products = csaf_check(doc)
    if fails:
        problems = [str(f) for f in fails]
        raise IntakeError("csaf", "; ".join(problems[:20]) + (f" (+{len(problems) - 20} more)" if len(problems) > 20
                                                             else ""), failures=[f.as_dict() for f in fails])
    d = doc["document"]
    tr = d["tracking"]
    out = []
    for i, v in enumerate(doc.get("vulnerabilities") or []):
        ids = [x.get("text") for x in v.get("ids", []) if isinstance(x, dict) and x.get("text")]
        vuln_id = v.get("cve") or (ids[0] if ids else f"{tr['id']}#{i}")
        rec = Record("csaf", f"{tr['id']}#{vuln_id}", vuln_id, str(tr["current_release_date"]),
                     title=str(v.get("title") or d.get("title", "")),
                     summary=" ".join(str(n.get("text", "")) for n in v.get("notes", []) if isinstance(n, dict)),
                     raw=raw or json.dumps(doc, sort_keys=True).encode())
        rec.aliases = sorted(set(_aliases(ids + [rec.summary])) | {x for x in ids if x != vuln_id})
        for s in v.get("scores", []) or []:
            for key, version in (("cvss_v3", None), ("cvss_v4", "4.0")):
                body = s.get(key) if isinstance(s, dict) else None
                if isinstance(body, dict) and body.get("vectorString"):
                    rec.cvss.append({"version": version or str(body.get("version", "3.1")),
                                     "vector": body["vectorString"], "score": body.get("baseScore")})
        if v.get("cwe", {}).get("id"):
            rec.cwes.append(v["cwe"]["id"])
        for key, ids_ in (v.get("product_status") or {}).items():
            effect = "affected" if key in _AFFECTED else _SUPPRESS.get(key)
            if effect is None:
                continue
            for pid in ids_:
                p = products[pid]
                if p.purl:
                    purl = p.purl
                    base = purl.split("@")[0]
                    ver = purl.split("@")[1].split("?")[0] if "@" in purl else p.version
                    if p.version_range and p.version_range.startswith("vers:"):
                        for iv in _vers_intervals(p.version_range):
                            rec.criteria.append(_crit(rec, "purl", base, iv | {"effect": effect}))
                    else:
                        rec.criteria.append(_crit(rec, "purl", base, {"exact": ver, "effect": effect}))
                elif p.cpe:
                    extra: dict[str, Any] = {"effect": effect}
                    if p.version_range and p.version_range.startswith("vers:") and _cpe_version_any(p.cpe):
                        for iv in _vers_intervals(p.version_range):
                            iv.pop("scheme", None)
                            if "exact" in iv:
                                continue
                            rec.criteria.append(_crit(rec, "cpe", p.cpe, iv | extra))
                        continue
                    rec.criteria.append(_crit(rec, "cpe", p.cpe, extra))
        out.append(rec)
    return out


# --- KEV, EPSS -------------------------------------------------------------------------------------------

KEV_FIELDS = {"cveID", "vendorProject", "product", "vulnerabilityName", "dateAdded", "shortDescription",
              "requiredAction", "dueDate", "knownRansomwareCampaignUse", "notes", "cwes", "forensicTriage"}
KEV_REQUIRED = ("cveID", "vendorProject", "product", "vulnerabilityName", "dateAdded", "shortDescription",
                "requiredAction", "dueDate")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def read_kev(doc: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The KEV catalogue -> (header, items). Unknown fields, missing required ones, a bad CVE id or
    date refuse the whole file, naming the item and field."""
    doc = _obj(doc, "kev")
    for key in doc:
        if key not in ("title", "catalogVersion", "dateReleased", "count", "vulnerabilities"):
            raise IntakeError(f"kev.{key}", "unknown field")
    items = _list(doc.get("vulnerabilities"), "kev.vulnerabilities")
    if isinstance(doc.get("count"), int) and doc["count"] != len(items):
        raise IntakeError("kev.count", f"says {doc['count']}, the file holds {len(items)}")
    out = []
    for i, it in enumerate(items):
        w = f"kev.vulnerabilities[{i}]"
        it = _obj(it, w)
        for key in it:
            if key not in KEV_FIELDS:
                raise IntakeError(f"{w}.{key}", "unknown field")
        for key in KEV_REQUIRED:
            _str(it.get(key), f"{w}.{key}")
        if not CVE_RE.match(it["cveID"]):
            raise IntakeError(f"{w}.cveID", f"{it['cveID']!r} is not a CVE id")
        for key in ("dateAdded", "dueDate"):
            if not _DATE.match(it[key]):
                raise IntakeError(f"{w}.{key}", f"{it[key]!r} is not YYYY-MM-DD")
        out.append(it)
    return {"catalogVersion": doc.get("catalogVersion"), "dateReleased": doc.get("dateReleased")}, out


def read_epss(text: str) -> tuple[dict[str, str], list[tuple[str, float, float]]]:
    """The EPSS CSV (``#model_version:…,score_date:…`` then ``cve,epss,percentile``)."""
    lines = text.splitlines()
    meta: dict[str, str] = {}
    start = 0
    if lines and lines[0].startswith("#"):
        for part in lines[0][1:].split(","):
            if ":" in part:
                k, v = part.split(":", 1)
                meta[k.strip()] = v.strip()
        start = 1
    reader = csv.reader(io.StringIO("\n".join(lines[start:])))
    header = next(reader, None)
    if header != ["cve", "epss", "percentile"]:
        raise IntakeError("epss line 1" if not start else "epss line 2",
                          f"header {header!r}, cve,epss,percentile expected")
    rows = []
    for n, row in enumerate(reader, start=start + 2):
        if not row:
            continue
        if len(row) != 3:
            raise IntakeError(f"epss line {n}", f"{len(row)} fields, 3 expected")
        cve, e, p = row
        if not CVE_RE.match(cve):
            raise IntakeError(f"epss line {n}", f"{cve!r} is not a CVE id")
        try:
            ef, pf = float(e), float(p)
        except ValueError as exc:
            raise IntakeError(f"epss line {n}", f"{e!r}/{p!r} are not numbers") from exc
        if not (0 <= ef <= 1 and 0 <= pf <= 1):
            raise IntakeError(f"epss line {n}", "epss and percentile lie between 0 and 1")
        rows.append((cve, ef, pf))
    return meta, rows


# --- containers: a cvelistV5 folder, a release/delta zip ---------------------------------------------------

def _check_zip(zf: zipfile.ZipFile, name: str, max_total: int, max_member: int) -> list[zipfile.ZipInfo]:
    """The members to read, after checking every header: a member claiming more than its limit,
    an expansion ratio above :data:`MAX_RATIO` (a zip bomb), too many members or a total above
    ``max_total`` refuses the whole archive before anything is read from it."""
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_MEMBERS:
        raise IntakeError(name, f"{len(infos):,} members, at most {MAX_ZIP_MEMBERS:,}")
    total, keep = 0, []
    for info in infos:
        if info.is_dir():
            continue
        inner_zip = info.filename.lower().endswith(".zip")
        base = info.filename.rsplit("/", 1)[-1]
        if not inner_zip and not (base.startswith("CVE-") and base.endswith(".json")):
            continue
        limit = max_total if inner_zip else max_member
        if info.file_size > limit:
            raise IntakeError(info.filename, f"{info.file_size:,} bytes uncompressed, at most {limit:,}")
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
            raise IntakeError(info.filename, f"expands {info.file_size / info.compress_size:,.0f} times (a zip bomb?)")
        total += info.file_size
        if total > max_total:
            raise IntakeError(name, f"more than {max_total:,} bytes uncompressed")
        keep.append(info)
    return keep


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IntakeError(str(path), f"not a zip file ({exc})") from exc


def iter_zip_headers(path: Path, *, max_total: int = MAX_ZIP_TOTAL, max_member: int = MAX_RECORD_BYTES
                     ) -> Iterator[str]:
    """The names of the members :func:`iter_zip` would read; raises as it would, reading nothing."""
    with _open_zip(path) as zf:
        for info in _check_zip(zf, str(path), max_total, max_member):
            yield info.filename


def iter_zip(path: Path, *, max_total: int = MAX_ZIP_TOTAL, max_member: int = MAX_RECORD_BYTES
             ) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each ``CVE-*.json`` member, streamed, after :func:`_check_zip`; each read
    is bounded too, whatever a header claims. A zip inside the zip (a cvelistV5 release wraps the
    records in one) is copied to a temporary file within its limit and read the same way."""
    import tempfile

    with _open_zip(path) as zf:
        infos = _check_zip(zf, str(path), max_total, max_member)
        for info in infos:
            name = info.filename
            if name.lower().endswith(".zip"):
                with tempfile.NamedTemporaryFile(suffix=".zip") as tmp:
                    with zf.open(info) as src:
                        _copy_bounded(src, tmp, max_total, name)
                    tmp.flush()
                    yield from iter_zip(Path(tmp.name), max_total=max_total, max_member=max_member)
                continue
            with zf.open(info) as src:
                data = src.read(max_member + 1)
            if len(data) > max_member:
                raise IntakeError(name, f"more than {max_member:,} bytes")
            yield name, data


def _copy_bounded(src, dst, limit: int, name: str) -> None:
    n = 0
    while chunk := src.read(1 << 20):
        n += len(chunk)
        if n > limit:
            raise IntakeError(name, f"more than {limit:,} bytes")
        dst.write(chunk)


def iter_folder(path: Path) -> Iterator[tuple[str, bytes]]:
    """Every ``CVE-*.json`` under a cvelistV5 checkout (``cves/<year>/<Nxxx>/``), sorted."""
    for p in sorted(path.rglob("CVE-*.json")):
        if p.stat().st_size > MAX_RECORD_BYTES:
            raise IntakeError(str(p), f"larger than {MAX_RECORD_BYTES:,} bytes")
        yield str(p.relative_to(path)), p.read_bytes()


def detect(doc: Any) -> str:
    """Which format a parsed JSON document is: cve5, nvd, csaf, osv or kev."""
    if isinstance(doc, dict):
        if doc.get("dataType") == "CVE_RECORD":
            return "cve5"
        if "vulnerabilities" in doc and str(doc.get("format", "")).startswith("NVD_CVE"):
            return "nvd"
        if isinstance(doc.get("document"), dict) and "csaf_version" in doc["document"]:
            return "csaf"
        if "catalogVersion" in doc and "vulnerabilities" in doc:
            return "kev"
        if "id" in doc and "modified" in doc and ("affected" in doc or "aliases" in doc or "withdrawn" in doc):
            return "osv"
    raise IntakeError("file", "not a CVE JSON 5 record, NVD API page, CSAF 2.0 advisory, OSV record or KEV catalogue")


def criteria_of(records: list[Record]):
    """The records' criteria as one ``matching`` criteria frame; NVD configurations numbered
    across the records so an AND configuration stays within its record."""
    from commonwatch.vulns.matching import criteria_frame

    rows, cfgs = [], {}
    for rec in records:
        if rec.state == "REJECTED":
            continue
        for c in rec.criteria:
            c = dict(c)
            local = c.pop("cfg_local", None)
            if local is not None:
                c["cfg"] = cfgs.setdefault((rec.key, local), len(cfgs))
            rows.append(c)
    return criteria_frame(rows)


def read_document(raw: bytes, name: str = "file") -> list[Record]:
    """One JSON document of any record format -> its records (KEV is read with :func:`read_kev`)."""
    doc = loads(raw, name)
    kind = detect(doc)
    if kind == "cve5":
        return [read_cve5(doc, raw, name)]
    if kind == "nvd":
        return read_nvd_page(doc, raw, name)
    if kind == "csaf":
        return read_csaf(doc, raw)
    if kind == "osv":
        return [read_osv(doc, raw, name)]
    raise IntakeError(name, "a KEV catalogue holds no records; import it with the kev reader")
