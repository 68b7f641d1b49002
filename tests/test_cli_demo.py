"""``pedjax demo`` in process: the digits zoo's JSON, one-line errors, and the shipped zoo (slow)."""
import json

import numpy as np
import pytest

from pedjax import zoo as modelzoo
from pedjax.cli import main
from pedjax.cli.demo import DEFAULT_TASK, default_task, run_demo, shipped_zoo_available
from pedjax.rank import judging, weighted_tau
from digits_results import digits_zoo


@pytest.mark.slow  # ~15-20 s: the digits zoo (two trained MLPs, eleven probes) and a benchmark over it
def test_run_demo_json_consistent(monkeypatch):
    import pedjax.features.digits

    # the digits zoo is deterministic (seed 0): computed once per test process (tests/digits_results.py)
    zoo = digits_zoo()
    monkeypatch.setattr(pedjax.features.digits, "digits_zoo", lambda seed=0: zoo if seed == 0 else pytest.fail(f"seed {seed}"))
    res = run_demo(metrics_list=["logme"], zoo="digits")
    assert res["zoo"] == "digits"
    features, y, stats, truth = zoo
    assert set(res["scores"]) == {"logme", "logme+ped"}
    order = list(features)
    for key in ("logme", "logme+ped"):
        tau = weighted_tau([res["scores"][key][k] for k in order], [truth[k] for k in order])
        assert res["weighted_tau"][key] == pytest.approx(tau)
        assert -1.0 <= tau <= 1.0
    json.dumps(res)


def test_cli_bad_metric_is_one_line_exit_2(capsys):
    assert main(["demo", "--metric", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown metric 'nope'" in err and "Traceback" not in err
    assert main(["demo", "--zoo", "no-such-zoo"]) == 2
    err = capsys.readouterr().err
    assert "--zoo" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_metric_all_on_the_digits_zoo():
    """``--metric all``: every registered class-label metric the zoo can score (the digits zoo has no
    source-model predictions: no LEEP/NCE), each feature metric also + PED."""
    from pedjax.metrics import REGISTRY, names

    res = run_demo(metrics_list=["all"], zoo="digits")
    feats = [m for m in names(target="classes") if REGISTRY[m].input == "features"]
    assert set(res["scores"]) == set(feats) | {m + "+ped" for m in feats}


@pytest.mark.slow
@pytest.mark.skipif(not shipped_zoo_available(), reason="the shipped zoo is not built (pedjax zoo build)")
def test_demo_on_shipped_zoo(capsys):
    """`make demo`'s job: the shipped zoo on a shipped task, the demo's metrics ± PED, τ_w against fine-tuning."""
    code = main(["demo", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    res = json.loads(out)
    assert res["zoo"] != "digits" and len(res["models"]) >= 24
    table = modelzoo.load_zoo().truth()
    task = default_task(table)
    assert res["task"].startswith(task + " ")
    truth = {k: v["truth"] for k, v in res["models"].items()}
    assert truth == pytest.approx(table["datasets"][task])
    # the default task has the highest noise ceiling, and the output shows it and the history baseline
    ceil = judging.noise_ceiling(table["per_seed"][task])["ceiling"]
    assert res["judged_against"]["noise_ceiling"] == pytest.approx(ceil) and ceil >= judging.MIN_CEILING
    assert np.isfinite(res["judged_against"]["history_tau"])
    for key, sc in res["scores"].items():
        assert all(np.isfinite(list(sc.values()))), key
        assert res["weighted_tau"][key] == pytest.approx(weighted_tau([sc[m] for m in truth], list(truth.values())))
    assert "logme+ped" in res["scores"] and "leep" in res["scores"] and "leep+ped" not in res["scores"]
    from pedjax.cli.demo import DEMO_METRICS
    from pedjax.metrics import REGISTRY
    expect = {v for m in DEMO_METRICS for v in ([m, m + "+ped"] if REGISTRY[m].input == "features" else [m])}
    assert set(res["scores"]) == expect


def test_default_task_is_the_highest_ceiling_among_installed_tasks(monkeypatch):
    """The demo's default task: the highest noise ceiling, among tasks whose dataset is installed
    (without Fashion-MNIST, a digits task); a table without per-seed accuracies falls back to digits-10."""
    from pedjax.data import fashion

    rng = np.random.default_rng(0)
    truth = rng.uniform(0.5, 0.9, 8)
    per_seed = {
        "fashion-rotated": {f"m{i}": [truth[i] + 1e-4 * s for s in range(3)] for i in range(8)},  # seeds agree: ceiling 1
        "digits-10": {f"m{i}": [truth[i] + rng.normal(0, 0.05) for _ in range(3)] for i in range(8)},  # noisy
        "digits-degraded": {f"m{i}": [truth[i] + rng.normal(0, 0.01) for _ in range(3)] for i in range(8)},
    }
    table = {"datasets": {t: {m: float(np.mean(v)) for m, v in p.items()} for t, p in per_seed.items()}, "per_seed": per_seed}
    ceil = {t: judging.noise_ceiling(p)["ceiling"] for t, p in per_seed.items()}
    monkeypatch.setattr(fashion, "available", lambda *a, **k: True)
    assert default_task(table) == "fashion-rotated" == max(ceil, key=ceil.get)
    monkeypatch.setattr(fashion, "available", lambda *a, **k: False)
    digits = {t: c for t, c in ceil.items() if t.startswith("digits")}
    assert default_task(table) == max(digits, key=digits.get)
    assert default_task({"datasets": table["datasets"]}) == DEFAULT_TASK
