"""H-score and SFDA in float32 rank a zoo as in float64 (issue 21).

Targets: float32 finite wherever float64 is; weighted τ (``scipy.stats.weightedtau``) between the
float32 and float64 scores of a zoo ≥ 0.99; worst relative difference ≤ 1e-3.

Synthetic zoos of 12 models (float32 features, as networks emit them), each reproducing a failure
mode of the former float32 path (checked below: each zoo does trigger it):

* ``relu``: non-negative ReLU features of anisotropic classes (a spectrum over 8 decades of
  variance), scaled by 10–100 (λ_max ≫ 4.6: SFDA's shrinkage at its 1e-10 floor), dead units;
* ``dup``: the same plus near-duplicate units (x_j + 1e-6·σ_j·noise) and constant units (3.7);
* ``vit``: LayerNorm outputs (an exact linear dependency) with three huge-variance units;
* ``wide``: D ≫ N (the within-class scatter has rank ≤ N − C); here every model scores C − 1
  (H-score) and 1 (SFDA) in float64, so only finiteness and closeness are checked.

H-score's float32 path used ``rcond = 10·max(N, D)·ε₃₂`` (dropping every direction below
~1e-3·λ_max); SFDA's Cholesky of the published Sw_s broke down in float32 (NaN). The metrics'
module docstrings describe the formulations that replaced them. A slow test repeats the check on
the shipped zoo's real features (skipped without Fashion-MNIST or the shipped zoo).
"""
from __future__ import annotations

import contextlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.scipy.linalg import cho_factor

import pedjax
from pedjax import metrics
from pedjax.metrics._hscore import definition_cutoffs, hscore_core
from pedjax.metrics._sfda import _row_sums_compensated, power_top_eigenvalue, sfda_core, shrunk

REL = 1e-3
TAU = 0.99
EPS32 = float(np.finfo(np.float32).eps)


@contextlib.contextmanager
def float32():
    """pedjax's entry points in float32 (the suite's process has x64 on)."""
    with pedjax.float32(), jax.enable_x64(False):
        yield


# ---------------------------------------------------------------------------------------------
# synthetic zoos


def make_zoo(kind: str, seed: int = 0, models: int = 12, n: int = 300, d: int = 64, c: int = 6):
    """``({name: float32 [N, D]}, labels)``; class separation grows with the model index."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.concatenate([np.arange(c), rng.integers(0, c, n - c)]))
    feats = {}
    for m in range(models):
        sep = 0.15 + 0.05 * m
        scale = 10.0 ** rng.uniform(1.0, 2.0)
        if kind == "wide":
            r = int(rng.integers(20, 60))
            W = rng.standard_normal((r, d)) / np.sqrt(r)
            Z = rng.standard_normal((c, r))[y] * sep + rng.standard_normal((n, r)) * np.exp(-np.linspace(0, 4, r))
            X = np.maximum(Z @ W + 0.3, 0.0) * scale
        else:
            Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
            spec = np.exp(-np.linspace(0.0, 9.0, d))  # std over 4 decades, variance over 8
            H = ((rng.standard_normal((c, d)) * sep)[y] + rng.standard_normal((n, d))) @ (Q * spec).T
            if kind == "vit":
                H = (H - H.mean(1, keepdims=True)) / H.std(1, keepdims=True)  # LayerNorm: Σ_d = 0
                gamma = np.ones(d)
                gamma[:3] = rng.uniform(20.0, 60.0, 3)
                X = H * gamma + 0.1 * rng.standard_normal(d)
            else:
                X = np.maximum(H + 0.5 * rng.standard_normal(d), 0.0) * scale
                X[:, rng.choice(d, 5, replace=False)] = 0.0  # dead units
                if kind == "dup":
                    j = rng.choice(d, 8, replace=False)
                    k = rng.choice(np.setdiff1d(np.arange(d), j), 8, replace=False)
                    X[:, k] = X[:, j] + 1e-6 * X[:, j].std(0) * rng.standard_normal((n, 8))
                    X[:, rng.choice(d, 3, replace=False)] = 3.7
        feats[f"m{m:02d}"] = X.astype(np.float32)
    return feats, y


ZOOS = {"relu": {}, "dup": {}, "vit": {}, "wide": {"n": 80, "d": 240, "models": 6}}


@pytest.fixture(scope="module", params=list(ZOOS))
def zoo(request):
    kind = request.param
    F, y = make_zoo(kind, seed=list(ZOOS).index(kind), **ZOOS[kind])
    scores = {}
    for name in ("hscore", "sfda"):
        fn = getattr(metrics, name)
        s64 = np.array([fn(X, y) for X in F.values()])
        with float32():
            s32 = np.array([fn(X, y) for X in F.values()])
        scores[name] = (s64, s32)
    return kind, F, y, scores


def _check(kind, name, s64, s32):
    assert np.all(np.isfinite(s64)), (kind, name, s64)
    assert np.all(np.isfinite(s32)), (kind, name, s32)  # finite wherever float64 is
    rel = np.abs(s32 - s64) / np.abs(s64)
    assert rel.max() <= REL, (kind, name, rel.max())
    if kind == "wide":  # every model at the metric's ceiling: no ranking to compare
        assert np.ptp(s64) <= 1e-9 * np.abs(s64).max()
    else:
        assert np.ptp(s64) > 0.1 * np.abs(s64).max()  # the zoo has a ranking
        assert scipy.stats.weightedtau(s64, s32)[0] >= TAU, (kind, name, s64, s32)


@pytest.mark.parametrize("name", ["hscore", "sfda"])
def test_float32_ranks_like_float64(zoo, name):
    kind, _, _, scores = zoo
    _check(kind, name, *scores[name])


def _former_float32(X, codes, C):
    """What the former float32 path read: H-score with the cut-off 10·max(N, D)·ε₃₂ (computed here
    in float64, relative change against the default), and whether the float32 Cholesky of the
    published shrunk within-class scatter has a NaN."""
    N, D = X.shape
    X64 = X.astype(jnp.float64)
    moved = jnp.abs(hscore_core(X64, codes, C, 10.0 * max(N, D) * EPS32) / hscore_core(X64, codes, C) - 1.0)
    counts = jnp.bincount(codes, length=C).astype(jnp.float32)
    Xw = X - (jax.ops.segment_sum(X, codes, C) / counts[:, None])[codes]
    Sw = Xw.T @ Xw / N
    s = jnp.maximum(jnp.exp(-5.0 * power_top_eigenvalue(Sw)), 1e-10)
    published = (1.0 - s) * Sw + s * jnp.trace(Sw) / D * jnp.eye(D, dtype=X.dtype)
    return moved, jnp.any(jnp.isnan(cho_factor(published, lower=True)[0]))


def test_zoos_trigger_the_former_failures(zoo):
    """Each hard zoo exercises what broke before: H-score directions between the float64 and the
    former float32 cut-off that matter (> 1 % of the score), and SFDA's published shrunk scatter
    whose float32 Cholesky breaks down."""
    kind, F, y, _ = zoo
    codes = jnp.asarray(np.unique(y, return_inverse=True)[1].astype(np.int32))
    C = int(codes.max()) + 1
    Xs = jnp.asarray(np.stack(list(F.values())), jnp.float32)
    moved, nan = jax.jit(jax.vmap(_former_float32, in_axes=(0, None, None)), static_argnums=2)(Xs, codes, C)
    if kind != "wide":
        assert float(jnp.max(moved)) > 0.01, (kind, moved)
    if kind != "relu":
        assert bool(jnp.any(nan)), kind


# ---------------------------------------------------------------------------------------------
# the pieces


def test_hscore_float32_paths_match_float64():
    """The three float32 evaluations (N > D with C ≤ D: QR of [Z | Y]; N > D with C > D: Q formed;
    D ≥ N: QR of Zᵀ) on legal degenerate input: singleton classes, constant features, 2 classes."""
    rng = np.random.default_rng(3)
    cases = []
    y = rng.permutation(np.concatenate([np.arange(5), rng.integers(0, 5, 115)]))
    X = rng.standard_normal((120, 10)) * np.geomspace(1.0, 1e-3, 10) + rng.standard_normal((5, 10))[y]
    X[:, 3] = 2.5
    cases.append((X, y))  # N > D, C ≤ D, a constant feature
    y = np.concatenate([np.arange(12), rng.integers(0, 12, 48)])
    y[y == 11] = 0
    y[0] = 11  # a singleton class
    cases.append((rng.standard_normal((60, 8)) + 2.0 * rng.standard_normal((12, 8))[y], y))  # C > D
    y = np.array([0, 1] * 15)
    cases.append((rng.standard_normal((30, 50)) * 40.0 + 7.0, np.array([3, 42])[y]))  # D ≥ N, labels {3, 42}
    for X, y in cases:
        a = metrics.hscore(X.astype(np.float32), y)
        with float32():
            b = metrics.hscore(X.astype(np.float32), y)
        assert np.isfinite(b) and abs(b - a) <= 1e-4 * abs(a), (X.shape, a, b)


def test_hscore_definition_does_not_depend_on_dtype():
    # the cut-offs are float64 quantities whatever the dtype of max|X|
    r64 = definition_cutoffs(5000, 64, np.float64(3.0))
    r32 = definition_cutoffs(5000, 64, np.float32(3.0))
    assert r64[0] == r32[0] == 10.0 * 5000 * np.finfo(np.float64).eps
    assert float(r32[1]) == pytest.approx(float(r64[1]), rel=1e-6)
    # google's rcond option: the same cut-off in both precisions
    F, y = make_zoo("relu", seed=5, models=1)
    X = next(iter(F.values()))
    a = metrics.hscore(X, y, rcond=1e-5)
    with float32():
        b = metrics.hscore(X, y, rcond=1e-5)
    assert abs(b - a) <= 1e-4 * a


def test_compensated_row_sums():
    """Rows of large cancelling float32 values: the pair (hi, lo) carries the exact sum to ~ε²."""
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((50, 33)) * 10.0 ** rng.uniform(-3, 6, (50, 33))).astype(np.float32)
    X[:, -1] = -X[:, :-1].astype(np.float64).sum(1).astype(np.float32)  # rows summing to ~0
    with jax.enable_x64(False):
        hi, lo = jax.jit(_row_sums_compensated)(jnp.asarray(X))
    exact = np.array([math.fsum(map(float, row)) for row in X])
    got = np.asarray(hi, np.float64) + np.asarray(lo, np.float64)
    bound = 16.0 * EPS32 ** 2 * np.abs(X.astype(np.float64)).sum(1)
    assert np.all(np.abs(got - exact) <= bound)
    assert np.any(np.abs(np.asarray(hi, np.float64) - exact) > 100.0 * bound)  # a plain sum would not do


def test_power_method_start_is_normalised_and_never_zero():
    rng = np.random.default_rng(1)
    B = rng.standard_normal((40, 6))
    A = B.T @ B
    lam = float(power_top_eigenvalue(jnp.asarray(A)))
    assert 0.9 * np.linalg.eigvalsh(A)[-1] <= lam <= np.linalg.eigvalsh(A)[-1] * (1 + 1e-12)
    with jax.enable_x64(False):  # 1e15 · A: the unnormalised start's A·x would overflow float32
        big = float(power_top_eigenvalue(jnp.asarray(A * 1e15, jnp.float32)))
    assert big == pytest.approx(lam * 1e15, rel=1e-4)
    # row sums exactly zero: the published start is the zero vector (NaN); pedjax starts from the
    # unit vector of the largest diagonal entry
    assert float(power_top_eigenvalue(jnp.asarray([[2.0, -2.0], [-2.0, 2.0]]))) == pytest.approx(4.0)
    # a feature and its negative (Sw·1 = 0 up to rounding) stays finite in both precisions
    y = np.arange(300) % 6
    X = rng.standard_normal((300, 32)) + rng.standard_normal((6, 32))[y]
    X = np.concatenate([X, -X], axis=1)  # [300, 64], the zoos' shape
    assert np.isfinite(metrics.sfda(X, y))
    with float32():
        assert np.isfinite(metrics.sfda(X, y))


def test_shrunk_floor_binds_only_below_the_dtype():
    rng = np.random.default_rng(2)
    B = rng.standard_normal((20, 50)) * 30.0  # rank 20 < D = 50, λ_max ≫ 4.6
    Sw = B.T @ B / 20
    D, mu = 50, np.trace(Sw) / 50
    s = 1e-10
    published = (1 - s) * Sw + s * mu * np.eye(D)
    np.testing.assert_array_equal(np.asarray(shrunk(jnp.asarray(Sw), s)), published)  # float64: untouched
    with jax.enable_x64(False):
        S32 = shrunk(jnp.asarray(Sw, jnp.float32), jnp.float32(s))
        assert np.all(np.isfinite(np.asarray(cho_factor(S32, lower=True)[0])))
        raw = (1 - s) * jnp.asarray(Sw, jnp.float32) + jnp.float32(s * mu) * jnp.eye(D, dtype=jnp.float32)
        assert np.isnan(np.asarray(cho_factor(raw, lower=True)[0])).any()  # what the floor prevents


def test_sfda_translation_invariant_in_float64():
    """SFDA is translation invariant; pedjax centres first, so a large common offset (which turns
    dead units into large constants: logits with class-independent terms ~ offset²/ridge in the
    published formulation) leaves the float64 score unchanged."""
    F, y = make_zoo("relu", seed=6, models=2)
    for X in F.values():
        X = X.astype(np.float64)
        assert metrics.sfda(X + 1e3, y) == pytest.approx(metrics.sfda(X, y), rel=1e-6)


def test_float32_cores_vmap_over_models():
    """The float32 cores vmap over a model axis (``score_zoo``) with the per-model numbers."""
    F, y = make_zoo("vit", seed=7, models=2)
    Xs = np.stack(list(F.values()))
    zoo = {f"m{i}": X for i, X in enumerate(Xs)}
    with float32():
        for name in ("sfda", "hscore"):
            single = [getattr(metrics, name)(X, y) for X in Xs]
            batched = pedjax.score_zoo(zoo, y, name)
            np.testing.assert_allclose([batched[m] for m in zoo], single, rtol=1e-5)
    codes = jnp.asarray(np.unique(y, return_inverse=True)[1].astype(np.int32))
    with jax.enable_x64(False):
        core = jax.jit(jax.vmap(lambda X: sfda_core(X, codes, 6)))(jnp.asarray(Xs))
    with float32():
        np.testing.assert_allclose(np.asarray(core), [metrics.sfda(X, y) for X in Xs], rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# real features


def _shipped_task_features(task):
    from pedjax.cli.demo import shipped_zoo_available
    from pedjax.data import fashion

    if not fashion.available():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    if not shipped_zoo_available():
        pytest.skip("the shipped zoo is not built (pedjax zoo build)")
    from pedjax.features import extract_features

    fs = extract_features(None, task, "train")
    return {m: np.asarray(X, np.float32) for m, X in fs.features.items()}, np.asarray(fs.labels), fs.source_stats


@pytest.mark.slow
def test_shipped_zoo_real_features_float32():
    """The shipped 27-member zoo on fashion-rotated (where H-score's τ_w was 0.55 and SFDA NaN for
    a ViT), static and after PED (PED itself in the same precision)."""
    F, y, stats = _shipped_task_features("fashion-rotated")
    cfg = pedjax.PEDConfig(nsigma=0.6)
    moved64 = pedjax.ped_zoo(F, y, cfg, stats)
    with float32():
        stats32 = {m: (np.asarray(a, np.float32), np.asarray(b, np.float32)) for m, (a, b) in stats.items()}
        moved32 = pedjax.ped_zoo(F, y, cfg, stats32)
    for name in ("hscore", "sfda"):
        fn = getattr(metrics, name)
        for A64, A32 in ((F, F), (moved64, moved32)):
            s64 = np.array([fn(np.asarray(A64[m]), y) for m in F])
            with float32():
                s32 = np.array([fn(np.asarray(A32[m], np.float32), y) for m in F])
            _check("shipped", name, s64, s32)


def test_sfda_float32_resolves_saturated_scores():
    """Well separated classes give SFDA = 1 − δ with δ from 2e-6 down to 1e-9: float32 keeps δ to
    1e-4 relative (the registered core returns δ, finished as 1 − δ in float64), so it ranks the
    four feature sets as float64 does; the score itself computed in float32 (``sfda_core``) rounds
    the last two to exactly 1."""
    rng = np.random.default_rng(0)
    C, n, D = 5, 200, 16
    y = np.arange(n) % C
    centres = rng.standard_normal((C, D))
    d64, d32 = [], []
    for sep in (2.5, 2.7, 2.9, 3.0):
        X = (sep * centres[y] + rng.standard_normal((n, D))).astype(np.float32)
        d64.append(1.0 - metrics.sfda(X, y, precision="float64"))
        d32.append(1.0 - metrics.sfda(X, y, precision="float32"))
        if sep >= 2.9:
            with pedjax.precision("float32"):
                assert float(sfda_core(jnp.asarray(X), jnp.asarray(y, jnp.int32), C)) == 1.0
    d64, d32 = np.array(d64), np.array(d32)
    assert np.all(d64 > 0) and d64.min() < 1e-8 and d64.max() > 1e-6
    np.testing.assert_allclose(d32, d64, rtol=1e-4)
    assert list(np.argsort(d32)) == list(np.argsort(d64))
