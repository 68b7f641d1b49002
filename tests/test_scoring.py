"""score_zoo: equals per-model scoring, groups by dimension, shards the model axis, validates; score_store."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pedjax
from pedjax import metrics
from pedjax.physics import PEDConfig, ped
from reference_impl import make_data


def _zoo(seed=0, n=120, C=4):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(C), rng.integers(0, C, n - C)])
    feats = {}
    for i, d in enumerate([6, 6, 9, 6, 9]):
        feats[f"m{i}"] = rng.standard_normal((n, d)) + rng.uniform(0.1, 0.6) * rng.standard_normal((C, d))[y]
    stats = {k: (v.mean(0) + 0.1, v.std(0) * 1.2) for k, v in feats.items()}
    return feats, y, stats


@pytest.mark.parametrize("metric", ["logme", "sfda", "nleep"])  # nleep: batch="host"
def test_score_zoo_equals_one_by_one(metric):
    feats, y, stats = _zoo()
    cfg = PEDConfig(nsigma=0.6)
    got = pedjax.score_zoo(feats, y, metric=metric, ped=cfg, source_stats=stats, batch_size=2)
    assert list(got) == list(feats)
    fn = getattr(metrics, metric)
    for k, X in feats.items():
        moved = np.asarray(ped(X, y, *stats[k], cfg).features)
        assert got[k] == pytest.approx(fn(moved, y), rel=1e-10)
    static = pedjax.score_zoo(feats, y, metric=metric)
    for k, X in feats.items():
        assert static[k] == pytest.approx(fn(X, y), rel=1e-10)


def test_array_zoo_and_label_values():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 60)
    arr = rng.standard_normal((4, 60, 5)) + rng.standard_normal((4, 3, 5))[:, y]
    a = pedjax.score_zoo(arr, y, "logme", ped=PEDConfig())
    b = pedjax.score_zoo(arr, np.array([3, 7, 42])[y], "logme", ped=PEDConfig())
    assert list(a) == [f"model_{i}" for i in range(4)] and a == b
    assert a == pedjax.score_zoo(arr, y, "logme", ped=PEDConfig())  # deterministic


@pytest.mark.slow  # ~15 s: a second JAX process (the device count is fixed at start-up)
def test_sharded_scores_identical(tmp_path):
    """Under 4 host devices the model axis is sharded; scores equal the single-device run."""
    feats, y, stats = _zoo(2)
    np.savez(tmp_path / "zoo.npz", y=y, **{f"f_{k}": v for k, v in feats.items()},
             **{f"m_{k}": s[0] for k, s in stats.items()}, **{f"s_{k}": s[1] for k, s in stats.items()})
    script = textwrap.dedent(f"""
        import json, numpy as np, jax, pedjax
        z = np.load({str(tmp_path / 'zoo.npz')!r})
        names = [k[2:] for k in z.files if k.startswith('f_')]
        feats = {{n: z['f_' + n] for n in names}}
        stats = {{n: (z['m_' + n], z['s_' + n]) for n in names}}
        out = {{'devices': jax.local_device_count()}}
        for m in ('logme', 'sfda'):
            out[m] = pedjax.score_zoo(feats, z['y'], m, ped=pedjax.PEDConfig(), source_stats=stats)
        print(json.dumps(out))
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4
    for m in ("logme", "sfda"):
        want = pedjax.score_zoo(feats, y, m, ped=PEDConfig(), source_stats=stats)
        for k in feats:
            assert out[m][k] == pytest.approx(want[k], rel=1e-10)


def test_score_zoo_bad_input():
    feats, y, stats = _zoo()
    with pytest.raises(ValueError, match="features: the zoo is empty"):
        pedjax.score_zoo({}, y)
    with pytest.raises(ValueError, match="metric: unknown metric 'nope'"):
        pedjax.score_zoo(feats, y, metric="nope")
    bad = dict(feats)
    bad["m1"] = bad["m1"].copy()
    bad["m1"][3, 2] = np.inf
    with pytest.raises(ValueError, match=r"features\['m1'\].*NaN or infinite"):
        pedjax.score_zoo(bad, y)
    with pytest.raises(ValueError, match=r"features\['m0'\].*rows"):
        pedjax.score_zoo({"m0": feats["m0"][:-1]}, y)
    with pytest.raises(ValueError, match="labels.*at least 2"):
        pedjax.score_zoo(feats, np.zeros_like(y))
    wrong = dict(stats)
    wrong["m2"] = (np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match=r"source_stats\['m2'\] mean.*\(9,\)"):
        pedjax.score_zoo(feats, y, ped=PEDConfig(), source_stats=wrong)
    with pytest.raises(ValueError, match=r"source_stats: no statistics for model\(s\) \['m4'\]"):
        pedjax.score_zoo(feats, y, ped=PEDConfig(), source_stats={k: v for k, v in stats.items() if k != "m4"})
    with pytest.raises(ValueError, match="features: expected a dict"):
        pedjax.score_zoo(np.zeros((3, 4)), y)


def test_ped_zoo_then_static_scoring_equals_fused_score_zoo():
    """Moving a zoo once (ped_zoo) and scoring statically equals score_zoo(ped=cfg) per metric."""
    rng = np.random.default_rng(5)
    y = np.repeat([3, 7, 42], 40)
    feats = {f"m{i}": rng.normal(size=(120, d)) + (i + 1) * 0.5 * np.eye(3, d)[np.searchsorted([3, 7, 42], y)]
             for i, d in enumerate((8, 8, 13))}
    stats = {k: (v.mean(0) + 0.1, v.std(0) * 1.2) for k, v in feats.items()}
    cfg = pedjax.PEDConfig(nsigma=0.6)
    moved = pedjax.ped_zoo(feats, y, cfg, stats)
    assert list(moved) == list(feats) and all(moved[k].shape == feats[k].shape for k in feats)
    assert any(not np.allclose(moved[k], feats[k]) for k in feats)  # PED moved something
    for k in feats:  # each model alone through the public single-model PED
        ref = np.asarray(pedjax.ped(feats[k], y, *stats[k], cfg=cfg).features)
        np.testing.assert_allclose(moved[k], ref, rtol=1e-10, atol=1e-12)
    for metric in ("logme", "gbc"):  # NLEEP's + PED path is ped_zoo's program followed by nleep()
        fused = pedjax.score_zoo(feats, y, metric=metric, ped=cfg, source_stats=stats)
        split = pedjax.score_zoo(moved, y, metric=metric)
        for k in feats:
            assert abs(fused[k] - split[k]) <= 1e-9 * max(1.0, abs(fused[k])), (metric, k)
    with pytest.raises(ValueError, match="ped"):
        pedjax.ped_zoo(feats, y, ped="0.6")


def test_precompile_compiles_in_background_and_scores_are_unchanged():
    """precompile validates up front, compiles every (width, chunk) program on threads, and the
    scores afterwards equal a plain score_zoo call."""
    from pedjax.scoring import precompile

    rng = np.random.default_rng(9)
    y = np.arange(90) % 3
    feats = {"a": rng.normal(size=(90, 6)), "b": rng.normal(size=(90, 6)), "c": rng.normal(size=(90, 11))}
    with pytest.raises(ValueError, match="metric"):
        precompile(feats, y, ["logme", "nope"])
    with pytest.raises(ValueError, match="features"):
        precompile({"a": np.full((90, 4), np.nan)}, y, ["logme"])
    comp = precompile(feats, y, ["gbc", "hscore", "nleep"], workers=2)
    assert comp.wait("gbc") == 2 and comp.wait("nleep") == 0  # two widths; host metrics compile inline
    assert comp.wait() == 4
    for metric in ("gbc", "hscore"):
        got = pedjax.score_zoo(feats, y, metric=metric)
        for k, X in feats.items():
            assert abs(got[k] - getattr(metrics, metric)(X, y)) <= 1e-10 * max(1.0, abs(got[k]))


def test_score_store_one_model_per_batch_equals_score_zoo(tmp_path):
    """score_store on a results folder (tests/digits_results.py) with the progress bar and a load
    budget of one 16-wide model (600×16 float64): one model per loaded batch, the 32-wide model
    over the budget streamed (pedjax.streaming). The same scores as score_zoo on the arrays
    (`pedjax score` runs this path)."""
    from pedjax.features import open_store
    from pedjax.scoring import score_store
    from digits_results import DATASET, build, expected

    zoo = build(tmp_path)
    with pytest.warns(UserWarning, match="relu-32_digits_feature.npy .* larger than the load budget"):
        one_by_one = score_store(open_store(zoo["results"], dataset=DATASET), "logme", progress=True, load_budget=600 * 16 * 8)
    assert one_by_one == pytest.approx(expected(zoo, "logme", None), rel=1e-10)
