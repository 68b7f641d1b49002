"""Rendering helpers of the glyph and emoji tasks: a drawn shape to a 28×28 grey image.

Every image is made the way MNIST's digits were normalised: the shape's bounding box is cropped,
scaled (aspect ratio kept) so that its longer side fills a ``box``×``box`` square, and pasted at the
centre of a black 28×28 canvas. A *copy* ``k > 0`` of an item is jittered: rotated by up to
``MAX_ANGLE`` degrees, scaled by 0.8–1 and shifted by up to ``MAX_SHIFT`` pixels, each drawn from
a generator seeded by the item's key and ``k`` (CRC-32), so an image is a fixed function of the
font file, the character and the copy index. Copy 0 is the plain, centred rendering. Pixels are
rounded to uint8 (and divided by 255 by the caller), so the arrays are exactly reproducible with
the same Pillow (FreeType) version; the tasks record that version in their provenance.
"""
from __future__ import annotations

import zlib

import numpy as np

SIZE = 28
MAX_ANGLE = 10.0
MAX_SHIFT = 2.0
MIN_SCALE = 0.8


def jitter(key: str, copy: int) -> tuple[float, float, float, float]:
    """``(angle degrees, scale, dx, dy)`` of copy ``copy`` of item ``key`` (copy 0: no jitter)."""
    if copy == 0:
        return 0.0, 1.0, 0.0, 0.0
    rng = np.random.default_rng(zlib.crc32(f"{key}|{copy}".encode()))
    a, s, dx, dy = rng.uniform([-MAX_ANGLE, MIN_SCALE, -MAX_SHIFT, -MAX_SHIFT], [MAX_ANGLE, 1.0, MAX_SHIFT, MAX_SHIFT])
    return float(a), float(s), float(dx), float(dy)


def fit_to_box(img, box: int, params=(0.0, 1.0, 0.0, 0.0)) -> np.ndarray | None:
    """A grey PIL image (bright shape on black) → uint8 [28, 28]: rotate, crop the shape's bounding
    box, scale its longer side to ``box * scale`` pixels, paste centred (plus the shift) on black.
    ``None`` when the image holds no ink (a glyph the font draws empty)."""
    from PIL import Image

    angle, scale, dx, dy = params
    bbox = img.getbbox()
    if bbox is None:
        return None
    img = img.crop(bbox)
    if angle:  # rotate the cropped shape (cheap), then crop again
        img = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
        img = img.crop(img.getbbox() or (0, 0, img.width, img.height))
    w, h = img.size
    f = box * scale / max(w, h)
    nw, nh = max(1, min(SIZE, round(w * f))), max(1, min(SIZE, round(h * f)))
    img = img.resize((nw, nh), resample=Image.Resampling.LANCZOS)
    left = int(np.clip(round((SIZE - nw) / 2 + dx), 0, SIZE - nw))
    top = int(np.clip(round((SIZE - nh) / 2 + dy), 0, SIZE - nh))
    canvas = Image.new("L", (SIZE, SIZE), 0)
    canvas.paste(img, (left, top))
    return np.asarray(canvas, dtype=np.uint8)


def pillow_versions() -> dict:
    """The renderer's versions (part of a rendered task's provenance)."""
    import PIL
    from PIL import features

    return {"pillow": PIL.__version__, "freetype": features.version("freetype2")}
