"""Free-trade-zone negative lists (Provisions Art. 6): separate, dated rule files.

Each file under ``rules/ftz/`` (shipped) or ``$COMMONWATCH_DATA_DIR/rules/ftz/`` (the operator's)
is one zone's list of one date. The shipped file is an example and says so; an operator's file
with the same ``id`` replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from commonwatch.i18n import pick
from commonwatch.rules import RulesError, parse_rules


@dataclass(frozen=True)
class FtzList:
    id: str
    zone_en: str
    zone_zh: str
    effective: date
    version: str
    status: str
    example: bool
    citation_en: str
    citation_zh: str
    categories: tuple[dict[str, str], ...]
    origin: str

    @property
    def label(self) -> str:
        name = pick(self.zone_en, self.zone_zh)
        return f"{name} ({self.effective.isoformat()})"


def parse_ftz_list(text: str, origin: str) -> FtzList:
    """One negative-list file, checked; a malformed file is refused with the reason."""
    data = parse_rules(text, origin)
    for key in ("id", "zone", "categories", "status", "citation"):
        if key not in data:
            raise RulesError(origin, f"lacks '{key}'")
    if data["status"] not in ("verified", "provisional"):
        raise RulesError(origin, "status must be verified or provisional")
    effective = data["effective"]
    if not isinstance(effective, date):
        try:
            effective = date.fromisoformat(str(effective))
        except ValueError:
            raise RulesError(origin, "effective must be a date (YYYY-MM-DD)") from None
    cats = data["categories"]
    if not isinstance(cats, list) or not cats:
        raise RulesError(origin, "categories must be a non-empty list")
    for i, c in enumerate(cats):
        if not isinstance(c, dict) or not all(c.get(k) for k in ("code", "en", "zh")):
            raise RulesError(origin, f"categories[{i}] needs code, en and zh")
    zone = data["zone"]
    return FtzList(id=str(data["id"]), zone_en=zone.get("en", ""), zone_zh=zone.get("zh", ""), effective=effective,
                   version=str(data["version"]), status=data["status"], example=bool(data.get("example")),
                   citation_en=data["citation"].get("en", ""), citation_zh=data["citation"].get("zh", ""),
                   categories=tuple({"code": str(c["code"]), "en": c["en"], "zh": c["zh"]} for c in cats),
                   origin=origin)


def _files(data_dir: Path | None) -> list[Path]:
    shipped = Path(str(resources.files("commonwatch.rules").joinpath("ftz")))
    paths = sorted(shipped.glob("*.yaml"))
    if data_dir is not None and (data_dir / "rules" / "ftz").is_dir():
        paths += sorted((data_dir / "rules" / "ftz").glob("*.yaml"))
    return paths


def load_ftz_lists(data_dir: Path | None = None) -> dict[str, FtzList]:
    """Every loaded list by id; the operator's file wins over a shipped one with the same id."""
    out: dict[str, FtzList] = {}
    for path in _files(data_dir):
        lst = parse_ftz_list(path.read_text(encoding="utf-8"), str(path))
        out[lst.id] = lst
    return out


def answer_for(lst: FtzList, codes: list[str], unsure: bool) -> str:
    """'yes' if any ticked category is on the list, 'unclear' if the person is unsure, else 'no'."""
    known = {c["code"] for c in lst.categories}
    if any(c in known for c in codes):
        return "yes"
    return "unclear" if unsure else "no"


def describe(lst: FtzList) -> dict[str, Any]:
    return {"id": lst.id, "zone_en": lst.zone_en, "zone_zh": lst.zone_zh, "effective": lst.effective.isoformat(),
            "version": lst.version, "status": lst.status, "example": lst.example}
