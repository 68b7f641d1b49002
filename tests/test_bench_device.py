"""experiments/bench_device.py --smoke: every part of the device benchmark runs at toy sizes on the
CPU and writes its BENCHMARKS section (to a temporary file, never the repository's), with a
stand-in for the published code (the real one is not part of pedjax)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: the published metrics.py's two entry points the benchmark calls, same signatures, trivial values
_STAND_IN = '''
import numpy as np


def PED_Score(X, y, general_X=None, exit_ratio=0.5, time_step=0.1, eps=1e-3, type="SFDA", component_ratio=0.0,
              nsigma=2.0, constant=1.0):
    assert general_X is not None and X.dtype == np.float64
    return float(np.mean(X)) + (1.0 if type == "SFDA" else 2.0)


def NLEEP(X, y, component_ratio=5):
    return float(np.mean(np.abs(X)))
'''


def test_smoke_run_writes_every_part(tmp_path):
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "metrics.py").write_text(_STAND_IN)
    (ref / "utils.py").write_text("")
    bench = tmp_path / "BENCHMARKS.md"
    bench.write_text("# Benchmarks\n\n<!-- other:start -->\nkept\n<!-- other:end -->\n")
    out_json = tmp_path / "bench.json"
    env = {**os.environ, "PEDJAX_CACHE_DIR": "off", "PYTHONUNBUFFERED": "1"}
    before = (ROOT / "BENCHMARKS.md").read_bytes() if (ROOT / "BENCHMARKS.md").exists() else None
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "bench_device.py"), "--smoke", "--reference", str(ref),
         "--benchmarks", str(bench), "--json", str(out_json)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert out.startswith("backend ") and "devices" in out.splitlines()[0]
    import jax

    if not any(d.platform != "cpu" for d in jax.devices()):
        assert "NO GPU" in out  # said plainly, and the smoke run goes on on the CPU
    text = bench.read_text()
    assert "<!-- other:start -->\nkept\n<!-- other:end -->" in text  # other sections untouched
    assert text.count("<!-- bench_device:start -->") == 1 and "<!-- bench_device:end -->" in text
    for heading in ("## On a GPU", "### (a) Core", "### (b) NLEEP", "### (c) The demo", "### (d) float32 against float64"):
        assert heading in text, heading
    assert "published code (NumPy, host)" in text and "published (scikit-learn GaussianMixture" in text
    got = json.loads(out_json.read_text())
    assert got["smoke"] is True
    rows = got["core"]["rows"]
    assert {(r["metric"], r["where"], r["precision"]) for r in rows} == {
        (m, w, p) for m in ("sfda", "logme") for w in ("device", "host CPU") for p in ("float32", "float64")}
    assert all(r["warm"] >= 0 and r["cold"] >= 0 for r in rows)
    assert got["core"]["ref"]["sfda"]["models"] == 3
    assert {r["precision"] for r in got["nleep"]["rows"]} == {"float32", "float64"} and got["nleep"]["ref"]["score"] > 0
    assert [(r["where"], r["precision"]) for r in got["demo"]["rows"]] == [("device", "float32"), ("host CPU", "float64")]
    assert all(not r["errors"] for r in got["demo"]["rows"])
    fid = got["fidelity"]
    assert {"logme", "logme+ped", "sfda+ped", "parc"} <= set(fid["zoo"]) and {"leep", "logme+ped"} <= set(fid["demo"])
    assert all({"tau", "worst_rel", "nonfinite"} <= set(r) for g in fid.values() for r in g.values())
    if before is not None:
        assert (ROOT / "BENCHMARKS.md").read_bytes() == before  # the repository's file is not written


def test_without_an_accelerator_the_full_run_stops(tmp_path):
    import jax

    if any(d.platform != "cpu" for d in jax.devices()):
        pytest.skip("an accelerator is present: the full run would run the benchmark")
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "bench_device.py"), "--benchmarks", str(tmp_path / "B.md")],
                          cwd=ROOT, env={**os.environ, "PEDJAX_CACHE_DIR": "off"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "NO GPU" in proc.stdout
    assert not (tmp_path / "B.md").exists()
