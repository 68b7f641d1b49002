"""The zoo builder (pedjax.zoo.build), the first zoo's tiny CI chain (issue 5, item 6): pretrain → features →
PED + metrics → fine-tune → τ_w.

Two tiny members pretrained for a few steps on the Fashion-MNIST source split, one task
(digits-5), fine-tuned over the full 4×4 grid with two seeds, scored by LogME and SFDA static and
after PED, judged by weighted τ — through the same code and commands that build the shipped zoo
(``pedjax zoo build --v1 --tiny``, ``experiments/zoo_benchmark.py``), interrupted twice on the way to
show that the build resumes. Marked slow (``make test-all`` runs it).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import pedjax  # noqa: F401
from pedjax import rank
from pedjax import zoo as modelzoo
from pedjax.features import extract_features
from pedjax.zoo.build import build_members, build_truth
from pedjax.data import fashion

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not fashion.available(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): the zoo pretrains on its source split",
)]


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("zoo_benchmark", ROOT / "experiments" / "zoo_benchmark.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Stop(Exception):
    pass


def _stop(*_):
    raise Stop


def test_tiny_chain(tmp_path, capsys):
    zoo_dir, work = tmp_path / "zoo", tmp_path / "work"
    members, config = modelzoo.TINY_MEMBERS, modelzoo.TINY_CONFIG

    # 1. pretrain: killed after the first member; the manifest already holds it
    with pytest.raises(Stop):
        build_members(zoo_dir, work, members, config, progress=False, verbose=False, on_member=_stop)
    first = modelzoo.read_manifest(zoo_dir)["members"]
    assert [m["name"] for m in first] == [members[0].name]

    # 2. ground truth for the first member: killed after its first pair
    with pytest.raises(Stop):
        build_truth(zoo_dir, work, config, progress=False, verbose=False, on_pair=_stop)
    truth0 = json.loads((zoo_dir / modelzoo.TRUTH_FILE).read_text())
    assert list(truth0["datasets"]["digits-5"]) == [members[0].name]

    # 3. the CI command: resumes both phases and completes them
    from pedjax.cli import main

    assert main(["zoo", "build", "--v1", "--tiny", "--zoo", str(zoo_dir), "--work", str(work), "--no-progress"]) == 0
    manifest = modelzoo.read_manifest(zoo_dir)
    assert [m["name"] for m in manifest["members"]] == [m.name for m in members]
    assert manifest["members"][0]["pretrain"] == first[0]["pretrain"], "the finished member was not rebuilt"
    for m in manifest["members"]:
        assert m["linear_probe"]["passed"] and m["linear_probe"]["accuracy"] > 0.2  # chance 0.1
        assert m["pretrain"]["config"]["steps"] == config.steps
    truth = json.loads((zoo_dir / modelzoo.TRUTH_FILE).read_text())
    gt = truth["datasets"]["digits-5"]
    assert set(gt) == {m.name for m in members} and all(0.0 < v <= 1.0 for v in gt.values())
    assert gt[members[0].name] == truth0["datasets"]["digits-5"][members[0].name], "the finished pair was not redone"
    assert truth["provenance"]["finetune"]["seeds"] == [0, 1] and truth["provenance"]["finetune"]["steps"] == config.ft_steps

    # 4. features → PED + metrics → τ_w, with the benchmark script that writes docs/results.md
    bench = _benchmark_module()
    out_md, fig, js = tmp_path / "results.md", tmp_path / "fig" / "tau.png", tmp_path / "bench.json"
    assert bench.main(["--zoo", str(zoo_dir), "--metrics", "logme", "sfda", "--out", str(out_md),
                       "--figure", str(fig), "--json", str(js), "--quiet"]) == 0
    res = json.loads(js.read_text())
    assert set(res["tau"]) == {"logme", "logme+PED(0.3)", "logme+PED(0.6)", "sfda", "sfda+PED(0.3)", "sfda+PED(0.6)"}
    names = [m.name for m in members]
    for variant, per_task in res["tau"].items():
        sc = res["scores"]["digits-5"][variant]
        assert per_task["digits-5"] == pytest.approx(rank.weighted_tau([sc[n] for n in names], [gt[n] for n in names]))
        assert -1.0 <= per_task["digits-5"] <= 1.0
    assert not res["errors"]
    text = out_md.read_text()
    assert "| logme |" in text and "+ PED (nsigma 0.6)" in text and "## Ground truth" in text
    assert fig.is_file() and fig.stat().st_size > 10_000
    # the report renders again from the run's JSON, identical (command, date, commit of the computing run)
    again = tmp_path / "again.md"
    assert bench.main(["--from-json", str(js), "--out", str(again), "--figure", str(fig), "--quiet"]) == 0
    assert again.read_text() == text and res["command"].endswith("--quiet")

    # 5. the zoo loads and extracts features (its speed: experiments/bench_*.py, not a test)
    zf = extract_features(modelzoo.load_zoo(zoo_dir), "digits-5")
    assert set(zf.features) == set(names) and all(np.isfinite(v).all() for v in zf.features.values())

    # 6. `pedjax demo` on a zoo folder: the ranking table's numbers, as JSON
    capsys.readouterr()
    assert main(["demo", "--zoo", str(zoo_dir), "--task", "digits-5", "--metric", "logme", "--metric", "leep", "--json"]) == 0
    demo = json.loads(capsys.readouterr().out)
    assert set(demo["scores"]) == {"logme", "logme+ped", "leep"}  # PED applies to feature metrics only
    assert {k: v["truth"] for k, v in demo["models"].items()} == gt
    for key, sc in demo["scores"].items():
        assert demo["weighted_tau"][key] == pytest.approx(rank.weighted_tau([sc[n] for n in names], [gt[n] for n in names]))
    assert main(["demo", "--zoo", str(zoo_dir), "--task", "fashion-nope"]) == 2  # one line, exit 2
    assert "--task" in capsys.readouterr().err
