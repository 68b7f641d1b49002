"""Named, deterministic target tasks from real offline data, and the zoo's source split.

Fashion-MNIST's official train set (60 000 images) is cut once, by index:

* ``[0, 50000)`` — the **source split** the zoo is pretrained on (:func:`load_source`);
* ``[50000, 60000)`` — the **task pool** every Fashion task draws its *train* split from.

Every Fashion task's *test* split is as large as the data allows, balanced over its classes: it
draws from the official test set (10 000 images) **and** the task pool's images outside the task's
own train split (~9 000 more); docs/zoo.md, "Test-set size", says why. The digits tasks
come from another dataset altogether, so the source split overlaps no task's test split (nor any
task's train split); ``tests/test_data.py`` checks this by index and by content. Every selection
uses a fixed seed, so a task is the same array on every machine.

The glyph and emoji tasks (benchmark v3) are target domains the zoo never saw (:mod:`.glyphs`:
characters rendered from Debian's font packages, split by font design; :mod:`.emoji`: Unicode's
emoji groups drawn by two emoji fonts, split by emoji). Every task names its ``domain`` ("fashion", "digits", "glyphs",
"emoji"): the unit a leave-one-domain-out protocol holds out.
"""
from __future__ import annotations

import functools
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..util import sha1_arrays
from . import emoji, fashion, glyphs
from ._arrays import TaskData, permute_pixels
from .digits import load_digits

SOURCE_RANGE = (0, 50000)
TASK_POOL_RANGE = (50000, 60000)
#: test images per class of the 10-class Fashion tasks (18 500 in all): the most every one of them
#: allows (the task pool's rarest class has 955 images; 1000 + 955 − 100 train ≥ 1 850)
FASHION_TEST_PER_CLASS = 1850
#: test images per class (or group) of the 4-class tasks with 250 training images per class
FASHION_TEST_PER_CLASS_4 = 1700
DIGITS_TEST_FRACTION = 0.3
NOISE_STD = 0.3

COARSE_GROUPS = (
    ("tops", (0, 2, 4, 6)),            # T-shirt/top, Pullover, Coat, Shirt
    ("trousers-dresses", (1, 3)),      # Trouser, Dress
    ("footwear", (5, 7, 9)),           # Sandal, Sneaker, Ankle boot
    ("bags", (8,)),                    # Bag
)


@dataclass(frozen=True)
class Task:
    """A registered task: metadata known without loading, and a loader.

    Attributes:
      name: the registry name (``pedjax tasks``).
      description: one line for listings.
      num_classes: number of classes C.
      n_train: training images.
      n_test: test images.
      dataset: the source dataset (``"fashion-mnist"``, ``"digits"``, ``"debian-fonts"``,
        ``"debian-emoji"``).
      builder: ``builder(fashion_root)`` for Fashion tasks, ``builder()`` otherwise → the
        :class:`~pedjax.data.TaskData`.
      domain: the target domain (``"fashion"``, ``"digits"``, ``"glyphs"``, ``"emoji"``):
        leave-one-domain-out groups by it.
      missing: ``() -> None`` when the task's source is installed, else the one-line reason it
        is not; ``None``: always available (Fashion-MNIST is checked by :meth:`unavailable`).
    """

    name: str
    description: str
    num_classes: int
    n_train: int
    n_test: int
    dataset: str
    builder: Callable[..., TaskData]
    domain: str = ""
    missing: Callable[[], str | None] | None = None

    def unavailable(self) -> str | None:
        """Why the task cannot be loaded here.

        Returns:
          A one-line reason (with the install command), or ``None`` when its data is installed.
        """
        if self.dataset == "fashion-mnist":
            return None if fashion.available() else "Fashion-MNIST not installed: apt-get install dataset-fashion-mnist"
        return self.missing() if self.missing is not None else None

    def load(self, fashion_root: str | os.PathLike | None = None) -> TaskData:
        """The task's arrays (cached per Fashion-MNIST root).

        Args:
          fashion_root: folder of the Fashion-MNIST IDX files (Fashion tasks); default
            ``$PEDJAX_FASHION_MNIST`` or the Debian path.

        Returns:
          The :class:`~pedjax.data.TaskData`.

        Raises:
          FileNotFoundError: the task's data (Fashion-MNIST, fonts) is not installed.
          ValueError: the installed files are corrupt.
        """
        root = str(fashion.fashion_root(fashion_root)) if self.dataset == "fashion-mnist" else None
        return _load_cached(self.name, root)


@functools.lru_cache(maxsize=16)
def _load_cached(name: str, root: str | None) -> TaskData:
    task = TASKS[name]
    return task.builder(root) if root is not None else task.builder()


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


def _per_class(labels: np.ndarray, pool: np.ndarray, groups, n_per_group: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``n_per_group`` pool indices for each group of labels; returns (indices, group ids)."""
    rng = np.random.default_rng(seed)
    idx_parts: list[np.ndarray] = []
    gid_parts: list[np.ndarray] = []
    for g, members in enumerate(groups):
        cand = pool[np.isin(labels[pool], members)]
        if cand.size < n_per_group:
            raise ValueError(f"n_per_group: only {cand.size} images for group {members}, asked {n_per_group}")
        pick = np.sort(rng.permutation(cand)[:n_per_group])
        idx_parts.append(pick)
        gid_parts.append(np.full(n_per_group, g, np.int32))
    idx, gid = np.concatenate(idx_parts), np.concatenate(gid_parts)
    order = np.argsort(idx, kind="stable")
    return idx[order], gid[order]


def _to_float(images_u8: np.ndarray) -> np.ndarray:
    return (images_u8.astype(np.float32) / np.float32(255.0))[..., None]


def _fashion_task(name: str, *, groups, class_names, n_train_per, n_test_per, transform=None, transform_desc=None):
    def build(root: str) -> TaskData:
        xtr_all, ytr_all = fashion.load_fashion_mnist("train", root)
        xte_all, yte_all = fashion.load_fashion_mnist("test", root)
        pool = np.arange(*TASK_POOL_RANGE)
        tr_idx, ytr = _per_class(ytr_all, pool, groups, n_train_per, _seed(name))
        # test candidates: the whole official test set, then the task pool minus this task's train split
        extra = np.setdiff1d(pool, tr_idx)
        labels = np.concatenate([yte_all, ytr_all[extra]])
        pick, yte = _per_class(labels, np.arange(labels.size), groups, n_test_per, _seed(name + "/test-split"))
        from_test = pick < yte_all.size
        te_idx, ex_idx = pick[from_test], extra[pick[~from_test] - yte_all.size]
        xtr = _to_float(xtr_all[tr_idx])
        xte = np.concatenate([_to_float(xte_all[te_idx]), _to_float(xtr_all[ex_idx])])
        if transform is not None:
            xtr = transform(xtr, _seed(name + "/train"))
            xte = transform(xte, _seed(name + "/test"))
        return TaskData.from_arrays(
            xtr, ytr, xte, yte, len(groups), name=name, class_names=class_names,
            provenance={
                "dataset": "fashion-mnist", "root": root,
                "train_pool": "fashion-mnist/train", "train_indices": tr_idx,
                "test_pool": "fashion-mnist/test", "test_indices": te_idx,
                "test_extra_pool": "fashion-mnist/train", "test_extra_indices": ex_idx,
                "transform": transform_desc,
            },
        )

    return build


def _digits_task(name: str, classes, *, test_fraction: float = DIGITS_TEST_FRACTION, transform=None, transform_desc=None):
    def build() -> TaskData:
        x, y = load_digits(28)
        rng = np.random.default_rng(_seed("digits-split") if test_fraction == DIGITS_TEST_FRACTION else _seed(f"digits-split-{test_fraction}"))
        tr_parts: list[np.ndarray] = []
        te_parts: list[np.ndarray] = []
        for c in range(10):  # the same per-class split for every digits task of one test fraction
            idx = rng.permutation(np.flatnonzero(y == c))
            n_te = int(round(test_fraction * idx.size))
            if c in classes:
                te_parts.append(idx[:n_te])
                tr_parts.append(idx[n_te:])
        tr, te = np.sort(np.concatenate(tr_parts)), np.sort(np.concatenate(te_parts))
        remap = np.full(10, -1, np.int32)
        remap[list(classes)] = np.arange(len(classes), dtype=np.int32)
        xtr, xte = x[tr], x[te]
        desc = "8x8 -> 28x28 bilinear (jax.image.resize)"
        if transform is not None:
            xtr = transform(np.asarray(xtr, np.float32), _seed(name + "/train"))
            xte = transform(np.asarray(xte, np.float32), _seed(name + "/test"))
            desc += f"; then {transform_desc}"
        return TaskData.from_arrays(
            xtr, remap[y[tr]], xte, remap[y[te]], len(classes), name=name,
            class_names=tuple(str(c) for c in classes),
            provenance={"dataset": "sklearn-digits", "train_pool": "sklearn-digits", "train_indices": tr,
                        "test_pool": "sklearn-digits", "test_indices": te, "transform": desc},
        )

    return build


def _rotate(x: np.ndarray, seed: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(x, k=1, axes=(1, 2)))


def _invert(x: np.ndarray, seed: int) -> np.ndarray:
    return 1.0 - x


def _noisy(x: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, NOISE_STD, size=x.shape).astype(np.float32)
    return np.clip(x + noise, 0.0, 1.0)


BLUR_SIGMA = 1.5
OCCLUSION_SIZE = 12
DIGITS_DEGRADED: dict[str, float] = {"noise_std": 0.25, "occlusion": 10, "test_fraction": 0.5}


def _blur(x: np.ndarray, seed: int) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(x, sigma=(0, BLUR_SIGMA, BLUR_SIGMA, 0), mode="constant").astype(np.float32)


def _occlude(x: np.ndarray, seed: int, size: int = OCCLUSION_SIZE) -> np.ndarray:
    """A ``size``×``size`` square of zeros at a seeded uniform position in every image."""
    rng = np.random.default_rng(seed)
    n, H, W = x.shape[:3]
    top = rng.integers(0, H - size + 1, n)
    left = rng.integers(0, W - size + 1, n)
    out = np.array(x, np.float32, copy=True)
    rows = np.arange(H)[None, :, None]
    cols = np.arange(W)[None, None, :]
    mask = (rows >= top[:, None, None]) & (rows < top[:, None, None] + size) & (cols >= left[:, None, None]) & (cols < left[:, None, None] + size)
    out[mask] = 0.0
    return out


def _degrade_digits(x: np.ndarray, seed: int) -> np.ndarray:
    x = _occlude(x, seed, int(DIGITS_DEGRADED["occlusion"]))
    noise = np.random.default_rng(seed + 1).normal(0.0, DIGITS_DEGRADED["noise_std"], size=x.shape).astype(np.float32)
    return np.clip(x + noise, 0.0, 1.0)


def _permute(x: np.ndarray, seed: int) -> np.ndarray:
    return permute_pixels(x)  # one permutation for train and test (not the per-split seed)


def _digits_counts(classes, test_fraction: float = DIGITS_TEST_FRACTION) -> tuple[int, int]:
    counts = {0: 178, 1: 182, 2: 177, 3: 183, 4: 181, 5: 182, 6: 181, 7: 179, 8: 174, 9: 180}
    n_te = sum(int(round(test_fraction * counts[c])) for c in classes)
    return sum(counts[c] for c in classes) - n_te, n_te


_FINE = tuple((c,) for c in range(10))
_F10 = fashion.CLASS_NAMES


def _registry() -> dict[str, Task]:
    t = {}

    def add(name, desc, ncls, ntr, nte, dataset, builder):
        t[name] = Task(name, desc, ncls, ntr, nte, dataset, builder, domain="fashion" if dataset == "fashion-mnist" else dataset)

    d10, d5 = tuple(range(10)), tuple(range(5))
    add("digits-10", "sklearn digits, all 10 classes, 8x8 upsampled to 28x28; 70/30 split per class",
        10, *_digits_counts(d10), "digits", _digits_task("digits-10", d10))
    add("digits-5", "sklearn digits 0-4 only (5 classes), same split as digits-10",
        5, *_digits_counts(d5), "digits", _digits_task("digits-5", d5))
    nte10 = 10 * FASHION_TEST_PER_CLASS
    add("fashion-lowdata", "Fashion-MNIST, 10 classes, 50 training labels per class",
        10, 500, nte10, "fashion-mnist", _fashion_task("fashion-lowdata", groups=_FINE, class_names=_F10, n_train_per=50, n_test_per=FASHION_TEST_PER_CLASS))
    add("fashion-coarse", "Fashion-MNIST regrouped into 4 classes: tops / trousers-dresses / footwear / bags",
        4, 1000, 4 * FASHION_TEST_PER_CLASS_4, "fashion-mnist", _fashion_task("fashion-coarse", groups=tuple(g for _, g in COARSE_GROUPS), class_names=tuple(n for n, _ in COARSE_GROUPS), n_train_per=250, n_test_per=FASHION_TEST_PER_CLASS_4))
    add("fashion-rotated", "Fashion-MNIST, 10 classes, every image rotated 90 degrees (domain shift); 100 per class",
        10, 1000, nte10, "fashion-mnist", _fashion_task("fashion-rotated", groups=_FINE, class_names=_F10, n_train_per=100, n_test_per=FASHION_TEST_PER_CLASS, transform=_rotate, transform_desc="rot90 counter-clockwise"))
    add("fashion-inverted", "Fashion-MNIST, 10 classes, inverted intensities (1 - x); 100 per class",
        10, 1000, nte10, "fashion-mnist", _fashion_task("fashion-inverted", groups=_FINE, class_names=_F10, n_train_per=100, n_test_per=FASHION_TEST_PER_CLASS, transform=_invert, transform_desc="1 - x"))
    add("fashion-noisy", f"Fashion-MNIST, 10 classes, Gaussian pixel noise (std {NOISE_STD}, fixed seed, clipped); 100 per class",
        10, 1000, nte10, "fashion-mnist", _fashion_task("fashion-noisy", groups=_FINE, class_names=_F10, n_train_per=100, n_test_per=FASHION_TEST_PER_CLASS, transform=_noisy, transform_desc=f"x + N(0, {NOISE_STD}^2), clipped to [0, 1]"))
    # v2 tasks (docs/zoo.md "The v2 zoo"): one property each
    add("fashion-blur", f"Fashion-MNIST, 10 classes, Gaussian blur (sigma {BLUR_SIGMA} px); 100 per class",
        10, 1000, nte10, "fashion-mnist", _fashion_task("fashion-blur", groups=_FINE, class_names=_F10, n_train_per=100, n_test_per=FASHION_TEST_PER_CLASS, transform=_blur, transform_desc=f"scipy.ndimage.gaussian_filter sigma {BLUR_SIGMA}, zero padding"))
    add("fashion-occluded", f"Fashion-MNIST, 10 classes, a {OCCLUSION_SIZE}x{OCCLUSION_SIZE} black square at a random place in every image; 100 per class",
        10, 1000, nte10, "fashion-mnist", _fashion_task("fashion-occluded", groups=_FINE, class_names=_F10, n_train_per=100, n_test_per=FASHION_TEST_PER_CLASS, transform=_occlude, transform_desc=f"{OCCLUSION_SIZE}x{OCCLUSION_SIZE} zero square, seeded uniform position"))
    add("fashion-fewshot", "Fashion-MNIST, 10 classes, 10 training labels per class (few-shot)",
        10, 100, nte10, "fashion-mnist", _fashion_task("fashion-fewshot", groups=_FINE, class_names=_F10, n_train_per=10, n_test_per=FASHION_TEST_PER_CLASS))
    add("fashion-tops", "Fashion-MNIST class subset: the 4 upper-body classes (T-shirt/top, Pullover, Coat, Shirt); 250 per class",
        4, 1000, 4 * FASHION_TEST_PER_CLASS_4, "fashion-mnist", _fashion_task("fashion-tops", groups=((0,), (2,), (4,), (6,)), class_names=tuple(_F10[c] for c in (0, 2, 4, 6)), n_train_per=250, n_test_per=FASHION_TEST_PER_CLASS_4))
    # benchmark v3: a task whose images keep their pixels but lose their spatial layout
    add("fashion-permuted", "Fashion-MNIST, 10 classes, every image's pixels moved by one fixed permutation (no spatial structure); 100 per class",
        10, 1000, nte10, "fashion-mnist", _fashion_task("fashion-permuted", groups=_FINE, class_names=_F10, n_train_per=100, n_test_per=FASHION_TEST_PER_CLASS, transform=_permute, transform_desc="pixels permuted (pedjax.data._arrays.permute_pixels, one fixed permutation)"))
    dd = DIGITS_DEGRADED
    add("digits-degraded", f"sklearn digits, 10 classes, a {dd['occlusion']}x{dd['occlusion']} black square + Gaussian noise (std {dd['noise_std']}); 50/50 split per class",
        10, *_digits_counts(d10, dd["test_fraction"]), "digits",
        _digits_task("digits-degraded", d10, test_fraction=dd["test_fraction"], transform=_degrade_digits,
                     transform_desc=f"{dd['occlusion']}x{dd['occlusion']} zero square + N(0, {dd['noise_std']}^2), clipped"))
    # benchmark v3: new target domains (docs/data.md "Glyph and emoji tasks"); sizes from the frozen lists
    for g in glyphs.GLYPH_SPECS:
        ntr, nte = glyphs.counts(g)
        t[g.name] = Task(g.name, f"glyphs: {g.description}", len(g.classes), ntr, nte, "debian-fonts",
                         functools.partial(glyphs.build, g), domain="glyphs", missing=glyphs.missing)
    for e in emoji.EMOJI_SPECS:
        ntr, nte = emoji.counts(e)
        t[e.name] = Task(e.name, f"emoji: {e.description}", len(emoji.GROUPS), ntr, nte, "debian-emoji",
                         functools.partial(emoji.build, e), domain="emoji", missing=emoji.missing)
    return t


TASKS: dict[str, Task] = _registry()


def task_data_sha1(name: str, fashion_root: str | os.PathLike | None = None) -> str:
    """The content hash of a registered task's arrays (train and test images and labels).

    The ``data_sha1`` of :func:`pedjax.models.finetune.finetune`'s provenance: what a
    ground-truth result keys on, so a changed task definition invalidates it.

    Args:
      name: a registered task (or ``tfds:NAME`` / ``folder:PATH``: :func:`load_task`).
      fashion_root: folder of the Fashion-MNIST IDX files.

    Returns:
      The SHA-1 hex digest.

    Raises:
      ValueError: an unknown task.
      FileNotFoundError: the task's data is not installed.
    """
    return _data_sha1_cached(name, None if fashion_root is None else str(fashion_root))


@functools.lru_cache(maxsize=32)
def _data_sha1_cached(name: str, root: str | None) -> str:
    d = load_task(name, fashion_root=root)
    return sha1_arrays(d.x_train, d.y_train, d.x_test, d.y_test)


def task_names() -> list[str]:
    """Registered task names.

    Returns:
      The names, sorted.
    """
    return sorted(TASKS)


def task_domains() -> dict[str, list[str]]:
    """The registry's tasks grouped by domain (leave-one-domain-out's groups).

    Returns:
      ``{domain: [task names, sorted]}``.
    """
    out: dict[str, list[str]] = {}
    for name in task_names():
        out.setdefault(TASKS[name].domain, []).append(name)
    return out


def get_task(name: str) -> Task:
    """The registered task ``name`` (its metadata; nothing is loaded).

    Args:
      name: a registered task name.

    Returns:
      The :class:`Task`.

    Raises:
      ValueError: an unknown name (the message lists the known ones).
    """
    if name not in TASKS:
        raise ValueError(
            f"task: unknown task {name!r}; known tasks: {', '.join(task_names())} "
            "(or tfds:NAME for a locally prepared TFDS dataset, folder:PATH for root/split/label/*.png)"
        )
    return TASKS[name]


def load_task(name: str, *, fashion_root: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> TaskData:
    """Load a task by name.

    Args:
      name: a registered name (``pedjax tasks``), ``tfds:NAME`` (a locally prepared TFDS
        dataset) or ``folder:PATH`` (``PATH/split/label/*.png``).
      fashion_root: folder of the Fashion-MNIST IDX files, for Fashion tasks.
      data_dir: TFDS data folder, for ``tfds:NAME``.

    Returns:
      The :class:`~pedjax.data.TaskData`.

    Raises:
      ValueError: ``name`` is not a string or not a registered task.
      FileNotFoundError: the task's data is not installed (or ``folder:PATH`` is not a folder).
      ImportError: ``tfds:``/``folder:`` without tensorflow-datasets installed.
    """
    if not isinstance(name, str):
        raise ValueError(f"task: expected a task name string, got {type(name).__name__}")
    if name.startswith("tfds:"):
        from .tfds_local import load_tfds

        return load_tfds(name[5:], data_dir=data_dir)
    if name.startswith("folder:"):
        from .tfds_local import load_image_folder

        return load_image_folder(name[7:])
    return get_task(name).load(fashion_root)


def source_indices() -> np.ndarray:
    """Indices into Fashion-MNIST's official *train* set that form the zoo's source split.

    Returns:
      ``np.arange(0, 50000)`` (:data:`SOURCE_RANGE`).
    """
    return np.arange(*SOURCE_RANGE)


def load_source(fashion_root: str | os.PathLike | None = None, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The zoo pretraining source split: Fashion-MNIST train[0:50000], 10 classes.

    Never overlaps a task's test (or train) split.

    Args:
      fashion_root: folder of the Fashion-MNIST IDX files; default ``$PEDJAX_FASHION_MNIST``
        or the Debian path.
      n: keep the first ``n`` images (positive); ``None``: all 50 000.

    Returns:
      ``(images float32 [N, 28, 28, 1] in [0, 1], labels int32 [N])``.

    Raises:
      ValueError: ``n`` ≤ 0, or corrupt files.
      FileNotFoundError: Fashion-MNIST is not installed.
    """
    x, y = fashion.load_fashion_mnist("train", fashion_root)
    idx = source_indices()
    if n is not None:
        if n <= 0:
            raise ValueError(f"n: must be positive, got {n}")
        idx = idx[:n]
    return _to_float(x[idx]), y[idx].astype(np.int32)
