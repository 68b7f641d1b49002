"""The Fennec-style recommender: history → latent factors → proxy task embedding → scores.

:class:`Recommender` holds a :class:`~pedjax.recommend.history.History`, the proxy's
representations of the history's tasks (computed once, offline), and optionally each model's
meta-features (:mod:`.archi2vec`). :meth:`Recommender.scores` ranks the models for a new task from
its proxy representation alone:

* ``history``  — history mean rank over the history's tasks (the baseline; no proxy);
* ``transfer`` — u_mᵀ v_new with v_new the similarity-weighted latent vector of the ``k`` nearest
  past tasks (:mod:`.proxy`) in the factorisation of the history (:mod:`.factorize`);
* ``meta``     — the archi2vec meta score (ridge on the history);
* ``fennec``   — z(transfer) + β·z(meta) (:mod:`.hybrid`).

``exclude`` leaves tasks out of the history (leave-one-task-out: a task's own ground truth never
informs its ranking).

A :class:`Recommender` is immutable (a frozen dataclass holding read-only copies of ``reps`` and
``meta``): to change ``seed``, ``steps``, … make a new one (``dataclasses.replace``). Its one piece
of state is a cache of fitted factorisations, keyed by everything that decides them: the content
of the history left after ``exclude`` (a hash of its values, models and tasks), ``nonneg``,
``seed`` and ``steps``. :meth:`Recommender.scores` returns the scores *and* the neighbour weights
it used (:class:`Scores`); nothing is left on the instance.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from ..util import sha1_arrays
from .archi2vec import meta_scores
from .factorize import Factors, select
from .history import History
from .hybrid import META_WEIGHT, combine
from .proxy import latent_vector, neighbour_weights


class Scores(NamedTuple):
    """What :meth:`Recommender.scores` returns.

    Attributes:
      components: ``{component: {model: score}}`` (``history``, ``transfer``, ``meta`` with
        meta-features, ``fennec``).
      neighbours: ``{past task: weight}``, the weights that built the task's latent vector.
    """

    components: dict[str, dict[str, float]]
    neighbours: dict[str, float]


def _readonly(a) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Recommender:
    """The Fennec-style recommender (the module docstring describes the scores).

    Attributes:
      history: the :class:`~pedjax.recommend.history.History` it learns from.
      reps: ``{history task: proxy representation [2·D]}``
        (:func:`~pedjax.recommend.proxy.task_representation`); may be empty: then every past
        task weighs alike, as on the published tables without images. Stored as read-only copies.
      meta: ``{model: meta-features}`` (:func:`~pedjax.recommend.archi2vec.zoo_meta`) for the
        meta score, or ``None`` (no meta score; ``fennec`` is then ``transfer``).
      nonneg: non-negative factorisation (Fennec's) or plain low-rank.
      k: number of nearest past tasks that build a new task's latent vector.
      meta_weight: β, the meta score's weight in the Fennec score.
      seed: seed of the factorisation.
      steps: Adam steps per factorisation fit.
      _cache: fitted factorisations by history content and settings (internal, not an argument).
      _lock: guards ``_cache`` across threads (internal, not an argument).
    """

    history: History
    reps: Mapping[str, np.ndarray] = field(default_factory=dict)
    meta: Mapping[str, dict] | None = None
    nonneg: bool = True
    k: int = 2
    meta_weight: float = META_WEIGHT
    seed: int = 0
    steps: int = 1500
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self):
        # read-only copies: a caller changing its own dict or arrays later cannot change the results
        object.__setattr__(self, "reps", MappingProxyType({t: _readonly(r) for t, r in self.reps.items()}))
        if self.meta is not None:
            object.__setattr__(self, "meta", MappingProxyType({m: dict(v) for m, v in self.meta.items()}))

    def __reduce__(self):  # picklable (the lock and the read-only views are not): rebuilt from the fields
        meta = None if self.meta is None else dict(self.meta)
        return (type(self), (self.history, dict(self.reps), meta, self.nonneg, self.k, self.meta_weight, self.seed, self.steps))

    def _key(self, history: History) -> tuple:
        return (sha1_arrays(history.values), history.models, history.tasks, self.nonneg, self.seed, self.steps)

    def factors(self, exclude: Sequence[str] = ()) -> Factors:
        """The factorisation of the history without ``exclude`` (:func:`~pedjax.recommend.factorize.select`).

        Fitted once per distinct history content, ``nonneg``, ``seed`` and ``steps``, then cached.

        Args:
          exclude: task names left out of the history.

        Returns:
          The :class:`~pedjax.recommend.factorize.Factors`.

        Raises:
          ValueError: no observed entry is left.
        """
        h = self.history.without(*exclude)
        key = self._key(h)
        with self._lock:
            got = self._cache.get(key)
        if got is None:
            got = select(h, nonneg=self.nonneg, seed=self.seed, steps=self.steps)
            with self._lock:
                got = self._cache.setdefault(key, got)
        return got

    def neighbours(self, rep, exclude: Sequence[str] = ()) -> dict[str, float]:
        """The ``k`` past tasks nearest to ``rep`` and their weights (:func:`~pedjax.recommend.proxy.neighbour_weights`).

        Args:
          rep: the new task's proxy representation, or ``None``.
          exclude: task names left out of the past tasks.

        Returns:
          ``{past task: weight}``; uniform weights over every past task when ``rep`` is
          ``None`` or :attr:`reps` is empty.

        Raises:
          ValueError: a past task has no representation in :attr:`reps`.
        """
        past = [t for t in self.history.tasks if t not in set(exclude)]
        if rep is None or not self.reps:
            return {t: 1.0 / len(past) for t in past}
        missing = [t for t in past if t not in self.reps]
        if missing:
            raise ValueError(f"reps: no proxy representation of history task(s) {missing}")
        return neighbour_weights(rep, {t: self.reps[t] for t in past}, self.k)

    def scores(self, rep=None, exclude: Sequence[str] = ()) -> Scores:
        """Rank the models for a new task from its proxy representation.

        Args:
          rep: the new task's proxy representation; ``None``: uniform weights over the past tasks.
          exclude: task names left out of the history (leave-one-task-out).

        Returns:
          :class:`Scores`: ``components`` ``{component: {model: score}}`` and the
          ``neighbours`` weights used.

        Raises:
          ValueError: a past task has no representation, or no observed entry is left.
        """
        f = self.factors(exclude)
        w = self.neighbours(rep, exclude)
        out = {"history": self.history.mean_rank(exclude), "transfer": f.scores(latent_vector(w, f))}
        if self.meta is not None:
            out["meta"] = meta_scores(self.meta, self.history.without(*exclude))
            out["fennec"] = combine(out, {"transfer": 1.0, "meta": self.meta_weight})
        else:
            out["fennec"] = dict(out["transfer"])
        return Scores(out, dict(w))
