"""The container every loader returns, and its validation.

Images are float32 NHWC in [0, 1] (``[N, H, W, C]``); labels are int32 ``0..C-1``. Validation
happens here, once, when a :class:`TaskData` is built; the trainer trusts it afterwards.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: the seed of the one pixel permutation every ``*-permuted`` task applies (train and test alike)
PIXEL_PERMUTATION_SEED = zlib.crc32(b"pedjax/pixel-permutation")


def pixel_permutation(h: int = 28, w: int = 28) -> np.ndarray:
    """The fixed permutation of an ``h × w`` image's pixel positions (flattened, row-major) that
    the ``*-permuted`` tasks apply: the same on every machine, for train and test and every task.

    Args:
      h: image height.
      w: image width.

    Returns:
      int64 ``[h·w]``, a permutation of ``0..h·w-1``.
    """
    return np.random.default_rng(PIXEL_PERMUTATION_SEED).permutation(h * w)


def permute_pixels(x: np.ndarray) -> np.ndarray:
    """Move every pixel of every image to the place :func:`pixel_permutation` gives it
    (permuted-MNIST style): the pixel values are kept, their spatial layout is destroyed.

    Args:
      x: images ``[N, H, W, C]``.

    Returns:
      The permuted images, same shape and dtype.
    """
    x = np.asarray(x)
    n, h, w = x.shape[:3]
    flat = x.reshape(n, h * w, *x.shape[3:])
    return np.ascontiguousarray(flat[:, pixel_permutation(h, w)].reshape(x.shape))


@dataclass(frozen=True, eq=False)
class TaskData:
    """A labelled target task with a train and a test split.

    Attributes:
      name: task name (registry name, ``tfds:…`` or ``folder:…``).
      x_train: float32 [N_train, H, W, C] in [0, 1].
      y_train: int32 [N_train], values in ``0..num_classes-1``.
      x_test: float32 [N_test, H, W, C].
      y_test: int32 [N_test].
      num_classes: number of classes C.
      class_names: C names.
      provenance: where the samples come from (pool name and indices per split, transform).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: tuple[str, ...]
    provenance: dict = field(default_factory=dict)

    @classmethod
    def from_arrays(
        cls,
        x_train: Any,
        y_train: Any,
        x_test: Any,
        y_test: Any,
        num_classes: int | None = None,
        *,
        name: str = "custom",
        class_names: tuple[str, ...] | None = None,
        provenance: dict | None = None,
    ) -> TaskData:
        """Validate arrays and build a :class:`TaskData`.

        Args:
          x_train: training images ``[N, H, W]`` (a channel axis is added) or ``[N, H, W, C]``,
            numeric, finite (8-bit integer images are scaled by 1/255).
          y_train: integer labels ``[N_train]`` in ``0..num_classes-1``.
          x_test: test images, the same image shape as ``x_train``.
          y_test: integer labels ``[N_test]``.
          num_classes: C (at least 2); default ``max(label) + 1``.
          name: the task's name.
          class_names: C names; default ``"0"`` … ``"C-1"``.
          provenance: where the samples come from (copied).

        Returns:
          The :class:`TaskData`, images float32 and labels int32.

        Raises:
          ValueError: naming the argument: non-numeric, empty or wrongly shaped images,
            non-finite pixels, image shapes that differ between the splits, label counts that
            differ from the images', non-integer labels or labels outside ``0..num_classes-1``,
            fewer than 2 classes, or ``class_names`` of the wrong length.
        """
        xtr = _images(x_train, "x_train")
        xte = _images(x_test, "x_test")
        ytr = _labels(y_train, "y_train", xtr.shape[0], "x_train")
        yte = _labels(y_test, "y_test", xte.shape[0], "x_test")
        if xtr.shape[1:] != xte.shape[1:]:
            raise ValueError(
                f"x_test: image shape {xte.shape[1:]} differs from x_train's {xtr.shape[1:]}; "
                "both splits must have the same height, width and channels"
            )
        if num_classes is None:
            num_classes = int(max(ytr.max(), yte.max())) + 1
        num_classes = int(num_classes)
        if num_classes < 2:
            raise ValueError(f"num_classes: need at least 2 classes, got {num_classes}")
        for arr, nm in ((ytr, "y_train"), (yte, "y_test")):
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi >= num_classes:
                raise ValueError(
                    f"{nm}: labels out of range [{lo}, {hi}]; expected integers in 0..{num_classes - 1} "
                    f"(num_classes={num_classes})"
                )
        if class_names is None:
            class_names = tuple(str(i) for i in range(num_classes))
        class_names = tuple(str(c) for c in class_names)
        if len(class_names) != num_classes:
            raise ValueError(f"class_names: has {len(class_names)} names for num_classes={num_classes}")
        return cls(name, xtr, ytr, xte, yte, num_classes, class_names, dict(provenance or {}))

    @property
    def image_shape(self) -> tuple[int, ...]:
        """One image's shape ``(H, W, C)``."""
        return tuple(self.x_train.shape[1:])

    def summary(self) -> str:
        """One line: name, classes, split sizes and image shape."""
        return (
            f"{self.name}: {self.num_classes} classes, train {self.x_train.shape[0]}, "
            f"test {self.x_test.shape[0]}, images {self.image_shape}"
        )


def _images(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name}: expected a numeric image array, got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ValueError(f"{name}: expected images [N, H, W] or [N, H, W, C], got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: the split is empty (shape {arr.shape}); need at least one image")
    if min(arr.shape[1:]) == 0:
        raise ValueError(f"{name}: images have an empty axis (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.integer) and arr.dtype.itemsize == 1:
        arr = arr.astype(np.float32) / np.float32(255.0)
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinite pixels")
    return arr


def _labels(y: Any, name: str, n: int, x_name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D label array, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: the split is empty; need one label per image")
    if arr.shape[0] != n:
        raise ValueError(f"{name}: has {arr.shape[0]} labels but {x_name} has {n} images; they must match")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name}: labels must be integers")
    elif not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise ValueError(f"{name}: labels must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int32)
