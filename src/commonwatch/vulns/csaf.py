"""CSAF 2.0 checks: the document against the OASIS JSON schema, then the mandatory tests (§6.1)
that commonwatch can decide from the document alone.

The schema is the one published with CSAF 2.0 (``$id`` https://docs.oasis-open.org/csaf/csaf/v2.0/
csaf_json_schema.json) with the FIRST CVSS v2.0 / v3.0 / v3.1 schemas it refers to, as shipped in
the ``csaf-lib`` package (its data only; the tests below are commonwatch's). They are resolved from
that package, never fetched.

Each failure is a :class:`Failure` with the test id (``schema`` for the schema, else ``6.1.n``),
the JSON pointer of the place and the reason. Every §6.1 test is applied. 6.1.11 (CWE) looks the
weakness up in the MITRE CWE catalogue shipped in the ``cwe2`` package (its XML only, read once);
6.1.12 (language) asks ``langcodes`` whether the tag is valid against the IANA subtag registry it
ships. 6.1.9 and 6.1.10 check the base and temporal metrics; environmental ones are not compared.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

PROFILES = ("csaf_base", "csaf_security_incident_response", "csaf_informational_advisory",
            "csaf_security_advisory", "csaf_vex")
# §6.1.26: names and values of the profiles other than CSAF Base, folded (case, -, _ and spaces)
_FOLD = re.compile(r"[\s_-]")
_PROHIBITED = {_FOLD.sub("", x.lower()) for x in (
    "security incident response", "informational advisory", "security advisory", "vex",
    "csaf_security_incident_response", "csaf_informational_advisory", "csaf_security_advisory", "csaf_vex")}

AFFECTED = ("first_affected", "known_affected", "last_affected")
STATUS_GROUPS = {"first_affected": "affected", "known_affected": "affected", "last_affected": "affected",
                 "known_not_affected": "not affected", "first_fixed": "fixed", "fixed": "fixed",
                 "under_investigation": "under investigation"}
VEX_JUSTIFICATIONS = {"component_not_present", "inline_mitigations_already_exist",
                      "vulnerable_code_cannot_be_controlled_by_adversary", "vulnerable_code_not_in_execute_path",
                      "vulnerable_code_not_present"}
_RANGE_STRINGS = ("<", ">")           # covers <= and >= too
_RANGE_WORDS = {"after", "all", "before", "earlier", "later", "prior", "versions"}
INTEGER_VERSION = re.compile(r"^(0|[1-9][0-9]*)$")
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
                    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")

CVSS_SCHEMAS = {"cvss_v2_0.json": "https://www.first.org/cvss/cvss-v2.0.json",
                "cvss_v3_0.json": "https://www.first.org/cvss/cvss-v3.0.json",
                "cvss_v3_1.json": "https://www.first.org/cvss/cvss-v3.1.json"}


@dataclass(frozen=True)
class Failure:
    test: str      # "schema" or the §6.1 test id, e.g. "6.1.27.9"
    path: str      # a JSON pointer into the document
    reason: str

    def __str__(self) -> str:
        return f"{self.path or '/'}: {self.test} {self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {"test": self.test, "path": self.path or "/", "reason": self.reason}


# --- the schema ---------------------------------------------------------------------------------------------

@functools.cache
def _validator():
    from importlib.resources import files

    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    base = files("csaf_lib.verification.schemas")
    schema = json.loads((base / "csaf_2_0.json").read_text("utf-8"))
    resources = []
    for name, url in CVSS_SCHEMAS.items():
        contents = json.loads((base / name).read_text("utf-8"))
        res = Resource.from_contents(contents, default_specification=DRAFT7)
        resources += [(url, res), (contents.get("$id", url), res)]
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=Registry().with_resources(resources), format_checker=cls.FORMAT_CHECKER)


def _pointer(parts) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def schema_failures(doc: Any, limit: int = 50) -> list[Failure]:
    """The document against the CSAF 2.0 schema; an invalid CVSS object (§6.1.8) is named so."""
    out = []
    for err in sorted(_validator().iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        path = _pointer(err.absolute_path)
        test = "6.1.8" if re.search(r"/scores/\d+/cvss_v[23]", path) else "schema"
        out.append(Failure(test, path, err.message[:500]))
        if len(out) >= limit:
            break
    return out


# --- helpers ------------------------------------------------------------------------------------------------

def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _product_names(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(pointer, full_product_name) of every definition in the product tree."""
    tree = _d(doc.get("product_tree"))
    out: list[tuple[str, dict[str, Any]]] = []

    def walk(branches, where):
        for i, b in enumerate(_l(branches)):
            b = _d(b)
            if isinstance(b.get("product"), dict):
                out.append((f"{where}/{i}/product", b["product"]))
            walk(b.get("branches"), f"{where}/{i}/branches")

    walk(tree.get("branches"), "/product_tree/branches")
    for i, fpn in enumerate(_l(tree.get("full_product_names"))):
        if isinstance(fpn, dict):
            out.append((f"/product_tree/full_product_names/{i}", fpn))
    for i, rel in enumerate(_l(tree.get("relationships"))):
        if isinstance(_d(rel).get("full_product_name"), dict):
            out.append((f"/product_tree/relationships/{i}/full_product_name", rel["full_product_name"]))
    return out


def _branches(doc: dict[str, Any]):
    def walk(branches, where):
        for i, b in enumerate(_l(branches)):
            b = _d(b)
            yield f"{where}/{i}", b
            yield from walk(b.get("branches"), f"{where}/{i}/branches")
    yield from walk(_d(doc.get("product_tree")).get("branches"), "/product_tree/branches")


def _version_kind(v: str) -> str | None:
    return "integer" if INTEGER_VERSION.match(v) else "semver" if SEMVER.match(v) else None


def _prerelease(v: str) -> bool:
    m = SEMVER.match(v)
    return bool(m and m.group(4))


def _strip_build(v: str) -> str:
    return v.split("+", 1)[0]


def _zero(v: str) -> bool:
    return v == "0" or bool(SEMVER.match(v) and v.split(".", 1)[0] == "0")


def _major(v: str) -> int | None:
    if INTEGER_VERSION.match(v):
        return int(v)
    m = SEMVER.match(v)
    return int(m.group(1)) if m else None


# --- CVSS (6.1.9, 6.1.10) -----------------------------------------------------------------------------------

_V3_PROPS = {
    "attackVector": ("AV", {"N": "NETWORK", "A": "ADJACENT_NETWORK", "L": "LOCAL", "P": "PHYSICAL"}),
    "attackComplexity": ("AC", {"L": "LOW", "H": "HIGH"}),
    "privilegesRequired": ("PR", {"N": "NONE", "L": "LOW", "H": "HIGH"}),
    "userInteraction": ("UI", {"N": "NONE", "R": "REQUIRED"}),
    "scope": ("S", {"U": "UNCHANGED", "C": "CHANGED"}),
    "confidentialityImpact": ("C", {"H": "HIGH", "L": "LOW", "N": "NONE"}),
    "integrityImpact": ("I", {"H": "HIGH", "L": "LOW", "N": "NONE"}),
    "availabilityImpact": ("A", {"H": "HIGH", "L": "LOW", "N": "NONE"}),
    "exploitCodeMaturity": ("E", {"X": "NOT_DEFINED", "U": "UNPROVEN", "P": "PROOF_OF_CONCEPT", "F": "FUNCTIONAL",
                                  "H": "HIGH"}),
    "remediationLevel": ("RL", {"X": "NOT_DEFINED", "O": "OFFICIAL_FIX", "T": "TEMPORARY_FIX", "W": "WORKAROUND",
                                "U": "UNAVAILABLE"}),
    "reportConfidence": ("RC", {"X": "NOT_DEFINED", "U": "UNKNOWN", "R": "REASONABLE", "C": "CONFIRMED"}),
}
_V2_PROPS = {
    "accessVector": ("AV", {"L": "LOCAL", "A": "ADJACENT_NETWORK", "N": "NETWORK"}),
    "accessComplexity": ("AC", {"H": "HIGH", "M": "MEDIUM", "L": "LOW"}),
    "authentication": ("Au", {"M": "MULTIPLE", "S": "SINGLE", "N": "NONE"}),
    "confidentialityImpact": ("C", {"N": "NONE", "P": "PARTIAL", "C": "COMPLETE"}),
    "integrityImpact": ("I", {"N": "NONE", "P": "PARTIAL", "C": "COMPLETE"}),
    "availabilityImpact": ("A", {"N": "NONE", "P": "PARTIAL", "C": "COMPLETE"}),
}


def _vector_metrics(vector: str) -> dict[str, str]:
    parts = vector.split("/")
    if parts and parts[0].startswith("CVSS:"):
        parts = parts[1:]
    return dict(p.split(":", 1) for p in parts if ":" in p)


def _cvss_failures(body: dict[str, Any], key: str, where: str) -> list[Failure]:
    """6.1.9 (scores as computed by the ``cvss`` library) and 6.1.10 (properties against the vector)."""
    from cvss import CVSS2, CVSS3
    from cvss.exceptions import CVSSError

    vector = body.get("vectorString")
    if not isinstance(vector, str):
        return []
    out = []
    try:
        c = CVSS2(vector) if key == "cvss_v2" else CVSS3(vector)
    except (CVSSError, ValueError, KeyError) as exc:
        return [Failure("6.1.8", f"{where}/vectorString", f"{vector!r} is not a valid CVSS vector ({exc})")]
    scores = c.scores()
    names = ("baseScore", "temporalScore", "environmentalScore")
    for name, value in zip(names, scores, strict=False):
        given = body.get(name)
        if isinstance(given, int | float) and value is not None and abs(float(given) - float(value)) > 1e-9:
            out.append(Failure("6.1.9", f"{where}/{name}", f"is {given}, the vector gives {float(value)}"))
    if key == "cvss_v3":
        for name, value in zip(("baseSeverity", "temporalSeverity", "environmentalSeverity"), c.severities(),
                               strict=False):
            given = body.get(name)
            if isinstance(given, str) and given.upper() != str(value).upper():
                out.append(Failure("6.1.9", f"{where}/{name}", f"is {given}, the vector gives {str(value).upper()}"))
        prefix = vector.split("/", 1)[0].removeprefix("CVSS:")
        if isinstance(body.get("version"), str) and body["version"] != prefix:
            out.append(Failure("6.1.10", f"{where}/version", f"is {body['version']}, the vector is CVSS:{prefix}"))
    metrics = _vector_metrics(vector)
    for prop, (metric, values) in (_V2_PROPS if key == "cvss_v2" else _V3_PROPS).items():
        given = body.get(prop)
        if not isinstance(given, str):
            continue
        expected = values.get(metrics.get(metric, "X"), "NOT_DEFINED")
        if given != expected:
            out.append(Failure("6.1.10", f"{where}/{prop}", f"is {given}, the vector says {expected}"))
    return out


# --- CWE (6.1.11) and language (6.1.12) --------------------------------------------------------------------

@dataclass(frozen=True)
class CweCatalogue:
    version: str                               # the catalogue's own version, e.g. "4.14"
    entries: dict[int, tuple[str, str]]        # id -> (Weakness | Category | View, name)


@functools.cache
def cwe_catalogue() -> CweCatalogue:
    """The MITRE CWE catalogue as the ``cwe2`` package ships it (``cwec_v*.xml``), read once per
    process: every weakness, category and view with its name. Nothing is fetched."""
    from importlib.resources import files

    from defusedxml.ElementTree import iterparse

    base = files("cwe2.database_v49")
    path = next(p for p in base.iterdir() if p.name.startswith("cwec_v") and p.name.endswith(".xml"))
    kinds = ("Weakness", "Category", "View")
    version, entries = "", {}
    with path.open("rb") as fh:
        for event, el in iterparse(fh, events=("start", "end")):
            tag = el.tag.rpartition("}")[2]
            if event == "start":
                if tag == "Weakness_Catalog":
                    version = el.get("Version", "")
                elif tag in kinds and (el.get("ID") or "").isdigit():
                    entries[int(el.get("ID"))] = (tag, el.get("Name") or "")
            elif tag in kinds:
                el.clear()          # only the attributes are needed; keep memory flat
    return CweCatalogue(version, entries)


def cwe_failures(cwe: dict[str, Any], where: str, catalogue: CweCatalogue | None = None) -> list[Failure]:
    """6.1.11: the weakness exists in the CWE catalogue and its name is the catalogue's. CSAF 2.0
    names no catalogue version, so the one shipped is used; a category or view counts as existing
    (CSAF 2.1 refuses those, 2.0 does not). An id above the catalogue's highest weakness may be a
    weakness MITRE added since: it is not judged, so a current advisory is never quarantined for the
    age of the shipped catalogue."""
    cid, name = cwe.get("id"), cwe.get("name")
    if not isinstance(cid, str) or not re.fullmatch(r"CWE-[1-9]\d{0,5}", cid):
        return []     # the schema names a malformed id
    cat = catalogue or cwe_catalogue()
    entry = cat.entries.get(int(cid[4:]))
    if entry is None and int(cid[4:]) > highest_weakness(cat):
        return []
    if entry is None:
        return [Failure("6.1.11", f"{where}/id", f"{cid} is not in the CWE catalogue {cat.version}")]
    if isinstance(name, str) and name != entry[1]:
        return [Failure("6.1.11", f"{where}/name", f"is {name!r}; {cid} is {entry[1]!r} in CWE {cat.version}")]
    return []


def highest_weakness(cat: CweCatalogue) -> int:
    """The highest id of a weakness in ``cat`` (views are numbered apart, in the thousands)."""
    return max((i for i, (kind, _) in cat.entries.items() if kind == "Weakness"), default=0)


def language_failures(d: dict[str, Any]) -> list[Failure]:
    """6.1.12: ``/document/lang`` and ``/document/source_lang`` are valid BCP 47 tags whose subtags
    exist in the IANA registry (``langcodes``); private-use (``x-...``, ``qaa``–``qtz``) and
    grandfathered tags are valid as RFC 5646 says, a deprecated one too."""
    import langcodes

    out = []
    for key in ("lang", "source_lang"):
        tag = d.get(key)
        # "_" is no BCP 47 separator: langcodes would read en_US as en-US, the schema refuses it
        if isinstance(tag, str) and ("_" in tag or not langcodes.tag_is_valid(tag)):
            out.append(Failure("6.1.12", f"/document/{key}", f"{tag!r} is not a valid language tag (BCP 47)"))
    return out


# --- the mandatory tests ------------------------------------------------------------------------------------

def mandatory_failures(doc: Any) -> list[Failure]:
    """The §6.1 mandatory tests on a document that is an object; each failure names its test."""
    if not isinstance(doc, dict) or not isinstance(doc.get("document"), dict):
        return []
    out: list[Failure] = []
    add = lambda test, path, reason: out.append(Failure(test, path, reason))  # noqa: E731
    d = doc["document"]
    cat = d.get("category") if isinstance(d.get("category"), str) else ""
    tracking = _d(d.get("tracking"))
    tree = _d(doc.get("product_tree"))
    vulns = doc.get("vulnerabilities")

    # 6.1.2 multiple definition of product id; the set for 6.1.1
    defined: dict[str, str] = {}
    for where, fpn in _product_names(doc):
        pid = fpn.get("product_id")
        if not isinstance(pid, str):
            continue
        if pid in defined:
            add("6.1.2", f"{where}/product_id", f"{pid!r} is already defined at {defined[pid]}")
        else:
            defined[pid] = where
        helper = _d(fpn.get("product_identification_helper"))
        if isinstance(helper.get("purl"), str):
            from packageurl import PackageURL

            try:
                PackageURL.from_string(helper["purl"])
            except ValueError as exc:
                add("6.1.13", f"{where}/product_identification_helper/purl", f"not a valid purl: {exc}")
        # 6.1.25 multiple use of the same hash algorithm in one item of hashes
        for h, item in enumerate(_l(helper.get("hashes"))):
            algos = [str(_d(fh).get("algorithm", "")).lower() for fh in _l(_d(item).get("file_hashes"))]
            for a in sorted({a for a in algos if algos.count(a) > 1}):
                add("6.1.25", f"{where}/product_identification_helper/hashes/{h}/file_hashes",
                    f"the hash algorithm {a} is used more than once")

    def refs(ids, where):
        for j, pid in enumerate(_l(ids)):
            if isinstance(pid, str) and pid not in defined:
                add("6.1.1", f"{where}/{j}", f"{pid!r} is not defined in the product tree")

    # groups: 6.1.5 multiple definition; 6.1.1 for their members
    groups: dict[str, list[str]] = {}
    for i, g in enumerate(_l(tree.get("product_groups"))):
        g = _d(g)
        gid = g.get("group_id")
        refs(g.get("product_ids"), f"/product_tree/product_groups/{i}/product_ids")
        if not isinstance(gid, str):
            continue
        if gid in groups:
            add("6.1.5", f"/product_tree/product_groups/{i}/group_id", f"{gid!r} is defined more than once")
        else:
            groups[gid] = [p for p in _l(g.get("product_ids")) if isinstance(p, str)]

    def group_refs(ids, where):
        for j, gid in enumerate(_l(ids)):
            if isinstance(gid, str) and gid not in groups:
                add("6.1.4", f"{where}/{j}", f"{gid!r} is not defined in the product tree")

    def members(item: dict[str, Any]) -> set[str]:
        found = {p for p in _l(item.get("product_ids")) if isinstance(p, str)}
        for gid in _l(item.get("group_ids")):
            found.update(groups.get(gid, []))
        return found

    # relationships: 6.1.1 and 6.1.3 circular definition
    edges: dict[str, set[str]] = {}
    for i, rel in enumerate(_l(tree.get("relationships"))):
        rel = _d(rel)
        for k in ("product_reference", "relates_to_product_reference"):
            if isinstance(rel.get(k), str) and rel[k] not in defined:
                add("6.1.1", f"/product_tree/relationships/{i}/{k}", f"{rel[k]!r} is not defined in the product tree")
        pid = _d(rel.get("full_product_name")).get("product_id")
        if isinstance(pid, str):
            edges.setdefault(pid, set()).update(
                rel[k] for k in ("product_reference", "relates_to_product_reference") if isinstance(rel.get(k), str))
    for i, rel in enumerate(_l(tree.get("relationships"))):
        pid = _d(_d(rel).get("full_product_name")).get("product_id")
        if not isinstance(pid, str):
            continue
        seen, stack = set(), list(edges.get(pid, ()))
        while stack:
            n = stack.pop()
            if n == pid:
                add("6.1.3", f"/product_tree/relationships/{i}/full_product_name/product_id",
                    f"{pid!r} refers to itself through its relationships")
                break
            if n not in seen:
                seen.add(n)
                stack.extend(edges.get(n, ()))

    # tracking: 6.1.14–6.1.22, 6.1.30
    status = tracking.get("status")
    version = tracking.get("version") if isinstance(tracking.get("version"), str) else None
    history = [(i, h) for i, h in enumerate(_l(tracking.get("revision_history")))
               if isinstance(_d(h).get("number"), str) and isinstance(_d(h).get("date"), str)]
    by_date = [h["number"] for _, h in sorted(history, key=lambda ih: ih[1]["date"])]
    numbers = [h["number"] for _, h in history]
    kinds = {_version_kind(n) for n in [*numbers, *([version] if version else [])]} - {None}
    if len(kinds) > 1:
        add("6.1.30", "/document/tracking", "integer and semantic versioning are mixed")

    def order(n: str):
        m = SEMVER.match(n)
        if INTEGER_VERSION.match(n):
            return (int(n), 0, 0, 1, "")
        if m:
            return (int(m.group(1)), int(m.group(2)), int(m.group(3)), 0 if m.group(4) else 1, m.group(4) or "")
        return (float("inf"), 0, 0, 0, n)

    if len(kinds) == 1 and by_date != sorted(by_date, key=order):
        add("6.1.14", "/document/tracking/revision_history", "the numbers are not ascending when sorted by date")
    for n in sorted({n for n in numbers if numbers.count(n) > 1}):
        add("6.1.22", "/document/tracking/revision_history", f"the number {n} is used more than once")
    for i, h in history:
        if _prerelease(h["number"]):
            add("6.1.19", f"/document/tracking/revision_history/{i}/number", f"{h['number']} is a pre-release")
        if status in ("final", "interim") and _zero(h["number"]):
            add("6.1.18", f"/document/tracking/revision_history/{i}/number",
                f"{h['number']} in a document whose status is {status}")
    if len(kinds) == 1 and by_date:
        majors = [_major(n) for n in by_date]
        if majors[0] not in (0, 1):
            add("6.1.21", "/document/tracking/revision_history", f"the first item is {by_date[0]}, 0 or 1 expected")
        for a, b in zip(majors, majors[1:], strict=False):
            if a is not None and b is not None and b > a + 1:
                add("6.1.21", "/document/tracking/revision_history", f"the items between {a} and {b} are missing")
    if version:
        if by_date:
            last, mine = _strip_build(by_date[-1]), _strip_build(version)
            if status == "draft":
                last, mine = last.split("-", 1)[0], mine.split("-", 1)[0]
            if last != mine:
                add("6.1.16", "/document/tracking/version",
                    f"is {version}, the last item of the revision history is {by_date[-1]}")
        if (_zero(version) or _prerelease(version)) and status != "draft":
            add("6.1.17", "/document/tracking/status", f"is {status}, version {version} needs draft")
        if status in ("final", "interim") and _prerelease(version):
            add("6.1.20", "/document/tracking/version", f"{version} has a pre-release part in a {status} document")

    # document: 6.1.15, 6.1.26, 6.1.28
    if _d(d.get("publisher")).get("category") == "translator" and not d.get("source_lang"):
        add("6.1.15", "/document/source_lang", "required when the publisher is a translator")
    if cat and cat not in PROFILES:
        if _FOLD.sub("", cat.lower()) in _PROHIBITED:
            add("6.1.26", "/document/category", f"{cat!r} is a profile's name or value written differently")
        elif cat.startswith("csaf_"):
            add("6.1.26", "/document/category", f"{cat!r} uses the reserved prefix csaf_")
    out.extend(language_failures(d))
    if isinstance(d.get("lang"), str) and d.get("lang") == d.get("source_lang"):
        add("6.1.28", "/document/source_lang", f"the same as the document's language {d['lang']}")

    # 6.1.31 version range in product version
    for where, b in _branches(doc):
        name = b.get("name")
        if b.get("category") == "product_version" and isinstance(name, str):
            low = name.lower()
            if any(s in low for s in _RANGE_STRINGS) or _RANGE_WORDS & set(low.split()):
                add("6.1.31", f"{where}/name", f"{name!r} is a version range")

    # 6.1.27 profile tests on the document
    if cat in ("csaf_informational_advisory", "csaf_security_incident_response"):
        if not any(_d(n).get("category") in ("description", "details", "general", "summary")
                   for n in _l(d.get("notes"))):
            add("6.1.27.1", "/document/notes", "no note of category description, details, general or summary")
        if not any(_d(r).get("category") == "external" for r in _l(d.get("references"))):
            add("6.1.27.2", "/document/references", "no reference of category external")
    if cat == "csaf_informational_advisory" and "vulnerabilities" in doc:
        add("6.1.27.3", "/vulnerabilities", "an informational advisory has no vulnerabilities")
    if cat in ("csaf_security_advisory", "csaf_vex"):
        if "product_tree" not in doc:
            add("6.1.27.4", "/product_tree", f"required in {cat}")
        if "vulnerabilities" not in doc:
            add("6.1.27.11", "/vulnerabilities", f"required in {cat}")

    # vulnerabilities
    seen_cves: dict[str, int] = {}
    for i, v in enumerate(_l(vulns)):
        if not isinstance(v, dict):
            continue
        vw = f"/vulnerabilities/{i}"
        if isinstance(v.get("cwe"), dict):
            out.extend(cwe_failures(v["cwe"], f"{vw}/cwe"))
        cve = v.get("cve")
        if isinstance(cve, str):
            if cve in seen_cves:
                add("6.1.23", f"{vw}/cve", f"{cve} is used in /vulnerabilities/{seen_cves[cve]} too")
            else:
                seen_cves[cve] = i
        ps = _d(v.get("product_status"))
        where_of: dict[str, set[str]] = {}
        for key, ids in ps.items():
            refs(ids, f"{vw}/product_status/{key}")
            for pid in _l(ids):
                if key in STATUS_GROUPS and isinstance(pid, str):
                    where_of.setdefault(pid, set()).add(STATUS_GROUPS[key])
        for pid, gs in sorted(where_of.items()):
            if len(gs) > 1:
                add("6.1.6", f"{vw}/product_status", f"{pid!r} is in contradicting groups: {', '.join(sorted(gs))}")
        for j, r in enumerate(_l(v.get("remediations"))):
            r = _d(r)
            refs(r.get("product_ids"), f"{vw}/remediations/{j}/product_ids")
            group_refs(r.get("group_ids"), f"{vw}/remediations/{j}/group_ids")
            if not r.get("product_ids") and not r.get("group_ids"):
                add("6.1.29", f"{vw}/remediations/{j}", "names neither product_ids nor group_ids")
        for j, t in enumerate(_l(v.get("threats"))):
            t = _d(t)
            refs(t.get("product_ids"), f"{vw}/threats/{j}/product_ids")
            group_refs(t.get("group_ids"), f"{vw}/threats/{j}/group_ids")
        per_version: dict[tuple[str, str], int] = {}
        for j, s in enumerate(_l(v.get("scores"))):
            s = _d(s)
            refs(s.get("products"), f"{vw}/scores/{j}/products")
            for key in ("cvss_v2", "cvss_v3"):
                body = _d(s.get(key))
                if not body:
                    continue
                out.extend(_cvss_failures(body, key, f"{vw}/scores/{j}/{key}"))
                ver = "2.0" if key == "cvss_v2" else str(body.get("version", ""))
                for pid in _l(s.get("products")):
                    if (pid, ver) in per_version:
                        add("6.1.7", f"{vw}/scores/{j}", f"{pid!r} has a second CVSS v{ver} score "
                            f"(the first in scores/{per_version[(pid, ver)]})")
                    else:
                        per_version[(pid, ver)] = j
        inv = [(_d(x).get("party"), _d(x).get("date")) for x in _l(v.get("involvements"))]
        for party, date in sorted({x for x in inv if inv.count(x) > 1}, key=str):
            add("6.1.24", f"{vw}/involvements", f"the party {party} appears more than once at {date}")
        justified: dict[str, int] = {}
        for j, f in enumerate(_l(v.get("flags"))):
            f = _d(f)
            if not f.get("product_ids") and not f.get("group_ids"):
                add("6.1.32", f"{vw}/flags/{j}", "names neither product_ids nor group_ids")
            if f.get("label") in VEX_JUSTIFICATIONS:
                for pid in sorted(members(f)):
                    if pid in justified:
                        add("6.1.33", f"{vw}/flags/{j}", f"{pid!r} already has a VEX justification in flags/"
                            f"{justified[pid]}")
                    else:
                        justified[pid] = j
        # 6.1.27 profile tests on each vulnerability
        if cat in ("csaf_security_advisory", "csaf_vex") and not v.get("notes"):
            add("6.1.27.5", f"{vw}/notes", f"required in {cat}")
        if cat == "csaf_security_advisory" and "product_status" not in v:
            add("6.1.27.6", f"{vw}/product_status", "required in a security advisory")
        if cat == "csaf_vex":
            if not any(ps.get(k) for k in ("fixed", "known_affected", "known_not_affected", "under_investigation")):
                add("6.1.27.7", f"{vw}/product_status",
                    "none of fixed, known_affected, known_not_affected, under_investigation")
            if not v.get("cve") and not v.get("ids"):
                add("6.1.27.8", vw, "neither cve nor ids")
            impact = set().union(*[members(_d(f)) for f in _l(v.get("flags"))],
                                 *[members(_d(t)) for t in _l(v.get("threats")) if _d(t).get("category") == "impact"])
            for j, pid in enumerate(_l(ps.get("known_not_affected"))):
                if pid not in impact:
                    add("6.1.27.9", f"{vw}/product_status/known_not_affected/{j}", f"no impact statement for {pid!r}")
            action = set().union(*[members(_d(r)) for r in _l(v.get("remediations"))])
            for j, pid in enumerate(_l(ps.get("known_affected"))):
                if pid not in action:
                    add("6.1.27.10", f"{vw}/product_status/known_affected/{j}", f"no action statement for {pid!r}")
    return out


def failures(doc: Any) -> list[Failure]:
    """The schema, then the mandatory tests."""
    return schema_failures(doc) + mandatory_failures(doc)
