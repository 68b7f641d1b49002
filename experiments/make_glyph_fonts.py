"""Write pedjax/assets/domains/glyph_fonts.json and emoji_list.json: the frozen lists of the glyph and emoji tasks.

Glyphs (pedjax.data.glyphs):

Run once after `make data` on Debian 12 (bookworm) when the font packages change; the list is part
of the tasks' definition (a changed list changes the tasks' arrays and so their data hash). For each
.ttf/.otf file of the packages in ``pedjax.data.glyphs.FONT_PACKAGES`` (in that order, symlinks
skipped): family, style, OS/2 weight, italic flag (fontTools), which character sets its cmap covers,
and its design group (``glyphs.design_group``). Duplicates of one (family, style) keep the first;
symbol, math and optical-size variants are left out (``glyphs.excluded``).

Emoji (pedjax.data.emoji): Unicode's /usr/share/unicode/emoji/emoji-test.txt (package unicode-data):
fully-qualified emoji of one code point (U+FE0F aside) in the groups of ``emoji.GROUPS``, kept when
both emoji fonts map the code point and draw it with ink.

    python experiments/make_glyph_fonts.py
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fontTools.ttLib import TTFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pedjax.data import emoji, glyphs  # noqa: E402

FONT_DIR = Path("/usr/share/fonts")


def _draws(path: str, chars: str) -> bool:
    """Whether the font draws every character with ink (a cmap entry can point to an empty glyph)."""
    rel = os.path.relpath(path, FONT_DIR)
    try:
        for c in chars:
            glyphs.render(rel, c)
    except (ValueError, OSError):
        return False
    return True


def main() -> int:
    rows, seen = [], set()
    for pkg in glyphs.FONT_PACKAGES:
        files = subprocess.check_output(["dpkg", "-L", pkg], text=True).splitlines()
        for f in sorted(files):
            if not f.lower().endswith((".ttf", ".otf")) or os.path.islink(f) or not f.startswith(str(FONT_DIR)):
                continue
            t = TTFont(f, lazy=True)
            cmap = t.getBestCmap() or {}
            name = t["name"]
            fam, sub = name.getBestFamilyName(), name.getBestSubFamilyName()
            os2 = t["OS/2"] if "OS/2" in t else None
            weight = int(os2.usWeightClass) if os2 is not None else 400
            italic = bool(os2.fsSelection & 1) if os2 is not None else False
            italic = italic or any(w in sub.lower() for w in ("italic", "oblique", "slanted"))
            if glyphs.excluded(fam, sub) or (fam, sub) in seen:
                continue
            covers = [k for k, chars in glyphs.CHARSETS.items() if all(ord(c) in cmap for c in chars) and _draws(f, chars)]
            if "latin" not in covers:
                continue
            seen.add((fam, sub))
            rows.append({"path": os.path.relpath(f, FONT_DIR), "package": pkg, "family": fam, "style": sub,
                         "weight": weight, "italic": italic, "group": glyphs.design_group(fam), "covers": covers})
    out = glyphs.LIST_FILE
    out.write_text(json.dumps({"what": __doc__.splitlines()[0], "root": str(FONT_DIR), "fonts": rows}, indent=0) + "\n")
    groups = sorted({r["group"] for r in rows})
    print(f"{len(rows)} fonts in {len(groups)} design groups -> {out}")
    return emoji_main()


EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")


def emoji_main() -> int:
    cmaps = {k: TTFont(str(emoji.FONT_ROOT / v[1]), lazy=True).getBestCmap() for k, v in emoji.FONTS.items()}
    rows, group, sub, version = [], None, None, None
    for line in EMOJI_TEST.read_text().splitlines():
        if line.startswith("# Version:"):
            version = line.split(":", 1)[1].strip()
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            sub = line.split(":", 1)[1].strip()
        if line.startswith("#") or ";" not in line:
            continue
        code, rest = line.split(";", 1)
        if rest.split("#")[0].strip() != "fully-qualified" or group not in emoji.GROUPS:
            continue
        cps = [int(c, 16) for c in code.split() if int(c, 16) != 0xFE0F]
        if len(cps) != 1 or not all(cps[0] in cm for cm in cmaps.values()):
            continue
        try:
            for f in emoji.FONTS:
                emoji.render(f, chr(cps[0]))
        except ValueError:
            continue
        name = rest.split("#", 1)[1].strip().split(" ", 2)[-1] if "#" in rest else ""
        rows.append({"cp": f"{cps[0]:04X}", "group": group, "subgroup": sub, "name": name})
    out = emoji.LIST_FILE
    out.write_text(json.dumps({"what": "emoji of one code point drawn by both emoji fonts (experiments/make_glyph_fonts.py)",
                               "source": str(EMOJI_TEST), "unicode_emoji_version": version, "emoji": rows}, indent=0,
                              ensure_ascii=False) + "\n")
    print(f"{len(rows)} emoji -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
