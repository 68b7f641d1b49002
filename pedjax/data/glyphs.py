"""Glyph tasks in the notMNIST manner: characters rendered from Debian's font packages (docs/data.md).

Source: the TrueType/OpenType files of :data:`FONT_PACKAGES` (``make data`` installs them), frozen in
``pedjax/assets/domains/glyph_fonts.json`` (written by ``experiments/make_glyph_fonts.py``: path,
family, style, OS/2 weight, italic flag, the character sets its cmap covers, design group). A task
is a fixed function of that list and the font files: if a listed file is missing the task is
unavailable (one-line reason naming ``make data``), never silently smaller.

**Split by font design.** Fonts are grouped into *design groups* (:func:`design_group`: the first
word of the family name, with known clones merged — TeX Gyre, FreeFont and the URW base 35 are one
group, Carlito joins Lato, Hack joins DejaVu), the groups are shuffled with a fixed seed and whole
groups go to the test side until it holds :data:`TEST_FRACTION` of the fonts. One split serves
every glyph task, so no test font (nor a clone of it) is ever seen in training by any glyph task.

**Images.** Each (font, character) is drawn white on black at 64 px by Pillow's FreeType and
normalised as MNIST was (:mod:`._render`: bounding box scaled to a 20×20 box, centred in 28×28);
:data:`COPIES` copies per item, copy 0 plain and the others jittered (rotation ≤ 10°, scale
0.8–1, shift ≤ 2 px), seeded by the font file, the character and the copy. Train splits sample a
fixed number per class from the train fonts' items (seeded); test splits take *every* item of the
test fonts, balanced over the classes (classes with more items are subsampled, seeded).
"""
from __future__ import annotations

import functools
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _render
from ._arrays import TaskData, permute_pixels

#: the Debian packages whose Latin-capable fonts make the glyph tasks (order: first wins a duplicate)
FONT_PACKAGES = (
    "fonts-dejavu-core", "fonts-dejavu-extra", "fonts-liberation", "fonts-liberation2", "fonts-freefont-ttf",
    "fonts-urw-base35", "fonts-texgyre", "fonts-lmodern", "fonts-noto-core", "fonts-noto-mono",
    "fonts-crosextra-carlito", "fonts-crosextra-caladea", "fonts-open-sans", "fonts-cantarell", "fonts-linuxlibertine",
    "fonts-ebgaramond", "fonts-gfs-didot", "fonts-paratype", "fonts-hack", "fonts-firacode", "fonts-sil-gentiumplus",
    "fonts-sil-charis", "fonts-sil-andika", "fonts-sil-doulos", "fonts-stix", "fonts-comic-neue", "fonts-vollkorn",
    "fonts-lato", "fonts-cabin", "fonts-quicksand", "fonts-anonymous-pro", "fonts-go", "fonts-jura", "fonts-tuffy",
    "fonts-inconsolata", "fonts-averia-gwf", "fonts-adf-accanthis", "fonts-breip", "fonts-bwht",
    "fonts-dkg-handwriting", "fonts-femkeklaver", "fonts-humor-sans", "fonts-kaushanscript", "fonts-dancingscript",
    "fonts-lobster", "fonts-leckerli-one", "fonts-rufscript", "fonts-kristi", "fonts-okolaks", "fonts-apropal",
)
FONT_ROOT = Path("/usr/share/fonts")
LIST_FILE = Path(__file__).resolve().parents[1] / "assets" / "domains" / "glyph_fonts.json"

LATIN_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LATIN_LOWER = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
#: ten Greek and ten Cyrillic lower-case letters whose shapes differ from every Latin letter
GREEK = "αβγδεζηθλπ"
CYRILLIC = "бгджзилпфя"
CHARSETS = {"latin": LATIN_UPPER + LATIN_LOWER + DIGITS, "greek": GREEK, "cyrillic": CYRILLIC}

TEST_FRACTION = 0.35
COPIES = 4
BOX = 20
RENDER_PX = 64
SPLIT_SEED = "glyphs/font-split"

_ALIASES = {
    # the URW base 35 and their derivatives (TeX Gyre, GNU FreeFont) are one design group
    "tex": "urw", "nimbus": "urw", "c059": "urw", "p052": "urw", "z003": "urw", "freemono": "urw", "freesans": "urw",
    "freeserif": "urw", "carlito": "lato", "stixgeneral": "stix", "hack": "dejavu", "because": "bwht",
}


def design_group(family: str) -> str:
    """The design group of a font family: its first word, lower-cased, clones merged."""
    first = family.split()[0].lower()
    return _ALIASES.get(first, first)


def excluded(family: str, style: str) -> bool:
    """Fonts left out of the list: symbol, math and keyboard fonts, small capitals (their lower case
    is upper case), the Anonymous Pro duplicate, and optical sizes other than 10 pt (Latin Modern)
    and 12 pt (EB Garamond)."""
    if any(w in family for w in ("Math", "Symbols", "Nushu", "Keyboard", "Standard Symbols", "D050000L", "Caps",
                                 "Smallcaps", "Minus")):
        return True
    if family.startswith("Latin Modern") and not style.startswith("10"):
        return True
    return family.startswith("EB Garamond") and not style.startswith("12")


@functools.lru_cache(maxsize=1)
def font_list() -> tuple[dict, ...]:
    """The frozen font list (``glyph_fonts.json``), each with its ``test`` side of the split."""
    fonts = json.loads(LIST_FILE.read_text())["fonts"]
    groups = sorted({f["group"] for f in fonts})
    order = np.random.default_rng(zlib.crc32(SPLIT_SEED.encode())).permutation(len(groups))
    test_groups, n_test = set(), 0
    for i in order:
        if n_test >= TEST_FRACTION * len(fonts):
            break
        test_groups.add(groups[i])
        n_test += sum(f["group"] == groups[i] for f in fonts)
    return tuple({**f, "test": f["group"] in test_groups} for f in fonts)


def missing() -> str | None:
    """Why the glyph tasks cannot be built here (``None`` when every listed font file exists)."""
    fonts = font_list()
    absent = [f for f in fonts if not (FONT_ROOT / f["path"]).is_file()]
    if absent:
        pkgs = sorted({f["package"] for f in absent})
        return (f"glyph fonts missing: {len(absent)} of {len(fonts)} font files (packages {', '.join(pkgs[:4])}"
                f"{' …' if len(pkgs) > 4 else ''}); run `make data` (apt-get install {' '.join(pkgs[:3])} …)")
    return None


def available() -> bool:
    return missing() is None


@dataclass(frozen=True)
class GlyphSpec:
    """One glyph task: ``classes`` are character strings (a class holds each of its characters) or,
    with ``by_weight``, the regular and bold upright fonts of the families that have both;
    ``covers``: the character sets a font must cover; ``n_train_per``: training images per class;
    ``permuted``: every image's pixels moved by the one fixed permutation of
    :func:`pedjax.data.permute_pixels` (no spatial structure left)."""

    name: str
    classes: tuple[str, ...]
    class_names: tuple[str, ...]
    covers: tuple[str, ...] = ("latin",)
    n_train_per: int = 100
    by_weight: bool = False
    description: str = ""
    permuted: bool = False


def _weight_class(f: dict) -> int | None:
    if f["italic"]:
        return None
    if 350 <= f["weight"] <= 450:
        return 0
    if 650 <= f["weight"] <= 750:
        return 1
    return None


@functools.lru_cache(maxsize=32)
def _eligible(spec: GlyphSpec, test: bool) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """``((font index, classes it gives items to), …)`` of one side of the split."""
    fonts = font_list()
    if spec.by_weight:
        fams: dict[str, set] = {}
        for f in fonts:
            w = _weight_class(f)
            if w is not None and all(c in f["covers"] for c in spec.covers):
                fams.setdefault(f["family"], set()).add(w)
        both = {fam for fam, ws in fams.items() if ws == {0, 1}}
    out: list[tuple[int, tuple[int, ...]]] = []
    for i, f in enumerate(fonts):
        if f["test"] != test or not all(c in f["covers"] for c in spec.covers):
            continue
        if spec.by_weight:
            w = _weight_class(f)
            if w is not None and f["family"] in both:
                out.append((i, (w,)))
        else:
            out.append((i, tuple(range(len(spec.classes)))))
    return tuple(out)


def _items(spec: GlyphSpec, test: bool) -> dict[int, list[tuple[int, str, int]]]:
    """``{class: [(font index, character, copy), …]}`` of one side of the split, sorted."""
    out: dict[int, list] = {c: [] for c in range(len(spec.classes))}
    for i, classes in _eligible(spec, test):
        for c in classes:
            out[c].extend((i, ch, k) for ch in spec.classes[c] for k in range(COPIES))
    return out


def counts(spec: GlyphSpec) -> tuple[int, int]:
    """The task's split sizes without listing its items (the registry's sizes).

    Args:
      spec: the :class:`GlyphSpec`.

    Returns:
      ``(n_train, n_test)``.
    """
    per = [0] * len(spec.classes)
    for _, classes in _eligible(spec, True):
        for c in classes:
            per[c] += len(spec.classes[c]) * COPIES
    return spec.n_train_per * len(spec.classes), min(per) * len(spec.classes)


@functools.lru_cache(maxsize=32)
def plan(spec: GlyphSpec) -> tuple[list, list]:
    """The task's items, computed from the font list alone (no font file is read).

    Args:
      spec: the :class:`GlyphSpec`.

    Returns:
      ``(train, test)``, each a list of ``(font index, character, copy, label)``.

    Raises:
      ValueError: a class has fewer training items than ``spec.n_train_per``.
    """
    rng = np.random.default_rng(zlib.crc32(f"glyphs/{spec.name}".encode()))
    train: list = []
    test: list = []
    tr, te = _items(spec, False), _items(spec, True)
    n_te = min(len(v) for v in te.values())
    for c in range(len(spec.classes)):
        if len(tr[c]) < spec.n_train_per:
            raise ValueError(f"{spec.name}: class {spec.class_names[c]!r} has {len(tr[c])} training items, needs {spec.n_train_per}")
        pick = np.sort(rng.permutation(len(tr[c]))[: spec.n_train_per])
        train.extend((*tr[c][j], c) for j in pick)
        pick = np.sort(rng.permutation(len(te[c]))[:n_te])
        test.extend((*te[c][j], c) for j in pick)
    return train, test


@functools.lru_cache(maxsize=64)
def _font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(str(FONT_ROOT / path), size)


def render(path: str, char: str, copy: int = 0) -> np.ndarray:
    """One glyph image (white on black, normalised as the module docstring says).

    Args:
      path: the font file, relative to :data:`FONT_ROOT`.
      char: the character.
      copy: the copy index (0: plain; > 0: jittered).

    Returns:
      uint8 ``[28, 28]``.

    Raises:
      ValueError: the font draws ``char`` empty.
      OSError: the font file cannot be read.
    """
    from PIL import Image, ImageDraw

    img = Image.new("L", (RENDER_PX * 5 // 2, RENDER_PX * 5 // 2), 0)
    ImageDraw.Draw(img).text((img.width // 2, img.height // 2), char, font=_font(path, RENDER_PX), fill=255, anchor="mm")
    out = _render.fit_to_box(img, BOX, _render.jitter(f"{path}|{char}", copy))
    if out is None:
        raise ValueError(f"font: {path} draws {char!r} empty")
    return out


def _render_items(items) -> np.ndarray:
    fonts = font_list()
    return np.stack([render(fonts[i]["path"], ch, k) for i, ch, k, _ in items])


def build(spec: GlyphSpec) -> TaskData:
    """Render the task.

    Args:
      spec: the :class:`GlyphSpec`.

    Returns:
      The :class:`~pedjax.data.TaskData` (images float32 [N, 28, 28, 1] in [0, 1]).

    Raises:
      FileNotFoundError: a listed font file is missing (one line naming the packages).
    """
    why = missing()
    if why is not None:
        raise FileNotFoundError(why)
    train, test = plan(spec)
    fonts = font_list()
    xtr = (_render_items(train).astype(np.float32) / np.float32(255.0))[..., None]
    xte = (_render_items(test).astype(np.float32) / np.float32(255.0))[..., None]
    if spec.permuted:
        xtr, xte = permute_pixels(xtr), permute_pixels(xte)
    ytr = np.asarray([t[3] for t in train], np.int32)
    yte = np.asarray([t[3] for t in test], np.int32)
    used = lambda items: sorted({fonts[i]["path"] for i, *_ in items})  # noqa: E731
    return TaskData.from_arrays(
        xtr, ytr, xte, yte, len(spec.classes), name=spec.name, class_names=spec.class_names,
        provenance={"dataset": "debian-fonts", "domain": "glyphs", "font_list": str(LIST_FILE.name), "font_root": str(FONT_ROOT),
                    "train_fonts": used(train), "test_fonts": used(test), "copies": COPIES,
                    "transform": f"{RENDER_PX}px FreeType rendering, bbox to {BOX}x{BOX} centred in 28x28; copies >0 jittered "
                                 f"(rotation <= {_render.MAX_ANGLE} deg, scale {_render.MIN_SCALE}-1, shift <= {_render.MAX_SHIFT} px)"
                                 + ("; then pixels permuted (pedjax.data._arrays.permute_pixels)" if spec.permuted else ""),
                    **_render.pillow_versions()},
    )


GLYPH_SPECS: tuple[GlyphSpec, ...] = (
    GlyphSpec("glyphs-letters", tuple("ABCDEFGHIJ"), tuple("ABCDEFGHIJ"),
              description="notMNIST-style letters A-J from Debian fonts; 100 train per class; test fonts unseen (split by font design)"),
    GlyphSpec("glyphs-digits", tuple(DIGITS), tuple(DIGITS),
              description="digits 0-9 typeset in Debian fonts (not handwriting); 100 train per class; test fonts unseen"),
    GlyphSpec("glyphs-greek", tuple(GREEK), tuple(GREEK), covers=("latin", "greek"),
              description="10 Greek lower-case letters (another alphabet) from the fonts that have them; 100 train per class; test fonts unseen"),
    GlyphSpec("glyphs-cyrillic", tuple(CYRILLIC), tuple(CYRILLIC), covers=("latin", "cyrillic"),
              description="10 Cyrillic lower-case letters unlike any Latin one; 100 train per class; test fonts unseen"),
    GlyphSpec("glyphs-case", ("abdefghnqrt", "ABDEFGHNQRT"), ("lower", "upper"), n_train_per=500,
              description="coarse labels: lower vs upper case of 11 letters whose cases differ in shape; 500 train per class; test fonts unseen"),
    GlyphSpec("glyphs-weight", (LATIN_LOWER, LATIN_LOWER), ("regular", "bold"), n_train_per=500, by_weight=True,
              description="a style property: regular vs bold upright fonts of the families that have both, letters a-z; 500 train per class; test families unseen"),
    GlyphSpec("glyphs-fewshot", tuple("ABCDEFGHIJ"), tuple("ABCDEFGHIJ"), n_train_per=10,
              description="few shots: letters A-J, 10 train per class; test fonts unseen"),
    GlyphSpec("glyphs-script", ("bdfghjkqrt", GREEK, CYRILLIC), ("latin", "greek", "cyrillic"), covers=("latin", "greek", "cyrillic"),
              n_train_per=300, description="which alphabet: 10 Latin, 10 Greek, 10 Cyrillic lower-case letters, fonts with all three; 300 train per class; test fonts unseen"),
    GlyphSpec("glyphs-permuted", tuple(DIGITS), tuple(DIGITS), permuted=True,
              description="typeset digits 0-9 with every image's pixels moved by one fixed permutation (no spatial structure: "
                          "convolutions' locality is no help); 100 train per class; test fonts unseen"),
)
