"""``--precision`` on every command, ``pedjax info``, ``pedjax --version``; the precision a run
used is in its JSON result and its table header."""
from __future__ import annotations

import argparse
import json
from importlib.metadata import version

import pytest

import pedjax
from pedjax import cli
from pedjax.features import save_npz_zoo
from digits_results import DATASET, build, expected, ok


def _leaves(parser, path=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for a in subs:
        for name, child in a.choices.items():
            yield from _leaves(child, path + (name,))


def test_every_command_takes_precision():
    leaves = list(_leaves(cli.build_parser()))
    assert len(leaves) >= 12
    for path, p in leaves:
        opts = {o: a for a in p._actions for o in a.option_strings}
        assert "--precision" in opts, path
        assert opts["--precision"].default == "auto" and tuple(opts["--precision"].choices) == pedjax.PRECISIONS


def test_version_from_package_metadata(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"pedjax {version('pedjax')}"


def test_info_reports_backend_devices_and_precision(capsys):
    got = json.loads(ok(capsys, "info", "--json"))
    assert got["backend"] == "cpu" and got["device_count"] >= 1 and len(got["devices"]) == got["device_count"]
    assert got["auto_precision"] == "float64" and got["precision"] == "float64"
    assert got["float64_available"] == "yes" and got["pedjax"] == pedjax.__version__
    assert json.loads(ok(capsys, "info", "--json", "--precision", "float32"))["precision"] == "float32"
    text = ok(capsys, "info")
    assert "precision auto picks" in text and "float64 available" in text


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return build(tmp_path_factory.mktemp("precision"))


def test_score_records_and_uses_the_precision(zoo, capsys):
    path = save_npz_zoo(zoo["root"] / "zoo.npz", {m: zoo["feats"][m] for m in ("pca-16", "randproj-16", "tanh-16")},
                        zoo["labels"]["pca-16"], dataset=DATASET)
    r64 = json.loads(ok(capsys, "score", "--zoo", path, "--metric", "logme", "--json"))
    r32 = json.loads(ok(capsys, "score", "--zoo", path, "--metric", "logme", "--json", "--precision", "float32"))
    assert r64["precision"] == "float64" and r32["precision"] == "float32"
    exp = expected(zoo, "logme", None)
    for m in r64["scores"]:
        assert r64["scores"][m] == pytest.approx(exp[m], rel=1e-12)
        assert r32["scores"][m] == pytest.approx(exp[m], rel=1e-4)  # float32: close, not float64-exact
    assert any(r32["scores"][m] != r64["scores"][m] for m in r64["scores"])
    assert "float32" in ok(capsys, "score", "--zoo", path, "--metric", "logme", "--precision", "float32")
