"""Rules as data: versioned YAML files, each rule with its citation and the date it took effect.

An operator may override any file by placing a copy under ``$COMMONWATCH_DATA_DIR/rules/``;
``load_rules`` prefers that copy. Capabilities validate the structure of their own files.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from commonwatch.errors import Invalid

REQUIRED_KEYS = ("name", "version", "effective")


class RulesError(Invalid):
    """A rules file that cannot be used; the message names the file and the problem."""


def rules_path(name: str, data_dir: Path | None = None) -> Path:
    """The file that ``load_rules(name)`` reads: the operator's copy if present, else the shipped one."""
    if data_dir is not None:
        override = data_dir / "rules" / name
        if override.is_file():
            return override
    return Path(str(resources.files(__package__).joinpath(name)))


#: path -> (the text last parsed, its rules): pages read rules on every request, and parsing the
#: YAML cost a third of the overview's CPU. The file is still read each time (a changed file is
#: parsed again at once); callers get a copy they may change.
_PARSED: dict[str, tuple[str, dict[str, Any]]] = {}


def load_rules(name: str, data_dir: Path | None = None) -> dict[str, Any]:
    """Parse a rules file and check its header; raises :class:`RulesError` with the reason."""
    path = rules_path(name, data_dir)
    text = path.read_text(encoding="utf-8")
    seen = _PARSED.get(str(path))
    if seen is None or seen[0] != text:
        seen = (text, parse_rules(text, str(path)))
        _PARSED[str(path)] = seen
    return copy.deepcopy(seen[1])


def parse_rules(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(origin, f"is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RulesError(origin, "must be a mapping at the top level")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise RulesError(origin, f"lacks the header key(s) {', '.join(missing)}")
    return data
