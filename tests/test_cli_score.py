"""``pedjax score`` end to end on real data (tests/digits_results.py), in process through
``pedjax.cli.main``: the published results-folder layout and .npz zoos, JSON/CSV output, figures,
and errors a person can act on (one line, exit 2, no traceback unless --debug)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import pedjax
from pedjax import cli
from pedjax.features import save_npz_zoo
from digits_results import DATASET, PNG, build, expected, main_err, ok, run


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return build(tmp_path_factory.mktemp("score"))


def test_score_results_dir_ped_json_equals_score_zoo_and_plots(zoo, capsys):
    figs = zoo["root"] / "figs_score"
    out = json.loads(ok(capsys, "score", "--results-dir", zoo["results"], "--dataset", DATASET, "--metric", "sfda", "--ped", "--nsigma", "0.6", "--json", "--plot", figs))
    assert out["dataset"] == DATASET and out["metric"] == "sfda" and out["ped"]["nsigma"] == 0.6
    expect = expected(zoo, "sfda", pedjax.PEDConfig(nsigma=0.6))
    assert set(out["scores"]) == set(expect) == set(zoo["feats"])
    for m, v in expect.items():
        assert out["scores"][m] == pytest.approx(v, rel=1e-12, abs=1e-12), m
    assert out["ranking"] == sorted(expect, key=lambda k: -expect[k])
    # the figures are written after the JSON is printed (listed on stderr, not in the JSON)
    assert sorted(p.name for p in figs.iterdir()) == sorted(["scores.png", "ped_trajectory.png", f"clusters_{out['ranking'][0]}.png"])
    for p in figs.iterdir():
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000


def test_score_npz_zoo_csv(zoo, capsys):
    path = save_npz_zoo(zoo["root"] / "zoo.npz", {m: zoo["feats"][m] for m in ("pca-16", "randproj-16", "tanh-16")}, zoo["labels"]["pca-16"], dataset=DATASET)
    text = ok(capsys, "score", "--zoo", path, "--metric", "LogME", "--csv")
    lines = text.strip().splitlines()
    assert lines[0] == "rank,model,score" and len(lines) == 4
    got = {row.split(",")[1]: float(row.split(",")[2]) for row in lines[1:]}
    exp = expected(zoo, "logme", None)
    for m, v in got.items():
        assert v == pytest.approx(exp[m], rel=1e-12, abs=1e-12)
    assert [row.split(",")[1] for row in lines[1:]] == sorted(got, key=lambda k: -got[k])


# ------------------------------------------------------------------------------------------------
# errors a person can act on: one line, exit 2, no traceback (unless --debug)


def test_error_unknown_dataset_one_line(zoo, capsys):
    code, out, err = run(capsys, "score", "--results-dir", zoo["results"], "--dataset", "cifar10", "--metric", "logme")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "cifar10" in err and "datasets found there: ['digits']" in err
    assert "{model}_cifar10_feature.npy" in err


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
    err = main_err(capsys, "score", "--results-dir", res, "--dataset", DATASET, "--metric", "nope")
    assert "unknown metric 'nope'" in err and "'logme'" in err and "'sfda'" in err
    err = main_err(capsys, "score", "--results-dir", res, "--dataset", DATASET, "--metric", "leep")
    assert "not features" in err
    err = main_err(capsys, "score", "--results-dir", tmp_path / "nowhere", "--dataset", DATASET)
    assert "not a folder" in err
    d = _copy(zoo, tmp_path, drop=["pca-16_digits_label.npy", "relu-32_imagenet_feature.npy"])
    err = main_err(capsys, "score", "--results-dir", d, "--dataset", DATASET)
    assert "missing label file(s)" in err and "pca-16_digits_label.npy" in err
    (d / "pca-16_digits_feature.npy").unlink()
    err = main_err(capsys, "score", "--results-dir", d, "--dataset", DATASET, "--ped")
    assert "relu-32_imagenet_feature.npy" in err and "--source-set target" in err
    bad = zoo["feats"]["tanh-16"].copy()
    bad[3, 1] = np.nan
    d2 = _copy(zoo, tmp_path / "b", change={"tanh-16_digits_feature.npy": bad, "randproj-16_digits_label.npy": zoo["labels"]["pca-16"][:-5]})
    err = main_err(capsys, "score", "--results-dir", d2, "--dataset", DATASET, "--model", "tanh-16")
    assert "model 'tanh-16'" in err and "NaN" in err and "--exclude tanh-16" in err
    err = main_err(capsys, "score", "--results-dir", d2, "--dataset", DATASET, "--exclude", "tanh-16")
    assert "model 'randproj-16'" in err and "600 rows" in err and "595 labels" in err
    with pytest.raises(ValueError):
        cli.main(["--debug", "score", "--results-dir", str(res), "--dataset", DATASET, "--metric", "nope"])
