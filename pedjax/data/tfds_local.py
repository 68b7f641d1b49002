"""TensorFlow Datasets for data a user has prepared locally (nothing is downloaded).

Two entry points, both returning a validated :class:`~pedjax.data.TaskData`:

* :func:`load_tfds` — ``tfds.builder(name, data_dir=…)`` over a dataset already built with
  ``tfds build`` (or ``download_and_prepare`` on a machine with internet);
* :func:`load_image_folder` — TFDS's image-folder builder over ``root/split/label/*.png``
  (the label is the folder name; classes are sorted by name, like TFDS does).

Images are resized to ``size``×``size`` and converted to ``channels`` channels inside the
``tf.data`` pipeline, then scaled to float32 in [0, 1]. TFDS needs TensorFlow:
``pip install 'pedjax[tfds]'``. TensorFlow is kept off any GPU so JAX keeps it.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from ._arrays import TaskData

INSTALL_HINT = "TFDS support needs tensorflow-datasets and tensorflow: pip install 'pedjax[tfds]'"


def _import_tfds():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
        import tensorflow_datasets as tfds
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    with contextlib.suppress(Exception):  # pragma: no cover - devices already initialised
        tf.config.set_visible_devices([], "GPU")
    return tf, tfds


def tfds_available() -> bool:
    """Whether tensorflow-datasets (and TensorFlow) can be imported.

    Returns:
      ``True`` when both import.
    """
    try:
        _import_tfds()
    except ImportError:
        return False
    return True


def _to_numpy(ds, tf, *, image_key: str, label_key: str, size: int, channels: int | None, sort_key: str | None):
    def prep(ex):
        img = ex[image_key]
        if img.shape.rank == 2:
            img = img[..., None]
        img = tf.image.resize(tf.cast(img, tf.float32), (size, size), method="bilinear", antialias=True)
        if channels == 1 and img.shape[-1] == 3:
            img = tf.image.rgb_to_grayscale(img)
        elif channels == 3 and img.shape[-1] == 1:
            img = tf.image.grayscale_to_rgb(img)
        out = {"image": img / 255.0, "label": tf.cast(ex[label_key], tf.int32)}
        if sort_key is not None:
            out["key"] = ex[sort_key]
        return out

    xs, ys, keys = [], [], []
    for batch in ds.map(prep).batch(1024).as_numpy_iterator():
        xs.append(batch["image"])
        ys.append(batch["label"])
        if sort_key is not None:
            keys.append(batch["key"])
    if not xs:
        return np.zeros((0, size, size, channels or 1), np.float32), np.zeros((0,), np.int32)
    x = np.concatenate(xs).astype(np.float32)
    y = np.concatenate(ys).astype(np.int32)
    if sort_key is not None:  # a deterministic order, whatever the builder's shuffling
        order = np.argsort(np.concatenate(keys), kind="stable")
        x, y = x[order], y[order]
    return np.clip(x, 0.0, 1.0), y


def _from_builder(builder, name: str, *, train_split, test_split, image_key, label_key, size, channels, provenance):
    tf, _ = _import_tfds()
    feats = builder.info.features
    for key, arg in ((image_key, "image_key"), (label_key, "label_key")):
        if key not in feats:
            raise ValueError(f"{arg}: feature {key!r} not in the dataset; it has {sorted(feats.keys())}")
    known = sorted(builder.info.splits.keys())
    for split, arg in ((train_split, "train_split"), (test_split, "test_split")):
        base = split.split("[")[0]
        if known and base not in known:
            raise ValueError(f"{arg}: split {split!r} not in the dataset; it has {known}")
    sort_key = "image/filename" if "image/filename" in feats else None
    arrays = []
    for split in (train_split, test_split):
        ds = builder.as_dataset(split=split, shuffle_files=False)
        arrays.append(_to_numpy(ds, tf, image_key=image_key, label_key=label_key, size=size, channels=channels, sort_key=sort_key))
    label_feat = feats[label_key]
    num_classes = getattr(label_feat, "num_classes", None)
    names = tuple(getattr(label_feat, "names", ()) or ()) or None
    (xtr, ytr), (xte, yte) = arrays
    return TaskData.from_arrays(
        xtr, ytr, xte, yte, num_classes, name=name, class_names=names,
        provenance={**provenance, "train": train_split, "test": test_split, "size": size, "channels": channels},
    )


def load_tfds(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    train_split: str = "train",
    test_split: str = "test",
    image_key: str = "image",
    label_key: str = "label",
    size: int = 28,
    channels: int | None = 1,
) -> TaskData:
    """A locally prepared TFDS dataset as a task (``tfds.builder(name, data_dir=data_dir)``).

    Nothing is downloaded: a dataset that is not prepared raises the TFDS error.

    Args:
      name: the TFDS dataset name (with an optional ``:version``).
      data_dir: the TFDS data folder; default TFDS's own (``$TFDS_DATA_DIR`` or
        ``~/tensorflow_datasets``).
      train_split: the training split; TFDS slicing allowed (``"train[:1000]"``).
      test_split: the test split.
      image_key: the image feature's name.
      label_key: the label feature's name (a ``ClassLabel`` gives the class count and names).
      size: output height and width (bilinear, antialiased).
      channels: 1 (grey) or 3 (RGB) output channels; ``None`` keeps the dataset's.

    Returns:
      The :class:`~pedjax.data.TaskData` (images float32 in [0, 1]), named ``tfds:NAME``.

    Raises:
      ImportError: tensorflow-datasets or TensorFlow is not installed.
      ValueError: ``image_key``, ``label_key``, ``train_split`` or ``test_split`` not in the
        dataset, or invalid arrays (:meth:`~pedjax.data.TaskData.from_arrays`).
    """
    _, tfds = _import_tfds()
    builder = tfds.builder(name, data_dir=None if data_dir is None else str(data_dir))
    return _from_builder(
        builder, f"tfds:{name}", train_split=train_split, test_split=test_split, image_key=image_key,
        label_key=label_key, size=size, channels=channels,
        provenance={"source": "tfds", "dataset": name, "data_dir": None if data_dir is None else str(data_dir)},
    )


def load_image_folder(
    root: str | os.PathLike,
    *,
    train_split: str = "train",
    test_split: str = "test",
    size: int = 28,
    channels: int | None = 1,
) -> TaskData:
    """``root/split/label/*.png`` (or .jpg) through ``tfds.ImageFolder`` as a task.

    Labels are the folder names, mapped to ``0..C-1`` in sorted order; examples are ordered by
    file name so the result is deterministic.

    Args:
      root: the folder holding one sub-folder per split.
      train_split: the training split's folder name.
      test_split: the test split's folder name.
      size: output height and width (bilinear, antialiased).
      channels: 1 (grey) or 3 (RGB) output channels; ``None`` keeps the images'.

    Returns:
      The :class:`~pedjax.data.TaskData` (images float32 in [0, 1]), named ``folder:ROOT``.

    Raises:
      FileNotFoundError: ``root`` is not a folder.
      ImportError: tensorflow-datasets or TensorFlow is not installed.
      ValueError: a split not found, or invalid arrays (:meth:`~pedjax.data.TaskData.from_arrays`).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"root: image folder {root} does not exist (expected root/split/label/*.png)")
    _, tfds = _import_tfds()
    builder = tfds.ImageFolder(str(root))
    return _from_builder(
        builder, f"folder:{root}", train_split=train_split, test_split=test_split, image_key="image",
        label_key="label", size=size, channels=channels,
        provenance={"source": "image-folder", "root": str(root)},
    )
