"""Version order keys: one integer per DISTINCT version string, so range checks are integer compares.

No comparer is written here; each scheme's order comes from a maintained library:

* ``nvd`` (the free-form versions of NVD's CPE ranges): PEP 440 through ``packaging`` when both
  sides parse (pre-releases before the release: ``2.0.0rc1 < 2.0.0``), else RPM's ``rpmvercmp``
  through ``univers`` (any string: ``1.1.1k < 1.1.1l``). Two keys per version, so each compare uses
  one total order.
* a purl type (``npm``, ``pypi``, ``maven``, ``deb``, ``golang``, ...) or ``semver``: the
  ``univers`` version class of that ecosystem.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cmp_to_key

from packaging.version import InvalidVersion as PepInvalid
from packaging.version import Version as PepVersion
from univers.version_range import RANGE_CLASS_BY_SCHEMES
from univers.versions import InvalidVersion, RpmVersion, SemverVersion

_ALIASES = {"semver": SemverVersion, "github": SemverVersion, "generic": SemverVersion}


def version_class(scheme: str):
    """The univers version class of a purl type / OSV ecosystem, or None if commonwatch has none."""
    scheme = (scheme or "").lower()
    if scheme in _ALIASES:
        return _ALIASES[scheme]
    cls = RANGE_CLASS_BY_SCHEMES.get(scheme)
    return None if cls is None else cls.version_class


def _ranks(objs: list[tuple[str, object]], cmp=None) -> dict[str, int]:
    """Sort (string, parsed) pairs; equal versions share a rank."""
    if cmp is None:
        objs.sort(key=lambda p: p[1])
    else:
        objs.sort(key=cmp_to_key(lambda a, b: cmp(a[1], b[1])))
    out: dict[str, int] = {}
    rank = -1
    prev = None
    for text, obj in objs:
        if prev is None or (obj != prev if cmp is None else cmp(obj, prev) != 0):
            rank += 1
            prev = obj
        out[text] = rank
    return out


def pep440_ranks(versions: Iterable[str]) -> dict[str, int]:
    """Ranks of the versions PEP 440 can parse (the others are left out)."""
    objs = []
    for v in set(versions):
        try:
            objs.append((v, PepVersion(v)))
        except PepInvalid:
            continue
    return _ranks(objs)


def rpm_ranks(versions: Iterable[str]) -> dict[str, int]:
    objs = []
    for v in set(versions):
        try:
            objs.append((v, RpmVersion(v)))
        except (InvalidVersion, ValueError, TypeError):
            continue
    return _ranks(objs)


def ecosystem_ranks(scheme: str, versions: Iterable[str]) -> tuple[dict[str, int], dict[str, str]]:
    """(ranks, invalid) for one ecosystem: ``invalid`` maps a version to the reason it has no rank."""
    cls = version_class(scheme)
    uniq = set(versions)
    if cls is None:
        return {}, {v: f"no version order is known for {scheme!r}" for v in uniq}
    objs, bad = [], {}
    for v in uniq:
        try:
            objs.append((v, cls(v)))
        except Exception as exc:  # univers classes raise several types for a bad string
            bad[v] = f"{v!r} is not a valid {scheme} version ({type(exc).__name__})"
    try:
        return _ranks(objs), bad
    except TypeError:  # a class without a total order on these values: fall back to pairwise cmp
        return _ranks(objs, cmp=lambda a, b: (a > b) - (a < b)), bad
