"""``pedjax meta learn`` then ``pedjax score --ped-config`` in process, and ``pedjax meta show``."""
from __future__ import annotations

import dataclasses
import json

import pytest

import pedjax
from pedjax import meta
from pedjax.cli import main
from test_meta import _tasks


def test_cli_learn_then_score_with_ped_config(tmp_path, capsys):
    from pedjax.features import save_npz_zoo

    t = _tasks(1)[0]
    zoo = save_npz_zoo(tmp_path / "zoo.npz", {m: X for m, X in t.features.items() if X.shape[1] == 4}, t.labels,
                       {m: s for m, s in t.source_stats.items()}, dataset="toy")
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"toy": t.truth}))
    out = tmp_path / "learned.json"
    rc = main(["meta", "learn", "--zoo", str(zoo), "--truth", str(truth), "--steps", "1", "--lr", "0.1",
               "--out", str(out), "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    cfg = meta.load_config(out)
    assert res["config"] == dataclasses.asdict(cfg)
    rc = main(["score", "--zoo", str(zoo), "--metric", "logme", "--ped-config", str(out), "--json"])
    assert rc == 0
    got = json.loads(capsys.readouterr().out)
    assert got["ped"]["nsigma"] == cfg.nsigma and got["ped"]["constant"] == cfg.constant
    feats = {m: X for m, X in t.features.items() if X.shape[1] == 4}
    want = pedjax.score_zoo(feats, t.labels, "logme", ped=cfg, source_stats=t.source_stats)
    for m in want:
        assert got["scores"][m] == pytest.approx(want[m], rel=1e-12)
    assert main(["score", "--zoo", str(zoo), "--ped-config", str(out), "--nsigma", "0.3"]) == 2
    assert main(["score", "--zoo", str(zoo), "--ped-config", str(tmp_path / "missing.json")]) == 2
    assert main(["meta", "show", str(out)]) == 0
