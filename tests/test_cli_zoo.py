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
