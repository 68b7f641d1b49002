"""``pedjax zoo list`` in process (building a zoo: tests/test_zoo_build.py)."""
from __future__ import annotations

from pedjax.cli import main
from test_zoo_store import _random_member


def test_zoo_list(tmp_path, capsys):
    _random_member(tmp_path, "m", "mlp", {"hidden": [8]}, "npz", 0)
    assert main(["zoo", "list", "--zoo", str(tmp_path)]) == 0
    assert "m" in capsys.readouterr().out
    assert main(["zoo", "list", "--zoo", str(tmp_path / "none")]) == 2
    assert "pedjax zoo build" in capsys.readouterr().err


def test_zoo_list_shows_the_build_record(tmp_path, capsys):
    from pedjax.zoo.build import record_build

    _random_member(tmp_path, "m", "mlp", {"hidden": [8]}, "npz", 0)
    rec = record_build(tmp_path)
    assert rec["complete"] is None and rec["truth_seconds"] == 0.0  # no ground truth yet
    assert main(["zoo", "list", "--zoo", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "build: built;" in out and rec["machine"] in out


def test_zoo_list_shows_each_tasks_noise_ceiling(tmp_path, capsys):
    """With per-seed accuracies in the ground truth, ``zoo list`` prints per task how many members
    are done and the noise ceiling (the mean τ_w between seeds' rankings, computed independently
    here with scipy), and marks a task below the headline bar."""
    import json

    import numpy as np
    from scipy.stats import weightedtau

    from pedjax.zoo import TRUTH_FILE

    for i, name in enumerate("abcd"):
        _random_member(tmp_path, name, "mlp", {"hidden": [8]}, "npz", i)
    agree = {"a": [0.9, 0.91, 0.9], "b": [0.8, 0.8, 0.81], "c": [0.7, 0.71, 0.7], "d": [0.6, 0.6, 0.6]}
    shuffled = {"a": [0.9, 0.6, 0.7], "b": [0.6, 0.9, 0.8], "c": [0.7, 0.8, 0.9], "d": [0.8, 0.7, 0.6]}
    half = {"a": [0.9, 0.9, 0.9], "b": [0.8, None, 0.8], "c": [0.7, 0.7, 0.7], "d": [0.6, 0.6, 0.6]}
    truth = {"format": "pedjax-zoo-truth", "score_definition": "test", "seeds": [0, 1, 2],
             "datasets": {"t1": {m: float(np.mean(v)) for m, v in agree.items()}},
             "per_seed": {"t1": agree, "t2": shuffled, "t3": half}}
    (tmp_path / TRUTH_FILE).write_text(json.dumps(truth))
    assert main(["zoo", "list", "--zoo", str(tmp_path)]) == 0
    out = capsys.readouterr().out

    def ceiling(per):
        ms = sorted(per)
        taus = [weightedtau([per[m][i] for m in ms], [per[m][j] for m in ms])[0] for i, j in ((0, 1), (0, 2), (1, 2))]
        return float(np.mean(taus))

    line = {row.split()[1]: row for row in out.splitlines() if row.startswith("│ t")}
    assert f"{ceiling(agree):.3f}" in line["t1"] and "4/4" in line["t1"] and "below" not in line["t1"]
    assert ceiling(shuffled) < 0.6 and f"{ceiling(shuffled):.3f}" in line["t2"] and "below the headline bar" in line["t2"]
    assert "3/4" in line["t3"]


def test_zoo_list_shipped_zoo_is_benchmark_v2(capsys):
    """What `pedjax zoo list` shows of the shipped zoo: ≥ 24 members of ≥ 4 architecture families,
    ground truth on ≥ 10 tasks, and the build's cost and machine."""
    import json

    assert main(["zoo", "list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    members = out["members"]
    assert len(members) >= 24 and len({m["arch"] for m in members}) >= 4
    assert len(out["truth"]) >= 10 and all(len(v) == len(members) for v in out["truth"].values())
    assert main(["zoo", "list"]) == 0
    text = capsys.readouterr().out
    assert "build: complete;" in text and "noise ceiling" in text
