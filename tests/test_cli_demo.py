"""The demo zoo on real digits and the command line front door."""
import json
import subprocess
import sys

import numpy as np
import pytest

import pedjax
from pedjax import zoo as modelzoo
from pedjax.cli.demo import DEFAULT_TASK, run_demo, shipped_zoo_available
from pedjax.features import digits_zoo
from pedjax.rank import weighted_tau


@pytest.fixture(scope="module")
def zoo():
    return digits_zoo()


def test_digits_zoo_is_real_and_ranked(zoo):
    features, y, stats, truth = zoo
    assert len(features) >= 10 and set(np.unique(y)) == set(range(10))
    assert truth["mlp32-trained"] > truth["mlp32-untrained"]
    assert all(0.1 < a <= 1.0 for a in truth.values())  # every probe beats chance (10 classes)
    s = pedjax.score_zoo(features, y, "logme", ped=pedjax.PEDConfig(), source_stats=stats)
    assert all(np.isfinite(v) for v in s.values())


def test_run_demo_json_consistent(zoo):
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


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pedjax.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_metrics_lists_registry():
    r = _cli("metrics")
    assert r.returncode == 0
    for name in ("logme", "sfda", "gbc", "hscore", "leep", "nce"):
        assert name in r.stdout


def test_cli_bad_metric_is_one_line_exit_2():
    r = _cli("demo", "--metric", "nope")
    assert r.returncode == 2
    assert "unknown metric 'nope'" in r.stderr and "Traceback" not in r.stderr
    r = _cli("demo", "--zoo", "no-such-zoo")
    assert r.returncode == 2 and "--zoo" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not shipped_zoo_available(), reason="the shipped zoo is not built (pedjax zoo build)")
def test_demo_on_shipped_zoo():
    """`make demo`'s job: the shipped zoo on a shipped task, every metric ± PED, τ_w against fine-tuning."""
    r = _cli("demo", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["zoo"] != "digits" and len(res["models"]) >= 12
    truth = {k: v["truth"] for k, v in res["models"].items()}
    assert truth == pytest.approx(modelzoo.load_zoo().truth()["datasets"][DEFAULT_TASK])
    for key, sc in res["scores"].items():
        assert all(np.isfinite(list(sc.values()))), key
        assert res["weighted_tau"][key] == pytest.approx(weighted_tau([sc[m] for m in truth], list(truth.values())))
    assert "logme+ped" in res["scores"] and "leep" in res["scores"] and "leep+ped" not in res["scores"]
