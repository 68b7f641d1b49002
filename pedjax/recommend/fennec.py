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
informs its ranking); factorisations are cached per excluded set.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .archi2vec import meta_scores
from .factorize import Factors, select
from .hybrid import META_WEIGHT, combine
from .proxy import latent_vector, neighbour_weights
from .history import History


@dataclass
class Recommender:
    """See the module docstring. ``reps``: ``{history task: proxy representation}`` (may be empty:
    then every past task weighs alike, as on the published tables without images)."""

    history: History
    reps: Mapping[str, np.ndarray] = field(default_factory=dict)
    meta: Mapping[str, dict] | None = None
    nonneg: bool = True
    k: int = 2
    meta_weight: float = META_WEIGHT
    seed: int = 0
    steps: int = 1500
    _cache: dict = field(default_factory=dict, repr=False)

    def factors(self, exclude: Sequence[str] = ()) -> Factors:
        key = frozenset(exclude)
        if key not in self._cache:
            self._cache[key] = select(self.history.without(*key), nonneg=self.nonneg, seed=self.seed,
                                                steps=self.steps)
        return self._cache[key]

    def neighbours(self, rep, exclude: Sequence[str] = ()) -> dict[str, float]:
        past = [t for t in self.history.tasks if t not in set(exclude)]
        if rep is None or not self.reps:
            return {t: 1.0 / len(past) for t in past}
        missing = [t for t in past if t not in self.reps]
        if missing:
            raise ValueError(f"reps: no proxy representation of history task(s) {missing}")
        return neighbour_weights(rep, {t: self.reps[t] for t in past}, self.k)

    def scores(self, rep=None, exclude: Sequence[str] = ()) -> dict[str, dict[str, float]]:
        """``{component: {model: score}}`` for a new task with proxy representation ``rep``
        (``None``: uniform weights over the past tasks), the history without ``exclude``."""
        f = self.factors(exclude)
        w = self.neighbours(rep, exclude)
        out = {"history": self.history.mean_rank(exclude), "transfer": f.scores(latent_vector(w, f))}
        if self.meta is not None:
            out["meta"] = meta_scores(self.meta, self.history.without(*exclude))
            out["fennec"] = combine(out, {"transfer": 1.0, "meta": self.meta_weight})
        else:
            out["fennec"] = dict(out["transfer"])
        self.last_neighbours = w
        return out
