"""Matching assets against vulnerability records: pure, columnar, all assets against all records at once.

Inputs are Polars frames:

* assets -- the columns of ``commonwatch.cii.services.asset_frame``: ``asset_id, org_id,
  system_id, mlps_level, cpe, purl, version``.
* criteria -- one row per applicability statement of a record (:data:`CRITERIA_SCHEMA`): an NVD
  ``cpeMatch``, a CVE 5 ``affected`` entry, an OSV range or version list, a CSAF product status.
  ``effect`` is ``affected``, or ``not_affected`` / ``fixed`` (VEX): those suppress the same
  vulnerability on the same asset, whatever record matched it.

How it runs: distinct asset names are parsed once (a column, a Python call only for the rare
escaped or wildcarded value); criteria are joined to names on vendor+product (or on one of them,
or crossed, when a criterion has ANY/wildcards there); every NISTIR 7696 attribute rule is a
vectorised expression on the joined rows; version ranges are integer compares on order keys made
per distinct version (:mod:`commonwatch.vulns.versions`). No Python loop per asset-record pair.

CPE name matching (NISTIR 7696 §6/§7, "name match"): the criterion X matches the asset's name K
when every attribute compares as SUPERSET or EQUAL, with, per attribute, in order: a wildcard in
the target gives UNDEFINED (no match); equal values EQUAL; X ANY SUPERSET; K ANY SUBSET (no
match); either NA DISJOINT; X's leading/trailing ``*``/``?`` matched against K's value SUPERSET,
otherwise DISJOINT (as NIST's reference code, ``n`` leading or trailing ``?`` allow up to ``n``
characters there). The asset's ``version`` column fills the version of a CPE whose version is ANY.

NVD version ranges (``versionStart/End Including/Excluding``) apply to a criterion whose version is
ANY; an asset whose version is ANY, NA or missing does not fall in a range. An NVD configuration
with operator AND ("X running on Y") matches an asset only when every node of it is matched by some
asset of the same system (of the same organisation when the asset has no system).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from packageurl import PackageURL

from commonwatch.vulns import cpe as cpelib
from commonwatch.vulns import versions as vlib

ATTRS = cpelib.ATTRS

ASSET_SCHEMA: dict[str, pl.DataType] = {
    "asset_id": pl.Int64, "org_id": pl.Int64, "system_id": pl.Int64, "mlps_level": pl.Int8,
    "cpe": pl.Utf8, "purl": pl.Utf8, "version": pl.Utf8,
}

CRITERIA_SCHEMA: dict[str, pl.DataType] = {
    "crit_id": pl.Int64,        # unique per row
    "vuln_id": pl.Utf8,         # CVE-… (or GHSA-…/OSV id when there is no CVE)
    "record_key": pl.Utf8,      # "<source>:<record id>"
    "source": pl.Utf8,          # nvd | cve5 | osv | csaf
    "effect": pl.Utf8,          # affected | not_affected | fixed
    "kind": pl.Utf8,            # cpe | purl
    "criteria": pl.Utf8,        # the CPE match string, or the purl without version
    "scheme": pl.Utf8,          # version order: nvd, or an ecosystem (npm, pypi, semver, ...)
    "lo": pl.Utf8, "lo_incl": pl.Boolean, "hi": pl.Utf8, "hi_incl": pl.Boolean,
    "exact": pl.Utf8,           # an exact version (OSV versions[], a CSAF product's version)
    "cfg": pl.Int64,            # NVD configuration (unique across records); null = stands alone
    "node": pl.Int32,
    "cfg_and": pl.Boolean,      # the configuration's operator is AND
    "vulnerable": pl.Boolean,   # False: a platform node of an AND configuration
}

MATCH_SCHEMA: dict[str, pl.DataType] = {
    "asset_id": pl.Int64, "org_id": pl.Int64, "system_id": pl.Int64, "mlps_level": pl.Int8,
    "vuln_id": pl.Utf8, "record_key": pl.Utf8, "source": pl.Utf8, "kind": pl.Utf8,
    "identifier": pl.Utf8, "criteria": pl.Utf8, "range_text": pl.Utf8, "reason": pl.Utf8,
}

REJECT_SCHEMA: dict[str, pl.DataType] = {"what": pl.Utf8, "value": pl.Utf8, "reason": pl.Utf8}

_PLAIN_RE = r"^[A-Za-z0-9_.\-]+$"


def empty_criteria() -> pl.DataFrame:
    return pl.DataFrame(schema=CRITERIA_SCHEMA)


def criteria_frame(rows: list[dict]) -> pl.DataFrame:
    """Rows (dicts with any subset of :data:`CRITERIA_SCHEMA`) -> a criteria frame; crit_id filled."""
    df = pl.DataFrame([{k: r.get(k) for k in CRITERIA_SCHEMA} for r in rows], schema=CRITERIA_SCHEMA)
    return df.with_columns(
        pl.col("crit_id").fill_null(pl.int_range(pl.len(), dtype=pl.Int64)),
        pl.col("effect").fill_null("affected"),
        pl.col("vulnerable").fill_null(True),
        pl.col("cfg_and").fill_null(False),
        pl.col("lo_incl").fill_null(True),
        pl.col("hi_incl").fill_null(False),
    )


# ---------------------------------------------------------------------------------------------
# CPE names -> attribute columns


def _value_cols(prefix: str, a: str, full: bool) -> list[str]:
    cols = [f"{prefix}{a}_k", f"{prefix}{a}_l"]
    if full:
        cols += [f"{prefix}{a}_lq", f"{prefix}{a}_ls", f"{prefix}{a}_tq", f"{prefix}{a}_ts"]
    return cols


def _cpe_columns(strings: pl.Series, prefix: str, full: bool) -> pl.DataFrame:
    """Distinct CPE strings -> one row each: ``raw``, per attribute kind/literal (and wildcard shape
    when ``full``), and ``error`` (null when well-formed)."""
    raw = strings.drop_nulls().unique()
    df = pl.DataFrame({"raw": raw})
    fast_ok = (pl.col("raw").str.slice(0, 8).str.to_lowercase() == "cpe:2.3:") & ~pl.col("raw").str.contains(
        "\\", literal=True) & (pl.col("raw").str.len_bytes() <= 2000)
    df = df.with_columns(_parts=pl.when(fast_ok).then(pl.col("raw").str.slice(8).str.split(":")))
    df = df.with_columns(_fast=pl.col("_parts").list.len() == 11)
    exprs = []
    for i, a in enumerate(ATTRS):
        v = pl.col("_parts").list.get(i, null_on_oob=True)
        plain = v.str.contains(_PLAIN_RE) & (v != "-")
        if a == "part":
            plain = plain & v.str.to_lowercase().is_in(["a", "o", "h"])
        exprs.append(pl.when(v == "*").then(pl.lit("a")).when(v == "-").then(pl.lit("n"))
                     .when(plain).then(pl.lit("l")).otherwise(None).alias(f"{prefix}{a}_k"))
        exprs.append(pl.when(plain).then(v.str.to_lowercase()).otherwise(pl.lit("")).alias(f"{prefix}{a}_l"))
    fast = df.filter(pl.col("_fast")).with_columns(exprs)
    kinds = [f"{prefix}{a}_k" for a in ATTRS]
    fast_done = fast.filter(pl.all_horizontal(pl.col(k).is_not_null() for k in kinds))
    slow_raw = pl.concat([df.filter(~pl.col("_fast").fill_null(False))["raw"],
                          fast.filter(~pl.all_horizontal(pl.col(k).is_not_null() for k in kinds))["raw"]])
    if full:
        fast_done = fast_done.with_columns(
            [pl.lit(0, pl.Int16).alias(f"{prefix}{a}_{x}") for a in ATTRS for x in ("lq", "tq")]
            + [pl.lit(False).alias(f"{prefix}{a}_{x}") for a in ATTRS for x in ("ls", "ts")])
    cols = ["raw"] + [c for a in ATTRS for c in _value_cols(prefix, a, full)]
    fast_done = fast_done.with_columns(error=pl.lit(None, pl.Utf8)).select([*cols, "error"])
    # The rest (escapes, wildcards, URIs, malformed): parsed one distinct string at a time.
    recs: dict[str, list] = {c: [] for c in [*cols, "error"]}
    for text in slow_raw.to_list():
        try:
            vals = cpelib.parse(text)
            err = None
        except cpelib.CpeError as exc:
            vals, err = (cpelib.ANY,) * len(ATTRS), str(exc)
        recs["raw"].append(text)
        recs["error"].append(err)
        for a, val in zip(ATTRS, vals, strict=True):
            recs[f"{prefix}{a}_k"].append(val.kind)
            recs[f"{prefix}{a}_l"].append(val.lit)
            if full:
                recs[f"{prefix}{a}_lq"].append(val.lead_q)
                recs[f"{prefix}{a}_ls"].append(val.lead_star)
                recs[f"{prefix}{a}_tq"].append(val.trail_q)
                recs[f"{prefix}{a}_ts"].append(val.trail_star)
    schema = {c: fast_done.schema[c] for c in fast_done.columns}
    slow = pl.DataFrame(recs, schema=schema)
    return pl.concat([fast_done, slow])


def _attr_match(a: str) -> pl.Expr:
    """SUPERSET-or-EQUAL of criterion (s_) over target (t_) for attribute ``a`` (NISTIR 7696 order)."""
    sk, sl = pl.col(f"s_{a}_k"), pl.col(f"s_{a}_l")
    tk, tl = pl.col(f"t_{a}_k"), pl.col(f"t_{a}_l")
    lq, ls = pl.col(f"s_{a}_lq").cast(pl.Int64), pl.col(f"s_{a}_ls")
    tq, ts = pl.col(f"s_{a}_tq").cast(pl.Int64), pl.col(f"s_{a}_ts")
    n = sl.str.len_chars().cast(pl.Int64)
    length = tl.str.len_chars().cast(pl.Int64)
    # As NIST's reference matcher: leading '?'s allow up to that many characters before the literal,
    # trailing '?'s up to that many after it; '*' any number. The literal must occur in the window.
    lo = pl.when(ts).then(pl.lit(0, pl.Int64)).otherwise(pl.max_horizontal(length - n - tq, pl.lit(0, pl.Int64)))
    hi = pl.when(ls).then(length).otherwise(pl.min_horizontal(length, lq + n))
    wild = ((hi - lo) >= n) & tl.str.slice(lo, pl.max_horizontal(hi - lo, pl.lit(0, pl.Int64))).str.contains(
        sl, literal=True)
    return (pl.when(tk == "w").then(False)
            .when((sk == tk) & (sl == tl) & (sk != "w")).then(True)
            .when(sk == "a").then(True)
            .when(tk == "a").then(False)
            .when((sk == "n") | (tk == "n")).then(False)
            .when(sk == "l").then(False)
            .otherwise(wild))


# ---------------------------------------------------------------------------------------------
# Prepared assets: distinct names parsed once, reusable for every delta


@dataclass
class PreparedAssets:
    cpe_names: pl.DataFrame     # name_id, identifier, t_<attr>_k/_l
    cpe_map: pl.DataFrame       # asset_id, org_id, system_id, mlps_level, name_id
    purl_names: pl.DataFrame    # pname_id, identifier, p_type, p_ns, p_name, p_version
    purl_map: pl.DataFrame      # asset_id, org_id, system_id, mlps_level, pname_id
    rejected: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECT_SCHEMA))


def _normalise_name(ptype: str, name: str) -> str:
    if ptype == "pypi":
        return name.lower().replace("_", "-").replace(".", "-")
    if ptype in {"npm", "github", "bitbucket", "golang", "gem", "cargo", "composer", "apk", "deb", "rpm"}:
        return name.lower() if ptype in {"github", "bitbucket", "composer"} else name
    return name


def parse_purl(text: str) -> tuple[str, str, str, str | None]:
    """purl -> (type, namespace, name, version), names normalised as the ecosystem compares them."""
    p = PackageURL.from_string(text)
    ptype = p.type.lower()
    ns = p.namespace or ""
    if ptype in {"github", "bitbucket", "composer", "pypi"}:
        ns = ns.lower()
    return ptype, ns, _normalise_name(ptype, p.name), p.version


def _purl_columns(strings: pl.Series) -> pl.DataFrame:
    recs: dict[str, list] = {"raw": [], "p_type": [], "p_ns": [], "p_name": [], "p_version": [], "error": []}
    for text in strings.drop_nulls().unique().to_list():
        recs["raw"].append(text)
        try:
            t, ns, nm, ver = parse_purl(text)
            err = None
        except ValueError as exc:
            t, ns, nm, ver, err = "", "", "", None, f"purl: {exc}"
        recs["p_type"].append(t)
        recs["p_ns"].append(ns)
        recs["p_name"].append(nm)
        recs["p_version"].append(ver)
        recs["error"].append(err)
    return pl.DataFrame(recs, schema={"raw": pl.Utf8, "p_type": pl.Utf8, "p_ns": pl.Utf8, "p_name": pl.Utf8,
                                      "p_version": pl.Utf8, "error": pl.Utf8})


def prepare_assets(assets: pl.DataFrame) -> PreparedAssets:
    assets = assets.select([pl.col(c).cast(t) for c, t in ASSET_SCHEMA.items()])
    base = ["asset_id", "org_id", "system_id", "mlps_level"]
    rejected = []
    # CPE: the asset's version column fills a CPE version that is ANY.
    with_cpe = assets.filter(pl.col("cpe").is_not_null())
    pairs = with_cpe.select("cpe", "version").unique()
    names = _cpe_columns(pairs["cpe"], "t_", full=False)
    rejected.append(names.filter(pl.col("error").is_not_null()).select(
        what=pl.lit("asset cpe"), value=pl.col("raw"), reason=pl.col("error")))
    names = names.filter(pl.col("error").is_null()).drop("error")
    # NISTIR 7696: a wildcard in the target makes every comparison UNDEFINED; an inventory name
    # must be exact, so such a name is refused here rather than silently never matching.
    wild_t = pl.any_horizontal([pl.col(f"t_{a}_k") == "w" for a in ATTRS])
    rejected.append(names.filter(wild_t).select(
        what=pl.lit("asset cpe"), value=pl.col("raw"),
        reason=pl.lit("an inventory CPE may not hold wildcards (NISTIR 7696: the match is undefined)")))
    names = names.filter(~wild_t)
    pairs = pairs.join(names, left_on="cpe", right_on="raw", how="inner")
    fill = (pl.col("t_version_k") == "a") & pl.col("version").is_not_null() & (pl.col("version") != "")
    pairs = pairs.with_columns(
        t_version_l=pl.when(fill).then(pl.col("version").str.to_lowercase()).otherwise(pl.col("t_version_l")),
        t_version_k=pl.when(fill).then(pl.lit("l")).otherwise(pl.col("t_version_k")),
        identifier=pl.when(fill).then(pl.format("{} (version {})", pl.col("cpe"), pl.col("version")))
        .otherwise(pl.col("cpe")),
    ).with_row_index("name_id").with_columns(pl.col("name_id").cast(pl.Int64))
    cpe_map = with_cpe.join(pairs.select("cpe", "version", "name_id"), on=["cpe", "version"], how="inner",
                            nulls_equal=True).select([*base, "name_id"])
    cpe_names = pairs.drop("cpe", "version")
    # purl: the asset's version column fills a purl without version.
    with_purl = assets.filter(pl.col("purl").is_not_null())
    ppairs = with_purl.select("purl", "version").unique()
    pn = _purl_columns(ppairs["purl"])
    rejected.append(pn.filter(pl.col("error").is_not_null()).select(
        what=pl.lit("asset purl"), value=pl.col("raw"), reason=pl.col("error")))
    pn = pn.filter(pl.col("error").is_null()).drop("error")
    ppairs = ppairs.join(pn, left_on="purl", right_on="raw", how="inner").with_columns(
        p_version=pl.coalesce("p_version", "version"),
        identifier=pl.when(pl.col("version").is_not_null() & ~pl.col("purl").str.contains("@", literal=True))
        .then(pl.format("{}@{}", pl.col("purl"), pl.col("version"))).otherwise(pl.col("purl")),
    ).with_row_index("pname_id").with_columns(pl.col("pname_id").cast(pl.Int64))
    purl_map = with_purl.join(ppairs.select("purl", "version", "pname_id"), on=["purl", "version"], how="inner",
                              nulls_equal=True).select([*base, "pname_id"])
    purl_names = ppairs.drop("purl", "version")
    return PreparedAssets(cpe_names, cpe_map, purl_names, purl_map,
                          pl.concat(rejected).cast(REJECT_SCHEMA))


# ---------------------------------------------------------------------------------------------
# Ranges


def _range_text() -> pl.Expr:
    lo = pl.when(pl.col("lo").is_not_null()).then(
        pl.format("{} {}", pl.when(pl.col("lo_incl")).then(pl.lit(">=")).otherwise(pl.lit(">")), pl.col("lo")))
    hi = pl.when(pl.col("hi").is_not_null()).then(
        pl.format("{} {}", pl.when(pl.col("hi_incl")).then(pl.lit("<=")).otherwise(pl.lit("<")), pl.col("hi")))
    ex = pl.when(pl.col("exact").is_not_null()).then(pl.format("= {}", pl.col("exact")))
    return pl.concat_str([lo, hi, ex], separator=", ", ignore_nulls=True).replace("", None)


def _rank_frame(ranks: dict[str, int], name: str) -> pl.DataFrame:
    return pl.DataFrame({"v": list(ranks), name: list(ranks.values())}, schema={"v": pl.Utf8, name: pl.Int64})


def _attach_ranks(pairs: pl.DataFrame, version_col: str, ranks: dict[str, int], suffix: str) -> pl.DataFrame:
    rf = _rank_frame(ranks, "r")
    for col in (version_col, "lo", "hi"):
        pairs = pairs.join(rf.rename({"r": f"{col}_{suffix}"}), left_on=col, right_on="v", how="left")
    return pairs


def _in_range(pairs: pl.DataFrame, version_col: str, suffix: str) -> pl.Expr:
    v, lo, hi = pl.col(f"{version_col}_{suffix}"), pl.col(f"lo_{suffix}"), pl.col(f"hi_{suffix}")
    ok_lo = pl.col("lo").is_null() | pl.when(pl.col("lo_incl")).then(v >= lo).otherwise(v > lo)
    ok_hi = pl.col("hi").is_null() | pl.when(pl.col("hi_incl")).then(v <= hi).otherwise(v < hi)
    return (ok_lo & ok_hi).fill_null(False)


def _usable(version_col: str, suffix: str) -> pl.Expr:
    return (pl.col(f"{version_col}_{suffix}").is_not_null()
            & (pl.col("lo").is_null() | pl.col(f"lo_{suffix}").is_not_null())
            & (pl.col("hi").is_null() | pl.col(f"hi_{suffix}").is_not_null()))


def _nvd_range_filter(pairs: pl.DataFrame) -> pl.DataFrame:
    """Keep the pairs whose asset version falls in the criterion's range (PEP 440, else rpmvercmp)."""
    if pairs.is_empty():
        return pairs
    vers = pl.concat([pairs["t_version_l"], pairs["lo"].str.to_lowercase(), pairs["hi"].str.to_lowercase()])
    distinct = vers.drop_nulls().unique().to_list()
    pairs = pairs.with_columns(pl.col("lo").str.to_lowercase(), pl.col("hi").str.to_lowercase())
    pep = vlib.pep440_ranks(distinct)
    pairs = _attach_ranks(pairs, "t_version_l", pep, "pep")
    need_rpm = pairs.filter(~_usable("t_version_l", "pep"))
    if need_rpm.is_empty():
        return pairs.filter(_in_range(pairs, "t_version_l", "pep"))
    rv = pl.concat([need_rpm["t_version_l"], need_rpm["lo"], need_rpm["hi"]]).drop_nulls().unique().to_list()
    pairs = _attach_ranks(pairs, "t_version_l", vlib.rpm_ranks(rv), "rpm")
    keep = pl.when(_usable("t_version_l", "pep")).then(_in_range(pairs, "t_version_l", "pep")) \
        .otherwise(_in_range(pairs, "t_version_l", "rpm"))
    return pairs.filter(keep)


# ---------------------------------------------------------------------------------------------
# The match


@dataclass
class MatchResult:
    matches: pl.DataFrame       # MATCH_SCHEMA: affected, not suppressed
    suppressed: pl.DataFrame    # MATCH_SCHEMA plus suppressed_by: matches a VEX statement cancelled
    rejected: pl.DataFrame      # REJECT_SCHEMA: malformed identifiers, versions without an order


_CRIT_KEEP = ["crit_id", "vuln_id", "record_key", "source", "effect", "kind", "criteria", "scheme", "lo", "lo_incl",
              "hi", "hi_incl", "exact", "cfg", "node", "cfg_and", "vulnerable", "range_text"]


def _general(narrow: pl.DataFrame, names: pl.DataFrame, live: list[str]) -> pl.DataFrame:
    """(crit_id, name_id) of the criteria that match the names: joins on what the criterion fixes
    (vendor+product+version, vendor+product, vendor or product; crossed when it fixes neither),
    the attribute rules as expressions, then the NVD range on the joined rows."""
    if narrow.is_empty() or names.is_empty():
        return pl.DataFrame(schema={"crit_id": pl.Int64, "name_id": pl.Int64})
    vk, pk = pl.col("s_vendor_k") == "l", pl.col("s_product_k") == "l"
    verk = pl.col("s_version_k") == "l"
    parts = []
    exact = narrow.filter(vk & pk & verk)
    if not exact.is_empty():
        parts.append(exact.join(names, left_on=["s_vendor_l", "s_product_l", "s_version_l"],
                                right_on=["t_vendor_l", "t_product_l", "t_version_l"], how="inner", coalesce=False))
    keyed = narrow.filter(vk & pk & ~verk)
    if not keyed.is_empty():
        parts.append(keyed.join(names, left_on=["s_vendor_l", "s_product_l"], right_on=["t_vendor_l", "t_product_l"],
                                how="inner", coalesce=False))
    by_v = narrow.filter(vk & ~pk)
    if not by_v.is_empty():
        parts.append(by_v.join(names, left_on="s_vendor_l", right_on="t_vendor_l", how="inner", coalesce=False))
    by_p = narrow.filter(~vk & pk)
    if not by_p.is_empty():
        parts.append(by_p.join(names, left_on="s_product_l", right_on="t_product_l", how="inner", coalesce=False))
    loose = narrow.filter(~vk & ~pk)
    if not loose.is_empty():
        step = max(1, 2_000_000 // max(1, names.height))
        for i in range(0, loose.height, step):
            parts.append(loose.slice(i, step).join(names, how="cross"))
    pairs = pl.concat([p.select(sorted(p.columns)) for p in parts], how="vertical_relaxed")
    # Without a wildcard in the criterion, an attribute matches when the criterion is ANY or both
    # are the same (kind and value); the full NISTIR rule runs only on rows with a wildcard.
    wild_row = pl.any_horizontal([pl.col(f"s_{a}_k") == "w" for a in live]) if live else pl.lit(False)
    simple = [(pl.col(f"s_{a}_k") == "a") | ((pl.col(f"s_{a}_k") == pl.col(f"t_{a}_k"))
                                              & (pl.col(f"s_{a}_l") == pl.col(f"t_{a}_l"))) for a in live]
    tame = pairs.filter(~wild_row)
    if simple:
        tame = tame.filter(pl.all_horizontal(simple))
    wild = pairs.filter(wild_row)
    if not wild.is_empty():
        wild = wild.filter(pl.all_horizontal([_attr_match(a) for a in live]))
    pairs = pl.concat([tame, wild]).select("crit_id", "name_id", "s_version_k", "t_version_k", "t_version_l",
                                           "lo", "hi", "lo_incl", "hi_incl")
    ranged = (pl.col("s_version_k") == "a") & (pl.col("lo").is_not_null() | pl.col("hi").is_not_null())
    plain = pairs.filter(~ranged)
    in_range = _nvd_range_filter(pairs.filter(ranged & (pl.col("t_version_k") == "l")))
    return pl.concat([plain.select("crit_id", "name_id"), in_range.select("crit_id", "name_id")])


_SHIFT = 1 << 32


def _interval_hits(fast: pl.DataFrame, names: pl.DataFrame, other_live: list[str]
                   ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Ranged criteria on a fixed vendor+product: with the names sorted by (product, PEP 440 rank),
    each criterion covers one contiguous slice, found by binary search; only real matches are
    produced, no candidate pairs. Returns (hits, criteria left for the general path, names whose
    literal version PEP 440 cannot order, left for the general path too)."""
    lit = names.filter(pl.col("t_version_k") == "l")
    vers = pl.concat([lit["t_version_l"], fast["lo"].str.to_lowercase(), fast["hi"].str.to_lowercase()])
    rf = _rank_frame(vlib.pep440_ranks(vers.drop_nulls().unique().to_list()), "r")
    fast = (fast.with_columns(_lo=pl.col("lo").str.to_lowercase(), _hi=pl.col("hi").str.to_lowercase())
            .join(rf.rename({"r": "lo_r"}), left_on="_lo", right_on="v", how="left")
            .join(rf.rename({"r": "hi_r"}), left_on="_hi", right_on="v", how="left"))
    ok = ((pl.col("lo").is_null() | pl.col("lo_r").is_not_null())
          & (pl.col("hi").is_null() | pl.col("hi_r").is_not_null()))
    fast_ok, fast_bad = fast.filter(ok), fast.filter(~ok)
    lit = lit.join(rf.rename({"r": "t_r"}), left_on="t_version_l", right_on="v", how="left")
    ranked, unranked = lit.filter(pl.col("t_r").is_not_null()), lit.filter(pl.col("t_r").is_null())
    vp = pl.concat([ranked.select(v="t_vendor_l", p="t_product_l"), fast_ok.select(v="s_vendor_l", p="s_product_l")]
                   ).unique().with_row_index("pc").with_columns(pl.col("pc").cast(pl.Int64))
    ranked = (ranked.join(vp, left_on=["t_vendor_l", "t_product_l"], right_on=["v", "p"], how="inner")
              .with_columns(key=pl.col("pc") * _SHIFT + pl.col("t_r")).sort("key"))
    fc = fast_ok.join(vp, left_on=["s_vendor_l", "s_product_l"], right_on=["v", "p"], how="inner").with_columns(
        lo_key=pl.col("pc") * _SHIFT + pl.col("lo_r").fill_null(0),
        hi_key=pl.col("pc") * _SHIFT + pl.col("hi_r").fill_null(_SHIFT - 1))
    keys = ranked["key"].to_numpy()
    lo_key, hi_key = fc["lo_key"].to_numpy(), fc["hi_key"].to_numpy()
    lo_left = (fc["lo"].is_null() | fc["lo_incl"]).to_numpy()
    hi_right = (fc["hi"].is_null() | fc["hi_incl"]).to_numpy()
    start = np.where(lo_left, np.searchsorted(keys, lo_key, "left"), np.searchsorted(keys, lo_key, "right"))
    end = np.where(hi_right, np.searchsorted(keys, hi_key, "right"), np.searchsorted(keys, hi_key, "left"))
    spans = fc.select("crit_id", *[c for a in other_live for c in (f"s_{a}_k", f"s_{a}_l")]).with_columns(
        _s=pl.Series(start, dtype=pl.Int64), _e=pl.Series(end, dtype=pl.Int64)).filter(pl.col("_e") > pl.col("_s"))
    rows = spans.with_columns(ridx=pl.int_ranges("_s", "_e")).explode("ridx").drop("_s", "_e")
    side = ranked.select("name_id", *[c for a in other_live for c in (f"t_{a}_k", f"t_{a}_l")]).with_row_index("ridx")
    rows = rows.join(side.with_columns(pl.col("ridx").cast(pl.Int64)), on="ridx", how="inner")
    if other_live:
        rows = rows.filter(pl.all_horizontal(
            [(pl.col(f"s_{a}_k") == "a") | ((pl.col(f"s_{a}_k") == pl.col(f"t_{a}_k"))
                                            & (pl.col(f"s_{a}_l") == pl.col(f"t_{a}_l"))) for a in other_live]))
    return rows.select("crit_id", "name_id"), fast_bad.drop("_lo", "_hi", "lo_r", "hi_r"), unranked.drop("t_r")


def _cpe_hits(prep: PreparedAssets, crits: pl.DataFrame, rejected: list[pl.DataFrame]) -> pl.DataFrame:
    if crits.is_empty() or prep.cpe_names.is_empty():
        return pl.DataFrame()
    parsed = _cpe_columns(crits["criteria"], "s_", full=True)
    rejected.append(parsed.filter(pl.col("error").is_not_null()).select(
        what=pl.lit("criterion cpe"), value=pl.col("raw"), reason=pl.col("error")))
    parsed = parsed.filter(pl.col("error").is_null()).drop("error")
    sc = crits.join(parsed, left_on="criteria", right_on="raw", how="inner")
    # Attributes every criterion leaves ANY match whatever the (wildcard-free) name holds, so only
    # the others ("live") are carried through the joins, in narrow frames.
    live = [a for a in ATTRS if (sc[f"s_{a}_k"] != "a").any()]
    keys = {"s_vendor_k", "s_vendor_l", "s_product_k", "s_product_l", "s_version_k", "s_version_l"}
    s_cols = sorted({"crit_id", "lo", "hi", "lo_incl", "hi_incl", *keys}
                    | {c for a in live for c in _value_cols("s_", a, True)})
    t_cols = sorted({"name_id", "t_vendor_l", "t_product_l", "t_version_k", "t_version_l"}
                    | {c for a in live for c in _value_cols("t_", a, False)})
    narrow = sc.select(s_cols)
    names = prep.cpe_names.select(t_cols)
    other_live = [a for a in live if a not in ("vendor", "product", "version")]
    eligible = ((pl.col("s_vendor_k") == "l") & (pl.col("s_product_k") == "l") & (pl.col("s_version_k") == "a")
                & (pl.col("lo").is_not_null() | pl.col("hi").is_not_null()))
    if other_live:
        eligible = eligible & ~pl.any_horizontal([pl.col(f"s_{a}_k") == "w" for a in other_live])
    fast, rest = narrow.filter(eligible), narrow.filter(~eligible)
    found = [_general(rest, names, live)]
    if not fast.is_empty():
        hits, fast_bad, unranked = _interval_hits(fast, names, other_live)
        found += [hits, _general(fast_bad, names, live), _general(fast, unranked, live)]
    hits = pl.concat(found).unique()
    hits = hits.join(crits.select(_CRIT_KEEP), on="crit_id", how="inner").join(
        prep.cpe_names.select("name_id", "identifier"), on="name_id", how="inner")
    return hits.join(prep.cpe_map, on="name_id", how="inner").drop("name_id")


def _purl_hits(prep: PreparedAssets, crits: pl.DataFrame, rejected: list[pl.DataFrame]) -> pl.DataFrame:
    if crits.is_empty() or prep.purl_names.is_empty():
        return pl.DataFrame()
    parsed = _purl_columns(crits["criteria"])
    rejected.append(parsed.filter(pl.col("error").is_not_null()).select(
        what=pl.lit("criterion purl"), value=pl.col("raw"), reason=pl.col("error")))
    parsed = parsed.filter(pl.col("error").is_null()).drop("error").rename(
        {"p_type": "c_type", "p_ns": "c_ns", "p_name": "c_name", "p_version": "c_version"})
    sc = crits.join(parsed, left_on="criteria", right_on="raw", how="inner").with_columns(
        exact=pl.coalesce("exact", "c_version"),
        scheme=pl.coalesce("scheme", "c_type"))
    pairs = sc.join(prep.purl_names, left_on=["c_type", "c_ns", "c_name"], right_on=["p_type", "p_ns", "p_name"],
                    how="inner")
    has_exact = pl.col("exact").is_not_null()
    has_range = pl.col("lo").is_not_null() | pl.col("hi").is_not_null()
    unconstrained = pairs.filter(~has_exact & ~has_range)
    exact = pairs.filter(has_exact & (pl.col("exact") == pl.col("p_version")))
    ranged = pairs.filter(~has_exact & has_range & pl.col("p_version").is_not_null())
    kept = []
    for (scheme,), grp in ranged.group_by(["scheme"]):
        vers = pl.concat([grp["p_version"], grp["lo"], grp["hi"]]).drop_nulls().unique().to_list()
        ranks, bad = vlib.ecosystem_ranks(scheme, vers)
        if bad:
            rejected.append(pl.DataFrame({"what": [f"{scheme} version"] * len(bad), "value": list(bad),
                                          "reason": list(bad.values())}, schema=REJECT_SCHEMA))
        g = _attach_ranks(grp, "p_version", ranks, "eco")
        kept.append(g.filter(_in_range(g, "p_version", "eco")).select(grp.columns))
    cols = [*_CRIT_KEEP, "pname_id", "identifier"]
    hits = pl.concat([f.select(cols) for f in [unconstrained, exact, *kept]])
    return hits.join(prep.purl_map, on="pname_id", how="inner").drop("pname_id")


def _resolve_and(hits: pl.DataFrame, all_crits: pl.DataFrame) -> pl.DataFrame:
    """Keep vulnerable hits; those of an AND configuration only where each of its nodes is matched
    by some asset of the same system (organisation when there is no system)."""
    lone = hits.filter(~pl.col("cfg_and") | pl.col("cfg").is_null())
    anded = hits.filter(pl.col("cfg_and") & pl.col("cfg").is_not_null())
    if anded.is_empty():
        return lone.filter(pl.col("vulnerable"))
    n_nodes = all_crits.filter(pl.col("cfg_and")).group_by("cfg").agg(n_nodes=pl.col("node").n_unique())
    scope = anded.with_columns(_sys=pl.col("system_id").fill_null(-1))
    seen = scope.group_by(["cfg", "org_id", "_sys"]).agg(seen=pl.col("node").n_unique(),
                                                          platform=pl.col("criteria").filter(~pl.col("vulnerable"))
                                                          .first())
    ok = seen.join(n_nodes, on="cfg").filter(pl.col("seen") == pl.col("n_nodes"))
    good = scope.filter(pl.col("vulnerable")).join(ok.select("cfg", "org_id", "_sys", "platform"),
                                                   on=["cfg", "org_id", "_sys"], how="inner")
    good = good.with_columns(range_text=pl.concat_str(
        [pl.col("range_text"), pl.format("with {} in the same system", pl.col("platform"))],
        separator="; ", ignore_nulls=True)).drop("_sys", "platform")
    return pl.concat([lone.filter(pl.col("vulnerable")), good.select(lone.columns)])


_VP_RE = r"^[cC][pP][eE]:2\.3:[^:]*:((?:[^:\\]|\\.)*):((?:[^:\\]|\\.)*)"
NARROW_AT_MOST = 20_000   # criteria rows; a larger set (a full match) would keep nearly every asset


_CLEAN_RE = r"^cpe:2\.3:[aho](:(\*|-|[A-Za-z0-9._\-]+)){10}$"   # the common case: no escape, no wildcard


def _vp_key(col: str) -> pl.Expr:
    """A criterion's ``vendor:product``, lower-case with the escapes dropped (two names equal under
    NISTIR 7696 give the same key); null when it does not parse that far."""
    g = pl.col(col).str.extract_groups(_VP_RE)
    return pl.concat_str([g.struct.field("1").str.replace_all("\\", "", literal=True).str.to_lowercase(),
                          g.struct.field("2").str.replace_all("\\", "", literal=True).str.to_lowercase()],
                         separator=":")


def _wild(col: str, group: str) -> pl.Expr:
    v = pl.col(col).str.extract_groups(_VP_RE).struct.field(group)
    return v.str.replace_all(r"\\.", "").str.contains(r"[*?]") | v.is_null()


def narrow_assets(assets: pl.DataFrame, criteria: pl.DataFrame) -> pl.DataFrame:
    """The assets that can match some CPE criterion by vendor and product, plus every asset without
    a CPE (purls are matched as they are) and every CPE that is not a plain one (an escape, a
    wildcard, the URI binding, malformed: parsed, and refused with its reason, as before): a
    superset of what :func:`match` can find, taken with one string column instead of parsing every
    name, for a delta of a few records against the whole inventory."""
    cpe = criteria.filter(pl.col("kind") == "cpe").select("criteria").unique()
    cpe = cpe.with_columns(key=_vp_key("criteria"), v_wild=_wild("criteria", "1"), p_wild=_wild("criteria", "2"))
    if cpe["v_wild"].any():
        return assets
    keys = cpe.filter(~pl.col("p_wild"))["key"].unique()
    vendors = cpe.filter(pl.col("p_wild"))["key"].str.split(":").list.first().unique()
    key = pl.col("cpe").str.extract(r"^[^:]*:[^:]*:[^:]*:([^:]*:[^:]*)", 1).str.to_lowercase()
    return assets.filter(pl.col("cpe").is_null() | ~pl.col("cpe").str.contains(_CLEAN_RE)
                         | key.is_in(keys.implode()) | key.str.split(":").list.first().is_in(vendors.implode()))


def match(assets: pl.DataFrame | PreparedAssets, criteria: pl.DataFrame) -> MatchResult:
    """All assets against all criteria, in one pass. See the module docstring for the rules."""
    if isinstance(assets, PreparedAssets):
        prep = assets
    else:
        if criteria.height <= NARROW_AT_MOST:
            assets = narrow_assets(assets.select([pl.col(c).cast(t) for c, t in ASSET_SCHEMA.items()]), criteria)
        prep = prepare_assets(assets)
    rejected = [prep.rejected]
    crits = criteria.cast({k: v for k, v in CRITERIA_SCHEMA.items() if k in criteria.columns}).with_columns(
        range_text=_range_text())
    parts = [_cpe_hits(prep, crits.filter(pl.col("kind") == "cpe"), rejected),
             _purl_hits(prep, crits.filter(pl.col("kind") == "purl"), rejected)]
    parts = [p for p in parts if not p.is_empty()]
    out_cols = list(MATCH_SCHEMA)
    rej = pl.concat(rejected).cast(REJECT_SCHEMA).unique(maintain_order=True)
    if not parts:
        empty = pl.DataFrame(schema=MATCH_SCHEMA)
        return MatchResult(empty, empty.with_columns(suppressed_by=pl.lit(None, pl.Utf8)), rej)
    hits = pl.concat([p.select(sorted(p.columns)) for p in parts], how="vertical_relaxed")
    hits = _resolve_and(hits, crits)
    hits = hits.with_columns(reason=pl.format(
        "{} {} {}{}", pl.col("kind"), pl.col("identifier"),
        pl.when(pl.col("effect") == "affected").then(pl.lit("matches")).otherwise(pl.col("effect")),
        pl.when(pl.col("range_text").is_not_null()).then(
            pl.format(" {} ({})", pl.col("criteria"), pl.col("range_text"))).otherwise(
            pl.format(" {}", pl.col("criteria")))))
    affected = hits.filter(pl.col("effect") == "affected").select(out_cols).cast(MATCH_SCHEMA)
    vex = hits.filter(pl.col("effect") != "affected").group_by(["asset_id", "vuln_id"]).agg(
        suppressed_by=pl.format("{}: {}", pl.col("record_key"), pl.col("reason")).first())
    affected = affected.unique(["asset_id", "vuln_id", "record_key"], keep="first", maintain_order=True)
    suppressed = affected.join(vex, on=["asset_id", "vuln_id"], how="inner")
    kept = affected.join(vex, on=["asset_id", "vuln_id"], how="anti")
    return MatchResult(kept, suppressed, rej)
