"""Fashion-MNIST from the IDX files of Debian's ``dataset-fashion-mnist`` package.

The package installs ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` under
``/usr/share/datasets/fashion-mnist``. The root is, in order: the ``root`` argument, the
``PEDJAX_FASHION_MNIST`` environment variable, that default. Gzipped and plain IDX files are both
read. Nothing is downloaded.
"""
from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
ENV_VAR = "PEDJAX_FASHION_MNIST"
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SIZES = {"train": 60000, "test": 10000}


def fashion_root(root: str | os.PathLike | None = None) -> Path:
    """The folder the IDX files are read from.

    Args:
      root: the folder; ``None``: ``$PEDJAX_FASHION_MNIST``, else the Debian path.

    Returns:
      The folder's path (not checked).
    """
    return Path(root if root is not None else os.environ.get(ENV_VAR) or DEFAULT_ROOT)


def _find(root: Path, stem: str) -> Path:
    for cand in (root / f"{stem}.gz", root / stem):
        if cand.is_file():
            return cand
    raise FileNotFoundError(
        f"Fashion-MNIST not found: no {stem}[.gz] in {root}; install it with "
        f"`apt-get install dataset-fashion-mnist` or set {ENV_VAR} to a folder holding the IDX files"
    )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a uint8 array of its declared shape.

    Args:
      path: the IDX file; gzipped when its name ends in ``.gz``.

    Returns:
      A read-only uint8 array of the shape in the file's header.

    Raises:
      OSError: the file cannot be read (``FileNotFoundError`` when missing).
      ValueError: a bad magic number, an element type other than unsigned bytes, or a size that
        does not match the header.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"path: {path} is not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise ValueError(f"path: {path} holds IDX type 0x{data[2]:02x}; only unsigned bytes (0x08) are supported")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise ValueError(
            f"path: {path} is truncated or corrupt: header says shape {shape} "
            f"({int(np.prod(shape))} bytes) but the file has {len(data) - header} bytes of data"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


@functools.lru_cache(maxsize=4)
def _load_raw(root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    img_stem, lab_stem = _FILES[split]
    rootp = Path(root)
    images = read_idx(_find(rootp, img_stem))
    labels = read_idx(_find(rootp, lab_stem))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"root: {root} holds inconsistent {split} files (images {images.shape}, labels {labels.shape})"
        )
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise ValueError(f"root: {root} {split} labels exceed 9; not Fashion-MNIST")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_fashion_mnist(split: str = "train", root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One split of Fashion-MNIST (read once per root and split, then cached).

    Args:
      split: ``"train"`` (60 000 images) or ``"test"`` (10 000).
      root: folder of the IDX files; default ``$PEDJAX_FASHION_MNIST`` or the Debian path.

    Returns:
      ``(images uint8 [N, 28, 28], labels uint8 [N])``, read-only.

    Raises:
      FileNotFoundError: one line naming ``apt-get install dataset-fashion-mnist``.
      ValueError: unknown split, or corrupt files.
    """
    if split not in _FILES:
        raise ValueError(f"split: unknown value {split!r}; choose 'train' or 'test'")
    return _load_raw(str(fashion_root(root)), split)


def available(root: str | os.PathLike | None = None) -> bool:
    """Whether the Fashion-MNIST IDX files can be found.

    Args:
      root: the folder (default as :func:`fashion_root`).

    Returns:
      ``True`` when all four files (plain or gzipped) exist.
    """
    r = fashion_root(root)
    try:
        for stems in _FILES.values():
            for s in stems:
                _find(r, s)
    except FileNotFoundError:
        return False
    return True
