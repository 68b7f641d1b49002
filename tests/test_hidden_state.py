"""No hidden state, no silent fallback (issue 25, point 4):

* the host-kernel switch (``PEDJAX_HOST_BLAS``) is fixed when pedjax is imported, and the one
  explicit way to flip it (:func:`pedjax._linalg.host_kernels`) never lets a compiled program
  cross the switch;
* :class:`pedjax.recommend.Recommender` is immutable, its factorisation cache is keyed by
  everything that decides a factorisation, and ``scores`` returns the neighbours it used;
* ``recommend`` records (and the command prints) the fallback to uniform neighbour weights;
* library errors carry the parameter they concern (:class:`pedjax._validate.ParamError`), and the
  command line maps it to its flag from that field.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pedjax import _linalg, metrics
from pedjax._validate import ParamError
from pedjax.recommend import History, Recommender, fennec
from pedjax.recommend.factorize import Factors

# ------------------------------------------------------------------------------------------ host kernels


def _big():
    """A float64 input large enough for the host BLAS product (N·D² ≥ 5e7)."""
    return jnp.asarray(np.random.default_rng(0).standard_normal((200, 500)))


def _has_callback(fn, *args) -> bool:
    return "callback" in str(jax.make_jaxpr(fn)(*args))


def test_host_blas_variable_is_read_once_at_import(monkeypatch):
    """Changing PEDJAX_HOST_BLAS in a running process changes nothing: not the switch, not a new
    trace, not an already compiled program."""
    assert jax.config.jax_enable_x64  # tests/conftest.py: as the command line
    before = _linalg.host_kernels_enabled()
    X = _big()
    f = jax.jit(_linalg.gram)
    g0 = f(X)
    traced_before = _has_callback(_linalg.gram, X)
    monkeypatch.setenv("PEDJAX_HOST_BLAS", "0" if before else "1")
    assert _linalg.host_kernels_enabled() == before
    assert _has_callback(_linalg.gram, X) == traced_before  # a new trace follows the import-time value
    np.testing.assert_array_equal(np.asarray(f(X)), np.asarray(g0))


def test_host_blas_zero_before_start_switches_host_kernels_off():
    """Set before Python starts, the variable is what the process uses, even if changed later."""
    code = (
        "import os, jax; jax.config.update('jax_enable_x64', True)\n"
        "import jax.numpy as jnp, numpy as np\n"
        "from pedjax import _linalg\n"
        "os.environ['PEDJAX_HOST_BLAS'] = '1'\n"  # too late: read at import
        "X = jnp.asarray(np.ones((200, 500)))\n"
        "print(_linalg.HOST_BLAS, _linalg.host_kernels_enabled(), 'callback' in str(jax.make_jaxpr(_linalg.gram)(X)))\n"
    )
    env = {**os.environ, "PEDJAX_HOST_BLAS": "0", "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False", "False"]


@pytest.mark.skipif(not _linalg.host_kernels_enabled(), reason="host kernels need the CPU backend with one device")
def test_host_kernels_block_retraces_on_entry_and_exit():
    """``host_kernels(False)`` flips the path for the block only, and a jitted function traced
    outside it is traced again inside and after it (JAX's caches are cleared), so no program
    compiled under one setting runs under the other."""
    traces = []

    @jax.jit
    def f(X):
        traces.append(_linalg.host_kernels_enabled())
        return _linalg.gram(X)

    X = _big()
    host = np.asarray(f(X))
    assert traces == [True] and _has_callback(_linalg.gram, X)
    with _linalg.host_kernels(False):
        assert not _linalg.host_kernels_enabled() and not _has_callback(_linalg.gram, X)
        xla = np.asarray(f(X))
    assert traces == [True, False]
    assert _linalg.host_kernels_enabled()
    np.asarray(f(X))
    assert traces == [True, False, True]  # not the XLA program compiled inside the block
    np.testing.assert_allclose(xla, host, rtol=1e-12, atol=1e-9)


# ------------------------------------------------------------------------------------------ Recommender


def _history(seed=0, M=6, T=5):
    rng = np.random.default_rng(seed)
    return History(rng.uniform(0.5, 0.9, (M, T)), tuple(f"m{i}" for i in range(M)), tuple(f"t{j}" for j in range(T)))


@pytest.fixture
def fits(monkeypatch):
    """``select`` replaced by a fast stand-in that records what it was asked to fit."""
    calls = []

    def fake_select(h, *, nonneg, seed, steps):
        calls.append((h.tasks, h.values.sum(), nonneg, seed, steps))
        rng = np.random.default_rng(seed + steps)
        return Factors(rng.normal(size=(len(h.models), 2)), rng.normal(size=(len(h.tasks), 2)), 2, 0.01, nonneg,
                       h.models, h.tasks)

    monkeypatch.setattr(fennec, "select", fake_select)
    return calls


def test_recommender_is_immutable(fits):
    reps = {t: np.arange(4.0) + i for i, t in enumerate(_history().tasks)}
    rec = Recommender(_history(), reps, steps=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.seed = 1
    with pytest.raises(TypeError):
        rec.reps["t0"] = np.zeros(4)
    with pytest.raises(ValueError):
        rec.reps["t0"][0] = 99.0
    reps["t0"][0] = 99.0  # the caller's own dict and arrays: copied, so this changes nothing
    assert rec.reps["t0"][0] == 0.0
    out = rec.scores(rec.reps["t1"], ["t1"])
    assert isinstance(out, fennec.Scores) and set(out.components) == {"history", "transfer", "fennec"}
    assert set(out.neighbours) <= {"t0", "t2", "t3", "t4"} and sum(out.neighbours.values()) == pytest.approx(1.0)
    assert not hasattr(rec, "last_neighbours")
    back = pickle.loads(pickle.dumps(rec))
    assert back.steps == 10 and np.array_equal(back.reps["t2"], rec.reps["t2"])


def test_recommender_cache_is_keyed_by_what_decides_the_factors(fits):
    h = _history()
    rec = Recommender(h, steps=10)
    a = rec.factors(["t0"])
    assert rec.factors(["t0"]) is a and len(fits) == 1  # cached
    rec.factors(["t1"])
    assert len(fits) == 2
    # another seed or step count: another instance (frozen), never the first one's factors
    for changed in (dataclasses.replace(rec, seed=1), dataclasses.replace(rec, steps=11), dataclasses.replace(rec, nonneg=False)):
        f = changed.factors(["t0"])
        assert f is not a and fits[-1][2:] == (changed.nonneg, changed.seed, changed.steps)
    n = len(fits)
    # the history's content is part of the key: an in-place change is refitted, not served stale
    h.values[0, 1] += 0.05
    b = rec.factors(["t0"])
    assert len(fits) == n + 1 and b is not a and fits[-1][1] == pytest.approx(h.without("t0").values.sum())


# ------------------------------------------------------------------------------------------ recommend: fallback, ParamError


@pytest.fixture(scope="module")
def small_zoo(tmp_path_factory):
    """Three random MLP members (28×28 inputs) and two histories over them: one of registered digits
    tasks, one of tasks pedjax has no images of."""
    from test_zoo_store import _random_member

    root = tmp_path_factory.mktemp("zoo")
    names = ["mlp-a", "mlp-b", "mlp-c"]
    for i, n in enumerate(names):
        _random_member(root, n, "mlp", {"hidden": [8]}, "npz", i)
    rows = {"mlp-a": (0.9, 0.8, 0.7), "mlp-b": (0.7, 0.75, 0.6), "mlp-c": (0.5, 0.4, 0.55)}
    known = root / "known.csv"
    known.write_text("model,digits-5,digits-degraded,digits-10\n" + "".join(f"{m},{a},{b},{c}\n" for m, (a, b, c) in rows.items()))
    unknown = root / "unknown.csv"
    unknown.write_text("model,lab-task-a,lab-task-b,lab-task-c\n" + "".join(f"{m},{a},{b},{c}\n" for m, (a, b, c) in rows.items()))
    return root, known, unknown


def test_recommend_records_the_uniform_fallback(small_zoo, capsys):
    from pedjax.cli import main
    from pedjax.data import load_task
    from pedjax.recommend import from_file
    from pedjax.recommend.api import recommend
    from pedjax.zoo import load_zoo

    root, known, unknown = small_zoo
    zoo, data = load_zoo(root), load_task("digits-10")
    ok = recommend(zoo, data, from_file(known), task="digits-10", proxy="mlp-a", meta=False)
    assert ok["fallback"] is None and set(ok["neighbours"]) <= {"digits-5", "digits-degraded"}
    fb = recommend(zoo, data, from_file(unknown), task="digits-10", proxy="mlp-a", meta=False)
    assert "lab-task-a" in fb["fallback"] and "uniform" in fb["fallback"]
    assert fb["neighbours"] == pytest.approx({t: 1 / 3 for t in ("lab-task-a", "lab-task-b", "lab-task-c")})
    # the command prints it as a warning (stderr), in the table and in the JSON form alike
    for fmt in ([], ["--json"]):
        code = main(["recommend", "--zoo", str(root), "--history", str(unknown), "--task", "digits-10", "--proxy", "mlp-a",
                     "--no-meta", *fmt])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert err.startswith("pedjax recommend: warning: the proxy could not read") and "lab-task-a" in err
        if fmt:
            assert json.loads(out)["fallback"] == fb["fallback"]
    assert main(["recommend", "--zoo", str(root), "--history", str(known), "--task", "digits-10", "--proxy", "mlp-a",
                 "--no-meta"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_param_error_is_a_value_error_with_its_parameter():
    e = ParamError("k", "at least 1, got 0")
    assert isinstance(e, ValueError) and str(e) == "k: at least 1, got 0" and (e.param, e.problem) == ("k", "at least 1, got 0")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is ParamError and (back.param, back.problem, str(back)) == (e.param, e.problem, str(e))
    # the validation helpers raise it; the message keeps its "param: ..." form
    with pytest.raises(ValueError, match="^X: expected a 2-D array") as got:
        metrics.logme(np.zeros(5), np.arange(5) % 2)
    assert isinstance(got.value, ParamError) and got.value.param == "X"
    with pytest.raises(ParamError, match="^y: found 1 class") as got:
        metrics.logme(np.random.default_rng(0).normal(size=(6, 3)), np.zeros(6))
    assert got.value.param == "y"


def test_recommend_errors_carry_their_parameter_and_the_command_names_the_flag(small_zoo, capsys):
    from pedjax.cli import main
    from pedjax.data import load_task
    from pedjax.recommend import from_file
    from pedjax.recommend.api import recommend
    from pedjax.zoo import load_zoo

    root, known, _ = small_zoo
    zoo, data, hist = load_zoo(root), load_task("digits-10"), from_file(known)
    for kwargs, param in (({"k": 0}, "k"), ({"weight": 2.0, "metric": "logme"}, "weight"), ({"proxy": "nope"}, "proxy")):
        with pytest.raises(ParamError) as got:
            recommend(zoo, data, hist, task="digits-10", meta=False, **{"proxy": "mlp-a", **kwargs})
        assert got.value.param == param
    code = main(["recommend", "--zoo", str(root), "--history", str(known), "--task", "digits-10", "--proxy", "mlp-a", "--k", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "pedjax recommend: error: --k: at least 1, got 0"
