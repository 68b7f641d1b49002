"""Scoring from streamed sufficient statistics (pedjax.streaming) equals the in-memory scores.

Every supported metric ± PED, several shapes and seeds, relative difference ≤ 1e-9 in float64;
the statistics themselves, PED's shifts, the block sources (array, memmap, iterator), the
error for metrics that need samples, degenerate features; the 4-device path in a subprocess.
The 2-process jax.distributed test is in tests/test_streaming_distributed.py.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import pedjax
from pedjax import streaming

TOL = 1e-9
METRICS = ["logme", "sfda", "gbc", "hscore"]
ROOT = Path(__file__).resolve().parents[1]


def make(N, D, C, seed, sep=0.4, offset=2.0, dtype=np.float32):
    """Overlapping classes (PED moves them), a non-zero mean, a few correlated dimensions."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(N) % C)
    X = rng.normal(size=(N, D)) + sep * rng.normal(size=(C, D))[y] + offset
    X[:, : D // 4] += 0.5 * X[:, D // 4 : 2 * (D // 4)]
    labels = np.array([3, 7, 42, 100, 5, 11, 13, 17, 19, 23, 29, 31])[:C][y] if C <= 12 else y
    mean, std = rng.normal(size=D) + offset, rng.uniform(0.5, 2.0, D)
    return X.astype(dtype), labels, (mean, std)


def rel(a, b):
    return abs(a - b) / max(abs(a), 1e-300)


SHAPES = [(3000, 24, 6, 0), (2000, 40, 10, 1), (1500, 16, 3, 2), (20000, 32, 8, 3)]


# ~45 s each on the 2-core machine (compiling 8 in-memory programs per shape): slow
@pytest.mark.slow
@pytest.mark.parametrize("N,D,C,seed", SHAPES)
def test_scores_equal_in_memory(N, D, C, seed):
    X, y, stats = make(N, D, C, seed)
    cfg = pedjax.PEDConfig()
    res = pedjax.ped(X, y, *stats, cfg)
    assert int(res.steps) >= 1 and np.abs(np.asarray(res.features) - X).max() > 1e-3  # PED moves something
    static, moved = streaming.score_stream({"m": X}, y, METRICS, ped=cfg, source_stats={"m": stats},
                                           block_rows=N // 7 + 3, with_and_without_ped=True)
    for metric in METRICS:
        ref = pedjax.score_zoo({"m": X}, y, metric)["m"]
        ref_ped = pedjax.score_zoo({"m": X}, y, metric, ped=cfg, source_stats={"m": stats})["m"]
        assert rel(ref, static[metric]["m"]) <= TOL, (metric, ref, static[metric]["m"])
        assert rel(ref_ped, moved[metric]["m"]) <= TOL, (metric, "ped", ref_ped, moved[metric]["m"])


def test_statistics_and_ped_shifts_match_the_matrix():
    X, y, (mean, std) = make(2500, 12, 5, 4)
    s = streaming.compute_stats(X, y, block_rows=333)
    F = X.astype(np.float64)
    codes = np.searchsorted(np.unique(y), y)
    assert s.n == 2500 and s.num_classes == 5 and s.dim == 12
    np.testing.assert_allclose(s.raw_gram(), F.T @ F, rtol=1e-12)
    for c in range(5):
        Fc = F[codes == c]
        np.testing.assert_allclose(s.raw_class_sums()[c], Fc.sum(0), rtol=1e-12)
        np.testing.assert_allclose(s.class_var()[c], Fc.var(0), rtol=1e-10)
        np.testing.assert_array_equal(s.cmax[c], Fc.max(0))
    cfg = pedjax.PEDConfig(nsigma=1.0)
    res = pedjax.ped(X, y, mean, std, cfg)
    delta, steps = streaming.ped_shifts(s, mean, std, cfg)
    assert steps == int(res.steps) >= 2
    moved = np.asarray(res.features)
    np.testing.assert_allclose(F + delta[codes], moved, rtol=0, atol=1e-11)
    t = s.translated(delta)
    np.testing.assert_allclose(t.raw_gram(), moved.T @ moved, rtol=1e-11)
    np.testing.assert_allclose(t.class_var(), s.class_var(), rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_paper_variant_and_target_statistics():
    X, y, _ = make(1800, 20, 4, 5)
    cfg = pedjax.PEDConfig(variant="paper", mass="class_size", nsigma=1.2, time_step=0.5)
    for metric in ("logme", "gbc"):
        ref = pedjax.score_zoo({"m": X}, y, metric, ped=cfg)["m"]  # source stats: the target's own
        got = streaming.score_stream({"m": X}, y, metric, ped=cfg, block_rows=256)["m"]
        assert rel(ref, got) <= TOL


def test_diagonal_gbc_and_hscore_rcond():
    X, y, _ = make(1200, 10, 4, 6)
    got = streaming.score_stream(X, y, ["gbc", "hscore"], metric_options={"gaussian_type": "diagonal", "rcond": 1e-5})
    assert rel(pedjax.metrics.gbc(X, y, gaussian_type="diagonal"), got["gbc"]["model_0"]) <= TOL
    assert rel(pedjax.metrics.hscore(X, y, rcond=1e-5), got["hscore"]["model_0"]) <= TOL


def test_fewer_samples_than_dimensions():
    X, y, _ = make(60, 90, 4, 7, dtype=np.float64)
    got = streaming.score_stream(X, y, ["logme", "hscore"], block_rows=16)
    assert rel(pedjax.metrics.logme(X, y), got["logme"]["model_0"]) <= TOL
    assert rel(pedjax.metrics.hscore(X, y), got["hscore"]["model_0"]) <= TOL


@pytest.mark.parametrize("N,D,C,seed,block", [(900, 12, 4, 0, 101), (50, 70, 3, 1, 16), (400, 20, 2, 2, 400)])
def test_lfc_and_regularized_hscore_stream(N, D, C, seed, block):
    """LFC (one pass, both norms) and the regularized H-score (a second pass for Ledoit–Wolf's
    fourth moment) equal the in-memory metrics, statically and after PED (shifts added to the rows
    of the second pass), including D > N and two classes."""
    X, y, stats = make(N, D, C, seed)
    cfg = pedjax.PEDConfig()
    static, moved = streaming.score_stream({"m": X}, y, ["lfc", "hscore_reg"], ped=cfg, source_stats={"m": stats},
                                           block_rows=block, with_and_without_ped=True)
    moved_X = np.asarray(pedjax.ped(X, y, *stats, cfg).features)
    for metric, fn in (("lfc", pedjax.metrics.lfc), ("hscore_reg", pedjax.metrics.hscore_reg)):
        assert rel(fn(X, y), static[metric]["m"]) <= TOL, (metric, fn(X, y), static[metric]["m"])
        assert rel(fn(moved_X, y), moved[metric]["m"]) <= 1e-7, (metric, "ped", fn(moved_X, y), moved[metric]["m"])
    spectral = streaming.score_stream(X, y, "lfc", metric_options={"norm": "spectral"}, block_rows=block)
    assert rel(pedjax.metrics.lfc(X, y, norm="spectral"), spectral["model_0"]) <= TOL
    with pytest.raises(ValueError, match="twice"):
        streaming.score_stream({"m": iter([(X, y)])}, None, "hscore_reg", classes=np.unique(y))


@pytest.mark.slow
def test_memmap_npy_and_iterator_sources(tmp_path):
    X, y, stats = make(2100, 16, 5, 8)
    np.save(tmp_path / "f.npy", X)
    np.save(tmp_path / "y.npy", y)
    cfg = pedjax.PEDConfig()
    ref = pedjax.score_zoo({"m": X}, y, "sfda", ped=cfg, source_stats={"m": stats})["m"]
    from_file = streaming.score_stream({"m": str(tmp_path / "f.npy")}, str(tmp_path / "y.npy"), "sfda", ped=cfg,
                                       source_stats={"m": stats}, block_rows=500)["m"]
    assert rel(ref, from_file) <= TOL

    def blocks():  # a fresh iterator per pass (SFDA reads three times), uneven block sizes
        for i in range(0, 2100, 450):
            yield X[i : i + 450], y[i : i + 450]

    from_iter = streaming.score_stream({"m": blocks}, None, "sfda", ped=cfg, source_stats={"m": stats},
                                       classes=np.unique(y), block_rows=300)["m"]
    assert rel(ref, from_iter) <= TOL
    once = streaming.score_stream({"m": blocks()}, None, "logme", classes=np.unique(y))["m"]
    assert rel(pedjax.metrics.logme(X, y), once) <= TOL
    with pytest.raises(ValueError, match="three times"):
        streaming.score_stream({"m": blocks()}, None, "sfda", classes=np.unique(y))


def test_sample_metrics_say_so_and_subsample():
    X, y, _ = make(500, 8, 3, 9)
    for metric in ("nleep", "parc", "etran", "transrate", "leep"):
        with pytest.raises(ValueError, match="subsample"):
            streaming.score_stream(X, y, metric)
    Xs, ys = streaming.subsample(X, y, n=200, seed=1)
    assert Xs.shape == (200, 8) and ys.shape == (200,) and Xs.dtype == np.float64
    assert np.isfinite(pedjax.metrics.parc(Xs, ys))


def test_degenerate_and_bad_input():
    y = np.arange(400) % 4
    X = np.full((400, 6), 0.25, np.float32)
    assert streaming.score_stream(X, y, "logme")["model_0"] == float("-inf")
    assert pedjax.score_zoo({"m": X}, y, "logme")["m"] == float("-inf")
    Xn = np.random.default_rng(0).normal(size=(400, 6))
    Xn[123, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        streaming.score_stream(Xn, y, "logme", block_rows=100)
    with pytest.raises(ValueError, match="labels"):
        streaming.score_stream(Xn[:10], y, "logme")
    with pytest.raises(ValueError, match="classes="):
        streaming.score_stream(iter([(Xn, y)]), None, "logme")


def test_float64_scope_does_not_leak():
    import jax

    X, y, _ = make(300, 6, 3, 10)
    before = bool(jax.config.jax_enable_x64)
    streaming.score_stream(X, y, "gbc")
    assert bool(jax.config.jax_enable_x64) == before


_FOUR_DEVICES = """
import numpy as np, jax, pedjax
from pedjax import streaming
assert jax.local_device_count() == 4, jax.devices()
rng = np.random.default_rng(0)
N, D, C = 3001, 12, 5
y = rng.permutation(np.arange(N) % C)
X = (rng.normal(size=(N, D)) + 0.4 * rng.normal(size=(C, D))[y] + 1.0).astype(np.float32)
stats = {"m": (rng.normal(size=D), rng.uniform(0.5, 2.0, D))}
cfg = pedjax.PEDConfig()
eng = streaming.Engine(block_rows=250)
assert eng.n_dev == 4 and eng.mesh is not None
static, moved = streaming.score_stream({"m": X}, y, ["logme", "sfda", "gbc", "hscore"], ped=cfg, source_stats=stats,
                                       devices=eng, with_and_without_ped=True)
worst = 0.0
for m in static:
    for ped, got in ((None, static), (cfg, moved)):
        ref = pedjax.score_zoo({"m": X}, y, m, ped=ped, source_stats=stats if ped else None)["m"]
        worst = max(worst, abs(ref - got[m]["m"]) / abs(ref))
print("WORST", worst)
assert worst <= 1e-9, worst
"""


@pytest.mark.slow
def test_four_host_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", _FOUR_DEVICES], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "WORST" in r.stdout
