"""Jinja2 for every page, notification and report: autoescaped, bilingual, zone-aware.

Templates are addressed as ``<capability>/<file>``; an operator may override any of them by
placing a file with the same name under ``$COMMONWATCH_DATA_DIR/templates/``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, select_autoescape
from markupsafe import Markup

from commonwatch import i18n
from commonwatch.clock import ensure_utc

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def template_dirs() -> dict[str, FileSystemLoader]:
    """``<capability>/templates`` folders, keyed by capability name."""
    return {
        p.parent.name: FileSystemLoader(str(p))
        for p in sorted(PACKAGE_DIR.glob("*/templates"))
        if p.is_dir()
    }


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def format_datetime(value: datetime | None, tz: str | None = None, with_zone: bool = True) -> str:
    """A stored (UTC) time shown in the viewer's zone, e.g. ``2026-11-25 18:30 CST``."""
    if value is None:
        return ""
    local = ensure_utc(value).astimezone(zone(tz))
    text = local.strftime("%Y-%m-%d %H:%M")
    return f"{text} {local.tzname()}" if with_zone else text


def make_environment(data_dir: Path | None = None, default_tz: str = "UTC") -> Environment:
    loaders = []
    if data_dir is not None:
        loaders.append(FileSystemLoader(str(data_dir / "templates")))
    loaders.append(PrefixLoader(template_dirs()))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html", "xml", "j2"), default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    from commonwatch.access.principal import role_label
    from commonwatch.labels import label

    env.globals.update(pick=i18n.pick, languages=i18n.LANGUAGES, current_language=i18n.current_language,
                       role_label=role_label, label=label)
    # One way to print a coded value: {{ value|label("incident_status") }} (commonwatch.labels).
    env.filters["label"] = label
    from commonwatch.web.nav import current_nav

    env.globals["current_nav"] = current_nav
    env.filters["dt"] = lambda v, tz=None: format_datetime(v, tz or default_tz)
    env.filters["isodt"] = lambda v: ensure_utc(v).isoformat() if v else ""
    env.filters["thousands"] = lambda n: f"{n:,}" if isinstance(n, int) else n
    env.filters["nl2br"] = lambda s: Markup("<br>").join(str(s or "").splitlines())
    return env


def render_string(env: Environment, name: str, language: str, **context: Any) -> str:
    """Render a template in a given language (notifications and reports, outside a request)."""
    with i18n.use_language(language):
        return env.get_template(name).render(**context)
