"""``pedjax finetune`` in process: a linear probe from a saved params file, the mean-class-accuracy metric."""
from __future__ import annotations

from pedjax.cli import main
from pedjax.models import finetune as ft
from pedjax.models import nets


def test_cli_probe_with_params_file_and_mean_class_accuracy(tmp_path, capsys):
    params = nets.init(nets.create("mlp"), 3)
    nets.save_params(tmp_path / "mlp.msgpack", params)
    rc = main(["finetune", "--model", "mlp", "--params", str(tmp_path / "mlp.msgpack"), "--task", "digits-5",
               "--out", str(tmp_path / "out"), "--steps", "20", "--seeds", "0", "1", "--mode", "probe",
               "--metric", "mean_class_accuracy", "--checkpoint-every", "10", "--no-progress"])
    assert rc == 0
    res = ft.load_result(tmp_path / "out")
    assert res["mode"] == "probe" and res["metric"] == "mean_class_accuracy"
    assert res["provenance"]["model"]["init"] == "pretrained"
    assert res["score"] > 0.3 and len(res["per_seed"]) == 2
    assert "result.json" in capsys.readouterr().out
