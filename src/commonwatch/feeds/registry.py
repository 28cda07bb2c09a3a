"""The feeds commonwatch can read, by the name used on the command line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from commonwatch.errors import Invalid
from commonwatch.feeds.base import Parser
from commonwatch.i18n import N_, _


@dataclass(frozen=True)
class FeedInfo:
    name: str
    description: str
    formats: str


def _shadowserver(data_dir: Path | None) -> Parser:
    from commonwatch.feeds.shadowserver import ShadowserverParser

    return ShadowserverParser(data_dir)


def _simple(module: str, cls: str, *args) -> Callable[[Path | None], Parser]:
    def make(_data_dir: Path | None) -> Parser:
        import importlib

        return getattr(importlib.import_module(f"commonwatch.feeds.{module}"), cls)(*args)
    return make


_FACTORIES: dict[str, tuple[Callable[[Path | None], Parser], str, str]] = {
    "shadowserver": (_shadowserver, N_("Shadowserver reports; the report type from the file name or header"), "CSV"),
    "urlhaus": (_simple("abusech", "URLhausParser"), N_("abuse.ch URLhaus malware URLs"), "CSV"),
    "feodotracker": (_simple("abusech", "FeodoTrackerParser"), N_("abuse.ch Feodo Tracker botnet C2 IPs"),
                     "CSV, JSON"),
    "threatfox": (_simple("abusech", "ThreatFoxParser"), N_("abuse.ch ThreatFox IOCs"), "JSON"),
    "spamhaus-drop": (_simple("spamhaus", "SpamhausParser", "drop"), N_("Spamhaus DROP netblocks"),
                      "text, JSON lines"),
    "spamhaus-edrop": (_simple("spamhaus", "SpamhausParser", "edrop"), N_("Spamhaus EDROP netblocks"),
                       "text, JSON lines"),
    "openphish": (_simple("phishing", "OpenPhishParser"), N_("OpenPhish-style phishing URL list"), "text"),
    "phishtank": (_simple("phishing", "PhishTankParser"), N_("PhishTank-style verified phishing URLs"),
                  "CSV, JSON"),
    "intelmq": (_simple("intelmq", "IntelMQParser"), N_("IntelMQ events (file output bot)"), "JSON lines, JSON"),
}
GENERIC_PREFIX = "generic:"


def list_parsers() -> list[FeedInfo]:
    """Every feed name, its description (in the current language) and the formats it reads."""
    rows = [FeedInfo(name, _(desc), fmt) for name, (_f, desc, fmt) in _FACTORIES.items()]
    rows.append(FeedInfo("generic:MAPPING_FILE", _("any CSV/JSON feed described by a column-mapping file"),
                         "CSV, JSON, JSON lines"))
    return rows


def get_parser(name: str, data_dir: Path | None = None) -> Parser:
    """The parser for a feed name; :class:`Invalid` lists the known names if there is none."""
    if name.startswith(GENERIC_PREFIX):
        from commonwatch.feeds.generic import GenericParser

        path = Path(name[len(GENERIC_PREFIX):]).expanduser()
        if not path.is_file():
            raise Invalid("feed", _("mapping file {path} does not exist").format(path=path))
        return GenericParser(path)
    entry = _FACTORIES.get(name)
    if entry is None:
        raise Invalid("feed", _("unknown feed {name}; known feeds: {known}").format(
            name=name, known=", ".join([*_FACTORIES, "generic:FILE"])))
    return entry[0](data_dir)
