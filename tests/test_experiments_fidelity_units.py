"""experiments/float32_fidelity.py scores a slow metric a few models at a time
(``--models-per-call``): each finished chunk is kept in the JSON, a stopped run resumes at the next
chunk, and the assembled result equals scoring the whole zoo at once. Also FeatureSet.only."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import float32_fidelity as FF  # noqa: E402

from pedjax.rank import fidelity as F  # noqa: E402

METRIC = "gbc"
_FIDELITY = F.fidelity


class SessionEnds(Exception):
    """The session stops in the middle of a metric."""


def _zoo():
    return F.synthetic_set(4, 60, 12, 3, seed=5, task="units-toy", rank=4)


def _run(path, units, monkeypatch=None, stop_after=None):
    calls = []

    def counting(fs, metrics, peds, **kw):
        if stop_after is not None and len(calls) == stop_after:
            raise SessionEnds
        calls.append(fs.models)
        return _FIDELITY(fs, metrics, peds, **kw)

    if monkeypatch is not None:
        monkeypatch.setattr(F, "fidelity", counting)
    data = FF.load_json(path)
    FF.run_sets([("units-toy", _zoo)], [METRIC], data, path, "fp", units=units)
    return calls


def test_featureset_only_keeps_the_named_models():
    fs = _zoo()
    sub = fs.only(["model_02", "model_00"])
    assert sub.models == ["model_02", "model_00"]
    assert set(sub.source_stats) == {"model_02", "model_00"}
    np.testing.assert_array_equal(sub.features["model_02"], fs.features["model_02"])
    np.testing.assert_array_equal(sub.labels, fs.labels)
    for bad in ([], ["model_09"]):
        with pytest.raises(ValueError, match="models"):
            fs.only(bad)


def test_chunks_resume_and_equal_the_whole_zoo(tmp_path, monkeypatch):
    whole = tmp_path / "whole.json"
    _run(whole, None)
    chunked = tmp_path / "chunked.json"
    with pytest.raises(SessionEnds):
        _run(chunked, {METRIC: 1}, monkeypatch, stop_after=2)
    kept = json.loads(chunked.read_text())["sets"]["units-toy"]
    assert kept["units"][METRIC]["models"] == ["model_00", "model_01"]
    assert METRIC not in kept["done"] and not kept.get("complete")
    calls = _run(chunked, {METRIC: 1}, monkeypatch)  # resumes: only the two models left
    assert calls == [["model_02"], ["model_03"]]
    a = json.loads(whole.read_text())["sets"]["units-toy"]
    b = json.loads(chunked.read_text())["sets"]["units-toy"]
    assert "units" not in b and b["done"] == [METRIC] and b["complete"] == a["complete"]
    assert set(b["rows"]) == set(a["rows"]) == {METRIC, METRIC + "+ped"}
    for p in F.PRECISIONS:
        for v in a["rows"]:
            sa, sb = a["scores"][p][v], b["scores"][p][v]
            assert list(sb) == list(sa)  # the zoo's model order
            rtol = 1e-12 if p == "float64" else 1e-5
            np.testing.assert_allclose([sb[m] for m in sa], [sa[m] for m in sa], rtol=rtol)
    for v in a["rows"]:
        assert b["rows"][v]["n_models"] == 4
        assert b["rows"][v]["tau"] == pytest.approx(a["rows"][v]["tau"], abs=1e-12)
    assert _run(chunked, {METRIC: 1}, monkeypatch) == []  # done: nothing scored again


def test_chunks_of_older_code_are_dropped(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    with pytest.raises(SessionEnds):
        _run(path, {METRIC: 2}, monkeypatch, stop_after=1)
    data = json.loads(path.read_text())
    data["sets"]["units-toy"]["units"][METRIC]["fingerprint"] = "older"
    path.write_text(json.dumps(data))
    assert _run(path, {METRIC: 2}, monkeypatch) == [["model_00", "model_01"], ["model_02", "model_03"]]


def test_models_per_call_is_checked(tmp_path):
    for bad in ("gbc", "gbc=0", "nosuch=1", "ncti=1"):
        with pytest.raises(SystemExit, match="--models-per-call"):
            FF.main(["--only", "synthetic", "--models-per-call", bad, "--json", str(tmp_path / "x.json"), "--no-write"])


def test_a_zoo_level_metric_is_not_split():
    with pytest.raises(ValueError, match="whole zoo"):
        FF.score_metric(_zoo(), "ncti", {}, {}, 2, lambda: None)
