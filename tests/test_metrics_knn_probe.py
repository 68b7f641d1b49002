"""kNN accuracy and the linear probe against independent scikit-learn / NumPy transcriptions.

References written here, sharing no code with pedjax:
  * the fold rule of ``pedjax/metrics/_knn.py``'s docstring in NumPy (``np.lexsort``, the
    ``lowbias32`` hash in uint64 arithmetic), and its class allocation against scikit-learn's
    ``StratifiedKFold``;
  * kNN: scikit-learn's ``KNeighborsClassifier`` per fold (``ties="sklearn"``), and a brute-force
    NumPy vote with exact differences for the default nearest-neighbour tie rule;
  * linear probe: ``StandardScaler`` on all samples, then scikit-learn's ``LogisticRegression``
    (multinomial; for a training fold with two classes, the binary model with C doubled) per fold.
Shapes are reused so compiled programs are shared.
"""
from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.stats
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from reference_impl import lowbias32, signs_ref

import pedjax
import importlib

# the modules (pedjax.metrics re-exports the functions of the same names)
knn_mod = importlib.import_module("pedjax.metrics._knn")
lp_mod = importlib.import_module("pedjax.metrics._linear_probe")

pytestmark = pytest.mark.skipif(not jax.config.jax_enable_x64, reason="float64 parity needs jax_enable_x64")

knn = knn_mod.knn
linear_probe = lp_mod.linear_probe


# ---------------------------------------------------------------------------------------------
# data


def make_case(name, seed):
    """(X, y): features and labels of a named degenerate-but-legal case."""
    rng = np.random.default_rng(seed)
    if name == "labels_3_7_42":  # N=60, D=5, C=3, labels {3, 7, 42}
        y = rng.permutation(np.repeat([3, 7, 42], [25, 20, 15]))
    elif name == "two_classes":  # N=60, D=5
        y = rng.permutation(np.repeat([0, 1], [33, 27]))
    elif name == "singleton":  # N=60, D=5, one class with one sample (held out in one fold only)
        y = rng.permutation(np.repeat([0, 1, 2], [30, 29, 1]))
    elif name == "constant_dims":  # N=60, D=5 with two constant features
        y = rng.permutation(np.repeat([0, 1, 2], [20, 20, 20]))
    elif name == "d_gt_n":  # N=30, D=80, C=3
        y = rng.permutation(np.repeat([0, 1, 2], [10, 10, 10]))
    else:
        raise AssertionError(name)
    d = 80 if name == "d_gt_n" else 5
    codes = np.unique(y, return_inverse=True)[1]
    X = rng.normal(size=(3, d))[codes] * 1.2 + rng.normal(size=(y.size, d)) * rng.uniform(0.5, 2.0, size=d)
    if name == "constant_dims":
        X[:, 1] = 3.5
        X[:, 3] = -1e3
    return X, y


CASES = ["labels_3_7_42", "two_classes", "singleton", "constant_dims", "d_gt_n"]


# ---------------------------------------------------------------------------------------------
# independent references


def folds_ref(X, y, K, seed):
    """The documented fold rule, in NumPy."""
    N = len(y)
    iota = np.arange(N)
    # canonical order: signed row sum (signs from bit 7 of the lowbias32 keys of the columns for
    # seed 0x5EED), row sum of squares, first feature, position
    order = np.lexsort((iota, X[:, 0], np.sum(X * X, axis=1), np.sum(X * signs_ref(X.shape[1]), axis=1)))
    codes = np.unique(y, return_inverse=True)[1].reshape(-1)
    yo = codes[order]
    first = np.array([np.flatnonzero(yo == c)[0] for c in range(codes.max() + 1)])
    rank = np.argsort(np.argsort(first))  # classes in order of first appearance
    ck = rank[yo]
    slot = np.empty(N, int)
    slot[np.lexsort((iota, ck))] = iota
    keys = lowbias32(lowbias32(seed) ^ np.arange(N, dtype=np.uint64))
    new = np.empty(N, int)
    new[np.lexsort((keys[slot], ck))] = iota
    fold = np.empty(N, int)
    fold[order] = new % K
    return fold, order


def knn_sklearn_ref(X, y, fold, k):
    accs = []
    for f in np.unique(fold):
        tr, te = fold != f, fold == f
        clf = KNeighborsClassifier(n_neighbors=min(k, tr.sum())).fit(X[tr], y[tr])
        accs.append(np.mean(clf.predict(X[te]) == y[te]))
    return float(np.mean(accs))


def knn_nearest_ref(X, y, fold, k, order):
    """Brute force: neighbours by (exact squared distance, canonical rank); majority vote, ties to
    the tied class that appears first in the neighbour list."""
    N = len(y)
    crank = np.empty(N, int)
    crank[order] = np.arange(N)
    correct = np.zeros(N)
    for i in range(N):
        cand = np.flatnonzero(fold != fold[i])
        d = np.sum((X[cand] - X[i]) ** 2, axis=1)
        nb = cand[np.lexsort((crank[cand], d))][:k]
        labels = list(y[nb])
        counts = {c: labels.count(c) for c in labels}
        best = max(counts.values())
        pred = next(c for c in labels if counts[c] == best)
        correct[i] = pred == y[i]
    return float(np.mean([correct[fold == f].mean() for f in np.unique(fold)]))


def _logreg(Xtr, ytr, C, solver="newton-cholesky"):
    two = np.unique(ytr).size == 2  # scikit-learn's binary model: our softmax ≡ C doubled
    kw = dict(tol=1e-12, max_iter=10000) if solver == "lbfgs" else dict(tol=1e-12, max_iter=200)
    return LogisticRegression(C=2 * C if two else C, solver=solver, **kw).fit(Xtr, ytr)


LOG_FLOOR = np.log(1e-15)  # the documented floor of held-out log-probabilities


def probe_ref(X, y, fold, C=1.0, floor=LOG_FLOOR):
    """(mean held-out accuracy, mean held-out log-likelihood) of the documented probe."""
    Xs = StandardScaler().fit_transform(X)
    accs, lls = [], []
    for f in np.unique(fold):
        tr, te = fold != f, fold == f
        m = _logreg(Xs[tr], y[tr], C)
        accs.append(np.mean(m.predict(Xs[te]) == y[te]))
        logp = np.full((te.sum(),), -np.inf)
        lp = m.predict_log_proba(Xs[te])
        for j, c in enumerate(m.classes_):
            logp[y[te] == c] = lp[y[te] == c, j]
        lls.append(np.mean(np.maximum(logp, floor)))
    return float(np.mean(accs)), float(np.mean(lls))


# ---------------------------------------------------------------------------------------------
# folds


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("seed", [0, 3])
def test_folds_follow_the_documented_rule_and_sklearn_allocation(name, seed):
    X, y = make_case(name, seed)
    classes, codes = np.unique(y, return_inverse=True)
    for K in (2, 5):
        got = np.asarray(knn_mod.stratified_folds(X, codes, classes.size, K, seed))
        want, order = folds_ref(X, y, K, seed)
        np.testing.assert_array_equal(got, want)
        sizes = np.bincount(got, minlength=K)
        assert sizes.max() - sizes.min() <= 1
        # scikit-learn's StratifiedKFold allocation on the labels in canonical order: the same
        # number of samples of every class in every fold
        sk = np.empty(len(y), int)
        for f, (_, te) in enumerate(StratifiedKFold(K).split(X[order], y[order])):
            sk[order[te]] = f
        for c in classes:
            np.testing.assert_array_equal(np.bincount(got[y == c], minlength=K), np.bincount(sk[y == c], minlength=K))


def test_folds_are_the_same_in_float32():
    X, y = make_case("labels_3_7_42", 1)
    X = X.astype(np.float32)
    codes = np.unique(y, return_inverse=True)[1]
    f64 = np.asarray(knn_mod.stratified_folds(X, codes, 3, 5, 7))
    with jax.enable_x64(False):
        f32 = np.asarray(knn_mod.stratified_folds(X, codes, 3, 5, 7))
    np.testing.assert_array_equal(f64, f32)


# ---------------------------------------------------------------------------------------------
# kNN


@pytest.mark.parametrize("name", CASES)
def test_knn_equals_sklearn_on_the_same_folds(name):
    for seed in (0, 2):
        X, y = make_case(name, seed)
        fold, order = folds_ref(X, y, 5, seed)
        ks = (4, 5) if name == "labels_3_7_42" else (5,)  # k = 4: many tied votes
        for k in ks:
            got = knn(X, y, k=k, seed=seed, ties="sklearn")
            assert got == pytest.approx(knn_sklearn_ref(X, y, fold, k), abs=1e-12), (name, k, seed)
            if name in ("labels_3_7_42", "d_gt_n"):
                want = knn_nearest_ref(X, y, fold, k, order)
                assert knn(X, y, k=k, seed=seed) == pytest.approx(want, abs=1e-12), (name, k, seed)


def test_knn_with_sklearn_folds_is_cross_val_score():
    from sklearn.model_selection import cross_val_score

    X, y = make_case("labels_3_7_42", 4)
    skf = StratifiedKFold(5, shuffle=True, random_state=0)
    fold_ids = np.empty(len(y), int)
    for f, (_, te) in enumerate(skf.split(X, y)):
        fold_ids[te] = f
    want = cross_val_score(KNeighborsClassifier(5), X, y, cv=skf).mean()
    assert knn(X, y, ties="sklearn", fold_ids=fold_ids) == pytest.approx(want, abs=1e-12)


def test_knn_default_tie_rule_is_free_of_sample_order_and_label_names():
    X, y = make_case("labels_3_7_42", 5)
    for k in (4, 5):
        s = knn(X, y, k=k)
        perm = np.random.default_rng(0).permutation(len(y))
        assert knn(X[perm], y[perm], k=k) == s
        assert knn(X, np.array([-1, 100, 2])[np.unique(y, return_inverse=True)[1]], k=k) == s
    # exact duplicates (distance ties) in any order
    Xd = np.concatenate([X[:40], X[:20]])
    yd = np.concatenate([y[:40], y[:20]])
    perm = np.random.default_rng(1).permutation(len(yd))
    assert knn(Xd[perm], yd[perm]) == knn(Xd, yd)


# ---------------------------------------------------------------------------------------------
# linear probe


def test_probe_coefficients_match_sklearn():
    for name, seed in [("labels_3_7_42", 0), ("constant_dims", 1), ("two_classes", 2)]:
        X, y = make_case(name, seed)
        train = np.random.default_rng(seed).random(len(y)) < 0.8
        W, b, it, gmax = lp_mod.linear_probe_fit(X, y, train, C=0.7)
        Xs = StandardScaler().fit_transform(X)
        for solver in ("lbfgs", "newton-cholesky"):
            m = _logreg(Xs[train], y[train], 0.7, solver)
            Wr, br = (W[1:] - W[:1], b[1:] - b[:1]) if name == "two_classes" else (W, b)
            scale = np.abs(m.coef_).max()
            assert np.abs(Wr - m.coef_).max() <= 1e-5 * scale, (name, solver)
            assert np.abs(br - m.intercept_).max() <= 1e-5 * max(scale, 1.0), (name, solver)
        assert abs(np.sum(b)) < 1e-9  # symmetric intercepts


@pytest.mark.parametrize("name", CASES)
def test_probe_cv_scores_match_sklearn(name):
    X, y = make_case(name, 11)
    fold, _ = folds_ref(X, y, 5, 0)
    acc_ref, ll_ref = probe_ref(X, y, fold)
    assert linear_probe(X, y) == pytest.approx(acc_ref, abs=1e-12)
    if name in ("labels_3_7_42", "singleton", "d_gt_n"):
        assert linear_probe(X, y, score="log_likelihood") == pytest.approx(ll_ref, rel=1e-6)


def test_probe_invariances_and_explicit_folds():
    X, y = make_case("labels_3_7_42", 6)
    s = linear_probe(X, y, score="log_likelihood")
    perm = np.random.default_rng(2).permutation(len(y))
    assert linear_probe(X[perm], y[perm], score="log_likelihood") == pytest.approx(s, rel=1e-9)
    renamed = np.vectorize({3: 1, 7: 0, 42: 2}.get)(y)  # other names, another sorted order
    assert linear_probe(X, renamed, score="log_likelihood") == pytest.approx(s, rel=1e-9)
    fold, _ = folds_ref(X, y, 5, 0)
    assert linear_probe(X, y, fold_ids=fold + 10) == pytest.approx(linear_probe(X, y), abs=1e-12)


# ---------------------------------------------------------------------------------------------
# float32, whole zoo, validation


def _zoo(seed=0, n=60, d=5):
    """8 models of increasing class separation on one 3-class task (float32 features)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 3)
    centres = rng.normal(size=(3, d))
    feats = {}
    for m, sep in enumerate([0.2, 0.45, 0.7, 0.95, 1.2, 1.5, 1.9, 2.4]):
        feats[f"m{m}"] = (sep * centres[y] + rng.normal(size=(n, d))).astype(np.float32)
    return feats, y


def _tau(a, b):
    return scipy.stats.weightedtau([a[k] for k in sorted(a)], [b[k] for k in sorted(b)])[0]


@pytest.mark.parametrize("metric,opts", [("knn", {}), ("linear_probe", {"score": "log_likelihood"})])
def test_float32_ranks_the_zoo_as_float64(metric, opts):
    """kNN accuracies are multiples of 1/N and tie between models: weighted τ counts ties as scipy
    does, and a float32 rounding may move a sample by one neighbour, so the accuracies may differ
    by 1/N. The probe is checked on its continuous score (its accuracies tie likewise)."""
    fn = {"knn": knn, "linear_probe": linear_probe}[metric]
    feats, y = _zoo()
    s64 = {k: fn(X, y, **opts) for k, X in feats.items()}
    with jax.enable_x64(False), pedjax.float32():
        s32 = {k: fn(X, y, **opts) for k, X in feats.items()}
    assert all(np.isfinite(v) for v in s32.values())
    assert _tau(s32, s64) >= 0.99
    for k in feats:
        assert s32[k] == pytest.approx(s64[k], abs=1.01 / len(y) if metric == "knn" else 1e-4), k


def _check_score_zoo(metric, ped):
    from pedjax.physics import PEDConfig

    fn = {"knn": knn, "linear_probe": linear_probe}[metric]
    feats, y = _zoo(1)
    feats = {k: feats[k] for k in ("m1", "m4", "m7")}
    if not ped:
        got = pedjax.score_zoo(feats, y, metric=metric)
        for k, X in feats.items():
            assert got[k] == pytest.approx(fn(X, y), abs=1e-12), k
        return
    cfg = PEDConfig()
    got = pedjax.score_zoo(feats, y, metric=metric, ped=cfg)
    moved = pedjax.ped_zoo(feats, y, cfg)
    for k in feats:
        assert got[k] == pytest.approx(fn(moved[k], y), abs=1e-12), k


@pytest.mark.parametrize("metric,ped", [("knn", False), ("knn", True), ("linear_probe", False)])
def test_score_zoo_equals_per_model_calls(metric, ped):
    _check_score_zoo(metric, ped)


@pytest.mark.slow
def test_score_zoo_with_ped_equals_per_model_calls_linear_probe():
    _check_score_zoo("linear_probe", True)


def test_bad_options_raise():
    X, y = make_case("labels_3_7_42", 0)
    for kwargs, arg in [({"k": 0}, "k"), ({"folds": 1}, "folds"), ({"folds": 61}, "folds"), ({"ties": "x"}, "ties"),
                        ({"fold_ids": np.zeros(60)}, "fold_ids"), ({"fold_ids": np.arange(59)}, "fold_ids")]:
        with pytest.raises(ValueError, match=arg):
            knn(X, y, **kwargs)
    for kwargs, arg in [({"C": 0.0}, "C"), ({"score": "auc"}, "score"), ({"max_iter": 0}, "max_iter"),
                        ({"tol": -1.0}, "tol")]:
        with pytest.raises(ValueError, match=arg):
            linear_probe(X, y, **kwargs)
    assert knn(np.ones((60, 5)), y) == float("-inf") == linear_probe(np.ones((60, 5)), y)
