"""Ranking findings and their remediation clocks, from ``rules/vuln_remediation.yaml``.

Severity and base score come from the record's CVSS vector parsed by the ``cvss`` library (v4.0
before v3.1 before v3.0); a vector the library refuses is skipped. Order: in KEV first, then the
CVSS base score, then the EPSS probability, then the system's MLPS level (all descending)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from cvss import CVSS3, CVSS4
from cvss.exceptions import CVSSError

from commonwatch.rules import RulesError, load_rules

SEVERITIES = ("critical", "high", "medium", "low", "unknown")
_ORDER = {"4.0": 3, "3.1": 2, "3.0": 1}


@dataclass(frozen=True)
class Score:
    version: str | None
    vector: str | None
    base: float | None
    severity: str  # critical | high | medium | low | unknown


def score(cvss: list[dict[str, Any]]) -> Score:
    """The highest-version vector the library accepts -> its base score and severity."""
    for item in sorted(cvss or [], key=lambda c: _ORDER.get(str(c.get("version")), 0), reverse=True):
        vector = str(item.get("vector") or "")
        try:
            if vector.startswith("CVSS:4.0/"):
                c4 = CVSS4(vector)
                base, sev = float(c4.base_score), str(c4.severity)
            elif vector.startswith(("CVSS:3.1/", "CVSS:3.0/")):
                c3 = CVSS3(vector)
                base, sev = float(c3.scores()[0]), str(c3.severities()[0])
            else:
                continue
        except CVSSError:
            continue
        sev = sev.lower()
        return Score(vector[5:8], vector, base, sev if sev in SEVERITIES else "unknown")
    return Score(None, None, None, "unknown")


def load(data_dir: Path | None = None) -> dict[str, Any]:
    rules = load_rules("vuln_remediation.yaml", data_dir)
    sev = rules.get("severities")
    if not isinstance(sev, dict) or set(sev) != set(SEVERITIES):
        raise RulesError("vuln_remediation", f"severities must be exactly {', '.join(SEVERITIES)}")
    for k, v in sev.items():
        if not isinstance(v, dict) or not isinstance(v.get("days"), int) or v["days"] <= 0:
            raise RulesError("vuln_remediation", f"severities.{k}.days must be a positive integer")
    return rules


def due(first_seen: datetime, severity: str, kev_due: str | None, rules: dict[str, Any]) -> date:
    """The remediation deadline: first seen + the severity's days, or the KEV dueDate if earlier."""
    d = first_seen.date() + timedelta(days=rules["severities"][severity]["days"])
    if kev_due:
        with contextlib.suppress(ValueError):
            d = min(d, date.fromisoformat(kev_due))
    return d


def rank(frame: pl.DataFrame) -> pl.DataFrame:
    """Sort findings (columns kev: bool, cvss_base, epss, mlps_level) most urgent first; adds ``rank``."""
    return frame.sort(
        [pl.col("kev").fill_null(False), pl.col("cvss_base").fill_null(-1.0), pl.col("epss").fill_null(-1.0),
         pl.col("mlps_level").fill_null(0)], descending=True, maintain_order=True,
    ).with_row_index("rank", offset=1)
