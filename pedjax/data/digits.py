"""scikit-learn's bundled digits (1 797 images, 8×8, values 0..16), upsampled to 28×28.

Upsampling is ``jax.image.resize``'s bilinear resampling, computed in NumPy (:func:`resize_images`),
so digits share the input shape of Fashion-MNIST and every backbone in :mod:`pedjax.models.nets`
accepts both.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def resize_images(images: np.ndarray, size: int = 28, method: str = "linear") -> np.ndarray:
    """Resize float images to ``size``×``size``: ``jax.image.resize``'s bilinear resampling
    (``method="linear"``: triangle kernel, half-pixel centres, weights renormalised at the borders,
    widened by the scale when shrinking), computed in NumPy.

    NumPy, in float64 rounded once to float32, so that the pixels do not depend on the process's
    JAX settings: computed by ``jax.image.resize`` they moved in the last bit with
    ``jax_enable_x64`` and with XLA:CPU's fusion flags, which changed the digits tasks' data hash
    and so the key of their fine-tuning ground truth (docs/data.md). Other ``method`` values go to
    ``jax.image.resize`` (in float32; such pixels can move in the last bit with those settings).

    Args:
      images: ``[N, H, W]`` or ``[N, H, W, C]``.
      size: the output height and width.
      method: ``"linear"`` (default, bilinear) or another ``jax.image.resize`` method.

    Returns:
      NumPy float32 ``[N, size, size]`` or ``[N, size, size, C]`` (the input's layout).

    Raises:
      ValueError: ``images`` is not 3-D or 4-D.
    """
    x = np.asarray(images, dtype=np.float32)
    squeeze = x.ndim == 3
    if squeeze:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"images: expected [N, H, W] or [N, H, W, C], got shape {tuple(x.shape)}")
    if method != "linear":
        out = np.asarray(jax.image.resize(jnp.asarray(x), (x.shape[0], size, size, x.shape[3]), method=method), np.float32)
    else:
        wy, wx = _linear_weights(x.shape[1], size), _linear_weights(x.shape[2], size)
        out = np.einsum("oh,nhwc,pw->nopc", wy, x.astype(np.float64), wx).astype(np.float32)
    return out[..., 0] if squeeze else out


def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` bilinear resampling weights, as ``jax.image.scale_and_translate`` builds
    them for ``method="linear"`` with antialiasing (float64)."""
    scale = n_out / n_in
    width = max(1.0, 1.0 / scale)  # the triangle's half-width in input pixels (> 1 when shrinking)
    centre = (np.arange(n_out) + 0.5) / scale - 0.5  # output pixel centres in input coordinates
    w = np.maximum(0.0, 1.0 - np.abs(np.arange(n_in)[None, :] - centre[:, None]) / width)
    return w / w.sum(axis=1, keepdims=True)


def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as ``(images [1797, 8, 8] of 0..16, labels [1797])``, read from the
    CSV file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``: 64 pixels and the label
    per row, the file ``sklearn.datasets.load_digits`` parses) without importing scikit-learn,
    whose import is slow (docs/data.md, "How the digits are read"); falls back to
    ``load_digits`` when the file is not where it was."""
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt") as f:
                data = np.loadtxt(f, delimiter=",")
            if data.shape == (1797, 65):
                return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
    from sklearn.datasets import load_digits as _sk_load

    d = _sk_load()
    return d.images, d.target


@functools.lru_cache(maxsize=2)
def load_digits(size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """All 1 797 scikit-learn digits, upsampled (cached per ``size``).

    Args:
      size: output height and width (8: the original images, no resizing).

    Returns:
      ``(images float32 [1797, size, size, 1] in [0, 1], labels int32 [1797])``, read-only.
    """
    images, target = _digits_raw()
    x = (images.astype(np.float32) / np.float32(16.0))[..., None]
    if size != 8:
        x = resize_images(x, size)
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    y = target.astype(np.int32)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y
