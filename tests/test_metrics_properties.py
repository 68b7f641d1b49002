"""Properties every transferability metric should have, in the spirit of the well-known
transferability test suites: well-separated features score above random ones; the score does
not depend on the order of the samples or on the names of the labels. Plus metric-specific
sanity bounds (LEEP, GBC, H-score) for the metrics present in the registry."""
from __future__ import annotations

import numpy as np
import pytest

import pedjax  # noqa: F401  (turns on x64)
from pedjax.metrics import REGISTRY

# Shapes shared with tests/test_metrics_ii.py, so compiled metric kernels are reused.
N, D, C = 160, 24, 4
Y = np.arange(N) % C
RENAME = np.array([40, -3, 7, 11])  # a bijection onto other integer labels

# metrics of class labels (a metric of real-valued targets, logme_reg, has its own tests)
FEATURE_METRICS = sorted(n for n, m in REGISTRY.items() if m.input == "features" and m.target == "classes")
OTHER_METRICS = sorted(n for n, m in REGISTRY.items() if m.input != "features" and m.target == "classes")


def _perfect(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(C, D))[Y] * 3.0 + 0.05 * rng.normal(size=(N, D))


def _random(seed=1):
    return np.random.default_rng(seed).normal(size=(N, D))


def _blobs(seed=1, sep=0.7):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(C, D))[Y] * sep + rng.normal(size=(N, D))


def _needs(name):
    if name not in REGISTRY:
        pytest.skip(f"metric {name!r} is not registered in this tree (written concurrently)")
    return REGISTRY[name].fn


def test_registry_lists_features_metrics():
    assert {"nleep", "parc", "transrate", "etran"} <= set(FEATURE_METRICS)


@pytest.mark.parametrize("name", FEATURE_METRICS)
def test_near_perfect_features_beat_random(name):
    fn = REGISTRY[name].fn
    good, bad = fn(_perfect(), Y), fn(_random(), Y)
    assert np.isfinite(good) and np.isfinite(bad)
    assert good > bad, (name, good, bad)


@pytest.mark.parametrize("name", FEATURE_METRICS)
def test_invariant_to_sample_order_and_label_names(name):
    fn = REGISTRY[name].fn
    X = _blobs()
    s = fn(X, Y)
    perm = np.random.default_rng(2).permutation(N)
    assert fn(X[perm], Y[perm]) == pytest.approx(s, rel=1e-7, abs=1e-9), name
    assert fn(X, RENAME[Y]) == pytest.approx(s, rel=1e-7, abs=1e-9), name


def _other_inputs(name, kind):
    """Inputs for probs/labels metrics: 'perfect' (the source model predicts the target),
    'random', or 'mixed' (for the invariance checks)."""
    rng = np.random.default_rng(3)
    m = REGISTRY[name]
    cs = 6  # source classes
    if m.input == "probs":
        if kind == "perfect":
            P = np.full((N, cs), 1e-3)
            P[np.arange(N), Y] = 1.0
            return P / P.sum(1, keepdims=True)
        P = rng.dirichlet(np.ones(cs), size=N)
        if kind == "mixed":
            P[np.arange(N), Y] += 1.0
            P /= P.sum(1, keepdims=True)
        return P
    if m.input == "labels":
        if kind == "perfect":
            return (Y + 2) % C
        z = rng.integers(0, cs, size=N)
        if kind == "mixed":
            z = np.where(rng.random(N) < 0.6, Y, z)
        return z
    raise AssertionError(m.input)


@pytest.mark.parametrize("name", OTHER_METRICS)
def test_other_inputs_perfect_beats_random_and_invariance(name):
    fn = REGISTRY[name].fn
    assert fn(_other_inputs(name, "perfect"), Y) > fn(_other_inputs(name, "random"), Y)
    Z = _other_inputs(name, "mixed")
    s = fn(Z, Y)
    perm = np.random.default_rng(4).permutation(N)
    assert fn(Z[perm], Y[perm]) == pytest.approx(s, rel=1e-9, abs=1e-12)
    assert fn(Z, RENAME[Y]) == pytest.approx(s, rel=1e-9, abs=1e-12)


def test_leep_of_uniform_predictions_is_log_one_over_c():
    leep = _needs("leep")
    P = np.full((N, 6), 1.0 / 6)
    assert leep(P, Y) == pytest.approx(np.log(1.0 / C), abs=1e-12)


def test_gbc_bounds():
    gbc = _needs("gbc")
    rng = np.random.default_rng(5)
    separable = rng.normal(size=(C, D))[Y] * 100.0 + 1e-3 * rng.normal(size=(N, D))
    assert -1e-9 <= gbc(separable, Y) <= 0.0
    overlapping = rng.normal(size=(N, D))  # every class the same distribution
    g = gbc(overlapping, Y)
    assert -C * (C - 1) < g < -0.5 * C * (C - 1)


def test_hscore_bounds():
    hscore = _needs("hscore")
    rng = np.random.default_rng(6)
    n, d = 2000, 8
    y = np.arange(n) % C
    assert abs(hscore(rng.normal(size=(n, d)), y)) < 0.05  # ≈ (C−1)·d/n for random features
    perfect = rng.normal(size=(C, d))[y] * 3.0 + 0.05 * rng.normal(size=(n, d))
    h = hscore(perfect, y)
    assert C - 1 - 0.1 < h < d
