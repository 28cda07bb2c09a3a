"""Build the pages' font subset: ``python -m commonwatch.tools.fonts`` (``make fonts``).

The pages' Chinese is drawn with Noto Sans SC from the ``pylopdf-fonts-zh-cn`` dependency. The
full font is 8 MB, so the pages load a WOFF2 subset with every character of the Chinese
catalogues and the rules files (the interface), and fall back to the full font, served from the
dependency, only for a character the subset lacks (a name someone typed).
``tests/web/test_fonts.py`` fails when a catalogue gains a character the subset lacks: run this again.
"""

from __future__ import annotations

import sys
from pathlib import Path

from commonwatch import fonts, i18n

PACKAGE = Path(__file__).resolve().parent.parent
SUBSET = PACKAGE / "web" / "static" / "fonts" / "noto-sans-sc-ui.woff2"
#: Punctuation and symbols the Chinese pages use besides the catalogues' own characters.
EXTRA = "，。、：；！？（）《》【】「」『』“”‘’—…·％～　"


def interface_characters() -> set[str]:
    """Every character beyond ASCII in the Chinese catalogues and the rules files."""
    from babel.messages.pofile import read_po

    chars: set[str] = set(EXTRA)
    for path in i18n.catalogue_files():
        with path.open("rb") as fh:
            for message in read_po(fh, locale="zh_CN"):
                text = message.string if isinstance(message.string, str) else "".join(message.string or ())
                chars.update(text or "")
    for path in sorted((PACKAGE / "rules").rglob("*.yaml")):
        chars.update(path.read_text(encoding="utf-8"))
    return {c for c in chars if ord(c) > 0x7F and not c.isspace()}


def build(target: Path = SUBSET) -> int:
    """Write the WOFF2 subset; returns how many characters it holds."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    chars = interface_characters()
    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]
    options.hinting = False
    options.drop_tables += ["VORG", "DSIG"]
    font = TTFont(fonts.font_path())
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(ord(c) for c in chars))
    subsetter.subset(font)
    target.parent.mkdir(parents=True, exist_ok=True)
    font.flavor = "woff2"
    font.save(str(target))
    return len(chars)


def main() -> int:
    n = build()
    print(f"{SUBSET.relative_to(PACKAGE)}: {n} characters, {SUBSET.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
