"""Task embedding through one fixed proxy model (Fennec's second stage).

Fennec maps a new task into the history's latent space without labels and without a forward pass
of each candidate: one fixed proxy (CLIP in the paper) reads the task's images, and the new
task's latent vector is built from its similarity to past tasks. CLIP is out of reach here (no
network access to its weights, and it does not read 28×28 grey images well); pedjax's proxy is one
zoo member (any; the default is chosen in docs/recommend.md) or any Flax backbone with its
parameters.

* **Representation** (:func:`task_representation`): the proxy's features of up to
  ``max_images`` of the task's images (a seeded subset; no labels), standardised with the proxy's
  source statistics, summarised by their per-dimension mean and standard deviation: a vector
  [2·D]. Cost: one forward pass of the proxy over those images.
* **Similarity** (:func:`neighbour_weights`): Euclidean distance between representations (divided
  by √(2D)); the ``k`` nearest past tasks get weights ∝ exp(−d/τ) with τ the median of those k
  distances (a scale-free softmax), summing to 1.
* **Latent vector**: Σ_k w_k v_k over the neighbours' latent task vectors (:mod:`.factorize`);
  a model's transfer score is then u_mᵀ v_new — O(models) arithmetic.
* **Novelty** (:func:`novelty`): how far the new task lies from the history, in units of the
  history's own spacing — its distance to the nearest past task divided by the largest distance
  from a past task to its nearest other past task. Above 1 the task is further from every past
  task than any past task is from its nearest peer: the history has not seen its like.
  ``pedjax recommend`` reports it; switching the hybrid's weight on it was measured and not
  adopted (docs/recommend.md, "Leave-one-domain-out").
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class Backbone(Protocol):
    """What a proxy needs of its member: ``features(x) -> [N, D]`` (a :class:`pedjax.zoo.ZooMember`;
    ``source_mean``/``source_std`` are read when present)."""

    def features(self, x: Any) -> Any: ...


@dataclass(frozen=True)
class Proxy:
    """A fixed proxy backbone: ``features(x) -> [N, D]`` plus its source statistics (or ``None``).

    Attributes:
      name: the proxy's name (for reports).
      member: the backbone: a :class:`pedjax.zoo.ZooMember`, or anything with ``features(x)``
        (and optionally ``source_mean``/``source_std`` [D], which standardise its features).
    """

    name: str
    member: Backbone

    @classmethod
    def from_zoo(cls, zoo, name: str) -> Proxy:
        """The member ``name`` of ``zoo`` as a proxy.

        Args:
          zoo: a loaded :class:`~pedjax.zoo.Zoo`.
          name: the member's name.

        Returns:
          The :class:`Proxy`.

        Raises:
          KeyError: ``zoo`` has no member ``name``.
        """
        return cls(name, zoo[name])


def _subset(x: np.ndarray, max_images: int | None, seed: int) -> np.ndarray:
    if max_images is None or len(x) <= max_images:
        return x
    idx = np.sort(np.random.default_rng(seed).choice(len(x), size=max_images, replace=False))
    return x[idx]


def task_representation(proxy: Proxy, images, *, max_images: int | None = 1000, seed: int = 0) -> np.ndarray:
    """The proxy's representation of a task from its images (no labels).

    Args:
      proxy: the :class:`Proxy`.
      images: the task's images ``[N, H, W, C]``, as the proxy's backbone reads them.
      max_images: read at most this many images (a seeded subset, kept in order); ``None``:
        all of them.
      seed: seed of the subset.

    Returns:
      ``[2·D]`` float64: the per-dimension mean, then standard deviation, of the proxy's
      features, standardised with its source statistics when it has them (std floored at 1e-3).

    Raises:
      ValueError: ``images`` is empty.
    """
    x = _subset(np.asarray(images), max_images, seed)
    if len(x) == 0:
        raise ValueError("images: the task has no images")
    f = np.asarray(proxy.member.features(x), np.float64)
    mu = getattr(proxy.member, "source_mean", None)
    sd = getattr(proxy.member, "source_std", None)
    if mu is not None and sd is not None:
        f = (f - np.asarray(mu)) / np.maximum(np.asarray(sd), 1e-3)
    return np.concatenate([f.mean(0), f.std(0)])


def neighbour_weights(rep, past: Mapping[str, np.ndarray], k: int = 2) -> dict[str, float]:
    """Weights of the ``k`` past tasks nearest to a representation (the module docstring's rule).

    Args:
      rep: the new task's representation [2·D] (:func:`task_representation`).
      past: ``{past task: representation [2·D]}``.
      k: number of neighbours (clipped to 1 … ``len(past)``).

    Returns:
      ``{past task: weight}`` over the ``k`` nearest, nearest first, weights summing to 1.

    Raises:
      ValueError: ``past`` is empty.
    """
    if not past:
        raise ValueError("past: no past tasks to compare with")
    names = list(past)
    d = _distances(rep, past)
    k = max(1, min(int(k), len(names)))
    order = np.argsort(d, kind="stable")[:k]
    dk = d[order]
    tau = float(np.median(dk))
    w = np.exp(-(dk - dk.min()) / tau) if tau > 0 else np.ones(k)
    w /= w.sum()
    return {names[i]: float(wi) for i, wi in zip(order, w, strict=True)}


def _distances(rep, past: Mapping[str, np.ndarray]) -> np.ndarray:
    rep = np.asarray(rep, np.float64)
    return np.array([np.linalg.norm(rep - np.asarray(past[t], np.float64)) / np.sqrt(rep.size) for t in past])


def novelty(rep, past: Mapping[str, np.ndarray]) -> float:
    """How far a task lies from the history, in units of the history's own spacing (module docstring).

    Args:
      rep: the new task's representation [2·D] (:func:`task_representation`).
      past: ``{past task: representation [2·D]}``, at least 2.

    Returns:
      ``min_t d(rep, past[t]) / max_s min_{t ≠ s} d(past[s], past[t])`` (d as in
      :func:`neighbour_weights`): above 1, the task is further from every past task than any past
      task is from its nearest peer. ``inf`` when the past tasks all coincide and the new task
      does not; ``0.0`` when it coincides with them too.

    Raises:
      ValueError: fewer than 2 past tasks.
    """
    if len(past) < 2:
        raise ValueError(f"past: at least 2 past tasks to measure the history's spacing, got {len(past)}")
    nearest = float(_distances(rep, past).min())
    names = list(past)
    spacing = max(float(_distances(past[s], {t: past[t] for t in names if t != s}).min()) for s in names)
    if spacing == 0.0:
        return 0.0 if nearest == 0.0 else float("inf")
    return nearest / spacing


def latent_vector(weights: Mapping[str, float], factors) -> np.ndarray:
    """The new task's latent vector Σ_k w_k v_k.

    Args:
      weights: ``{past task: weight}`` (:func:`neighbour_weights`).
      factors: the history's :class:`~pedjax.recommend.factorize.Factors` (holding every task of
        ``weights``).

    Returns:
      The latent vector [r].
    """
    return sum(w * factors.task_vector(t) for t, w in weights.items())


def task_images(task: str, split: str = "train", fashion_root=None, data_dir=None) -> np.ndarray:
    """The images of a task (labels are not returned).

    Args:
      task: a registered task (``pedjax tasks``), ``tfds:NAME`` or ``folder:PATH``.
      split: ``"train"``, else the test split.
      fashion_root: folder of the Fashion-MNIST files (default: :func:`pedjax.data.load_fashion_mnist`'s).
      data_dir: TFDS data folder for ``tfds:NAME``.

    Returns:
      The images ``[N, H, W, C]`` float32.

    Raises:
      ValueError: an unknown task (:func:`pedjax.data.load_task`).
      FileNotFoundError: the task's data is not installed.
    """
    from ..data import load_task

    d = load_task(task, fashion_root=fashion_root, data_dir=data_dir)
    return d.x_train if split == "train" else d.x_test


def representations(proxy: Proxy, tasks: Sequence[str], **kw) -> dict[str, np.ndarray]:
    """:func:`task_representation` of every named task's training images.

    Args:
      proxy: the :class:`Proxy`.
      tasks: task names (:func:`task_images`).
      **kw: ``max_images`` and ``seed`` of :func:`task_representation`.

    Returns:
      ``{task: representation [2·D]}``.

    Raises:
      ValueError: an unknown task, or one without images.
      FileNotFoundError: a task's data is not installed.
    """
    return {t: task_representation(proxy, task_images(t), **kw) for t in tasks}
