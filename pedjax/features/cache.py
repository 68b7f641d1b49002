"""A content-addressed cache of extracted features, so a repeated extraction skips the forward passes.

A zoo member's features on a set of images are a pure function of the member's parameters and
architecture, the images, and the software that runs the forward pass. :class:`FeatureCache`
stores each ``[N, D]`` float32 result as ``ROOT/<key>.npy``, where ``key`` hashes exactly those
(:func:`feature_key`: the parameter hash from the zoo manifest, the architecture and its
arguments, the images' content hash, the batch size, and the pedjax, JAX and jaxlib versions and
backend). A changed input is a new key, never a stale hit; writes are atomic, so a killed
process leaves no torn entry, and two processes writing one key write the same bytes. An entry
that cannot be read is treated as a miss and rewritten. The parameter hash is the manifest's
(``load_zoo(..., verify=True)`` checks it against the files). Entries are never evicted: the demo's
are a few MB; delete the folder to reclaim them.

The library never caches unless asked (``extract_features(..., cache=...)``); the command line
passes its user cache folder (``pedjax demo``: ``~/.cache/pedjax/features``, see
:func:`pedjax.cli._common.cache_root`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..util import atomic_save_npy, sha1_json

#: bump when the feature extraction itself changes meaning
FORMAT = 1


def _software() -> dict:
    import jax
    import jaxlib

    from .. import __version__

    return {"pedjax": __version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__, "backend": jax.default_backend()}


def feature_key(params_sha1: str, arch: str, arch_kwargs: dict, images_sha1: str, batch_size: int) -> str:
    """The cache key of one member's features on one image set.

    Args:
      params_sha1: the member's parameter hash (the zoo manifest's).
      arch: the architecture's name.
      arch_kwargs: its arguments.
      images_sha1: the images' content hash (:func:`pedjax.util.sha1_arrays`).
      batch_size: the forward pass's batch size.

    Returns:
      A SHA-1 hex digest over those, the cache format and the software versions and backend.
    """
    return sha1_json({"format": FORMAT, "params": params_sha1, "arch": arch, "arch_kwargs": arch_kwargs,
                      "images": images_sha1, "batch_size": int(batch_size), "software": _software()})


class FeatureCache:
    """A folder of cached features: ``get(key)`` → the float32 ``[N, D]`` array or ``None``; ``put(key, array)``.

    Args:
      root: the cache folder (created on the first :meth:`put`).
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The file of ``key``: ``ROOT/<key>.npy``."""
        return self.root / f"{key}.npy"

    def get(self, key: str, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        """The cached array of ``key``.

        Args:
          key: a :func:`feature_key`.
          shape: the expected ``(N, D)``; an entry of another shape is a miss.

        Returns:
          The float32 ``[N, D]`` array, or ``None`` on a miss (absent, unreadable, or not a
          float32 2-D array of ``shape``).
        """
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            a = np.load(p, allow_pickle=False)
        except (OSError, ValueError):
            return None  # unreadable (another program's file, a full disk at write time): recompute
        if a.dtype != np.float32 or a.ndim != 2 or (shape is not None and a.shape != tuple(shape)):
            return None
        return a

    def put(self, key: str, array: np.ndarray) -> None:
        """Store ``array`` (as float32) under ``key``, atomically; a cache that cannot be written
        is skipped silently (it only costs speed)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_save_npy(self.path(key), np.asarray(array, np.float32))
        except OSError:
            pass  # an unwritable cache only costs speed
