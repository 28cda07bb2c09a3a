"""Decay of indicators: a score that falls with the time since an indicator was last seen.

The models are in ``rules/indicator_decay.yaml`` (by indicator kind and source; the first that
matches wins). The age is measured from the last sighting (``last_seen``), else from ``valid_from``,
so a sighting brings the score back to the model's base. With a half-life the score is
``base * 0.5 ** (age / half_life)``; with a lifetime it is ``base`` until the lifetime ends, then 0.
The computed valid-until is when the score reaches the threshold; the indicator's own
``valid_until``, when earlier, wins. An expired indicator is kept (and shown as expired) but not
matched against events and not shared over TAXII or MISP. The idea is MISP's decaying models.

Computed on whole columns (:func:`decay_frame`) for matching and sharing.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from commonwatch.rules import RulesError, load_rules, rules_path

DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True)
class DecayModel:
    id: str
    kinds: tuple[str, ...]
    sources: tuple[str, ...]
    base_score: float
    threshold: float
    half_life_days: float | None = None
    lifetime_days: float | None = None
    status: str = "provisional"

    def applies(self, kind: str, source: str) -> bool:
        return ("*" in self.kinds or kind in self.kinds) and any(fnmatch.fnmatchcase(source or "", p)
                                                                 for p in self.sources)

    @property
    def days_to_threshold(self) -> float:
        """Days from last seen until the score reaches the threshold."""
        if self.lifetime_days is not None:
            return self.lifetime_days
        return self.half_life_days * math.log2(self.base_score / self.threshold)  # type: ignore[operator]


def parse_models(data: dict[str, Any], origin: str) -> list[DecayModel]:
    """Check the models of a rules file; :class:`RulesError` names the model and the key."""
    models = data.get("models")
    if not isinstance(models, list) or not models:
        raise RulesError(origin, "models must be a non-empty list")
    out = []
    for i, m in enumerate(models):
        where = f"models[{i}]"
        if not isinstance(m, dict) or not isinstance(m.get("id"), str):
            raise RulesError(origin, f"{where}: needs an id")
        where = f"models[{i}] ({m['id']})"

        def number(key: str, low: float, high: float | None = None, *, where=where, m=m) -> float | None:
            value = m.get(key)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | float) or value < low or (
                    high is not None and value > high):
                raise RulesError(origin, f"{where}: {key} must be a number from {low} to {high or 'any'}")
            return float(value)

        base = number("base_score", 0.000001, 100)
        threshold = number("threshold", 0, 100)
        half = number("half_life_days", 0.000001)
        life = number("lifetime_days", 0.000001)
        if base is None or threshold is None:
            raise RulesError(origin, f"{where}: base_score and threshold are required")
        if (half is None) == (life is None):
            raise RulesError(origin, f"{where}: give either half_life_days or lifetime_days")
        if half is not None and not threshold < base:
            raise RulesError(origin, f"{where}: threshold must be below base_score")
        kinds, sources = m.get("kinds", ["*"]), m.get("sources", ["*"])
        if not isinstance(kinds, list) or not isinstance(sources, list):
            raise RulesError(origin, f"{where}: kinds and sources must be lists")
        out.append(DecayModel(m["id"], tuple(map(str, kinds)), tuple(map(str, sources)), base, threshold, half, life,
                              str(m.get("status", "provisional"))))
    return out


def decay_models(data_dir: Path | None) -> list[DecayModel]:
    return parse_models(load_rules("indicator_decay.yaml", data_dir),
                        str(rules_path("indicator_decay.yaml", data_dir)))


def model_for(models: list[DecayModel], kind: str, source: str) -> DecayModel | None:
    return next((m for m in models if m.applies(kind, source)), None)


@dataclass(frozen=True)
class Decay:
    model: DecayModel | None
    score: float
    valid_until: datetime | None
    expired: bool


def state_of(models: list[DecayModel], *, kind: str, source: str, valid_from: datetime, last_seen: datetime | None,
             valid_until: datetime | None, now: datetime) -> Decay:
    """One indicator's score, computed valid-until and whether it has expired (for pages)."""
    model = model_for(models, kind, source)
    seen = max(valid_from, last_seen) if last_seen else valid_from
    if model is None:
        return Decay(None, 100.0, valid_until, valid_until is not None and valid_until <= now)
    age = max((now - seen).total_seconds() / 86_400, 0.0)
    if model.half_life_days is not None:
        score = model.base_score * 0.5 ** (age / model.half_life_days)
    else:
        score = model.base_score if age < model.lifetime_days else 0.0  # type: ignore[operator]
    until = seen + timedelta(days=model.days_to_threshold)
    if valid_until is not None and valid_until < until:
        until = valid_until
    return Decay(model, round(score, 1), until, until <= now)


def _glob_regex(pattern: str) -> str:
    """A glob as an anchored regex the Rust engine reads (fnmatch's ``\\Z`` it does not)."""
    return fnmatch.translate(pattern).replace(r"\Z", "$")


def decay_frame(frame: pl.DataFrame, models: list[DecayModel], now: datetime) -> pl.DataFrame:
    """``frame`` (``kind``, ``source``, ``valid_from``, ``last_seen``, ``valid_until``) with ``decay_model``,
    ``decay_until`` (the earlier of the model's and the indicator's own) and ``expired``, on whole columns."""
    model_id: pl.Expr = pl.lit(None, pl.String)
    days: pl.Expr = pl.lit(None, pl.Float64)
    for m in reversed(models):  # the first model that matches wins: built from the last one up
        kind_ok = pl.lit(True) if "*" in m.kinds else pl.col("kind").is_in(list(m.kinds))
        source_ok = (pl.lit(True) if "*" in m.sources else pl.any_horizontal(
            [pl.col("source").fill_null("").str.contains(_glob_regex(p)) for p in m.sources]))
        hit = kind_ok & source_ok
        model_id = pl.when(hit).then(pl.lit(m.id)).otherwise(model_id)
        days = pl.when(hit).then(pl.lit(m.days_to_threshold)).otherwise(days)
    seen = pl.max_horizontal("valid_from", "last_seen")
    computed = seen + pl.duration(microseconds=(days * DAY_US).cast(pl.Int64))
    until = pl.min_horizontal(computed, "valid_until")
    out = frame.with_columns(model_id.alias("decay_model"), until.alias("decay_until"))
    return out.with_columns((pl.col("decay_until").is_not_null() & (pl.col("decay_until") <= now)).alias("expired"))


def indicator_frame(rows: list[tuple]) -> pl.DataFrame:
    """Rows of (id, stix_id, kind, source, valid_from, last_seen, valid_until) as a typed frame."""
    return pl.DataFrame(rows, schema={"id": pl.Int64, "stix_id": pl.String, "kind": pl.String, "source": pl.String,
                                      "valid_from": pl.Datetime("us", "UTC"), "last_seen": pl.Datetime("us", "UTC"),
                                      "valid_until": pl.Datetime("us", "UTC")}, orient="row")


def expired_stix_ids(session: Any, stix_ids: list[str], now: datetime, data_dir: Path | None) -> set[str]:
    """The indicators among ``stix_ids`` that decay (or their own valid_until) has expired."""
    from sqlalchemy import select

    from commonwatch.intel.models import Indicator

    if not stix_ids:
        return set()
    rows = []
    for start in range(0, len(stix_ids), 5000):
        rows += session.execute(select(Indicator.id, Indicator.stix_id, Indicator.kind, Indicator.source,
                                       Indicator.valid_from, Indicator.last_seen, Indicator.valid_until).where(
            Indicator.stix_id.in_(stix_ids[start:start + 5000]))).all()
    if not rows:
        return set()
    frame = decay_frame(indicator_frame([tuple(r) for r in rows]), decay_models(data_dir), now)
    return set(frame.filter(pl.col("expired"))["stix_id"].to_list())
