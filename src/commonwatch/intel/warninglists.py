"""Warning lists: known benign addresses, networks and domains (public resolvers, CDNs, top sites).

A list comes from a file: MISP's warninglist JSON (``{"name", "version", "description", "type",
"list"}``, ``type`` one of ``string``, ``cidr``, ``hostname``, ``substring``, ``regex``) or a plain
list, one entry a line (``#`` starts a comment). ``commonwatch intel warninglists load`` checks it
and stores it, normalised, as a Parquet file in the folder ``<data dir>/warninglists/`` (with a
``.json`` beside it saying what it is); a list is replaced whole (written aside, then renamed), so a
bad file changes nothing.

Matching is columnar: exact entries and host names are hash joins (a host name matches itself and
its subdomains: each value's suffixes are generated as columns, then joined), networks are integer
intervals (a 16-byte key split into two unsigned 64-bit halves) in one interval join, substrings one
Aho-Corasick pass per list, regexes one pass per list. A plain list of ten million lines is read,
checked and written streaming, in bounded memory.

What a hit does is policy (``rules/warning_lists.yaml``): by default an event on a list is not
warned about (the notify planner records it as ``listed``) and a value on a list is not promoted to
an indicator; pages mark what is on a list either way.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from commonwatch.errors import FieldError, Invalid
from commonwatch.i18n import _
from commonwatch.rules import RulesError, load_rules, rules_path

TYPES = ("string", "cidr", "hostname", "substring", "regex")
FOLDER = "warninglists"
#: How many levels of a host name are tried as list entries (a.b.c.example.com -> 6 suffixes).
MAX_LABELS = 12
_V4 = r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:/(\d{1,2}))?$"
_RANGE_SCHEMA = {"list": pl.String, "f_hi": pl.UInt64, "f_lo": pl.UInt64, "l_hi": pl.UInt64, "l_lo": pl.UInt64}


@dataclass(frozen=True)
class WarningList:
    """What a stored list is (its ``.json``)."""

    name: str
    version: int
    description: str
    type: str
    entries: int
    source: str
    loaded_at: str

    @property
    def slug(self) -> str:
        return slug_of(self.name)


def slug_of(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80] or "list"


def folder_of(data_dir: Path) -> Path:
    return Path(data_dir) / FOLDER


# --- reading files -------------------------------------------------------------------------------------

def parse_misp(raw: bytes | str, origin: str = "file") -> tuple[dict[str, Any], list[str]]:
    """A MISP warninglist document: its header and entries; :class:`Invalid` names the field."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise Invalid(origin, _("is not valid JSON{where}").format(where=where)) from None
    if not isinstance(doc, dict):
        raise Invalid(origin, _("must be a JSON object with name, version, description, type and list"))
    errors: list[FieldError] = []
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.append(FieldError("name", _("is required (a non-empty text)")))
    version = doc.get("version")
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool):
        errors.append(FieldError("version", _("must be a whole number")))
    description = doc.get("description", "")
    if not isinstance(description, str):
        errors.append(FieldError("description", _("must be text")))
    kind = doc.get("type", "string")
    if kind not in TYPES:
        errors.append(FieldError("type", _("“{value}” is not one of: {choices}").format(
            value=kind, choices=", ".join(TYPES))))
    entries = doc.get("list")
    if not isinstance(entries, list):
        errors.append(FieldError("list", _("is required (an array of texts)")))
    else:
        bad = next((i for i, v in enumerate(entries) if not isinstance(v, str)), None)
        if bad is not None:
            errors.append(FieldError(f"list[{bad}]", _("must be text")))
    if errors:
        raise Invalid(errors)
    return {"name": name.strip(), "version": version, "description": description, "type": kind}, entries


def read_plain(path: Path) -> pl.LazyFrame:
    """A plain list, one entry a line, read lazily (``#`` comments and blank lines skipped)."""
    # Comments are dropped after numbering, so an error names the line as the file has it.
    return (pl.scan_csv(path, has_header=False, new_columns=["value"], separator="\x1f", quote_char=None,
                        schema={"value": pl.String}, encoding="utf8-lossy")
            .with_row_index("line", offset=1)
            .with_columns(pl.col("value").str.strip_chars())
            .filter(pl.col("value").is_not_null() & (pl.col("value") != "") & ~pl.col("value").str.starts_with("#")))


# --- normalising ------------------------------------------------------------------------------------------

def _v4_ranges(lf: pl.LazyFrame) -> pl.LazyFrame:
    """IPv4 addresses and networks as ranges of IPv4-mapped keys, computed on whole columns."""
    # One extract per group (no struct column): the streaming engine keeps memory bounded.
    group = [pl.col("value").str.extract(_V4, k) for k in range(1, 6)]
    octets = [g.cast(pl.UInt64, strict=False) for g in group[:4]]
    prefix = group[4].cast(pl.UInt64, strict=False).fill_null(32)
    address = octets[0] * 16777216 + octets[1] * 65536 + octets[2] * 256 + octets[3]
    size = prefix.replace_strict({p: 2 ** (32 - p) for p in range(33)}, default=None, return_dtype=pl.UInt64)
    ok = (pl.all_horizontal([o.is_not_null() & (o <= 255) for o in octets]) & size.is_not_null()
          & ((address % size) == 0))
    mapped = pl.lit(0xFFFF << 32, pl.UInt64)
    return lf.with_columns(ok.fill_null(False).alias("ok"), pl.lit(0, pl.UInt64).alias("f_hi"),
                           (mapped + address).alias("f_lo"), pl.lit(0, pl.UInt64).alias("l_hi"),
                           (mapped + address + size - 1).alias("l_lo"))


def _v6_ranges(values: list[tuple[int, str]]) -> tuple[pl.DataFrame, int | None]:
    """IPv6 entries (few in practice) through :mod:`ipaddress`; the first bad line, if any."""
    import ipaddress

    rows = []
    for line, text in values:
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError:
            return pl.DataFrame(), line
        first, last = int(net.network_address), int(net.broadcast_address)
        rows.append((first >> 64, first & (2**64 - 1), last >> 64, last & (2**64 - 1)))
    return pl.DataFrame(rows, schema={"f_hi": pl.UInt64, "f_lo": pl.UInt64, "l_hi": pl.UInt64,
                                      "l_lo": pl.UInt64}, orient="row"), None


def _bad_line(origin: str, line: int, text: str, kind: str) -> Invalid:
    return Invalid(f"{origin}:{line}", _("“{value}” is not a valid {kind} entry").format(value=text[:200], kind=kind))


def normalised(lf: pl.LazyFrame, kind: str, origin: str, scratch: Path | None = None) -> pl.LazyFrame:
    """Entries ready to match: ``value`` (lower-case text) or the four range columns for ``cidr``.
    Refuses the first bad entry with its line."""
    if kind in ("string", "hostname", "substring"):
        value = pl.col("value").str.to_lowercase()
        if kind == "hostname":
            value = value.str.strip_prefix("*.").str.strip_prefix(".").str.strip_suffix(".")
        return lf.select(value.alias("value")).filter(pl.col("value") != "")  # no unique(): streams
    if kind == "regex":
        frame = lf.collect()
        for line, text in frame.select("line", "value").iter_rows():  # one compile per regex, lists are short
            try:
                re.compile(_regex_body(text))
            except re.error:
                raise _bad_line(origin, line, text, kind) from None
        return frame.lazy().select("value")
    # The ranges are written aside first (streaming), then checked there: a second pass over the
    # text with the check would hold the whole list in memory.
    scratch = scratch or Path(tempfile.mkdtemp(prefix="cw-warninglist-")) / "ranges.parquet"
    (_v4_ranges(lf.filter(~pl.col("value").str.contains(":")))
     .select("line", "ok", "f_hi", "f_lo", "l_hi", "l_lo").sink_parquet(scratch))
    bad = pl.scan_parquet(scratch).filter(~pl.col("ok")).select("line").head(1).collect()
    if bad.height:
        line = int(bad["line"][0])
        text = lf.filter(pl.col("line") == line).select("value").collect(engine="streaming")["value"][0]
        raise _bad_line(origin, line, text, kind)
    v4 = pl.scan_parquet(scratch)
    v6_rows = lf.filter(pl.col("value").str.contains(":")).select("line", "value").collect(engine="streaming")
    v6, bad_line = _v6_ranges(list(v6_rows.iter_rows()))
    if bad_line is not None:
        text = v6_rows.filter(pl.col("line") == bad_line)["value"][0]
        raise _bad_line(origin, bad_line, text, kind)
    ranges = v4.select("f_hi", "f_lo", "l_hi", "l_lo")
    return pl.concat([ranges, v6.lazy()]) if v6.height else ranges


def _regex_body(text: str) -> str:
    """MISP writes regexes as ``/body/flags``; the body, with ``(?i)`` for an ``i`` flag."""
    m = re.fullmatch(r"/(.*)/([a-z]*)", text, re.S)
    if not m:
        return text
    return ("(?i)" if "i" in m.group(2) else "") + m.group(1)


# --- storing --------------------------------------------------------------------------------------------

def load_file(path: Path, data_dir: Path, now: datetime, *, name: str | None = None, kind: str | None = None,
              description: str = "") -> WarningList:
    """Check a list file and store it (replacing a list of the same name). JSON is MISP's format;
    anything else is a plain list (``kind`` defaults to ``string``). Nothing is stored on an error."""
    path = Path(path)
    origin = path.name
    if not path.is_file():
        raise Invalid("file", _("{path} is not a file").format(path=str(path)))
    if path.suffix.lower() == ".json":
        header, entries = parse_misp(path.read_bytes(), origin)
        if name:
            header["name"] = name
        lf = (pl.LazyFrame({"value": entries}, schema={"value": pl.String}).with_row_index("line", offset=0)
              .with_columns(pl.col("value").str.strip_chars()).filter(pl.col("value") != ""))
    else:
        kind = kind or "string"
        if kind not in TYPES:
            raise Invalid("type", _("“{value}” is not one of: {choices}").format(value=kind, choices=", ".join(TYPES)))
        header = {"name": name or path.stem, "version": 1, "description": description, "type": kind}
        lf = read_plain(path)
    folder = folder_of(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    slug = slug_of(header["name"])
    tmp = folder / f".{slug}.parquet.tmp"
    scratch = folder / f".{slug}.ranges.tmp"
    try:
        normalised(lf, header["type"], origin, scratch).sink_parquet(tmp)
        entries_n = pl.scan_parquet(tmp).select(pl.len()).collect().item()
        meta = WarningList(name=header["name"], version=int(header["version"]), description=header["description"],
                           type=header["type"], entries=int(entries_n), source=str(path), loaded_at=now.isoformat())
        meta_tmp = folder / f".{slug}.json.tmp"
        meta_tmp.write_text(json.dumps(asdict(meta), ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, folder / f"{slug}.parquet")
        os.replace(meta_tmp, folder / f"{slug}.json")
    finally:
        tmp.unlink(missing_ok=True)
        scratch.unlink(missing_ok=True)
    _CACHE.clear()
    return meta


def stored(data_dir: Path) -> list[WarningList]:
    """The lists in the folder, by name."""
    folder = folder_of(data_dir)
    if not folder.is_dir():
        return []
    out = []
    for meta in sorted(folder.glob("*.json")):
        if (folder / f"{meta.stem}.parquet").is_file():
            out.append(WarningList(**json.loads(meta.read_text(encoding="utf-8"))))
    return sorted(out, key=lambda w: w.name)


def remove(data_dir: Path, name: str) -> bool:
    folder = folder_of(data_dir)
    slug = slug_of(name)
    found = (folder / f"{slug}.json").is_file()
    (folder / f"{slug}.json").unlink(missing_ok=True)
    (folder / f"{slug}.parquet").unlink(missing_ok=True)
    _CACHE.clear()
    return found


# --- matching ------------------------------------------------------------------------------------------

@dataclass
class Loaded:
    exact: pl.DataFrame  # list, value (string lists)
    hosts: pl.DataFrame  # list, value (hostname lists)
    ranges: pl.DataFrame  # list, f_hi, f_lo, l_hi, l_lo
    substrings: dict[str, list[str]]
    regexes: dict[str, str]


_CACHE: dict[tuple, Loaded] = {}


def loaded(data_dir: Path) -> Loaded:
    """Every stored list, read once per change of the folder."""
    lists = stored(data_dir)
    folder = folder_of(data_dir)
    key = (str(folder), tuple((w.slug, w.loaded_at) for w in lists))
    if key in _CACHE:
        return _CACHE[key]
    exact, hosts, ranges, subs, regexes = [], [], [], {}, {}
    for w in lists:
        frame = pl.read_parquet(folder / f"{w.slug}.parquet")
        if w.type == "string":
            exact.append(frame.select(pl.lit(w.name).alias("list"), "value"))
        elif w.type == "hostname":
            hosts.append(frame.select(pl.lit(w.name).alias("list"), "value"))
        elif w.type == "cidr":
            ranges.append(frame.select(pl.lit(w.name).alias("list"), "f_hi", "f_lo", "l_hi", "l_lo"))
        elif w.type == "substring":
            subs[w.name] = frame["value"].to_list()
        else:
            regexes[w.name] = "|".join(f"(?:{_regex_body(v)})" for v in frame["value"].to_list())
    empty = pl.DataFrame(schema={"list": pl.String, "value": pl.String})
    out = Loaded(pl.concat(exact) if exact else empty, pl.concat(hosts) if hosts else empty,
                 pl.concat(ranges) if ranges else pl.DataFrame(schema=_RANGE_SCHEMA), subs, regexes)
    _CACHE.clear()
    _CACHE[key] = out
    return out


def _suffixes(value: pl.Expr) -> list[pl.Expr]:
    labels = value.str.split(".")
    return [labels.list.slice(k).list.join(".") for k in range(MAX_LABELS)]


def hits(values: pl.DataFrame, lists: Loaded) -> pl.DataFrame:
    """``(value, list)`` for every value of ``values`` (columns ``value``; ``key``: the 16-byte
    address key or null) found on a list."""
    out = [pl.DataFrame(schema={"value": pl.String, "list": pl.String})]
    if values.is_empty():
        return out[0]
    v = values.select(pl.col("value"), pl.col("value").str.to_lowercase().alias("low"),
                      pl.col("key") if "key" in values.columns else pl.lit(None, pl.Binary).alias("key")).unique()
    if lists.exact.height:
        out.append(v.join(lists.exact, left_on="low", right_on="value").select("value", "list"))
    if lists.hosts.height:
        from_url = pl.col("low").str.extract(r"^[a-z0-9+.-]+://([^/:?#@]+)")
        host = pl.when(pl.col("low").str.contains("://")).then(from_url).otherwise(pl.col("low"))
        sfx = v.select("value", pl.concat_list(_suffixes(host)).alias("s")).explode("s").filter(
            pl.col("s").is_not_null() & (pl.col("s") != ""))
        out.append(sfx.join(lists.hosts, left_on="s", right_on="value").select("value", "list"))
    if lists.ranges.height:
        keyed = v.select("value", *_address_halves(pl.col("value"), pl.col("key"))).filter(
            pl.col("a_hi").is_not_null())
        if keyed.height:
            inside = (pl.col("a_hi") >= pl.col("f_hi"), pl.col("a_hi") <= pl.col("l_hi"),
                      pl.col("a_lo") >= pl.col("f_lo"), pl.col("a_lo") <= pl.col("l_lo"))
            out.append(keyed.join_where(lists.ranges, *inside).select("value", "list"))
    for name, patterns in lists.substrings.items():
        out.append(v.filter(pl.col("low").str.contains_any(patterns)).select("value", pl.lit(name).alias("list")))
    for name, pattern in lists.regexes.items():
        out.append(v.filter(pl.col("value").str.contains(pattern)).select("value", pl.lit(name).alias("list")))
    return pl.concat(out).unique().sort("value", "list")


#: Event columns looked up on the lists (the address through its key).
EVENT_VALUE_COLUMNS = ("source_ip", "destination_ip", "source_fqdn", "destination_fqdn", "source_url")


def event_hits(events: pl.DataFrame, lists: Loaded) -> pl.DataFrame:
    """``(id, list)`` for every event one of whose values is on a list."""
    parts = []
    for column in EVENT_VALUE_COLUMNS:
        if column not in events.columns:
            continue
        key = (pl.col("source_ip_bin") if column == "source_ip" and "source_ip_bin" in events.columns
               else pl.lit(None, pl.Binary))
        parts.append(events.select("id", pl.col(column).alias("value"), key.alias("key")))
    if not parts:
        return pl.DataFrame(schema={"id": pl.Int64, "list": pl.String})
    values = pl.concat(parts).filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
    found = hits(values.select("value", "key"), lists)
    return values.join(found, on="value").select("id", "list").unique().sort("id", "list")


def _address_halves(value: pl.Expr, key: pl.Expr) -> list[pl.Expr]:
    """The 64-bit halves of an address: from its stored 16-byte key, else from IPv4 text (columns)."""
    parts = value.str.extract_groups(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
    octets = [parts.struct.field(str(i)).cast(pl.UInt64, strict=False) for i in range(1, 5)]
    v4 = pl.lit(0xFFFF << 32, pl.UInt64) + octets[0] * 16777216 + octets[1] * 65536 + octets[2] * 256 + octets[3]
    v4_ok = pl.all_horizontal([o.is_not_null() & (o <= 255) for o in octets])
    has_key = key.is_not_null() & (key.bin.size() == 16)
    key_hi = key.bin.slice(0, 8).bin.reinterpret(dtype=pl.UInt64, endianness="big")
    key_lo = key.bin.slice(8, 8).bin.reinterpret(dtype=pl.UInt64, endianness="big")
    hi = pl.when(has_key).then(key_hi).when(v4_ok).then(pl.lit(0, pl.UInt64)).otherwise(None)
    lo = pl.when(has_key).then(key_lo).when(v4_ok).then(v4).otherwise(None)
    return [hi.alias("a_hi"), lo.alias("a_lo")]


# --- policy ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Policy:
    default: str  # suppress | warn
    lists: dict[str, str]

    def suppressing(self, names: list[str]) -> list[str]:
        return [n for n in names if self.lists.get(n, self.default) == "suppress"]


def policy(data_dir: Path | None) -> Policy:
    """``rules/warning_lists.yaml``: what a hit does (``suppress``: kept out of warnings and promotion)."""
    data = load_rules("warning_lists.yaml", data_dir)
    origin = str(rules_path("warning_lists.yaml", data_dir))
    rule = data.get("on_hit")
    if not isinstance(rule, dict) or rule.get("default") not in ("suppress", "warn"):
        raise RulesError(origin, "on_hit.default must be suppress or warn")
    lists = rule.get("lists") or {}
    if not isinstance(lists, dict) or any(v not in ("suppress", "warn") for v in lists.values()):
        raise RulesError(origin, "on_hit.lists must map list names to suppress or warn")
    return Policy(rule["default"], {str(k): v for k, v in lists.items()})


def suppressed_event_ids(events: pl.DataFrame, data_dir: Path) -> pl.DataFrame:
    """``(id, list)`` of the events the policy keeps out of warnings."""
    lists = loaded(data_dir)
    found = event_hits(events, lists)
    if found.is_empty():
        return found
    keep = policy(data_dir).suppressing(sorted(set(found["list"].to_list())))
    return found.filter(pl.col("list").is_in(keep))
