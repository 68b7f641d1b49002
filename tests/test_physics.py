"""PED physics: energy/force identities, parity with the released loop, scan == while, gradients."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pedjax
from pedjax import metrics
from pedjax.physics import PEDConfig, closed_form_forces, forces, ped, ped_core, soft_sphere_energy
from reference_impl import make_data, np_ped, np_sfda


def _stats(seed, D):
    rng = np.random.default_rng(100 + seed)
    G = rng.standard_normal((300, D)) * rng.uniform(0.5, 2.0, D) + rng.standard_normal(D)
    return G.mean(0), G.std(0)


def test_force_is_minus_grad_and_matches_closed_form():
    rng = np.random.default_rng(0)
    c = jnp.asarray(rng.standard_normal((7, 5)))
    r = jnp.asarray(rng.uniform(0.5, 1.5, 7))
    F = np.asarray(jax.jit(forces)(c, r, 1.7))  # jitted: one program, not one per eager operation
    np.testing.assert_allclose(F, np.asarray(jax.jit(closed_form_forces)(c, r, 1.7)), rtol=1e-10, atol=1e-12)
    # explicit pair loop: F_a = Σ_b k·overlap·(c_a − c_b)/d
    cn, rn = np.asarray(c), np.asarray(r)
    ref = np.zeros_like(cn)
    U = 0.0
    for a in range(7):
        for b in range(7):
            if a != b:
                d = np.linalg.norm(cn[a] - cn[b])
                ov = max(rn[a] + rn[b] - d, 0)
                ref[a] += 1.7 * ov * (cn[a] - cn[b]) / d
                U += 0.25 * 1.7 * ov ** 2
    np.testing.assert_allclose(F, ref, rtol=1e-10, atol=1e-12)
    assert float(jax.jit(soft_sphere_energy)(c, r, 1.7)) == pytest.approx(U, rel=1e-12)


@pytest.mark.parametrize(
    "seed,N,D,C,nsigma,kw",
    [(0, 150, 8, 4, 0.6, {}), (1, 60, 80, 3, 0.3, {}), (2, 300, 12, 25, 0.6, {"sep": 0.5}),
     (3, 200, 10, 6, 2.0, {"imbalanced": True}), (4, 120, 6, 5, 0.6, {"singleton": True}), (5, 100, 6, 2, 0.0, {})],  # nsigma < 0 is refused (test_hostile_inputs)
)
def test_released_ped_matches_reference_loop(seed, N, D, C, nsigma, kw):
    X, y = make_data(seed, N, D, C, **kw)
    mean, std = _stats(seed, D)
    want, want_steps = np_ped(X, y, mean, std, nsigma=nsigma)
    res = ped(X, y, mean, std, PEDConfig(nsigma=nsigma))
    assert int(res.steps) == want_steps
    np.testing.assert_allclose(np.asarray(res.features), want, rtol=1e-9, atol=1e-9)
    scan = ped(X, y, mean, std, PEDConfig(nsigma=nsigma), path="scan")
    np.testing.assert_array_equal(np.asarray(scan.features), np.asarray(res.features))
    assert int(scan.steps) == int(res.steps)
    # PED + SFDA end to end
    assert metrics.sfda(np.asarray(res.features), y) == pytest.approx(np_sfda(want, y), rel=1e-6)


def test_early_exit_and_traces():
    X, y = make_data(0, 200, 6, 8, sep=0.2)
    mean, std = _stats(0, 6)
    for er in (0.0, 0.5, 0.99):
        res = ped(X, y, mean, std, PEDConfig(exit_ratio=er, max_steps=8))
        _, steps = np_ped(X, y, mean, std, exit_ratio=er, max_steps=8)
        assert int(res.steps) == steps
        ch, en = np.asarray(res.change), np.asarray(res.energy)
        assert np.all(ch[: steps] > 0) and np.all(ch[steps:] == 0)
        assert np.all(np.diff(en[: steps + 1]) < 0)  # potential energy descends
        assert np.all(en[steps:] == en[steps])


def test_no_overlap_is_one_zero_step():
    X, y = make_data(0, 100, 4, 3, sep=50.0)
    res = ped(X, y, X.mean(0), X.std(0))
    assert int(res.steps) == 1 and float(res.change[0]) == 0.0
    np.testing.assert_allclose(np.asarray(res.features), X, rtol=0, atol=1e-12)


def test_coinciding_centres_stay_finite():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((40, 5))
    X = np.concatenate([base, base, rng.standard_normal((40, 5)) + 0.2])
    y = np.repeat([0, 1, 2], 40)  # classes 0 and 1 have identical centres
    for path in ("while", "scan"):
        res = ped(X, y, X.mean(0), X.std(0), path=path)
        assert np.all(np.isfinite(np.asarray(res.features)))
        f = np.asarray(res.features)
        # the coinciding pair exerts no force on each other; both are pushed only by class 2
        np.testing.assert_allclose(f[:40].mean(0), f[40:80].mean(0), atol=1e-12)
    g = jax.jit(jax.grad(lambda ns: jnp.sum(ped_core(X, jnp.asarray(y), 3, X.mean(0), X.std(0), PEDConfig(nsigma=ns), path="scan").features)))(0.6)
    assert np.isfinite(float(g))


def test_paper_variant_against_numpy():
    X, y = make_data(3, 150, 5, 4, sep=0.3)
    mean, std = _stats(3, 5)
    cfg = PEDConfig(variant="paper", nsigma=0.8, constant=2.0, time_step=0.3, exit_ratio=0.9, max_steps=5, mass="class_size")
    res = ped(X, y, mean, std, cfg)
    Z = (X - mean) / np.maximum(std, 1e-3)
    cent = np.stack([Z[y == c].mean(0) for c in range(4)])
    rad = 0.8 * np.array([np.sqrt(Z[y == c].var(0).sum()) for c in range(4)])
    n = np.bincount(y)
    c, steps, w0 = cent.copy(), 0, None
    while steps < 5:
        F = np.zeros_like(c)
        for a in range(4):
            for b in range(4):
                if a != b:
                    d = np.linalg.norm(c[a] - c[b])
                    F[a] += 2.0 * max(rad[a] + rad[b] - d, 0) * (c[a] - c[b]) / d
        delta = 0.5 * (F / n[:, None]) * 0.3 ** 2
        c = c + delta
        steps += 1
        w = np.abs(delta).sum()
        w0 = w if w0 is None else w0
        if steps > 1 and w <= 0.9 * w0:
            break
    assert int(res.steps) == steps
    want = (Z + (c - cent)[y]) * np.maximum(std, 1e-3) + mean
    np.testing.assert_allclose(np.asarray(res.features), want, rtol=1e-9, atol=1e-9)


@functools.lru_cache(maxsize=None)
def _scan_objective(variant):
    """sum(w · PED(X)) as a function of PED's (nsigma, constant, time_step), jitted with its gradient:
    compiled once per variant, shared by the three fields' tests."""
    X, y = make_data(1, 80, 4, 3, sep=0.4)
    yj = jnp.asarray(y, jnp.int32)
    mean, std = X.mean(0), X.std(0) * 1.5
    w = np.random.default_rng(0).standard_normal(X.shape)
    base = PEDConfig(variant=variant, max_steps=4, exit_ratio=0.0, time_step=0.5)

    def f(hp):
        cfg = base.replace(**hp)
        return jnp.sum(w * ped_core(X, yj, 3, mean, std, cfg, path="scan").features)

    value_and_grad = jax.jit(jax.value_and_grad(f))  # one program: the value and the gradient
    return base, (lambda hp: value_and_grad(hp)[0]), (lambda hp: value_and_grad(hp)[1])


@pytest.mark.parametrize("variant", ["released", "paper"])
@pytest.mark.parametrize("field", ["nsigma", "constant", "time_step"])
def test_scan_gradients_match_finite_differences(variant, field):
    base, f, grad = _scan_objective(variant)
    hp0 = {k: getattr(base, k) for k in ("nsigma", "constant", "time_step")}
    v0 = hp0[field]
    g = float(grad(hp0)[field])
    h = 1e-6
    fd = (float(f({**hp0, field: v0 + h})) - float(f({**hp0, field: v0 - h}))) / (2 * h)
    assert g == pytest.approx(fd, rel=1e-5, abs=1e-8)
    assert g != 0.0


def test_labels_any_integers_and_none_stats():
    X, y = make_data(2, 90, 5, 3, sep=0.2)
    a = ped(X, y)
    b = ped(X, np.array([3, 7, 42])[y])
    np.testing.assert_array_equal(np.asarray(a.features), np.asarray(b.features))
    c = ped(X, y, X.mean(0), X.std(0))
    np.testing.assert_array_equal(np.asarray(a.features), np.asarray(c.features))


def test_ped_bad_input():
    X, y = make_data(0, 30, 4, 3)
    with pytest.raises(ValueError, match="source_mean"):
        ped(X, y, np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="source_std"):
        ped(X, y, np.zeros(4), np.full(4, np.nan))
    with pytest.raises(ValueError, match="source_mean/source_std"):
        ped(X, y, np.zeros(4), None)
    with pytest.raises(ValueError, match="variant"):
        ped(X, y, cfg=PEDConfig(variant="nope"))
    with pytest.raises(ValueError, match="max_steps"):
        ped(X, y, cfg=PEDConfig(max_steps=0))
    with pytest.raises(ValueError, match="path"):
        ped(X, y, path="loop")
    with pytest.raises(ValueError, match="y.*at least 2"):
        ped(X, np.zeros(30, int))
    assert isinstance(pedjax.PEDConfig(), PEDConfig)
