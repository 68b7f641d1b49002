"""Float32 fidelity: does a metric rank a zoo in float32 as it does in float64? (issue 21)

One comparison, shared by the test (``tests/test_float32_fidelity.py``), the experiment that
writes docs/precision.md (``experiments/float32_fidelity.py``) and the device benchmark
(``experiments/bench_device.py``): every feature set is scored by :func:`pedjax.rank.benchmark`
(every metric static and after each PED configuration; PED runs once per configuration) twice —
in float64 and in float32, on the *same* input features — and per variant (``metric`` or
``metric+SUFFIX``) and set :func:`compare` reports

* ``tau``: the weighted Kendall τ between the two rankings of the zoo,
  ``scipy.stats.weightedtau(s64, s32)[0]`` (:func:`pedjax.rank.weighted_tau`); scores that are not
  finite (−inf for a degenerate model, NaN) rank last, tied, as everywhere in pedjax;
* ``worst_rel``: the worst relative score difference ``|s32 − s64| / |s64|`` over the models
  whose float64 score is finite (0 where both are 0; ``inf`` where s64 = 0 ≠ s32);
* ``worst_spread``: the worst ``|s32 − s64|`` over the spread ``max − min`` of the float64 scores
  of the zoo — what a ranking can tolerate (a score near 0 makes ``worst_rel`` large while
  nothing moves in the ranking);
* ``nonfinite``: how many models have a non-finite float32 score where the float64 one is finite
  (a variant that raised in float32 counts every such model);
* ``tied``: the float64 scores themselves do not separate the models beyond float32 resolution
  (spread ≤ :data:`TIE_LEVEL` of their magnitude — e.g. H-score is exactly C − 1 for every model
  when D ≥ N): their order is rounding, and the τ target does not apply;
* ``underflow``: float64 scores below float32's range (0 < |s| < :data:`TINY32`) that the float32
  run returns as 0; they are left out of ``worst_rel``, but not out of τ. (No registered metric
  has any since GBC's score is finished in float64 from its log, ``Metric.finish``; a float32 run
  that returns such a score nonzero is compared like any other.)

For a metric defined over a whole zoo (``Metric.zoo``: NCTI min–max scales its terms over the
models, so one model scores exactly 0) the relative difference is undefined; its bound applies to
``worst_spread`` instead (:func:`bounded_difference`).

The targets (issue 21; ../shared/DESIGN.md "Precision on accelerators") are checked by
:meth:`FidelityResult.failures`: ``nonfinite == 0``, ``tau >= TAU_TARGET`` and ``worst_rel``
within the metric's documented bound :data:`REL_BOUNDS` (docs/precision.md).

Precision scopes (:func:`computing_in`): each run sits in a ``pedjax.precision(name)`` block;
the float32 run also turns JAX's x64 switch off for the calling thread, so that nothing in it,
inside or outside the entry points, computes in float64 in a process that turned x64 on (the
command line, the test suite).

:func:`synthetic_set` makes the synthetic zoos the targets are stated on (published scale
12 × 5000 × 2048 with C = 100, D ≫ N, near-duplicate dimensions) at any size.

Size: the comparison, its result types and the synthetic zoos it is stated on are one unit, shared
by a test and two experiments; the documented arguments of the public functions make up much of it.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from .. import _precision
from ..features import FeatureSet
from ..metrics import REGISTRY, names
from ..physics import PEDConfig
from ._benchmark import _ranked_last, benchmark, variant_name
from .measures import weighted_tau

#: the precisions compared, reference first
PRECISIONS = ("float64", "float32")
#: issue 21: weighted τ between the float32 and the float64 ranking, per metric ± PED and set
TAU_TARGET = 0.99
#: issue 21: the worst relative score difference float32 vs float64 where the metric is well conditioned
REL_TARGET = 1e-3
#: float64 scores whose spread over the zoo is at most this fraction of their magnitude do not rank
#: the zoo beyond what float32 (eps ≈ 1.2e-7) resolves: the τ target does not apply (``tied``)
TIE_LEVEL = 1e-6
#: float32's smallest normal number: float64 scores of smaller magnitude that float32 returns as 0 count as ``underflow``
TINY32 = float(np.finfo(np.float32).tiny)
#: documented worst relative score difference per metric (± PED), with the reason where it
#: exceeds :data:`REL_TARGET` (docs/precision.md prints this table; the test asserts it)
REL_BOUNDS: dict[str, tuple[float, str]] = {
    "logme": (2e-3, "after PED on offset near-duplicate features only (static ≤ 3e-7; every shipped set and the "
                    "other synthetic sets ≤ 1e-3): LogME reads the uncentred features' SVD, where the offset makes "
                    "σ_max = 1.2e4 and the smallest σ = 0.056 (near-duplicate 2000 × 1024 + PED, model_07): a "
                    "backward-stable float32 SVD resolves σ to ~eps·σ_max = 7e-4, 1 % of σ_min (LAPACK's sgesdd, "
                    "JAX's CPU default: 2.1 % off; sgesvd 6e-5 but 23× slower at 5000 × 2048). float64 LogME of "
                    "the same float32 PED output is within 1.5e-6 of float64 throughout, so the 1.5e-3 is the "
                    "float32 SVD, not the input (pedjax/metrics/_logme.py)"),
    "sfda": (REL_TARGET, ""),
    "gbc": (REL_TARGET, "also below float32's range: GBC = −Σ exp(−BD) falls below 1.2e-38 once every class pair "
                        "is more than ~87 apart (D ≫ N); the core computes log(−GBC) and the score is finished in "
                        "float64 (`Metric.finish`)"),
    "hscore": (REL_TARGET, ""),
    "nleep": (5e-2, "after PED (static ≤ 8e-5 on the shipped sets; 4.0e-4 on one model of the published-scale set, "
                    "synthetic-published model_08: at Lloyd's second assignment one sample's two nearest centres "
                    "are 2.6e-7 apart relative to the distance, below what float32 PCA scores resolve, so 2 of "
                    "5 000 starting labels differ; the other 11 models ≤ 4e-7): NLEEP's seeded k-means++ draws and "
                    "Lloyd's assignments are a discontinuous "
                    "function of the features, and the float32 and float64 PED outputs differ by ~1e-7 relative — "
                    "enough to cross a draw's sampling boundary (fashion-occluded resnet-simclr: a threshold 3e-10 of "
                    "the total from a sample boundary, 3.55e-2) or to swap two samples whose signed row sums differ by "
                    "less (fashion-inverted cnn-simclr-1k, 1.0e-2); float32 and float64 NLEEP of the same moved "
                    "features agree to 4e-7 (pedjax/metrics/_nleep.py)"),
    "parc": (5e-3, "PARC z-scores every kept PCA component however small its eigenvalue; float64 resolves "
                   "components down to max(N, D)·eps·λ_max (2e-13 at N = 1 000), float32's SVD only to "
                   "(max(N, D)·eps)²·λ_max (1.4e-8), so a component in between is whitened in float64 and dropped "
                   "in float32 (glyphs-letters cnns-simclr: one component at 1.2e-8·λ_max; 2.1e-3 static, 2.3e-3 "
                   "after PED; every other shipped set ≤ 9e-6; pedjax/metrics/_parc.py)"),
    "knn": (5e-3, "after PED only (static ≤ 6e-8: the same folds and exact fold accuracies in both precisions): "
                  "an accuracy moves in steps of 1/N, and the float32 and float64 PED outputs differ by ~1e-7 "
                  "relative, enough to flip a held-out sample whose nearest neighbours are that close "
                  "(fashion-occluded cnn-byol: 2 of 1 000 samples, 3.1e-3)"),
    "linear_probe": (5e-3, "after PED only (static ≤ 6e-8): an accuracy moves in steps of 1/N, and a held-out "
                           "sample whose two largest logits agree to ~1e-7 flips with the float32 PED output "
                           "(fashion-tops cnn-byol and glyphs-case mlp-supervised: 1 of 1 000 samples, ≤ 1.4e-3). "
                           "On the near-duplicate synthetic set static too (7.2e-4; + PED 6.7e-4): there L-BFGS "
                           "reaches max_iter = 1000 before its tolerance in both precisions, at different points"),
    "transrate": (REL_TARGET, ""),
    "etran": (REL_TARGET, ""),
    "leep": (REL_TARGET, ""),
    "nce": (REL_TARGET, ""),
    "ncti": (2e-3, "a zoo-level score (min–max over the models): the bound is on the difference over the zoo's "
                   "score spread, as one model scores exactly 0. 2e-3, not 1e-3: where PED saturates every model's "
                   "posterior at 1 − 1e-7, S_ncc and S_vc differ between the models by 1.4e-5 of their size, and the "
                   "min–max scaling multiplies their float32 rounding (2e-8–8e-8) by its inverse (near-duplicate "
                   "5x150x128 C30 + PED: 1.06e-3; docs/precision.md)"),
}


def rel_bound(variant: str) -> float:
    """The documented worst relative difference of a variant (its metric's :data:`REL_BOUNDS`).

    Args:
      variant: ``metric`` or ``metric+SUFFIX``.

    Returns:
      The metric's bound in :data:`REL_BOUNDS`, or :data:`REL_TARGET` for a metric not listed.
    """
    return REL_BOUNDS.get(variant.split("+", 1)[0], (REL_TARGET, ""))[0]


def zoo_level(variant: str) -> bool:
    """Whether the variant's metric is defined over a whole zoo (``Metric.zoo``; module docstring).

    Args:
      variant: ``metric`` or ``metric+SUFFIX``.

    Returns:
      ``True`` for a registered zoo-level metric (NCTI), else ``False`` (unknown names included).
    """
    m = REGISTRY.get(variant.split("+", 1)[0])
    return m is not None and getattr(m, "zoo", None) is not None


def bounded_difference(variant: str, row: VariantFidelity) -> float:
    """The difference a variant's bound applies to.

    Args:
      variant: ``metric`` or ``metric+SUFFIX``.
      row: the variant's :class:`VariantFidelity` on one set (or a summary).

    Returns:
      ``row.worst_rel``, or ``row.worst_spread`` for a zoo-level metric (:func:`zoo_level`).
    """
    return row.worst_spread if zoo_level(variant) else row.worst_rel


@contextlib.contextmanager
def computing_in(precision: str):
    """pedjax's entry points compute in ``precision`` inside this block, whatever the process's JAX
    settings (module docstring).

    Args:
      precision: ``"float64"`` or ``"float32"``.

    Returns:
      A context manager (a ``with`` block) that yields ``None``.

    Raises:
      ValueError: ``precision`` is not ``"float64"`` or ``"float32"`` (on entering the block).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision: one of {list(PRECISIONS)}, got {precision!r}")
    setting = getattr(_precision, "precision", None)  # the issue-21 setting, once it exists
    with contextlib.ExitStack() as stack:
        if setting is not None:
            stack.enter_context(setting(precision))
        elif precision == "float32":
            stack.enter_context(_precision.float32())
        if precision == "float32":
            stack.enter_context(jax.enable_x64(False))
        yield


@dataclass
class VariantFidelity:
    """One variant on one set: float32 against float64 (module docstring).

    Attributes:
      tau: weighted τ between the float64 and the float32 ranking (non-finite scores last, tied).
      worst_rel: the worst ``|s32 − s64| / |s64|`` over the models with a finite float64 score.
      worst_spread: the worst ``|s32 − s64|`` over the spread of the float64 scores.
      nonfinite: models with a non-finite float32 score where the float64 one is finite.
      n_models: the number of models compared.
      worst_model: the model of ``worst_rel`` (``task/model`` in a summary), or ``None``.
      error: the float32 run's error, if it raised (``"float64: …"`` if the reference did).
      tied: the float64 scores do not rank the zoo beyond float32 resolution (:data:`TIE_LEVEL`).
      underflow: float64 scores below float32's range (0 < |s| < :data:`TINY32`) that float32
        returned as 0.
    """

    tau: float
    worst_rel: float
    worst_spread: float
    nonfinite: int
    n_models: int
    worst_model: str | None = None
    error: str | None = None  # the float32 run's error, if it raised
    tied: bool = False  # the float64 scores do not rank the zoo beyond float32 resolution (:data:`TIE_LEVEL`)
    underflow: int = 0  # float64 scores below float32's range (|s| < :data:`TINY32`, not 0), 0 in float32

    def as_dict(self) -> dict:
        """The fields as a plain dict (JSON-able)."""
        return dict(self.__dict__)


@dataclass
class FidelityResult:
    """What :func:`fidelity` measured.

    Attributes:
      tasks: the sets' task names, in order.
      variants: the variant names, in order.
      rows: ``{task: {variant: VariantFidelity}}``.
      scores: ``{precision: {task: {variant: {model: score} or None}}}``.
      seconds: ``{precision: {task: wall seconds}}``.
    """

    tasks: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    rows: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    def summary(self) -> dict[str, VariantFidelity]:
        """Per variant over all sets: the smallest τ, the largest differences, the total of
        non-finite scores.

        Returns:
          ``{variant: VariantFidelity}``: τ the smallest over the sets that are not ``tied`` (NaN
          counts as the worst), ``worst_rel`` and ``worst_spread`` the largest, ``nonfinite``,
          ``n_models`` and ``underflow`` summed, ``worst_model`` as ``task/model``, the errors
          joined, ``tied`` when every set is.
        """
        out = {}
        for v in self.variants:
            rs = [(t, self.rows[t][v]) for t in self.tasks if v in self.rows.get(t, {})]
            if not rs:
                continue
            taus = [r.tau for _, r in rs if not r.tied]
            worst_t, worst = max(rs, key=lambda tr: _nan_low(tr[1].worst_rel))
            out[v] = VariantFidelity(
                tau=min(taus, key=_nan_low_neg) if taus else math.nan,
                worst_rel=max((r.worst_rel for _, r in rs), key=_nan_low),
                worst_spread=max((r.worst_spread for _, r in rs), key=_nan_low),
                nonfinite=sum(r.nonfinite for _, r in rs),
                n_models=sum(r.n_models for _, r in rs),
                worst_model=f"{worst_t}/{worst.worst_model}" if worst.worst_model else None,
                error="; ".join(f"{t}: {r.error}" for t, r in rs if r.error) or None,
                tied=all(r.tied for _, r in rs),
                underflow=sum(r.underflow for _, r in rs),
            )
        return out

    def failures(self, variants: Sequence[str] | None = None, *, rel_bounds: Mapping[str, float] | None = None) -> list[str]:
        """One line per missed target (module docstring); empty when every target holds.

        Args:
          variants: the variants to check (default: all).
          rel_bounds: ``{variant or metric: bound}`` overriding :data:`REL_BOUNDS`.

        Returns:
          The failure messages, one per missed target per set.
        """
        out = []
        for t in self.tasks:
            for v, r in self.rows.get(t, {}).items():
                if variants is not None and v not in variants:
                    continue
                bound = _bound(v, rel_bounds)
                if r.nonfinite:
                    out.append(f"{v} on {t}: {r.nonfinite} non-finite float32 score(s) where float64 is finite"
                               + (f" ({r.error})" if r.error else ""))
                if not r.tied and not (r.tau >= TAU_TARGET):
                    out.append(f"{v} on {t}: weighted tau {r.tau:.4f} < {TAU_TARGET}")
                diff = bounded_difference(v, r)
                if not (diff <= bound):
                    what = "difference / score spread" if zoo_level(v) else "relative difference"
                    out.append(f"{v} on {t}: worst {what} {diff:.2e} > {bound:.0e} ({r.worst_model})")
        return out

    def as_dict(self) -> dict:
        """The result as a plain, JSON-able dict (:meth:`from_dict` reads it back)."""
        return {"tasks": self.tasks, "variants": self.variants,
                "rows": {t: {v: r.as_dict() for v, r in rs.items()} for t, rs in self.rows.items()},
                "scores": self.scores, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: Mapping) -> FidelityResult:
        """The result :meth:`as_dict` wrote.

        Args:
          d: the dict (``tasks``, ``variants``, ``rows``; optionally ``scores``, ``seconds``).

        Returns:
          A :class:`FidelityResult`.
        """
        return cls(list(d["tasks"]), list(d["variants"]),
                   {t: {v: VariantFidelity(**r) for v, r in rs.items()} for t, rs in d["rows"].items()},
                   dict(d.get("scores", {})), dict(d.get("seconds", {})))

    def merge(self, other: FidelityResult) -> FidelityResult:
        """Both results' sets (``other`` wins on a task both hold).

        Args:
          other: another result.

        Returns:
          A new :class:`FidelityResult`; tasks and variants in first-seen order.
        """
        tasks = self.tasks + [t for t in other.tasks if t not in self.tasks]
        variants = self.variants + [v for v in other.variants if v not in self.variants]
        scores = {p: {**self.scores.get(p, {}), **other.scores.get(p, {})} for p in PRECISIONS}
        seconds = {p: {**self.seconds.get(p, {}), **other.seconds.get(p, {})} for p in PRECISIONS}
        return FidelityResult(tasks, variants, {**self.rows, **other.rows}, scores, seconds)


def _bound(variant: str, overrides: Mapping[str, float] | None) -> float:
    if overrides:
        for key in (variant, variant.split("+", 1)[0]):
            if key in overrides:
                return float(overrides[key])
    return rel_bound(variant)


def _nan_low(x: float) -> float:
    return math.inf if x != x else x  # NaN counts as the worst


def _nan_low_neg(x: float) -> float:
    return -math.inf if x != x else x


def compare(s64: Mapping[str, float] | None, s32: Mapping[str, float] | None, error: str | None = None) -> VariantFidelity:
    """float32 scores against float64 scores of one variant on one set (module docstring).

    Args:
      s64: the float64 run's ``{model: score}``, or ``None`` if it raised.
      s32: the float32 run's ``{model: score}`` (the models of ``s64``), or ``None`` if it raised
        (every model then counts as non-finite).
      error: why a run raised, recorded in the result.

    Returns:
      A :class:`VariantFidelity` (all NaN, with the error, when ``s64`` is ``None``).
    """
    if s64 is None:
        return VariantFidelity(math.nan, math.nan, math.nan, 0, 0, None, error or "float64 run failed")
    models = list(s64)
    a = np.array([s64[m] for m in models], float)
    b = np.array([np.nan if s32 is None or s32.get(m) is None else s32[m] for m in models], float)
    fa, fb = np.isfinite(a), np.isfinite(b)
    nonfinite = int(np.sum(fa & ~fb))
    under = fa & (a != 0) & (np.abs(np.where(fa, a, 1.0)) < TINY32) & (b == 0)
    both = fa & fb & ~under
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.abs(b - a)
        rel = np.where(diff == 0, 0.0, diff / np.abs(a))
    spread = float(np.ptp(a[fa])) if fa.sum() >= 2 else 0.0
    tied = bool(fa.sum() >= 2 and spread <= TIE_LEVEL * float(np.max(np.abs(a[fa]))))
    worst_rel = float(np.max(rel[both])) if both.any() else (0.0 if not fa.any() else math.nan)
    worst_spread = (float(np.max(diff[both])) / spread if spread > 0 else 0.0) if both.any() else worst_rel
    worst_model = models[int(np.argmax(np.where(both, rel, -1.0)))] if both.any() else None
    tau = math.nan
    if len(models) >= 2:
        ra, rb = _ranked_last(a), _ranked_last(b)
        tau = 1.0 if np.array_equal(ra, rb) and len(set(ra)) == 1 else float(weighted_tau(ra, rb))
    return VariantFidelity(tau, worst_rel, worst_spread, nonfinite, len(models), worst_model, error, tied, int(under.sum()))


def as_feature_set(data: Any, task: str = "set") -> FeatureSet:
    """A :class:`FeatureSet` from one, or from a mapping of its parts.

    Args:
      data: a :class:`pedjax.features.FeatureSet` (returned as is), or a mapping with
        ``features`` (``{model: [N, D]}``), ``labels`` and optionally ``source_stats``,
        ``source_probs`` and ``task``.
      task: the task name when the mapping has none.

    Returns:
      The :class:`pedjax.features.FeatureSet`.

    Raises:
      ValueError: (``sets``) ``data`` is neither a FeatureSet nor a mapping with ``features`` and
        ``labels``.
    """
    if isinstance(data, FeatureSet):
        return data
    if isinstance(data, Mapping) and "features" in data and "labels" in data:
        return FeatureSet(dict(data["features"]), np.asarray(data["labels"]), data.get("source_stats"),
                          data.get("source_probs"), task=str(data.get("task", task)))
    raise ValueError("sets: expected FeatureSets or mappings with 'features' and 'labels'")


def fidelity(sets, metrics: Sequence[str] | None = None, peds: Mapping[str, PEDConfig] | None = None, *,
             on_set: Callable[[str, dict[str, VariantFidelity], dict[str, float]], None] | None = None,
             compile_ahead: bool = True) -> FidelityResult:
    """Score every set in float64 and in float32 and compare, per variant (module docstring).

    Args:
      sets: a :class:`FeatureSet` (or a mapping :func:`as_feature_set` accepts), or a sequence.
      metrics: metric names (default: every registered metric of class labels; probability/label
        metrics need the sets' ``source_probs``).
      peds: ``{suffix: PEDConfig}``: feature metrics are also scored after each (variant
        ``metric+suffix``); PED itself runs in the precision being measured.
      on_set: called after each set with ``(task, {variant: VariantFidelity}, {precision: seconds})``.
      compile_ahead: compile the feature metrics' programs on background threads first (as
        :func:`pedjax.rank.benchmark`).

    Returns:
      A :class:`FidelityResult` (the sets' ground truth is not used).

    Raises:
      ValueError: a set that :func:`as_feature_set` rejects, or what :func:`pedjax.rank.benchmark`
        rejects (unknown metrics, invalid PED configurations).
    """
    if isinstance(sets, (FeatureSet, Mapping)):
        sets = [sets]
    sets = [as_feature_set(s, f"set{i}") for i, s in enumerate(sets)]
    metrics = list(metrics) if metrics is not None else names(target="classes")
    peds = dict(peds or {})
    out = FidelityResult(scores={p: {} for p in PRECISIONS}, seconds={p: {} for p in PRECISIONS})
    for fs in sets:
        fs = fs.replace(truth=None)  # scored, not judged: no τ against ground truth here
        runs = {}
        for p in PRECISIONS:
            t0 = time.perf_counter()
            with computing_in(p):
                runs[p] = benchmark(fs, metrics, peds, compile_ahead=compile_ahead)
            out.seconds[p][fs.task] = time.perf_counter() - t0
        r64, r32 = runs["float64"], runs["float32"]
        if not out.variants:
            out.variants = list(r64.variants)
        out.tasks.append(fs.task)
        rows = {}
        for v in r64.variants:
            s64 = r64.scores[fs.task].get(v)
            s32 = r32.scores[fs.task].get(v)
            err = r32.errors.get(v, {}).get(fs.task)
            rows[v] = compare(s64, s32, err)
            if s64 is None:
                rows[v].error = "float64: " + r64.errors.get(v, {}).get(fs.task, "failed")
        out.rows[fs.task] = rows
        for p, r in runs.items():
            out.scores[p][fs.task] = r.scores[fs.task]
        if on_set is not None:
            on_set(fs.task, rows, {p: out.seconds[p][fs.task] for p in PRECISIONS})
    return out


def feature_metrics() -> list[str]:
    """Every registered metric that reads features (PED applies), sorted.

    Returns:
      The registry names of the feature metrics of class labels.
    """
    return sorted(k for k, m in REGISTRY.items() if m.input == "features" and m.target == "classes")


# ----------------------------------------------------------------------------------------------
# synthetic zoos

#: the synthetic zoos the targets are stated on: name -> (models, N, D, C, kind)
SYNTHETIC = {
    "synthetic-published": (12, 5000, 2048, 100, "lowrank"),
    "synthetic-d>>n": (12, 200, 2048, 10, "lowrank"),
    "synthetic-near-duplicate": (12, 2000, 1024, 50, "near-duplicate"),
}


def synthetic_set(models: int, n: int, d: int, classes: int, kind: str = "lowrank", *, seed: int = 0,
                  n_source: int | None = None, task: str | None = None, rank: int | None = None) -> FeatureSet:
    """A synthetic zoo as a :class:`FeatureSet` of float32 features (as networks emit them), with
    source statistics (mean and std of each model's features on its own "source" sample).

    ``kind="lowrank"``: per model ReLU(Z W + b + noise) with a model-specific latent rank (16–64),
    class separation and noise, Z = class centre + N(0, I) (the features of ``bench_core``).
    ``kind="near-duplicate"``: d/8 such ReLU units, each repeated in 8 columns that differ by
    independent noise of 1e-2 of the unit's spread (correlation ≈ 0.9999), on a positive offset
    5–10 times their spread: a nearly singular, uncentred covariance (duplicated units, a shared
    bias), the hard case for Gram products. (At a 1e-4 perturbation the duplicates' differences
    would be near the float32 rounding of the offset features themselves: no float32
    computation could resolve them.)

    Args:
      models: the number of models.
      n: target samples N (every class gets at least one when ``n > classes``).
      d: the feature width D.
      classes: the number of classes C.
      kind: ``"lowrank"`` or ``"near-duplicate"``.
      seed: the random seed.
      n_source: samples of the "source" set the statistics come from (default
        ``min(max(n, 200), 1000)``).
      task: the task name (default ``synthetic-{kind}-{models}x{n}x{d}-C{classes}``).
      rank: the latent rank of every model (default: drawn per model in 16–64).

    Returns:
      A :class:`pedjax.features.FeatureSet` with models ``model_00``, ``model_01``, …, int32
      labels and float32 source statistics; no ground truth.

    Raises:
      ValueError: (``kind``) not ``"lowrank"`` or ``"near-duplicate"``.
    """
    if kind not in ("lowrank", "near-duplicate"):
        raise ValueError(f"kind: 'lowrank' or 'near-duplicate', got {kind!r}")
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(classes), rng.integers(0, classes, n - classes)]) if n > classes else np.arange(n) % classes
    n_source = n_source or min(max(n, 200), 1000)
    feats, stats = {}, {}
    for m in range(models):
        r = int(rng.integers(16, 65)) if rank is None else int(rank)
        sep = float(rng.uniform(0.2, 0.6))
        noise = float(rng.uniform(0.0, 0.05))
        centres = rng.standard_normal((classes, r)) * sep
        Z = centres[y] + rng.standard_normal((n, r))
        Zs = rng.standard_normal((n_source, r)) * (1.0 + sep)
        W = rng.standard_normal((r, d if kind == "lowrank" else max(1, d // 8))) / np.sqrt(r)
        b = rng.standard_normal(W.shape[1]) * 0.5
        cols = np.arange(d) % W.shape[1]
        offset = 5.0 + 5.0 * rng.random(d)

        def emit(z, k, W=W, b=b, noise=noise, cols=cols, offset=offset):
            if kind == "lowrank":
                return np.maximum(z @ W + b + noise * rng.standard_normal((k, d)), 0.0)
            h = np.maximum(z @ W + b, 0.0)[:, cols]
            return h + offset + 1e-2 * (h.std(0) + 1e-3) * rng.standard_normal((k, d))

        X = emit(Z, n).astype(np.float32)
        S = emit(Zs, n_source)
        name = f"model_{m:02d}"
        feats[name] = X
        stats[name] = (S.mean(0).astype(np.float32), S.std(0).astype(np.float32))
    task = task or f"synthetic-{kind}-{models}x{n}x{d}-C{classes}"
    return FeatureSet(feats, y.astype(np.int32), stats, task=task)


def synthetic_sets(scale: float = 1.0, *, seed: int = 0) -> list[FeatureSet]:
    """The sets of :data:`SYNTHETIC`, optionally shrunk (e.g. for a fast test).

    Args:
      scale: the factor on N and D (N at least 4·C and D at least 8; models and classes kept);
        1 gives the sets at :data:`SYNTHETIC`'s sizes.
      seed: the seed of the first set (set i uses ``seed + i``).

    Returns:
      One :class:`pedjax.features.FeatureSet` per entry of :data:`SYNTHETIC`, named as there (with
      ``@scale`` appended when ``scale != 1``).
    """
    out = []
    for i, (name, (m, n, d, c, kind)) in enumerate(SYNTHETIC.items()):
        if scale != 1.0:
            n, d = max(4 * c, int(round(n * scale))), max(8, int(round(d * scale)))
        out.append(synthetic_set(m, n, d, c, kind, seed=seed + i, task=name if scale == 1.0 else f"{name}@{scale:g}"))
    return out


__all__ = ["PRECISIONS", "TAU_TARGET", "REL_TARGET", "TIE_LEVEL", "TINY32", "REL_BOUNDS", "SYNTHETIC", "computing_in", "compare", "fidelity",
           "FidelityResult", "VariantFidelity", "feature_metrics", "synthetic_set", "synthetic_sets", "as_feature_set",
           "rel_bound", "zoo_level", "bounded_difference", "variant_name"]
