"""Importing pedjax has no process-wide effect; its parity entry points get float64 in a scope
(pedjax._precision, docs/design.md "Precision and process settings")."""
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pedjax
from pedjax import metrics
from reference_impl import make_data, np_logme, np_ped, np_sfda

_CHILD = r"""
import json, os, sys
before_env = dict(os.environ)
import jax, jax.numpy as jnp, numpy as np
x64_before = bool(jax.config.jax_enable_x64)
import pedjax, pedjax.features, pedjax.rank, pedjax.meta, pedjax.zoo
from pedjax import metrics
rng = np.random.default_rng(0)
X = rng.standard_normal((60, 5)); y = np.arange(60) % 3
s = metrics.logme(X, y)
res = pedjax.ped(X, y)
print(json.dumps({"x64_before": x64_before, "x64_after": bool(jax.config.jax_enable_x64),
                  "env_same": dict(os.environ) == before_env, "user_dtype": str(jnp.ones(2).dtype),
                  "user_dtype_after_call": str((jnp.ones(2) * 2).dtype), "logme": s,
                  "ped_dtype": str(res.features.dtype)}))
"""


def test_import_changes_no_process_setting():
    """A fresh process (no conftest): x64 stays off, the environment (XLA_FLAGS included) is
    untouched, the user's arrays stay float32 — and pedjax still computes in float64."""
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("JAX_ENABLE_X64", "XLA_FLAGS")}
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=300, env=env, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["x64_before"] is False and got["x64_after"] is False
    assert got["env_same"] is True
    assert got["user_dtype"] == "float32" and got["user_dtype_after_call"] == "float32"
    assert got["ped_dtype"] == "float64"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    y = np.arange(60) % 3
    assert got["logme"] == pytest.approx(np_logme(X, y), rel=1e-10)


@pytest.mark.parametrize("seed,N,D,C", [(0, 80, 6, 3), (1, 120, 12, 4)])
def test_entry_points_are_float64_with_x64_off(seed, N, D, C):
    """With x64 off in the caller, metrics, PED and score_zoo still match the float64 NumPy
    references, and the caller's precision is restored afterwards."""
    X, y = make_data(seed, N, D, C)
    mean, std = X.mean(0) + 0.1, X.std(0) + 0.5
    with jax.enable_x64(False):
        assert metrics.logme(X, y) == pytest.approx(np_logme(X, y), rel=1e-10)
        assert metrics.sfda(X, y) == pytest.approx(np_sfda(X, y), rel=1e-9)
        moved = np.asarray(pedjax.ped(X, y, mean, std).features)
        s = pedjax.score_zoo({"a": X}, y, "logme", ped=pedjax.PEDConfig(), source_stats={"a": (mean, std)})
        assert not jax.config.jax_enable_x64 and jnp.ones(1).dtype == jnp.float32
    ref, _ = np_ped(X, y, mean, std)
    np.testing.assert_allclose(moved, ref, rtol=1e-10, atol=1e-12)
    assert s["a"] == pytest.approx(np_logme(ref, y), rel=1e-9)


def test_float32_context_uses_the_process_precision():
    X, y = make_data(2, 100, 8, 3)
    ref = np_logme(X, y)
    with jax.enable_x64(False), pedjax.float32():
        s32 = metrics.logme(X, y)
    assert s32 == pytest.approx(ref, rel=1e-3)  # float32: close, not float64-exact
    assert metrics.logme(X, y) == pytest.approx(ref, rel=1e-10)


_POOL_CHILD = r"""
import glob, json, os
from pedjax.cli._common import configure_process
configure_process()
import jax.numpy as jnp
x = jnp.ones((64, 64)); (x @ x).block_until_ready()
names = [open(f).read().strip() for f in glob.glob("/proc/self/task/*/comm")]
print(json.dumps({"env": os.environ.get("PJRT_NPROC"), "pool": names.count("tf_XLAEigen"),
                  "cpus": len(os.sched_getaffinity(0))}))
"""


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/task"), reason="thread names from /proc (Linux)")
@pytest.mark.parametrize("given", [None, "5"])
def test_command_line_process_sizes_the_intra_op_pool(given):
    """configure_process gives XLA:CPU's intra-op pool one thread more than the usable CPUs (the
    LAPACK deadlock of docs/design.md), unless PJRT_NPROC/NPROC is set; JAX reads it."""
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("PJRT_NPROC", "NPROC")}
    if given:
        env["PJRT_NPROC"] = given
    out = subprocess.run([sys.executable, "-c", _POOL_CHILD], capture_output=True, text=True, timeout=300, env=env,
                         check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    want = int(given) if given else got["cpus"] + 1
    assert got["env"] == str(want) and got["pool"] == want
