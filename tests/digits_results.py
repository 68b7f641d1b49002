"""A small zoo on real data, written in the published PED/SFDA results layout, shared by the
command-line tests (tests/test_cli_score.py, test_cli_evaluate.py, test_cli_plot.py) and
tests/test_features.py.

The data: scikit-learn's handwritten digits (real 8×8 images), turned into a small zoo of feature
extractors (PCA, random projection, random ReLU features) and written in the layout of the
published PED/SFDA code — ``{model}_{dataset}_feature.npy`` / ``_label.npy`` (float32, as torch
writes them) and ``{model}_imagenet_feature.npy`` (the source set; here the other half of digits).
One model's samples are shuffled, as the published loader may do. Ground truth: linear-probe accuracy.
"""
from __future__ import annotations

import functools
import json

import numpy as np

import pedjax
from pedjax.features import write_results_dir

DATASET = "digits"
PNG = b"\x89PNG\r\n\x1a\n"


@functools.lru_cache(maxsize=None)
def _arrays():
    """The zoo's arrays and probe ground truth, computed once per test process."""
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
    half = len(tgt) // 2
    truth = {m: float(LogisticRegression(max_iter=2000).fit(F[:half], labels[m][:half]).score(F[half:], labels[m][half:])) for m, F in feats.items()}
    return feats, labels, source, truth


def build(root) -> dict:
    """Write the results folder and truth.json under ``root``; the arrays and truth as a dict
    (fresh copies: a test may change them)."""
    feats, labels, source, truth = _arrays()
    feats, labels, source = ({m: a.copy() for m, a in d.items()} for d in (feats, labels, source))
    results = write_results_dir(root / "results_f", DATASET, feats, labels, source)
    (root / "truth.json").write_text(json.dumps({DATASET: truth}))
    return dict(root=root, results=results, feats=feats, labels=labels, source=source, truth=dict(truth))


def expected(zoo, metric, ped):
    """score_zoo on the same arrays: float64 features, source mean/std (ddof 0), grouped by labels."""
    f64 = {m: F.astype(np.float64) for m, F in zoo["feats"].items()}
    stats = {m: (S.astype(np.float64).mean(0), S.astype(np.float64).std(0)) for m, S in zoo["source"].items()}
    same = [m for m in f64 if m != "relu-32"]
    out = pedjax.score_zoo({m: f64[m] for m in same}, zoo["labels"]["pca-16"], metric, ped=ped, source_stats=stats if ped else None)
    out.update(pedjax.score_zoo({"relu-32": f64["relu-32"]}, zoo["labels"]["relu-32"], metric, ped=ped, source_stats=stats if ped else None))
    return out


def run(capsys, *args):
    """``pedjax ARGS`` in this process: (exit code, stdout, stderr)."""
    from pedjax import cli

    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys, *args) -> str:
    """``pedjax ARGS`` must exit 0; its stdout."""
    code, out, err = run(capsys, *args)
    assert code == 0, err
    return out


def main_err(capsys, *args) -> str:
    """``pedjax ARGS`` must fail with one line on stderr and exit 2; that line."""
    code, _, err = run(capsys, *args)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


@functools.lru_cache(maxsize=None)
def digits_zoo():
    """``pedjax.features.digits_zoo()`` (seed 0), computed once per test process: it trains two MLPs
    and eleven linear probes (tests/test_features.py and tests/test_cli_demo.py share it)."""
    from pedjax.features import digits_zoo as build_digits_zoo

    return build_digits_zoo()
