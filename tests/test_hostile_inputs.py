"""A broken model is never recommended, a NaN never goes out unflagged, one writer per output folder,
and every command-line failure is one line (issue: robustness).

Facts the tests compare against are independent of the code under test: the rank of a model among
real ones, the entropy of the labels (NCE/LEEP chance level), strict JSON parsing, the input arrays
themselves (PED must not move a degenerate model), the process id of a lock holder.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import pedjax
from pedjax import cli, metrics
from pedjax._validate import dead_dimensions, is_degenerate
from pedjax.metrics import REGISTRY
from pedjax.physics import PEDConfig, ped
from pedjax.rank import evaluate_scores, ranking, score_problems
from pedjax.scoring import ped_zoo, score_zoo
from pedjax.util import LOCK_FILE, OutputLocked, dumps_json, output_lock

REPO = Path(__file__).resolve().parents[1]
FEATURE_METRICS = sorted(k for k, m in REGISTRY.items() if m.input == "features" and m.target == "classes")
N, D, C = 60, 5, 3


def _labels():
    return np.repeat(np.arange(C), N // C)


def _zoo(seed=0):
    """Two real models (clear and weak class structure) and the degenerate kinds of the issue."""
    rng = np.random.default_rng(seed)
    y = _labels()
    onehot = np.eye(C, D)[y]
    real = {
        "real_good": rng.normal(size=(N, D)) + 2.0 * onehot,
        "real_weak": rng.normal(size=(N, D)) + 0.7 * onehot,
    }
    degenerate = {
        "zero": np.zeros((N, D)),
        "constant": np.full((N, D), 3.7),
        "tiny_constant": np.full((N, D), 1e-300),  # a dead model at a tiny magnitude
        # spread at rounding level relative to the magnitude (a few ulps of 1.0), class-dependent
        "rounding": 1.0 + 2e-16 * (np.arange(N) % 3)[:, None] * np.ones((1, D)),
        # float32 features whose spread is float32 rounding
        "f32_rounding": (np.float32(5.0) + np.float32(4e-7) * (y % 2)[:, None].astype(np.float32)) * np.ones((1, D), np.float32),
    }
    return real, degenerate, y


# ----------------------------------------------------------------------------------------------
# the rule


def test_rule_is_scale_free():
    real, degenerate, _ = _zoo()
    X = real["real_good"]
    for k in range(-300, 301, 50):  # every magnitude of the float64 range
        assert not is_degenerate(X * 10.0 ** k), k
        assert is_degenerate(np.full_like(X, 3.0) * 10.0 ** k), k
    assert not is_degenerate(X.astype(np.float32))
    for name, Z in degenerate.items():
        assert is_degenerate(Z), name
    # one dead dimension among live ones is not a dead model; the dimension itself is dead
    Y = X.copy()
    Y[:, 2] = 7.0
    assert not is_degenerate(Y)
    assert dead_dimensions(Y).tolist() == [False, False, True, False, False]


@pytest.mark.parametrize("metric", FEATURE_METRICS)
@pytest.mark.parametrize("with_ped", [False, True], ids=["static", "ped"])
def test_degenerate_model_ranks_last(metric, with_ped):
    real, degenerate, y = _zoo()
    zoo = {**real, **degenerate}
    scores = score_zoo(zoo, y, metric, ped=PEDConfig() if with_ped else None)
    order = ranking(scores)
    assert set(order[: len(real)]) == set(real), (metric, scores)  # every real model above every degenerate one
    for name in degenerate:
        assert scores[name] == REGISTRY[metric].uninformative == float("-inf"), (name, scores[name])
        assert name in score_problems(scores)
    assert all(np.isfinite(scores[k]) for k in real)
    # the public function agrees (same rule, no PED)
    if not with_ped:
        assert REGISTRY[metric].fn(degenerate["zero"], y) == float("-inf")


@pytest.mark.parametrize("metric", ["logme", "sfda"])
def test_degenerate_scores_with_source_statistics(metric):
    """PED with source statistics (the issue's case: LogME 7.26, SFDA a perfect 1.0 for a dead model)."""
    real, degenerate, y = _zoo(1)
    zoo = {**real, **degenerate}
    rng = np.random.default_rng(5)
    stats = {k: (rng.normal(size=D), rng.uniform(0.5, 2.0, size=D)) for k in zoo}
    stats["zero"] = (np.zeros(D), np.zeros(D))  # a dead model is dead on the source set too
    scores = score_zoo(zoo, y, metric, ped=PEDConfig(), source_stats=stats)
    assert set(ranking(scores)[:2]) == set(real)
    assert all(scores[k] == float("-inf") for k in degenerate)


def test_public_metric_still_validates_degenerate_input():
    y = _labels()
    with pytest.raises(ValueError, match="rows"):
        metrics.logme(np.zeros((N + 1, D)), y)
    with pytest.raises(ValueError, match="class"):
        metrics.sfda(np.zeros((N, D)), np.zeros(N, int))


def test_probability_and_label_metrics_score_chance_on_constant_input():
    """LEEP/NCE compute their own value on a constant input: the labels' chance level."""
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(C), [10, 20, 30])
    prior = np.bincount(y) / y.size
    entropy = -np.sum(prior * np.log(prior))
    assert metrics.nce(np.zeros(y.size, int), y) == pytest.approx(-entropy, rel=1e-12)
    const_probs = np.full((y.size, 4), 0.25)
    assert metrics.leep(const_probs, y) == pytest.approx(-entropy, rel=1e-12)
    # an informative source model scores above its constant counterpart
    informative = np.eye(4)[y] * 0.9 + 0.025
    assert metrics.leep(informative, y) > metrics.leep(const_probs, y)
    assert metrics.nce(y, y) > metrics.nce(np.zeros(y.size, int), y)


def test_ped_does_not_move_degenerate_models_or_dead_dimensions():
    real, degenerate, y = _zoo(3)
    moved = ped_zoo({**real, **degenerate}, y, PEDConfig(nsigma=2.0))
    for name, X in degenerate.items():
        np.testing.assert_array_equal(moved[name], np.asarray(X, np.float64))
    assert not np.allclose(moved["real_good"], real["real_good"])  # real models do move
    # a dead dimension inside a live model stays exactly constant
    X = real["real_weak"].copy()
    X[:, 1] = 0.3
    out = np.asarray(ped(X, y, X.mean(0) + 0.1, X.std(0), PEDConfig(nsigma=2.0)).features)
    assert np.ptp(out[:, 1]) == 0.0
    assert np.ptp(out[:, 0]) > 0
    # moving first and scoring after gives the same scores, degenerate models included
    direct = score_zoo({**real, **degenerate}, y, "logme", ped=PEDConfig(nsigma=2.0))
    after = score_zoo(moved, y, "logme")
    assert ranking(direct) == ranking(after)
    for k in direct:
        assert after[k] == pytest.approx(direct[k], rel=1e-9) or after[k] == direct[k]


# ----------------------------------------------------------------------------------------------
# NaN handling


def test_ranking_puts_nan_and_uninformative_last_and_json_is_strict():
    scores = {"a": float("nan"), "b": 0.5, "c": float("-inf"), "d": 2.0, "e": None}
    assert ranking(scores) == ["d", "b", "c", "a", "e"]
    problems = score_problems(scores)
    assert set(problems) == {"a", "c", "e"}
    assert "NaN" in problems["a"] and "degenerate" in problems["c"]
    text = dumps_json({"scores": scores})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))["scores"]["a"] is None


def test_evaluate_scores_drops_unscored_models():
    truth = {"a": 0.1, "b": 0.5, "c": 0.9, "d": 0.7}
    out = evaluate_scores({"a": float("nan"), "b": 1.0, "c": 3.0, "d": None}, truth)
    assert out["models"] == 2 and set(out["unscored"]) == {"a", "d"}
    assert out["pick"] == "c"
    with pytest.raises(ValueError, match="--scores.*finite"):
        evaluate_scores({"a": float("nan"), "b": 1.0, "c": None}, truth)


# ----------------------------------------------------------------------------------------------
# settings


@pytest.mark.parametrize("changes", [
    {"nsigma": -0.6}, {"time_step": np.array(-0.1)}, {"time_step": np.array(np.nan)}, {"time_step": "0.1"},
    {"time_step": [0.1, 0.2]}, {"constant": -1.0}, {"eps": float("inf")}, {"nsigma": True},
])
def test_ped_config_rejects_bad_settings(changes):
    with pytest.raises(ValueError, match="PEDConfig"):
        PEDConfig(**changes).validate()


def test_ped_config_accepts_0d_arrays_and_rejects_bad_source_std():
    real, _, y = _zoo()
    X = real["real_good"]
    a = np.asarray(ped(X, y, cfg=PEDConfig(time_step=np.array(0.1))).features)
    b = np.asarray(ped(X, y, cfg=PEDConfig(time_step=0.1)).features)
    np.testing.assert_array_equal(a, b)
    std = X.std(0)
    with pytest.raises(ValueError, match="source_std.*negative"):
        ped(X, y, X.mean(0), -std)
    with pytest.raises(ValueError, match="source_std.*zero"):
        ped(X, y, X.mean(0), np.zeros(D))
    with pytest.raises(ValueError, match="source_stats.*negative"):
        score_zoo({"m": X}, y, "logme", ped=PEDConfig(), source_stats={"m": (X.mean(0), -std)})


# ----------------------------------------------------------------------------------------------
# one writer per output directory


_HOLDER = textwrap.dedent("""
    import sys, time
    from pedjax.util import output_lock
    with output_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def _hold(directory, seconds=60.0):
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(directory), str(seconds)], stdout=subprocess.PIPE, text=True,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_refuses_at_once_and_lock_dies_with_holder(tmp_path):
    d = tmp_path / "out"
    proc = _hold(d)
    try:
        with pytest.raises(OutputLocked, match=f"pid {proc.pid}"):  # refused, not waited for
            with output_lock(d):
                pass
    finally:
        proc.kill()
        proc.wait()
    with output_lock(d):  # the kernel released it with the killed holder
        with output_lock(d):  # re-entrant in one process
            pass
    assert (d / LOCK_FILE).is_file()


def test_finetune_command_refuses_a_held_output_folder(tmp_path, capsys):
    d = tmp_path / "ft"
    proc = _hold(d)
    try:
        code = cli.main(["finetune", "--model", "mlp", "--task", "digits-5", "--out", str(d), "--steps", "2", "--no-progress"])
    finally:
        proc.kill()
        proc.wait()
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "in use by another pedjax run" in err and str(proc.pid) in err


def test_stale_temporary_checkpoints_are_removed_on_resume(tmp_path):
    import jax.numpy as jnp

    from pedjax.models.training import Checkpoints, run_resumable

    d = tmp_path / "ckpt"
    ck = Checkpoints(d)
    state = (jnp.zeros(3),)
    state, _ = run_resumable(lambda s, a, b: (s[0] + (b - a),), state, 4, 2, ck)
    stale = d / "3.orbax-checkpoint-tmp"
    stale.mkdir()
    (stale / "junk").write_text("half-written")
    ck2 = Checkpoints(d)
    assert not stale.exists() and stale in ck2.removed
    out, resumed = run_resumable(lambda s, a, b: (s[0] + (b - a),), (jnp.zeros(3),), 4, 2, ck2)
    assert resumed == 2 and float(out[0][0]) == 4.0


@pytest.mark.slow
def test_two_concurrent_finetune_processes(tmp_path):
    """Two real `pedjax finetune --out D` processes at once: one finishes, the other refuses in one line."""
    d = tmp_path / "ft"
    cmd = [sys.executable, "-m", "pedjax.cli", "finetune", "--model", "mlp", "--task", "digits-5", "--out", str(d),
           "--steps", "40", "--checkpoint-every", "10", "--seeds", "0", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PEDJAX_CACHE_DIR": "off"}
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    deadline = time.time() + 60
    while not (d / LOCK_FILE).is_file() or not (d / LOCK_FILE).read_text():
        assert time.time() < deadline and first.poll() is None
        time.sleep(0.1)
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert second.returncode == 2
    assert len(second.stderr.strip().splitlines()) == 1 and "in use" in second.stderr
    assert "Traceback" not in second.stderr


# ----------------------------------------------------------------------------------------------
# the command line


@pytest.fixture
def results(tmp_path):
    real, degenerate, y = _zoo(4)
    rng = np.random.default_rng(9)
    root = tmp_path / "res"
    root.mkdir()
    models = {**real, "dead": degenerate["zero"]}
    for m, X in models.items():
        np.save(root / f"{m}_toy_feature.npy", X.astype(np.float32))
        np.save(root / f"{m}_toy_label.npy", y)
        src = np.zeros((40, D)) if m == "dead" else rng.normal(size=(40, D))
        np.save(root / f"{m}_imagenet_feature.npy", src.astype(np.float32))
    return root


def _run(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("extra", [[], ["--ped"]], ids=["static", "ped"])
def test_score_command_ranks_dead_model_last_with_strict_json(results, capsys, tmp_path, extra):
    code, out, err = _run(capsys, "score", "--results-dir", results, "--dataset", "toy", "--metric", "sfda", "--json", "--no-progress", *extra)
    assert code == 0
    obj = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert obj["ranking"][-1] == "dead" and obj["scores"]["dead"] is None
    assert "degenerate" in obj["unscored"]["dead"]
    assert "warning" in err and "dead" in err
    path = tmp_path / "scores.json"
    path.write_text(out)
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"real_good": 0.9, "real_weak": 0.5, "dead": 0.1}))
    code, out, err = _run(capsys, "evaluate", "--scores", path, "--truth", truth, "--json")
    assert code == 0 and "dropped dead" in err
    assert json.loads(out)["results"]["sfda" + ("+ped" if extra else "")]["unscored"].keys() == {"dead"}


def test_evaluate_accepts_a_bare_nan_file(tmp_path, capsys):
    p = tmp_path / "old.json"
    p.write_text('{"metric": "logme", "scores": {"a": NaN, "b": 1.0, "c": 2.0}}')
    t = tmp_path / "t.json"
    t.write_text('{"a": 3, "b": 1, "c": 2}')
    code, out, err = _run(capsys, "evaluate", "--scores", p, "--truth", t)
    assert code == 0 and "dropped a" in err and "NaN" in err


def _corrupt(kind, path: Path):
    path.unlink()
    if kind == "empty_file":
        path.write_bytes(b"")
    elif kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).bytes(200))
    elif kind == "truncated":
        np.save(path, np.ones((N, D)))
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "empty_matrix":
        np.save(path, np.zeros((0, D)))
    elif kind == "folder":
        path.mkdir()


@pytest.mark.parametrize("kind,words", [
    ("empty_file", "empty"), ("random_bytes", "not a .npy"), ("truncated", "truncated"),
    ("empty_matrix", "empty"), ("folder", "folder"),
])
def test_bad_array_files_are_one_line_naming_the_file(results, capsys, kind, words):
    bad = results / "real_weak_toy_feature.npy"
    _corrupt(kind, bad)
    code, out, err = _run(capsys, "score", "--results-dir", results, "--dataset", "toy", "--no-progress")
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert bad.name in err and words in err and "pickled" not in err


def test_unwritable_plot_reports_after_the_scores(results, capsys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, out, err = _run(capsys, "score", "--results-dir", results, "--dataset", "toy", "--csv", "--no-progress",
                          "--plot", blocker / "figs")
    assert code == 2
    assert out.startswith("rank,model,score") and "real_good" in out  # the scores are out first
    assert len(err.strip().splitlines()) >= 1 and err.strip().splitlines()[-1].startswith("pedjax score: error: --plot")


def test_unreadable_paths_and_bad_settings_are_one_line(results, capsys, tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    for args in (["score", "--results-dir", a_file, "--dataset", "toy"],
                 ["score", "--results-dir", results, "--dataset", "toy", "--ped", "--nsigma", "-0.5"],
                 ["evaluate", "--scores", results, "--truth", "ssl-transfer"]):
        code, out, err = _run(capsys, *args, *(["--no-progress"] if args[0] == "score" else []))
        assert code == 2, args
        assert len(err.strip().splitlines()) == 1 and err.startswith(f"pedjax {args[0]}: error:"), err


def test_unexpected_errors_are_one_line_too(monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("something broke\nover two lines")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: _Fixed(parser, boom))
    code = cli.main(["metrics"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "RuntimeError" in err and "--debug" in err
    with pytest.raises(RuntimeError):
        cli.main(["--debug", "metrics"])


class _Fixed:
    """A parser whose command function is replaced (for the catch-all test)."""

    def __init__(self, parser, func):
        self.parser, self.func = parser, func

    def parse_args(self, argv):
        args = self.parser.parse_args(argv)
        args.func = self.func
        return args
