"""Every table of the command line fits ``$COLUMNS`` (issue 25): at 100 and at 80 columns no line
of ``zoo list``, ``demo``, ``score``, ``evaluate``, ``recommend``, ``tasks`` or ``metrics`` is
wider than the terminal, and every name that identifies a row or a column (member, model, task,
metric) appears in full — never cut with an ellipsis.

The commands run in process with ``COLUMNS`` set (rich reads it when the console is made). Where
the computation is long (``demo`` and ``recommend`` on the shipped zoo) the fast tests give the
command a result of the real shape, with the shipped zoo's member and task names; the slow ones
run the real computation.
"""
from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from digits_results import DATASET, build, ok
from rich.cells import cell_len

from pedjax import data, metrics
from pedjax.cli import main
from pedjax.zoo import DEFAULT_ZOO, MANIFEST, TRUTH_FILE

WIDTHS = (100, 80)
SHIPPED = (DEFAULT_ZOO / MANIFEST).is_file() and (DEFAULT_ZOO / TRUTH_FILE).is_file()
needs_zoo = pytest.mark.skipif(not SHIPPED, reason="the shipped zoo is not built (pedjax zoo build)")


@pytest.fixture(params=WIDTHS, ids=lambda w: f"COLUMNS={w}")
def width(request, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(request.param))
    return request.param


def _shipped():
    manifest = json.loads((DEFAULT_ZOO / MANIFEST).read_text())
    truth = json.loads((DEFAULT_ZOO / TRUTH_FILE).read_text())
    return [e["name"] for e in manifest["members"]], sorted(truth["datasets"])


def assert_fits(out: str, width: int, names=()) -> None:
    """No line wider than ``width`` cells, no ellipsis, and each of ``names`` as a whole word (not
    the prefix of a longer name: ``cnn-supervised`` must not count inside ``cnn-supervised@100``)."""
    wide = [ln for ln in out.splitlines() if cell_len(ln) > width]
    assert not wide, f"{len(wide)} line(s) wider than {width}:\n" + "\n".join(wide[:5])
    assert "…" not in out, "a cell was cut:\n" + "\n".join(ln for ln in out.splitlines() if "…" in ln)
    for name in names:
        assert re.search(r"(?<![\w@.+-])" + re.escape(name) + r"(?![\w@.+-])", out), f"{name!r} not shown in full"


# ------------------------------------------------------------------------------------------ console


def test_console_honours_columns(monkeypatch):
    from pedjax.cli.printing import DEFAULT_WIDTH, console

    monkeypatch.setenv("COLUMNS", "73")
    assert console().width == 73 and console(140).width == 73
    monkeypatch.delenv("COLUMNS")
    assert console().width == DEFAULT_WIDTH  # not a terminal under pytest: the fixed default
    monkeypatch.setenv("COLUMNS", "0")  # nonsense is ignored
    assert console().width == DEFAULT_WIDTH


def test_split_repeats_the_key_columns_and_never_cuts(monkeypatch):
    from pedjax.cli import printing
    from pedjax.cli.printing import Col

    monkeypatch.setenv("COLUMNS", "60")
    names = [f"model-with-a-long-name-{i}" for i in range(5)]
    rows = [[n] + [f"{v:.3f}" for v in np.linspace(0, 1, 12)] for n in names]
    con = printing.console()
    with con.capture() as cap:
        n = printing._print_split(con, "t", [Col("model", "left")], [Col(f"c{j}") for j in range(12)], rows)
    out = cap.get()
    assert n >= 2 and out.count("model-with-a-long-name-3") == n  # the key column in every part
    assert_fits(out, 60, names + [f"c{j}" for j in range(12)])
    assert all(f"(/{n})".replace("/", f"{i}/") in out for i in range(1, n + 1))


# ------------------------------------------------------------------------------------------ zoo list


@needs_zoo
def test_zoo_list_shipped_zoo_fits(width, capsys):
    members, tasks = _shipped()
    assert len(members) >= 24 and len(tasks) >= 10
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert_fits(out, width, members + tasks + ["member", "arch", "method", "params", "pretrain"])
    # the per-task table uses short codes with a legend naming every task
    legend = next(ln for ln in out.split("tasks: ", 1)[1:])
    for i, t in enumerate(tasks, 1):
        assert f"T{i}={t}" in out.replace("\n", " ") or f"T{i}={t}" in legend


def test_zoo_list_small_zoo_uses_task_names(tmp_path, capsys, monkeypatch):
    """A zoo whose task columns fit keeps the full task names (no codes)."""
    from test_zoo_store import _random_member

    monkeypatch.setenv("COLUMNS", "80")
    for i, name in enumerate(("a-member", "another-member")):
        _random_member(tmp_path, name, "mlp", {"hidden": [8]}, "npz", i)
    (tmp_path / TRUTH_FILE).write_text(json.dumps({"format": "pedjax-zoo-truth", "score_definition": "test", "metric": "accuracy",
                                                   "datasets": {"task-one": {"a-member": 0.5, "another-member": 0.7},
                                                                "task-two": {"a-member": 0.6}}}))
    assert main(["zoo", "list", "--zoo", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert_fits(out, 80, ["a-member", "another-member", "task-one", "task-two"])
    assert "T1" not in out and "tasks:" not in out


# ------------------------------------------------------------------------------------------ tasks, metrics


def test_tasks_fits(width, capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert_fits(out, width, data.task_names())


def test_metrics_fits_even_with_long_citations(width, capsys, monkeypatch):
    assert main(["metrics"]) == 0
    assert_fits(capsys.readouterr().out, width, metrics.names(target=None))
    # a registry whose citations are long (they will be): they wrap, the names stay whole
    long = "Author, Another Author & Third Author, Proceedings of a Long Conference Name 2024 " * 3
    for name in metrics.names():
        monkeypatch.setitem(metrics.REGISTRY, name, dataclasses.replace(metrics.REGISTRY[name], citation=long + name))
    assert main(["metrics"]) == 0
    out = capsys.readouterr().out
    assert_fits(out, width, metrics.names())
    assert "citation" in out


# ------------------------------------------------------------------------------------------ score, evaluate


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return build(tmp_path_factory.mktemp("tables"))


def test_score_fits(digits, width, capsys):
    out = ok(capsys, "score", "--results-dir", digits["results"], "--dataset", DATASET, "--metric", "logme", "--ped")
    assert_fits(out, width, list(digits["feats"]))


def test_evaluate_fits(digits, width, capsys):
    truth = digits["root"] / "truth.json"
    files = []
    for label in ("logme", "a-rather-long-scores-label"):
        f = digits["root"] / f"{label}.json"
        f.write_text(json.dumps({"metric": label, "ped": None, "dataset": DATASET,
                                 "scores": {m: float(i) for i, m in enumerate(digits["feats"])}}))
        files += ["--scores", f]
    out = ok(capsys, "evaluate", *files, "--truth", truth)
    assert_fits(out, width, ["logme", "a-rather-long-scores-label", "τ_w", "Pearson", "rel@3"])


# ------------------------------------------------------------------------------------------ demo


def _demo_result(members, task, metric_names):
    rng = np.random.default_rng(0)
    keys = [k for m in metric_names for k in ((m, m + "+ped") if metrics.REGISTRY[m].input == "features" else (m,))]
    return {"zoo": str(DEFAULT_ZOO), "task": f"{task} (train split)", "truth_label": "fine-tuned test acc",
            "judged_against": {"noise_ceiling": 0.88, "history_tau": 0.7}, "n_samples": 1000,
            "ped": {"nsigma": 0.6, "variant": "released"},
            "models": {m: {"dim": 64, "truth": float(rng.uniform(0.6, 0.9)), "arch": "cnn", "method": "supervised"} for m in members},
            "scores": {k: {m: float(rng.normal(0, 100)) for m in members} for k in keys},
            "weighted_tau": {k: float(rng.uniform(-1, 1)) for k in keys}, "feature_seconds": 1.0, "seconds": 2.0}


@needs_zoo
def test_demo_fits(width, capsys, monkeypatch):
    """``pedjax demo`` prints a result of the shipped zoo's shape (every metric ± PED) within the width."""
    from pedjax.cli import demo

    members, tasks = _shipped()
    res = _demo_result(members, tasks[0], metrics.names())
    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: res)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert_fits(out, width, members + list(res["scores"]) + [tasks[0]])


@pytest.mark.slow
@needs_zoo
def test_demo_on_shipped_zoo_fits(capsys, monkeypatch):
    """The real demo (two metrics, to keep it short) at 100 and at 80 columns; computed once."""
    from pedjax.cli import demo

    real, cache = demo.run_demo, {}
    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: cache.setdefault("r", real(*a, **k)))
    for w in WIDTHS:
        monkeypatch.setenv("COLUMNS", str(w))
        assert main(["demo", "--metric", "logme", "--metric", "sfda"]) == 0
        out = capsys.readouterr().out
        assert_fits(out, w, list(cache["r"]["models"]) + ["logme", "logme+ped", "sfda", "sfda+ped"])


# ------------------------------------------------------------------------------------------ recommend


def _recommend_result(members, tasks, hybrid: bool):
    rng = np.random.default_rng(1)
    comps = {c: {m: float(rng.normal()) for m in members} for c in ("history", "transfer", "meta", "fennec")}
    comps["history"] = {m: float(rng.uniform()) for m in members}
    out = {"task": tasks[0], "history": {"kind": "finetune", "source": "zoo", "tasks": tasks[1:], "left_out": tasks[:1]},
           "proxy": "mlp-dae", "neighbours": {tasks[1]: 0.6, tasks[2]: 0.4},
           "factorisation": {"rank": 2, "reg": 0.01, "nonneg": True, "heldout_rmse": 0.1},
           "seconds": {"proxy_forward": 1.0, "factorise_and_score": 2.0, "total": 3.0}, "final": "fennec"}
    if hybrid:
        comps["nleep+PED"] = {m: float(rng.normal()) for m in members}
        comps["hybrid"] = {m: float(rng.normal()) for m in members}
        out["hybrid"] = {"metric": "nleep+PED", "weight": 0.4, "weight_from": "learned without x (leave-one-task-out)"}
        out["final"] = "hybrid"
    out["components"] = comps
    out["ranking"] = sorted(members, key=lambda m: -comps[out["final"]][m])
    return out


@needs_zoo
@pytest.mark.parametrize("hybrid", [False, True], ids=["fennec", "hybrid"])
def test_recommend_fits_and_explains_its_columns(width, hybrid, capsys, monkeypatch):
    from pedjax.recommend import api

    members, tasks = _shipped()
    res = _recommend_result(members, tasks, hybrid)
    monkeypatch.setattr(api, "recommend", lambda *a, **k: res)
    argv = ["recommend", "--task", "digits-10"] + (["--metric", "nleep", "--ped"] if hybrid else [])
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert_fits(out, width, members + list(res["components"]))
    legend = " ".join(out.split())  # the explanation, wrapped at the width, as one line
    for c in res["components"]:
        assert f"{c} = " in legend, c


@pytest.mark.slow
@needs_zoo
def test_recommend_on_shipped_zoo_fits(capsys, monkeypatch):
    """The real recommendation at 100 and at 80 columns (computed once)."""
    from pedjax.recommend import api

    real, cache = api.recommend, {}
    monkeypatch.setattr(api, "recommend", lambda *a, **k: cache.setdefault("r", real(*a, **k)))
    for w in WIDTHS:
        monkeypatch.setenv("COLUMNS", str(w))
        assert main(["recommend", "--task", "digits-10"]) == 0
        out = capsys.readouterr().out
        assert_fits(out, w, list(cache["r"]["ranking"]) + list(cache["r"]["components"]))
        assert "history = " in " ".join(out.split())
