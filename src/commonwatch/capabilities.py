"""The capabilities commonwatch is made of, and the parts each may contribute.

Each capability is a folder under ``commonwatch/``; by convention it may hold ``models.py``
(tables), ``api.py`` (``router`` under /api/v1), ``pages.py`` (``router`` and ``NAV``),
``commands.py`` (``app``, a Typer group or ``register(root)``), ``demo.py`` (``load(ctx)``) and
``jobs.py`` (``JOBS``, periodic work the server runs). The app, CLI and migrations discover them
here, so adding a capability touches no shared file.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from types import ModuleType

CAPABILITIES: tuple[str, ...] = (
    "access",
    "constituency",
    "events",
    "enrichment",
    "feeds",
    "pipeline",
    "notify",
    "incidents",
    "intel",
    "cii",
    "vulns",
    "datasec",
    "cooperation",
    "reports",
    "inbox",
    "web",
)


def _find(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def parts(part: str) -> Iterator[tuple[str, ModuleType]]:
    """``(capability, module)`` for every capability that has ``commonwatch.<capability>.<part>``."""
    for cap in CAPABILITIES:
        name = f"commonwatch.{cap}.{part}"
        if _find(f"commonwatch.{cap}") and _find(name):
            yield cap, importlib.import_module(name)


def import_models() -> None:
    """Import every ``models`` module so the metadata knows every table."""
    for _cap, _module in parts("models"):
        pass
