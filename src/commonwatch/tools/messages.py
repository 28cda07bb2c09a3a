"""Extract translatable messages into each capability's ``locale/zh_CN.po``.

``python -m commonwatch.tools.messages`` adds new English messages (with an empty translation)
to the catalogue of the folder they appear in, marks vanished ones obsolete, and lists what is
still untranslated. Modules at the package top level belong to the ``web`` catalogue.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po, write_po

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
PACKAGE = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true", "trimmed": "false"}


def _files(folder: Path, top_level: bool) -> Iterator[tuple[Path, str]]:
    if top_level:
        for path in sorted(PACKAGE.glob("*.py")):
            yield path, "python"
    for path in sorted(folder.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path, "python"
    for path in sorted(folder.rglob("*.html")) + sorted(folder.rglob("*.txt")) + sorted(folder.rglob("*.j2")):
        if "templates" in path.parts:
            yield path, "jinja2"


def catalogue_folders() -> list[Path]:
    return sorted(p for p in PACKAGE.iterdir()
                  if p.is_dir() and (p / "__init__.py").exists() and p.name not in ("tools", "migrations", "rules"))


def extract(folder: Path) -> dict[str, list[tuple[str, int]]]:
    """msgid -> [(file, line)] for one capability folder."""
    found: dict[str, list[tuple[str, int]]] = {}
    for path, method in _files(folder, folder.name == "web"):
        options = JINJA_OPTIONS if method == "jinja2" else {}
        for lineno, message, _comments, _context in extract_from_file(method, str(path), keywords=KEYWORDS,
                                                                       options=options):
            msgid = message[0] if isinstance(message, tuple) else message
            if msgid:
                found.setdefault(msgid, []).append((str(path.relative_to(PACKAGE)), lineno))
    return found


def update(folder: Path) -> tuple[int, list[str]]:
    """Bring one folder's catalogue up to date; returns (added, untranslated msgids)."""
    path = folder / "locale" / "zh_CN.po"
    old = Catalog(locale="zh_CN")
    if path.exists():
        with path.open("rb") as fh:
            old = read_po(fh, locale="zh_CN")
    messages = extract(folder)
    if not messages and not path.exists():
        return 0, []
    # No dates and no line numbers in the file: they would change on every run and make
    # catalogues conflict between branches for no reason.
    new = Catalog(locale="zh_CN", project="commonwatch", fuzzy=False, creation_date=_EPOCH, revision_date=_EPOCH)
    added = 0
    for msgid, locations in sorted(messages.items()):
        previous = old.get(msgid)
        if previous is None:
            added += 1
        new.add(msgid, previous.string if previous else "", locations=sorted({(f, 0) for f, _ in locations}))
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    write_po(buf, new, width=100, omit_header=False, sort_output=True, include_previous=False,
             include_lineno=False)
    if not path.exists() or path.read_bytes() != buf.getvalue():
        path.write_bytes(buf.getvalue())
    untranslated = [m.id for m in new if m.id and not m.string]
    return added, untranslated


def main() -> int:
    missing_total = 0
    for folder in catalogue_folders():
        added, untranslated = update(folder)
        if added or untranslated:
            print(f"{folder.name}: {added} new, {len(untranslated)} untranslated")
            for msgid in untranslated:
                print(f"  - {msgid}")
        missing_total += len(untranslated)
    return 1 if missing_total else 0


if __name__ == "__main__":
    sys.exit(main())
