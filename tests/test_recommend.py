"""pedjax.recommend: history, factorisation, proxy embedding, archi2vec, hybrid, and the command."""
import json
import math

import numpy as np
import pytest

import pedjax
from pedjax.recommend import (History, Recommender, from_file, from_scores, from_table, from_zoo, learn_weight, merge,
                              neighbour_weights, novelty, published, zscore)
from pedjax.recommend import archi2vec as a2v
from pedjax.recommend import factorize as fz
from pedjax.recommend.evaluate import measures, paired_se


# ------------------------------------------------------------------------------------------ history


def _loto_mean_rank_tau(h: History, evaluate):
    return float(np.mean([measures(h.mean_rank([t]), h.column(t))["tau_w"] for t in evaluate]))


def test_history_mean_rank_reproduces_published_tables():
    cnn = published("supervised-cnn")
    assert cnn.values.shape == (11, 11)
    assert _loto_mean_rank_tau(cnn, cnn.tasks) == pytest.approx(0.837, abs=5e-4)
    ssl = published("ssl-resnet50")
    assert ssl.values.shape == (12, 11)
    # the PED paper's 10 datasets: SUN397 stays in the others' history, is not judged itself
    assert _loto_mean_rank_tau(ssl, [t for t in ssl.tasks if t != "sun397"]) == pytest.approx(0.667, abs=5e-4)


def test_published_alias_is_the_shipped_ssl_transfer_table():
    from importlib import resources

    asset = json.loads(resources.files("pedjax").joinpath("assets", "ssl_transfer.json").read_text())["datasets"]
    assert published("ssl-transfer").to_table() == asset
    with pytest.raises(ValueError, match="no published table"):
        published("imagenet")


def test_history_files_csv_json_and_missing(tmp_path):
    wide = tmp_path / "w.csv"
    wide.write_text("model,t1,t2\na,1,2\nb,3,\nc,0.5,4\n")
    h = from_file(wide)
    assert h.models == ("a", "b", "c") and h.tasks == ("t1", "t2")
    assert np.isnan(h.values[1, 1]) and h.mask.sum() == 5
    long = tmp_path / "l.csv"
    long.write_text("model,task,value\na,t1,1\nb,t1,3\nc,t1,0.5\na,t2,2\nc,t2,4\n")
    assert np.array_equal(from_file(long).values, h.values, equal_nan=True)
    js = tmp_path / "h.json"
    js.write_text(json.dumps({"datasets": {"t1": {"a": 1, "b": 3, "c": 0.5}, "t2": {"a": 2, "b": None, "c": 4}}}))
    assert np.array_equal(from_file(js).values, h.values, equal_nan=True)
    # mean rank with a missing entry: ranks normalised per task over the observed models
    assert h.mean_rank() == pytest.approx({"a": 0.25, "b": 1.0, "c": 0.5})
    bad = tmp_path / "b.csv"
    bad.write_text("model,t1\na,x\n")
    with pytest.raises(ValueError, match="not a number"):
        from_file(bad)
    # a NaN or infinite entry in a user's file is an error (a missing one is an empty cell / null)
    for name, text in (("n.csv", "model,t1,t2\na,nan,2\nb,3,1\n"), ("i.csv", "model,t1,t2\na,inf,2\nb,3,1\n"),
                       ("n.json", '{"t1": {"a": NaN, "b": 3}, "t2": {"a": 2, "b": 1}}')):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=r"entry \('a', 't1'\).*missing value"):
            from_file(tmp_path / name)


def test_history_from_scores_records_kind():
    h = from_scores({"t": {"a": 1.0, "b": float("-inf")}}, "logme+PED")
    assert h.kind == "metric:logme+PED" and np.isnan(h.values[1, 0])
    assert from_zoo().kind == "finetune"


# ------------------------------------------------------------------------------------- factorisation


def _planted(seed=0, M=30, T=20, r=3, missing=0.3):
    rng = np.random.default_rng(seed)
    Y = rng.normal(size=(M, r)) @ rng.normal(size=(T, r)).T
    miss = rng.random((M, T)) < missing
    return Y, miss


def test_factorisation_recovers_planted_low_rank_and_is_deterministic():
    Y, miss = _planted()
    Yo = np.where(miss, np.nan, Y)
    U, V = fz.factorize(Yo, rank=3, reg=1e-4, seed=0)
    err = np.linalg.norm((U @ V.T - Y)[miss]) / np.linalg.norm(Y[miss])
    assert err < 0.02
    U2, V2 = fz.factorize(Yo, rank=3, reg=1e-4, seed=0)
    assert np.array_equal(U, U2) and np.array_equal(V, V2)
    # non-negative variant on a non-negative planted matrix
    rng = np.random.default_rng(1)
    P = np.abs(rng.normal(size=(30, 3))) @ np.abs(rng.normal(size=(20, 3))).T
    U, V = fz.factorize(np.where(miss, np.nan, P), rank=3, reg=1e-4, nonneg=True, seed=0, steps=3000)
    assert U.min() >= 0 and V.min() >= 0
    assert np.linalg.norm((U @ V.T - P)[miss]) / np.linalg.norm(P[miss]) < 0.02


def test_heldout_errors_find_the_planted_rank():
    Y, miss = _planted()
    errs = fz.heldout_errors(np.where(miss, np.nan, Y), ranks=(1, 2, 3, 4, 5), regs=(1e-3, 1e-2), frac=0.1)
    assert min(errs, key=errs.get) == (3, 1e-3)
    h = History(np.where(miss, np.nan, Y), tuple(f"m{i}" for i in range(30)), tuple(f"t{j}" for j in range(20)))
    f = fz.select(h, nonneg=False, ranks=(2, 3), regs=(1e-3,))
    assert f.U.shape == (30, f.rank) and f.V.shape == (20, f.rank) and np.isfinite(f.heldout_error)


def test_factorize_rejects_bad_input():
    with pytest.raises(ValueError, match="rank"):
        fz.factorize(np.ones((3, 3)), rank=0)
    with pytest.raises(ValueError, match="no observed"):
        fz.factorize(np.full((3, 3), np.nan))


# ------------------------------------------------------------------------------- proxy and the rule


def test_neighbour_weights():
    past = {"a": np.zeros(4), "b": np.ones(4), "c": 5 * np.ones(4)}
    w = neighbour_weights(np.full(4, 0.1), past, k=2)
    assert set(w) == {"a", "b"} and w["a"] > w["b"] and sum(w.values()) == pytest.approx(1.0)


def _novelty_ref(rep, past):
    """Independent transcription: all pairwise RMS distances with scipy, then the ratio."""
    from scipy.spatial.distance import cdist

    P = np.stack([np.asarray(v, float) for v in past.values()])
    D = cdist(P, P) / np.sqrt(P.shape[1])
    np.fill_diagonal(D, np.inf)
    return float((cdist(np.asarray(rep, float)[None], P) / np.sqrt(P.shape[1])).min() / D.min(axis=1).max())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_novelty_against_pairwise_distances(seed):
    rng = np.random.default_rng(seed)
    past = {f"t{i}": rng.normal(size=8) for i in range(3 + seed)}
    for rep in (rng.normal(size=8), 10 + rng.normal(size=8), past["t0"]):
        assert novelty(rep, past) == pytest.approx(_novelty_ref(rep, past), rel=1e-12)
    assert novelty(past["t1"], past) == 0.0  # a past task itself is not new
    # two domains: a task of a held-out third domain is further than the history's spacing
    dom = {"a1": np.zeros(4), "a2": np.full(4, 0.1), "b1": np.full(4, 3.0), "b2": np.full(4, 3.2)}
    assert novelty(np.full(4, 0.05), dom) < 1 < novelty(np.full(4, -4.0), dom)


def test_novelty_degenerate_histories():
    same = {"a": np.ones(3), "b": np.ones(3)}
    assert novelty(np.ones(3), same) == 0.0 and novelty(np.zeros(3), same) == float("inf")
    with pytest.raises(ValueError, match="past"):
        novelty(np.ones(3), {"a": np.ones(3)})


def test_a_tasks_own_truth_never_informs_its_ranking():
    h = published("ssl-resnet50")
    reps = {t: np.random.default_rng(i).normal(size=6) for i, t in enumerate(h.tasks)}
    t = "pets"
    changed = h.values.copy()
    changed[:, h.tasks.index(t)] = np.random.default_rng(9).permutation(changed[:, h.tasks.index(t)])
    a = Recommender(h, reps, steps=300).scores(reps[t], [t]).components
    b = Recommender(History(changed, h.models, h.tasks), reps, steps=300).scores(reps[t], [t]).components
    assert a == b


# ------------------------------------------------------------------------------------------ archi2vec


def test_archi2vec_identical_width_and_family():
    from pedjax.zoo.spec import create_module

    e = lambda arch, kw: a2v.embed_module(create_module(arch, kw))  # noqa: E731
    cnn = e("cnn", {"channels": [8, 16], "dense": 64})
    assert np.array_equal(cnn, e("cnn", {"channels": [8, 16], "dense": 64}))
    wide = e("cnn", {"channels": [16, 32], "dense": 128})
    for other in (e("resnet-s2", {"stages": [8, 16, 32]}), e("mlp", {})):
        assert 0 < np.linalg.norm(cnn - wide) < 0.5 * np.linalg.norm(cnn - other)
    g = a2v.arch_graph(create_module("mlp", {}))
    assert "dot_general/2" in g.labels and g.n_nodes > 5 and len(g.edges) >= g.n_nodes - 1


def test_meta_scores_fit_the_history():
    rng = np.random.default_rng(0)
    meta = {f"m{i}": {"arch_vec": rng.normal(size=4), "n_params": 100 * (i + 1), "feature_dim": 8,
                      "method": "a" if i % 2 else "b"} for i in range(8)}
    quality = np.array([np.log(100 * (i + 1)) for i in range(8)])
    h = History(quality[:, None] + 0.01 * rng.normal(size=(8, 3)), tuple(meta), ("t1", "t2", "t3"))
    s = a2v.meta_scores(meta, h)
    from scipy.stats import spearmanr

    assert spearmanr(list(s.values()), quality).statistic > 0.9


# --------------------------------------------------------------------------------------------- hybrid


def test_zscore_and_merge():
    z = zscore({"a": 1.0, "b": 3.0, "c": float("-inf"), "d": None})
    assert z["b"] > z["a"] > z["c"] and z["c"] == z["d"]
    m = merge({"a": 1, "b": 2}, {"a": 2, "b": 1}, 0.0)
    assert m["b"] > m["a"]


def test_learn_weight_prefers_the_informative_component():
    truth = {t: {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0} for t in ("t1", "t2")}
    good = {t: {"a": 1, "b": 2, "c": 3, "d": 4} for t in truth}
    bad = {t: {"a": 4, "b": 3, "c": 2, "d": 1} for t in truth}
    w, curve = learn_weight(bad, good, truth)
    assert w > 0.5 and curve[1.0] == pytest.approx(1.0) and curve[0.0] == pytest.approx(-1.0)
    w, _ = learn_weight(good, bad, truth)
    assert w < 0.5


def test_measures_and_paired_se():
    r = measures({"a": 3, "b": 2, "c": 1}, {"a": 0.5, "b": 0.9, "c": 0.1})
    assert r["pick"] == "a" and r["regret1"] == pytest.approx(0.4) and r["rel1"] == pytest.approx(0.5 / 0.9)
    assert paired_se([1, 2, 3], [1, 2, 3]) == 0.0 and math.isnan(paired_se([1], [0]))


# -------------------------------------------------------------------------------------------- command


@pytest.mark.slow
def test_cli_recommend_ranks_the_shipped_zoo_with_components(capsys):
    from pedjax.cli import main

    assert main(["recommend", "--task", "fashion-rotated", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["history"]["left_out"] == ["fashion-rotated"] and "fashion-rotated" not in out["history"]["tasks"]
    from pedjax.zoo import load_zoo

    assert len(out["ranking"]) == len(load_zoo()) and set(out["components"]) == {"history", "transfer", "meta", "fennec"}
    assert out["final"] == "fennec" and out["history"]["kind"] == "finetune"


@pytest.mark.slow
def test_cli_recommend_hybrid(capsys):
    from pedjax.cli import main

    assert main(["recommend", "--task", "fashion-lowdata", "--metric", "leep", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["final"] == "hybrid" and 0 <= out["hybrid"]["weight"] <= 1 and "leep" in out["components"]


def test_cli_recommend_errors(capsys):
    from pedjax.cli import main

    assert main(["recommend", "--task", "fashion-rotated", "--ped"]) == 2
    assert "--metric" in capsys.readouterr().err
    # checked once, in pedjax.recommend.api.recommend; the command's message names the flag
    for argv, msg in ((["--k", "0"], "--k: at least 1, got 0"), (["--metric", "logme", "--weight", "1.5"], "--weight: a number in [0, 1]"),
                      (["--proxy", "nope"], "--proxy: 'nope' is not a member of the zoo")):
        assert main(["recommend", "--task", "digits-10", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err


def test_as_flags_renames_only_known_parameters():
    """The flag comes from the exception's ``param`` field, never from parsing its message."""
    from pedjax._validate import ParamError
    from pedjax.cli._common import as_flags

    with pytest.raises(ParamError, match="^--k: at least 1$") as got:
        with as_flags({"k": "--k"}):
            raise ParamError("k", "at least 1")
    assert got.value.param == "--k" and got.value.problem == "at least 1"
    with pytest.raises(ValueError, match="^weight: bad$"):  # not in the map: unchanged
        with as_flags({"k": "--k"}):
            raise ParamError("weight", "bad")
    with pytest.raises(ValueError, match="^k: looks like a parameter$"):  # a plain ValueError: unchanged
        with as_flags({"k": "--k"}):
            raise ValueError("k: looks like a parameter")
    with pytest.raises(KeyError):  # other exceptions pass through
        with as_flags({"k": "--k"}):
            raise KeyError("k")


@pytest.mark.slow
def test_fennec_query_is_one_proxy_forward_pass(monkeypatch):
    """A new task costs one forward pass of the proxy and O(models) arithmetic: no other member
    reads the task's images. (The time against LogME is measured side by side in
    experiments/recommend_study.py, docs/recommend.md; timing belongs in benchmarks, not tests.)"""
    from pedjax.recommend import Proxy
    from pedjax.recommend import proxy as P
    from pedjax.zoo import ZooMember, load_zoo

    zoo = load_zoo()
    h = from_zoo(zoo)
    task = "fashion-coarse"
    pr = Proxy.from_zoo(zoo, "mlp-dae")
    rec = Recommender(h, P.representations(pr, [t for t in h.tasks if t != task]), steps=500)
    rec.factors([task])  # offline
    images = P.task_images(task)
    calls = []
    real = ZooMember.features
    monkeypatch.setattr(ZooMember, "features", lambda self, x, *a, **k: calls.append(self.name) or real(self, x, *a, **k))
    out = rec.scores(P.task_representation(pr, images), [task]).components["transfer"]
    assert calls == ["mlp-dae"]
    assert set(out) == set(h.models) and all(np.isfinite(v) for v in out.values())


def _own_images(tmp_path, labels: bool):
    from pedjax.data import load_task

    d = load_task("digits-10")
    arrays = {"images": d.x_train[:300]}
    if labels:
        arrays["labels"] = d.y_train[:300] + 3  # any integer labels
    path = tmp_path / ("own.npz" if labels else "own_nolabels.npz")
    np.savez(path, **arrays)
    return path


@pytest.mark.slow
def test_cli_recommend_own_images(tmp_path, capsys):
    """A user's own task (images, no registry name): every shipped task is history, none is left out."""
    from pedjax.cli import main

    assert main(["recommend", "--images", str(_own_images(tmp_path, labels=False)), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    from pedjax.zoo import load_zoo

    zoo = load_zoo()
    assert out["history"]["left_out"] == [] and out["history"]["tasks"] == list(zoo.truth()["datasets"])
    assert len(out["ranking"]) == len(zoo) and out["final"] == "fennec" and out["task"] == "images:own_nolabels.npz"


def test_cli_recommend_own_images_errors(tmp_path, capsys):
    from pedjax.cli import main

    nolabels = _own_images(tmp_path, labels=False)
    assert main(["recommend", "--images", str(nolabels), "--metric", "leep"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "labels" in err
    np.savez(tmp_path / "bad.npz", pixels=np.zeros((4, 28, 28)))
    assert main(["recommend", "--images", str(tmp_path / "bad.npz")]) == 2
    assert "'images'" in capsys.readouterr().err
    np.savez(tmp_path / "one.npz", images=np.zeros((1, 28, 28)))
    assert main(["recommend", "--images", str(tmp_path / "one.npz")]) == 2
    assert "N ≥ 2" in capsys.readouterr().err
    assert main(["recommend", "--task", "digits-10", "--labels", str(tmp_path / "x.npy")]) == 2
    assert "--labels goes with --images" in capsys.readouterr().err


def test_recommend_library_call_equals_the_command_line(capsys):
    """``pedjax.recommend.recommend`` is what the command runs: same ranking and components; bad
    arguments name the parameter."""
    from pedjax.cli import main
    from pedjax.data import load_task
    from pedjax.recommend import from_zoo, recommend
    from pedjax.zoo import load_zoo

    zoo = load_zoo()
    got = recommend(zoo, load_task("fashion-rotated"), from_zoo(zoo), task="fashion-rotated")
    assert main(["recommend", "--task", "fashion-rotated", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert got["ranking"] == cli["ranking"] and got["history"]["left_out"] == ["fashion-rotated"]
    assert got["components"]["fennec"] == pytest.approx(cli["components"]["fennec"])
    assert got["novelty"] == pytest.approx(cli["novelty"]) and 0.0 <= got["novelty"] < float("inf")
    with pytest.raises(ValueError, match="proxy: 'nope'"):
        recommend(zoo, load_task("fashion-rotated"), from_zoo(zoo), proxy="nope")
    with pytest.raises(ValueError, match="ped: applies to the hybrid"):
        recommend(zoo, load_task("fashion-rotated"), from_zoo(zoo), ped=pedjax.PEDConfig())


def test_loto_hybrid_leave_one_domain_out_never_sees_the_held_out_domain():
    """With groups, every history score of a task is computed without its whole domain; a held-out
    task's weight is learned on the other domains' tasks only (the same as learn_weight there);
    one group per task is leave-one-task-out."""
    from pedjax.recommend import holdout, loto_hybrid, loto_hybrid_select

    rng = np.random.default_rng(4)
    models = [f"m{i}" for i in range(8)]
    groups = {"a1": "A", "a2": "A", "b1": "B", "b2": "B", "b3": "B", "c1": "C", "c2": "C"}
    tasks = list(groups)
    truth = {t: dict(zip(models, rng.normal(size=8), strict=True)) for t in tasks}
    metric = {t: {m: truth[t][m] + rng.normal(scale=0.5) for m in models} for t in tasks}
    calls = []

    def history_score(task, excluded):
        calls.append((task, excluded))
        # a history that leaks when it may use the task's own domain: the mean truth of the domain
        seen = [u for u in tasks if u not in excluded]
        return {m: float(np.mean([truth[u][m] for u in seen])) for m in models}

    out = loto_hybrid(tasks, history_score, metric, truth, groups=groups)
    assert calls and all({u for u in tasks if groups[u] == groups[task]} <= excluded for task, excluded in calls)
    # a1's weight: learned on B and C only, each task's history lacking its own domain and A
    hs = {s: history_score(s, holdout(s, tasks, groups) | holdout("a1", tasks, groups)) for s in ("b1", "b2", "b3", "c1", "c2")}
    w, curve = learn_weight(hs, {s: metric[s] for s in hs}, truth)
    assert out["a1"]["weight"] == w and out["a1"]["curve"] == curve
    # every task its own group = leave-one-task-out
    own = {t: t for t in tasks}
    assert loto_hybrid(tasks, history_score, metric, truth, groups=own) == loto_hybrid(tasks, history_score, metric, truth)
    sel = loto_hybrid_select(tasks, history_score, {"m": metric}, truth, groups=groups)
    assert {t: sel[t]["weight"] for t in tasks} == {t: out[t]["weight"] for t in tasks}
    with pytest.raises(ValueError, match="no task outside"):
        loto_hybrid(tasks, history_score, metric, truth, groups={t: "one" for t in tasks})
