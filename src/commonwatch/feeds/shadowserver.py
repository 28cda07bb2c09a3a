"""Shadowserver reports (CSV).

The report type is taken from the file name as Shadowserver names its reports
(``2026-11-24-scan_http-asn-region-geo.csv``) or, failing that, from the header. The mapping of
each report's columns lives in a data file in the format of Shadowserver's published IntelMQ
schema (``feeds/data/shadowserver-schema.json``); ``commonwatch feeds update-schema FILE``
replaces the operator's copy from a newer schema JSON, offline. A report type the schema does not
know falls back to a generic mapping that keeps every unmapped column under ``extra.*`` and says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from commonwatch.errors import Invalid
from commonwatch.feeds.base import ParsedBatch, Shape, Source
from commonwatch.feeds.common import iter_csv, rename_to_fields
from commonwatch.i18n import _

SCHEMA_FILE = "shadowserver-schema.json"
_NAME_RE = re.compile(r"(?:^|[/!])(?:\d{4}-\d{2}-\d{2}-)?([a-z0-9]+(?:_[a-z0-9]+)*)(?:-[^/]*)?\.(?:csv|txt)(?:\.gz)?$",
                      re.IGNORECASE)
_DATED_RE = re.compile(r"(?:^|[/!])\d{4}-\d{2}-\d{2}-[a-z0-9_]+", re.IGNORECASE)
#: Columns every Shadowserver report shares, for the generic fallback.
GENERIC = {"timestamp": "time.source", "ip": "source.ip", "src_ip": "source.ip", "port": "source.port",
           "src_port": "source.port", "hostname": "source.reverse_dns", "asn": "source.asn", "src_asn": "source.asn",
           "geo": "source.geolocation.cc", "src_geo": "source.geolocation.cc", "protocol": "protocol.transport",
           "dst_ip": "destination.ip", "dst_port": "destination.port", "infection": "malware.name",
           "url": "source.url", "http_host": "source.fqdn"}


#: Report types under the names Shadowserver used before the scan_ prefix -> today's name.
LEGACY_NAMES = {"cisco_smart_install": "scan_cisco_smart_install"}
#: Schema fields commonwatch computes itself: Shadowserver's value is kept in ``extra`` instead.
OWN_FIELDS = {"severity": "extra.severity"}
#: Schema targets that are not event fields (IntelMQ reads the column but stores nothing).
NOT_FIELDS = frozenset({"not_in_idf", "__IGNORE__"})


@dataclass(frozen=True)
class Report:
    name: str
    feed_name: str
    mapping: dict[str, str]  # column -> harmonisation field
    required: tuple[str, ...]  # columns that must be present
    constants: dict[str, str]


def schema_path(data_dir: Path | None = None) -> Path:
    """The operator's refreshed schema if there is one, else the shipped one."""
    if data_dir is not None:
        own = data_dir / "feeds" / SCHEMA_FILE
        if own.is_file():
            return own
    return Path(str(resources.files("commonwatch.feeds").joinpath("data", SCHEMA_FILE)))


def parse_schema(data: Any, origin: str = SCHEMA_FILE) -> dict[str, Report]:
    """Validate a schema in Shadowserver's published format; raises :class:`Invalid` naming the
    report and the problem."""
    if not isinstance(data, dict):
        raise Invalid(origin, _("must be a JSON object of report types"))
    reports: dict[str, Report] = {}
    for name, spec in data.items():
        if name.startswith("_"):  # "_meta": date_created and change_log
            continue
        if not isinstance(spec, dict):
            raise Invalid(origin, _("report {name} must be an object").format(name=name))
        mapping: dict[str, str] = {}
        required: list[str] = []
        for key in ("required_fields", "optional_fields"):
            for i, entry in enumerate(spec.get(key) or []):
                if not (isinstance(entry, list) and len(entry) >= 2 and all(isinstance(x, str) for x in entry[:2])):
                    raise Invalid(origin, _("report {name}: {key} entry {i} must be [field, column, ...]").format(
                        name=name, key=key, i=i + 1))
                field, column = entry[0], entry[1]
                if field.endswith("."):
                    field = field + column
                field = OWN_FIELDS.get(field, field)
                if field in NOT_FIELDS:
                    continue
                mapping.setdefault(column, field)
                if key == "required_fields":
                    required.append(column)
        constants = spec.get("constant_fields") or {}
        if not isinstance(constants, dict):
            raise Invalid(origin, _("report {name}: constant_fields must be an object").format(name=name))
        if not required:
            raise Invalid(origin, _("report {name} has no required_fields").format(name=name))
        # Files are named by the report's file_name (event4_sinkhole), which may differ from its key.
        file_name = str(spec.get("file_name") or name)
        reports[file_name] = Report(file_name, str(spec.get("feed_name") or name), mapping, tuple(required),
                                    {k: str(v) for k, v in constants.items()})
    if not reports:
        raise Invalid(origin, _("contains no report types"))
    return reports


def load_schema(data_dir: Path | None = None) -> dict[str, Report]:
    path = schema_path(data_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise Invalid(str(path), _("is not valid JSON: {error}").format(error=exc)) from None
    return parse_schema(data, str(path))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Invalid(str(path), _("is not a readable JSON file: {error}").format(error=exc)) from None


def _by_file_name(data: dict[str, Any]) -> dict[str, Any]:
    """The schema's entries keyed by the report type its files carry (``file_name``)."""
    return {(str(v.get("file_name") or k) if isinstance(v, dict) and not k.startswith("_") else k): v
            for k, v in data.items()}


def update_schema(source_file: Path, data_dir: Path, *, target: Path | None = None,
                  keep_existing: bool = False) -> tuple[Path, list[str], list[str]]:
    """Install a newer schema JSON as the operator's copy (or as ``target``, e.g. the shipped
    mapping); returns (path, added, changed) report names. With ``keep_existing`` the report
    types already installed keep their mapping and only new ones are added."""
    data = _by_file_name(_read_json(source_file))
    new = parse_schema(data, str(source_file))
    target = target or data_dir / "feeds" / SCHEMA_FILE
    installed = _by_file_name(_read_json(target)) if target.is_file() else None
    old = parse_schema(installed, str(target)) if installed else load_schema(data_dir)
    if keep_existing and installed:
        data = {**data, **{k: v for k, v in installed.items() if k in old or k.startswith("_")}}
        data["_meta"] = {**(installed.get("_meta") or {}), "generated_from": source_file.name,
                         "source_meta": _read_json(source_file).get("_meta")}
        new = parse_schema(data, str(source_file))
    added = sorted(set(new) - set(old))
    changed = sorted(n for n in set(new) & set(old) if new[n] != old[n])
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(sorted(data.items())), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(target)  # atomic: a parser never reads half a schema
    return target, added, changed


def report_from_name(name: str, reports: dict[str, Report]) -> str | None:
    """The report type in a Shadowserver file name, e.g. ``2026-11-24-scan_http-asn-geo.csv``."""
    m = _NAME_RE.search(name.replace("\\", "/"))
    if not m:
        return None
    candidate = m.group(1).lower()
    candidate = LEGACY_NAMES.get(candidate, candidate)
    if candidate in reports:
        return candidate
    # Names such as scan_http_asn: take the longest known report that starts the name.
    known = [r for r in reports if candidate.startswith(r + "_")]
    return max(known, key=len) if known else candidate


#: Columns most reports share: they say nothing about which report a file is.
SHARED = frozenset(GENERIC) | {"tag", "hostname", "region", "city", "naics", "sic", "sector", "severity",
                               "src_hostname", "src_region", "src_city", "src_naics", "src_sector", "event_id"}


def report_from_header(header: list[str], reports: dict[str, Report]) -> str | None:
    """The known report whose required columns are all present and that maps most of the file's
    report-specific columns (at least one: shared columns alone prove nothing)."""
    cols = set(header) - SHARED
    best, best_score = None, 0
    for name, rep in reports.items():
        if not set(rep.required) <= set(header):
            continue
        score = len(cols & set(rep.mapping))
        if score > best_score:
            best, best_score = name, score
    return best


class ShadowserverParser:
    name = "shadowserver"
    description = "Shadowserver reports (CSV); report type from the file name or header"

    def __init__(self, data_dir: Path | None = None):
        self.reports = load_schema(data_dir)

    def parse(self, source: Source) -> Iterator[ParsedBatch]:
        by_name = report_from_name(source.name, self.reports)
        dated = bool(_DATED_RE.search(source.name))
        report: Report | None = None
        for frame, bad, notes, header in iter_csv(source):
            if report is None and header:
                report, note = self._choose(by_name, header, dated)
                if note:
                    notes = [note, *notes]
            if report is None:
                # no header (an empty file): still the named report's run, for feed health
                known = self.reports.get(by_name or "")
                shape = Shape(f"shadowserver-{known.name}", (), tuple(known.mapping), known.required) if known \
                    else None
                yield ParsedBatch(frame, bad, notes, shape)
                continue
            present = [c for c in report.required if c not in header]
            if present and frame.height:
                notes = [_("report {report}: required column(s) {cols} missing").format(
                    report=report.name, cols=", ".join(present)), *notes]
            out = rename_to_fields(frame, report.mapping, constants={
                "feed.name": f"shadowserver-{report.name}", "feed.provider": "Shadowserver", **report.constants})
            # A generic fallback has no mapping to hold the header against (mapped stays empty).
            known = report.name in self.reports
            yield ParsedBatch(out, bad, notes, Shape(f"shadowserver-{report.name}", tuple(header),
                                                     tuple(report.mapping) if known else (),
                                                     report.required if known else ()))

    def _choose(self, by_name: str | None, header: list[str], dated: bool) -> tuple[Report, str]:
        if by_name in self.reports:
            return self.reports[by_name], ""
        # A name in Shadowserver's own pattern (2026-11-24-<report>-...) is authoritative.
        by_header = None if dated else report_from_header(header, self.reports)
        if by_header:
            return self.reports[by_header], _("report type {report} recognised from the header").format(
                report=by_header)
        name = by_name or "unknown"
        mapping = {c: GENERIC[c] for c in header if c in GENERIC}
        kept = [c for c in header if c not in mapping]
        note = _("unknown report type {report}: generic mapping, {n} column(s) kept under extra.*").format(
            report=name, n=len(kept))
        return Report(name, name, mapping, (), {"classification.type": "undetermined",
                                                "classification.identifier": name}), note


def generic_columns() -> list[str]:
    return sorted(GENERIC)



