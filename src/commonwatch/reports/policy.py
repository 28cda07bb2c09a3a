"""The mailing policy of the situation reports: recipients, their language and the periods they
receive. Read from ``$COMMONWATCH_DATA_DIR/reports-policy.yaml`` (else the shipped, empty one); a
malformed file is refused with the file, the entry and the reason."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from email_validator import EmailNotValidError, validate_email

from commonwatch.errors import Invalid
from commonwatch.i18n import _

FILE = "reports-policy.yaml"


@dataclass(frozen=True)
class Recipient:
    address: str
    language: str
    periods: tuple[str, ...]


def policy_path(data_dir: Path) -> Path:
    own = Path(data_dir) / FILE
    return own if own.is_file() else Path(str(resources.files("commonwatch.reports").joinpath("policy.yaml")))


def load_policy(data_dir: Path) -> list[Recipient]:
    path = policy_path(data_dir)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise Invalid("policy", _("{file}: cannot be read: {reason}").format(file=path, reason=exc)) from None
    out = []
    for n, entry in enumerate(data.get("recipients") or [], start=1):
        where = f"{path}: recipients[{n}]"
        if not isinstance(entry, dict) or not entry.get("address"):
            raise Invalid("policy", _("{where}: needs an address").format(where=where))
        try:
            address = validate_email(str(entry["address"]), check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise Invalid("policy", _("{where}: {reason}").format(where=where, reason=exc)) from None
        periods = tuple(entry.get("periods") or ("month",))
        bad = [p for p in periods if p not in ("week", "month", "year")]
        if bad:
            raise Invalid("policy", _("{where}: “{value}” is not one of: week, month, year").format(
                where=where, value=bad[0]))
        language = entry.get("language") or "en"
        if language not in ("en", "zh-CN"):
            raise Invalid("policy", _("{where}: language must be en or zh-CN").format(where=where))
        out.append(Recipient(address, language, periods))
    return out
