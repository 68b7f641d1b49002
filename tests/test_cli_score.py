"""End to end: every subcommand of issue 6 (score, evaluate, plot) through a subprocess on real data.

The data: scikit-learn's handwritten digits (real 8×8 images), turned into a small zoo of feature
extractors (PCA, random projection, random ReLU features) and written in the layout of the
published PED/SFDA code — ``{model}_{dataset}_feature.npy`` / ``_label.npy`` (float32, as torch
writes them) and ``{model}_imagenet_feature.npy`` (the source set; here the other half of digits).
One model's samples are shuffled, as the published loader may do. Ground truth: linear-probe accuracy.

Each subprocess pays the JAX import, so the file keeps them few; the error paths beyond one
subprocess run in-process through ``pedjax.cli.main``.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats

import pedjax
from pedjax import cli, rank
from pedjax.features import save_npz_zoo, write_results_dir

DATASET = "digits"
PNG = b"\x89PNG\r\n\x1a\n"


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pedjax.cli", *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)


def _ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(y))
    src, tgt = perm[:700], perm[700:1300]
    W16, W32 = rng.standard_normal((64, 16)) / 8, rng.standard_normal((64, 32)) / 8
    maps = {  # two feature widths: two compiled groups per metric
        "pca-16": PCA(16, random_state=0).fit(X[src]).transform,
        "randproj-16": lambda A: A @ W16,
        "tanh-16": lambda A: np.tanh(3 * A @ W16),
        "relu-32": lambda A: np.maximum(A @ W32 + 0.3, 0.0),
    }
    feats = {m: f(X[tgt]).astype(np.float32) for m, f in maps.items()}
    source = {m: f(X[src]).astype(np.float32) for m, f in maps.items()}
    labels = {m: y[tgt] for m in maps}
    shuf = rng.permutation(len(tgt))  # a shuffled loader: relu-32's samples in another order
    feats["relu-32"], labels["relu-32"] = feats["relu-32"][shuf], labels["relu-32"][shuf]
    root = tmp_path_factory.mktemp("e2e")
    results = write_results_dir(root / "results_f", DATASET, feats, labels, source)
    half = len(tgt) // 2
    truth = {m: float(LogisticRegression(max_iter=2000).fit(F[:half], labels[m][:half]).score(F[half:], labels[m][half:])) for m, F in feats.items()}
    (root / "truth.json").write_text(json.dumps({DATASET: truth}))
    return dict(root=root, results=results, feats=feats, labels=labels, source=source, truth=truth)


def _expected(zoo, metric, ped):
    """score_zoo on the same arrays: float64 features, source mean/std (ddof 0), grouped by labels."""
    f64 = {m: F.astype(np.float64) for m, F in zoo["feats"].items()}
    stats = {m: (S.astype(np.float64).mean(0), S.astype(np.float64).std(0)) for m, S in zoo["source"].items()}
    same = [m for m in f64 if m != "relu-32"]
    out = pedjax.score_zoo({m: f64[m] for m in same}, zoo["labels"]["pca-16"], metric, ped=ped, source_stats=stats if ped else None)
    out.update(pedjax.score_zoo({"relu-32": f64["relu-32"]}, zoo["labels"]["relu-32"], metric, ped=ped, source_stats=stats if ped else None))
    return out


def test_score_results_dir_ped_json_equals_score_zoo_and_plots(zoo):
    figs = zoo["root"] / "figs_score"
    out = json.loads(_ok(_run("score", "--results-dir", zoo["results"], "--dataset", DATASET, "--metric", "sfda", "--ped", "--nsigma", "0.6", "--json", "--plot", figs)))
    assert out["dataset"] == DATASET and out["metric"] == "sfda" and out["ped"]["nsigma"] == 0.6
    expected = _expected(zoo, "sfda", pedjax.PEDConfig(nsigma=0.6))
    assert set(out["scores"]) == set(expected) == set(zoo["feats"])
    for m, v in expected.items():
        assert out["scores"][m] == pytest.approx(v, rel=1e-12, abs=1e-12), m
    assert out["ranking"] == sorted(expected, key=lambda k: -expected[k])
    assert sorted(p.name for p in figs.iterdir()) == sorted(["scores.png", "ped_trajectory.png", f"clusters_{out['ranking'][0]}.png"])
    for p in figs.iterdir():
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000
    (zoo["root"] / "sfda_ped.json").write_text(json.dumps(out))


def test_score_npz_zoo_csv(zoo):
    path = save_npz_zoo(zoo["root"] / "zoo.npz", {m: zoo["feats"][m] for m in ("pca-16", "randproj-16", "tanh-16")}, zoo["labels"]["pca-16"], dataset=DATASET)
    text = _ok(_run("score", "--zoo", path, "--metric", "LogME", "--csv"))
    lines = text.strip().splitlines()
    assert lines[0] == "rank,model,score" and len(lines) == 4
    got = {row.split(",")[1]: float(row.split(",")[2]) for row in lines[1:]}
    exp = _expected(zoo, "logme", None)
    for m, v in got.items():
        assert v == pytest.approx(exp[m], rel=1e-12, abs=1e-12)
    assert [row.split(",")[1] for row in lines[1:]] == sorted(got, key=lambda k: -got[k])
    # the library path with one model per loaded batch and the progress bar: the same scores
    from pedjax.features import open_store
    from pedjax.scoring import score_store

    one_by_one = score_store(open_store(zoo["results"], dataset=DATASET), "logme", progress=True, load_budget=1)
    assert one_by_one == pytest.approx(exp, rel=1e-10)


def test_evaluate_pedjax_and_published_scores(zoo):
    # a published-layout scores file: results_metrics_cr/{metric}/{dataset}_metrics.json
    pub = zoo["root"] / "results_metrics_cr" / "logme" / f"{DATASET}_metrics.json"
    pub.parent.mkdir(parents=True)
    logme = _expected(zoo, "logme", None)
    pub.write_text(json.dumps({**logme, "duration": 1.5}))
    scores = zoo["root"] / "sfda_ped.json"
    if not scores.exists():
        scores.write_text(json.dumps({"metric": "sfda", "ped": {"nsigma": 0.6}, "dataset": DATASET, "scores": _expected(zoo, "sfda", pedjax.PEDConfig())}))
    figs = zoo["root"] / "figs_eval"
    out = json.loads(_ok(_run("evaluate", "--scores", scores, "--scores", pub, "--truth", zoo["root"] / "truth.json", "--json", "--plot", figs)))
    assert out["dataset"] == DATASET and set(out["results"]) == {"sfda+ped", "logme"}
    truth = zoo["truth"]
    for label, s in (("logme", logme), ("sfda+ped", json.loads(scores.read_text())["scores"])):
        r = out["results"][label]
        models = list(s)
        x, t = [s[m] for m in models], [truth[m] for m in models]
        assert r["models"] == 4
        assert r["weighted_tau"] == pytest.approx(scipy.stats.weightedtau(x, t)[0], abs=1e-12)
        assert r["kendall_tau"] == pytest.approx(scipy.stats.kendalltau(x, t).statistic, abs=1e-12)
        assert r["pearson"] == pytest.approx(scipy.stats.pearsonr(x, t).statistic, abs=1e-12)
        assert r["top1"] == rank.top_k(x, t, 1) and r["top3"] == rank.top_k(x, t, 3)
        assert r["rel1"] == pytest.approx(rank.rel_k(x, t, 1)) and r["rel3"] == pytest.approx(rank.rel_k(x, t, 3))
        assert r["pick"] == max(s, key=s.get)
    png = figs / "scores_vs_truth.png"
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000


def test_evaluate_ssl_transfer_matches_tw_py(tmp_path):
    """The shipped table reproduces tw.py's evaluation: weightedtau(score, finetune_acc[dset])."""
    from pedjax.rank import truth_tables

    tables, _ = truth_tables("ssl-transfer")
    assert len(tables) == 11 and all(len(v) == 12 for v in tables.values())
    assert tables["cifar10"]["byol"] == 96.98 and tables["voc2007"]["swav"] == 85.06 and tables["sun397"]["insdis"] == 51.62
    rng = np.random.default_rng(1)
    score = {m: float(v) for m, v in zip(tables["cifar10"], rng.standard_normal(12))}
    d = tmp_path / "PED"
    d.mkdir()
    (d / "cifar10_metrics.json").write_text(json.dumps(score))
    r = _run("evaluate", "--scores", d / "cifar10_metrics.json", "--truth", "ssl-transfer")  # dataset from the file name; table output
    out = _ok(r)
    gt = tables["cifar10"]
    tw = scipy.stats.weightedtau(list(score.values()), [gt[m] for m in score])[0]
    assert "PED" in out and f"{tw:+.3f}" in out and "ssl-transfer" in out


def test_plot_subcommands(zoo, capsys):
    out = zoo["root"] / "plots"
    _ok(_run("plot", "trajectory", "--results-dir", zoo["results"], "--dataset", DATASET, "--out", out / "t.png"))
    # same command path in-process (saves a JAX start-up)
    assert cli.main(["plot", "clusters", "--results-dir", str(zoo["results"]), "--dataset", DATASET, "--model", "pca-16", "--nsigma", "2", "--out", str(out / "c.png")]) == 0
    assert capsys.readouterr().out.strip() == str(out / "c.png")
    scores = zoo["root"] / "logme_scores.json"
    scores.write_text(json.dumps({"metric": "logme", "dataset": DATASET, "scores": _expected(zoo, "logme", None)}))
    _ok(_run("plot", "scatter", "--scores", scores, "--truth", zoo["root"] / "truth.json", "--out", out / "s.png"))
    for name in ("t.png", "c.png", "s.png"):
        assert (out / name).read_bytes()[:8] == PNG


# ------------------------------------------------------------------------------------------------
# errors a person can act on: one line, exit 2, no traceback (unless --debug)


def test_error_subprocess_unknown_dataset_one_line(zoo):
    r = _run("score", "--results-dir", zoo["results"], "--dataset", "cifar10", "--metric", "logme")
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "cifar10" in r.stderr and "datasets found there: ['digits']" in r.stderr
    assert "{model}_cifar10_feature.npy" in r.stderr


def _main_err(capsys, *args):
    code = cli.main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def _copy(zoo, tmp_path, drop=(), change=None):
    import shutil

    d = tmp_path / "r"
    shutil.copytree(zoo["results"], d)
    for name in drop:
        (d / name).unlink()
    for name, arr in (change or {}).items():
        np.save(d / name, arr)
    return d


def test_errors_in_process(zoo, tmp_path, capsys):
    res = zoo["results"]
    err = _main_err(capsys, "score", "--results-dir", res, "--dataset", DATASET, "--metric", "nope")
    assert "unknown metric 'nope'" in err and "'logme'" in err and "'sfda'" in err
    err = _main_err(capsys, "score", "--results-dir", res, "--dataset", DATASET, "--metric", "leep")
    assert "not features" in err
    err = _main_err(capsys, "score", "--results-dir", tmp_path / "nowhere", "--dataset", DATASET)
    assert "not a folder" in err
    d = _copy(zoo, tmp_path, drop=["pca-16_digits_label.npy", "relu-32_imagenet_feature.npy"])
    err = _main_err(capsys, "score", "--results-dir", d, "--dataset", DATASET)
    assert "missing label file(s)" in err and "pca-16_digits_label.npy" in err
    (d / "pca-16_digits_feature.npy").unlink()
    err = _main_err(capsys, "score", "--results-dir", d, "--dataset", DATASET, "--ped")
    assert "relu-32_imagenet_feature.npy" in err and "--source-set target" in err
    bad = zoo["feats"]["tanh-16"].copy()
    bad[3, 1] = np.nan
    d2 = _copy(zoo, tmp_path / "b", change={"tanh-16_digits_feature.npy": bad, "randproj-16_digits_label.npy": zoo["labels"]["pca-16"][:-5]})
    err = _main_err(capsys, "score", "--results-dir", d2, "--dataset", DATASET, "--model", "tanh-16")
    assert "model 'tanh-16'" in err and "NaN" in err and "--exclude tanh-16" in err
    err = _main_err(capsys, "score", "--results-dir", d2, "--dataset", DATASET, "--exclude", "tanh-16")
    assert "model 'randproj-16'" in err and "600 rows" in err and "595 labels" in err
    (tmp_path / "s.json").write_text(json.dumps({"byol": 1.0, "swav": 2.0}))
    err = _main_err(capsys, "evaluate", "--scores", tmp_path / "s.json", "--truth", "ssl-transfer", "--dataset", "mnist")
    assert "no dataset 'mnist'" in err and "cifar10" in err and "voc2007" in err
    err = _main_err(capsys, "evaluate", "--scores", tmp_path / "none.json", "--truth", "ssl-transfer")
    assert "no file" in err
    with pytest.raises(ValueError):
        cli.main(["--debug", "score", "--results-dir", str(res), "--dataset", DATASET, "--metric", "nope"])


def test_npz_layouts_read_like_the_folder(zoo, tmp_path):
    """An .npz holding the results-folder keys, and the pedjax npz layout with source statistics."""
    from pedjax.features import open_store as open_zoo

    folder = open_zoo(zoo["results"], dataset=DATASET)
    arrays = {p.stem: np.load(p) for p in zoo["results"].iterdir()}
    np.savez(tmp_path / "flat.npz", **arrays)
    flat = open_zoo(zoo=tmp_path / "flat.npz")  # dataset inferred from the keys
    assert flat.dataset == DATASET and flat.models == folder.models
    for m in folder.models:
        np.testing.assert_array_equal(flat.features(m), folder.features(m))
        np.testing.assert_array_equal(flat.labels(m), folder.labels(m))
        for a, b in zip(flat.source_stats(m), folder.source_stats(m)):
            np.testing.assert_array_equal(a, b)
    S = zoo["source"]["pca-16"].astype(np.float64)
    np.testing.assert_allclose(folder.source_stats("pca-16")[0], S.mean(0), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(folder.source_stats("pca-16")[1], S.std(0), rtol=1e-13, atol=1e-15)
    stats = {m: folder.source_stats(m) for m in ("pca-16", "tanh-16")}
    path = save_npz_zoo(tmp_path / "z", {m: zoo["feats"][m] for m in stats}, zoo["labels"]["pca-16"], source_stats=stats, dataset=DATASET)
    z = open_zoo(zoo=path, exclude=["tanh-16"])
    assert z.models == ["pca-16"] and z.dataset == DATASET
    np.testing.assert_array_equal(z.source_stats("pca-16")[1], stats["pca-16"][1])
    with pytest.raises(ValueError, match="holds dataset 'digits', not 'cifar10'"):
        open_zoo(zoo=path, dataset="cifar10")
    feats, labels, st = open_zoo(zoo=path).load(source=True)
    assert set(feats) == set(st) == {"pca-16", "tanh-16"} and all(F.dtype == np.float64 for F in feats.values())
