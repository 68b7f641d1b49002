"""Emoji tasks: Unicode's emoji groups, drawn by two Debian emoji fonts (docs/data.md).

Sources: Noto Color Emoji (``fonts-noto-color-emoji``, colour bitmaps) and Symbola (``fonts-symbola``,
black-and-white outlines); the labels are the groups of Unicode's ``emoji-test.txt`` (Debian's
``unicode-data``). ``experiments/make_glyph_fonts.py`` froze the list into
``pedjax/assets/domains/emoji_list.json``: every fully-qualified emoji of one code point (an optional U+FE0F aside; skin
tones, ZWJ sequences, keycaps and flags are sequences and left out) that both fonts draw, in the
eight groups other than Flags and Component. ``make data`` installs the fonts; a task whose font
file is missing is unavailable (one-line reason), never silently smaller.

**Split by emoji.** In each group a fixed-seed permutation puts :data:`TRAIN_EMOJI` emoji on the
train side and the rest on the test side, so every test image shows an emoji never seen in
training. Test sides are balanced: each group keeps as many test emoji as the smallest group has
(seeded choice).

**Images.** A colour emoji becomes grey as luminance × alpha (bright shape on black, as the
Fashion-MNIST images are); a Symbola glyph is drawn white on black. Both are normalised as the
glyphs are (:mod:`._render`: bounding box scaled to a 24×24 box, centred in 28×28), with
:data:`COPIES` copies per (emoji, font), copy 0 plain and the others jittered.
"""
from __future__ import annotations

import functools
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _render
from ._arrays import TaskData

FONT_ROOT = Path("/usr/share/fonts")
#: name -> (Debian package, file under FONT_ROOT, pixel size, colour bitmaps)
FONTS = {
    "noto": ("fonts-noto-color-emoji", "truetype/noto/NotoColorEmoji.ttf", 109, True),
    "symbola": ("fonts-symbola", "truetype/ancient-scripts/Symbola_hint.ttf", 64, False),
}
LIST_FILE = Path(__file__).resolve().parents[1] / "assets" / "domains" / "emoji_list.json"
GROUPS = ("Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places",
          "Activities", "Objects", "Symbols")
GROUP_NAMES = ("smileys", "people", "animals-nature", "food-drink", "travel-places", "activities", "objects", "symbols")
TRAIN_EMOJI = 30
COPIES = 4
BOX = 24


@functools.lru_cache(maxsize=1)
def emoji_list() -> tuple[dict, ...]:
    """The frozen emoji list, each entry with its ``test`` side of the split."""
    entries = json.loads(LIST_FILE.read_text())["emoji"]
    out = []
    for g in GROUPS:
        members = [e for e in entries if e["group"] == g]
        order = np.random.default_rng(zlib.crc32(f"emoji/split/{g}".encode())).permutation(len(members))
        for rank, j in enumerate(order):
            out.append({**members[j], "test": rank >= TRAIN_EMOJI})
    return tuple(sorted(out, key=lambda e: (GROUPS.index(e["group"]), e["cp"])))


def missing() -> str | None:
    """Why the emoji tasks cannot be built here (``None`` when both font files exist)."""
    absent = [pkg for pkg, path, _, _ in FONTS.values() if not (FONT_ROOT / path).is_file()]
    if absent:
        return f"emoji fonts missing: run `make data` (apt-get install {' '.join(absent)})"
    return None


def available() -> bool:
    return missing() is None


@dataclass(frozen=True)
class EmojiSpec:
    """One emoji task: the fonts of the train and the test side, training images per class."""

    name: str
    train_fonts: tuple[str, ...]
    test_fonts: tuple[str, ...]
    n_train_per: int
    description: str = ""


def _n_test_emoji() -> int:
    entries = emoji_list()
    return min(sum(e["test"] for e in entries if e["group"] == g) for g in GROUPS)


def counts(spec: EmojiSpec) -> tuple[int, int]:
    """The task's split sizes without listing its items (the registry's sizes).

    Args:
      spec: the :class:`EmojiSpec`.

    Returns:
      ``(n_train, n_test)``.
    """
    return spec.n_train_per * len(GROUPS), len(GROUPS) * _n_test_emoji() * len(spec.test_fonts) * COPIES


@functools.lru_cache(maxsize=8)
def plan(spec: EmojiSpec) -> tuple[list, list]:
    """The task's items, from the frozen list alone (no font file is read).

    Args:
      spec: the :class:`EmojiSpec`.

    Returns:
      ``(train, test)``, each a list of ``(emoji index, font, copy, label)``.

    Raises:
      ValueError: a group has fewer training items than ``spec.n_train_per``.
    """
    entries = emoji_list()
    rng = np.random.default_rng(zlib.crc32(f"emoji/{spec.name}".encode()))
    n_test_emoji = _n_test_emoji()
    train: list = []
    test: list = []
    for c, g in enumerate(GROUPS):
        idx_tr = [i for i, e in enumerate(entries) if e["group"] == g and not e["test"]]
        idx_te = [i for i, e in enumerate(entries) if e["group"] == g and e["test"]]
        keep = np.sort(np.random.default_rng(zlib.crc32(f"emoji/test-balance/{g}".encode())).permutation(len(idx_te))[:n_test_emoji])
        idx_te = [idx_te[j] for j in keep]
        items = [(i, f, k) for i in idx_tr for f in spec.train_fonts for k in range(COPIES)]
        if len(items) < spec.n_train_per:
            raise ValueError(f"{spec.name}: group {g!r} has {len(items)} training items, needs {spec.n_train_per}")
        pick = np.sort(rng.permutation(len(items))[: spec.n_train_per])
        train.extend((*items[j], c) for j in pick)
        test.extend((i, f, k, c) for i in idx_te for f in spec.test_fonts for k in range(COPIES))
    return train, test


@functools.lru_cache(maxsize=4)
def _font(name: str):
    from PIL import ImageFont

    _, path, size, _ = FONTS[name]
    return ImageFont.truetype(str(FONT_ROOT / path), size)


def render(font: str, text: str, copy: int = 0) -> np.ndarray:
    """One emoji image (grey, normalised as the module docstring says).

    Args:
      font: a key of :data:`FONTS` (``"noto"``, ``"symbola"``).
      text: the emoji.
      copy: the copy index (0: plain; > 0: jittered).

    Returns:
      uint8 ``[28, 28]``.

    Raises:
      ValueError: the font draws ``text`` empty.
      OSError: the font file cannot be read.
    """
    from PIL import Image, ImageDraw

    _, path, size, colour = FONTS[font]
    side = size * 2
    if colour:
        img = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        ImageDraw.Draw(img).text((side // 2, side // 2), text, font=_font(font), embedded_color=True, anchor="mm")
        rgba = np.asarray(img, dtype=np.float32)
        lum = rgba[..., :3] @ np.asarray([0.299, 0.587, 0.114], np.float32)
        grey = Image.fromarray(np.clip(np.rint(lum * rgba[..., 3] / 255.0), 0, 255).astype(np.uint8), "L")
    else:
        grey = Image.new("L", (side, side), 0)
        ImageDraw.Draw(grey).text((side // 2, side // 2), text, font=_font(font), fill=255, anchor="mm")
    out = _render.fit_to_box(grey, BOX, _render.jitter(f"{path}|{text}", copy))
    if out is None:
        raise ValueError(f"font: {path} draws {text!r} empty")
    return out


def build(spec: EmojiSpec) -> TaskData:
    """Render the task.

    Args:
      spec: the :class:`EmojiSpec`.

    Returns:
      The :class:`~pedjax.data.TaskData` (images float32 [N, 28, 28, 1] in [0, 1]).

    Raises:
      FileNotFoundError: a font file is missing (one line naming the package).
    """
    why = missing()
    if why is not None:
        raise FileNotFoundError(why)
    entries = emoji_list()
    train, test = plan(spec)

    def images(items):
        return (np.stack([render(f, chr(int(entries[i]["cp"], 16)), k) for i, f, k, _ in items]).astype(np.float32)
                / np.float32(255.0))[..., None]

    return TaskData.from_arrays(
        images(train), np.asarray([t[3] for t in train], np.int32), images(test), np.asarray([t[3] for t in test], np.int32),
        len(GROUPS), name=spec.name, class_names=GROUP_NAMES,
        provenance={"dataset": "debian-emoji", "domain": "emoji", "emoji_list": LIST_FILE.name,
                    "fonts": {k: FONTS[k][1] for k in sorted(set(spec.train_fonts) | set(spec.test_fonts))},
                    "train_emoji": sorted({entries[i]["cp"] for i, *_ in train}), "test_emoji": sorted({entries[i]["cp"] for i, *_ in test}),
                    "copies": COPIES, "transform": f"luminance x alpha (colour) / white on black; bbox to {BOX}x{BOX} centred in 28x28; "
                    "copies >0 jittered", **_render.pillow_versions()},
    )


EMOJI_SPECS: tuple[EmojiSpec, ...] = (
    EmojiSpec("emoji-groups", ("noto", "symbola"), ("noto", "symbola"), 200,
              "Unicode's 8 emoji groups (smileys, people, animals, food, travel, activities, objects, symbols), drawn by "
              "Noto Color Emoji and Symbola; test emoji unseen; 200 train per class"),
    EmojiSpec("emoji-shift", ("noto",), ("symbola",), 120,
              "the 8 emoji groups, trained on colour emoji (Noto) and tested on unseen emoji in black-and-white "
              "outlines (Symbola): a style shift; 120 train per class"),
)
