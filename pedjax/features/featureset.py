"""One type for "a zoo's features on one task": :class:`FeatureSet`.

Everything that scores or judges a zoo takes one: extraction from a model zoo
(:func:`pedjax.features.extract_features`), the published results layout and ``.npz`` files
(:meth:`pedjax.features.FeatureStore.feature_set`), the digits stand-in zoo
(:func:`pedjax.features.digits_feature_set`), scoring (:func:`pedjax.scoring.score_set`), the
benchmark loop (:func:`pedjax.rank.benchmark`) and meta-learning (:mod:`pedjax.meta`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: what a metric reads (``pedjax.metrics.Metric.input``) → the FeatureSet field that provides it
INPUT_KINDS = ("features", "probs", "labels")


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Features of M models on one task, with what scoring and judging need beside them.

    Attributes:
      features: ``{model: [N, D_m]}`` target features (any float dtype; widths may differ).
      labels: ``[N]`` target labels (any integers).
      source_stats: ``{model: (mean [D_m], std [D_m])}`` of each model's features on its source
        set (PED rescales with them), or ``None`` (PED then uses the target's own statistics).
      source_probs: ``{model: [N, C_s]}`` source-class probabilities (LEEP; NCE takes their
        argmax), or ``None``.
      truth: ``{model: fine-tuned score}`` ground truth, or ``None``; models without an entry are
        left out of judging (:meth:`judged`).
      task: the task's name, for reports.
      split: the split's name, for reports.
      info: ``{model: {...}}`` per-model facts for reports (architecture, method, parameters, …).
      seconds: wall time spent producing the set (extraction, PED).

    Raises:
      ValueError: ``features`` is empty or not a mapping, a model's features are not ``[N, D]``
        with N the labels' length, or ``source_stats``/``source_probs`` lacks a model.
    """

    features: Mapping[str, Any]
    labels: Any
    source_stats: Mapping[str, tuple[Any, Any]] | None = None
    source_probs: Mapping[str, Any] | None = None
    truth: Mapping[str, float] | None = None
    task: str = "task"
    split: str = "train"
    info: Mapping[str, dict] = field(default_factory=dict)
    seconds: float = 0.0

    def __post_init__(self):
        if not isinstance(self.features, Mapping) or not self.features:
            raise ValueError("features: a FeatureSet needs a non-empty {model: [N, D]} mapping")
        n = np.shape(self.labels)[0] if np.ndim(self.labels) else -1
        for m, X in self.features.items():
            if np.ndim(X) != 2 or np.shape(X)[0] != n:
                raise ValueError(f"features[{m!r}]: expected [N={n}, D] matching the labels, got shape {np.shape(X)}")
        for name, table in (("source_stats", self.source_stats), ("source_probs", self.source_probs)):
            if table is not None:
                missing = [m for m in self.features if m not in table]
                if missing:
                    raise ValueError(f"{name}: no entry for model(s) {missing}; give one per model or None")

    @property
    def models(self) -> list[str]:
        """Model names, in the order of :attr:`features`."""
        return list(self.features)

    @property
    def n_samples(self) -> int:
        """The number of samples N."""
        return int(np.shape(self.labels)[0])

    def judged(self) -> list[str]:
        """The models that have a ground-truth value (none without :attr:`truth`)."""
        return [m for m in self.features if self.truth is not None and m in self.truth]

    def dims(self) -> dict[str, int]:
        """``{model: D_m}``, each model's feature width."""
        return {m: int(np.shape(X)[1]) for m, X in self.features.items()}

    def inputs(self, kind: str) -> dict[str, Any]:
        """What a metric of input ``kind`` reads.

        Args:
          kind: one of :data:`INPUT_KINDS`: ``"features"``, ``"probs"`` (the source
            probabilities) or ``"labels"`` (their argmax, NCE's source labels).

        Returns:
          ``{model: array}``.

        Raises:
          ValueError: an unknown ``kind``, or ``"probs"``/``"labels"`` without
            :attr:`source_probs`.
        """
        if kind == "features":
            return dict(self.features)
        if kind not in INPUT_KINDS:
            raise ValueError(f"kind: one of {list(INPUT_KINDS)}, got {kind!r}")
        if self.source_probs is None:
            raise ValueError(f"source_probs: this FeatureSet ({self.task}) has no source-class probabilities, "
                             f"which metrics of input {kind!r} (LEEP, NCE) need")
        if kind == "probs":
            return dict(self.source_probs)
        return {m: np.argmax(np.asarray(p), axis=1) for m, p in self.source_probs.items()}

    def replace(self, **changes) -> FeatureSet:
        """A copy with the given fields changed (``dataclasses.replace``; validated again)."""
        return dataclasses.replace(self, **changes)

    def only(self, models) -> FeatureSet:
        """The same samples for some of the models (in the order given).

        Args:
          models: model names of :attr:`models`, at least one.

        Returns:
          The smaller :class:`FeatureSet` (features, source statistics and probabilities, ground
          truth and info of those models).

        Raises:
          ValueError: no model, or a name that is not one of :attr:`models`.
        """
        models = list(models)
        unknown = [m for m in models if m not in self.features]
        if not models or unknown:
            raise ValueError(f"models: expected names among {self.models}, got {models}")

        def pick(table):
            return None if table is None else {m: table[m] for m in models if m in table}

        return self.replace(features={m: self.features[m] for m in models}, source_stats=pick(self.source_stats),
                            source_probs=pick(self.source_probs), truth=pick(self.truth), info=pick(self.info) or {})

    def select(self, mask, task: str | None = None, truth: Mapping[str, float] | None = None) -> FeatureSet:
        """The samples where a boolean mask holds (source statistics unchanged).

        Args:
          mask: boolean ``[N]``.
          task: a new task name (default: unchanged).
          truth: a new ground truth (default: unchanged).

        Returns:
          The smaller :class:`FeatureSet` (features, labels and source probabilities masked).
        """
        mask = np.asarray(mask, bool)
        return self.replace(
            features={m: np.asarray(X)[mask] for m, X in self.features.items()},
            labels=np.asarray(self.labels)[mask],
            source_probs=None if self.source_probs is None else {m: np.asarray(p)[mask] for m, p in self.source_probs.items()},
            truth=self.truth if truth is None else truth,
            task=self.task if task is None else task,
        )
