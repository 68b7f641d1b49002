"""The precision setting (pedjax._precision): ``precision="auto" | "float64" | "float32"`` on every
entry point and in ``with pedjax.precision(...)``, auto chosen by backend, and matmul precision
"highest" in every compiled program an entry point runs (checked on the lowered StableHLO)."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pedjax
from pedjax import _precision, metrics
from reference_impl import make_data, np_logme


def test_auto_is_float64_on_cpu_and_float32_elsewhere():
    assert _precision.auto_choice("cpu") == "float64"
    assert _precision.auto_choice("gpu") == "float32"
    assert _precision.auto_choice("tpu") == "float32"
    assert jax.default_backend() == "cpu" and _precision.resolve() == "float64"
    with pedjax.precision("float32"):
        assert _precision.resolve() == "float32" and _precision.resolve("auto") == "float64"
        with pedjax.precision("auto"):
            assert _precision.resolve() == "float64"
        assert _precision.setting() == "float32"
    assert _precision.setting() == "auto"


def test_bad_precision_names_the_argument():
    X, y = make_data(0, 40, 4, 2)
    with pytest.raises(ValueError, match=r"^precision: one of 'auto', 'float64', 'float32', got 'fp16'"):
        metrics.logme(X, y, precision="fp16")
    with pytest.raises(ValueError, match="^precision:"):
        with pedjax.precision("double"):
            pass


@pytest.mark.parametrize("x64_process", [False, True])
def test_keyword_and_block_choose_the_dtype_whatever_the_process_has(x64_process):
    """float32 is float32 even in a process with x64 on (the command line's), float64 is float64
    in one with x64 off; the caller's setting is restored."""
    X, y = make_data(3, 90, 6, 3)
    ref = np_logme(X, y)
    with jax.enable_x64(x64_process):
        r32 = pedjax.ped(X, y, precision="float32")
        r64 = pedjax.ped(X, y, precision="float64")
        with pedjax.float32():
            s32 = metrics.logme(X, y)
            r32b = pedjax.ped(X, y)
            s64 = metrics.logme(X, y, precision="float64")  # the keyword wins over the block
        assert bool(jax.config.jax_enable_x64) is x64_process
        assert jnp.ones(1).dtype == (jnp.float64 if x64_process else jnp.float32)
    assert r32.features.dtype == jnp.float32 and r32b.features.dtype == jnp.float32
    assert r64.features.dtype == jnp.float64
    assert s64 == pytest.approx(ref, rel=1e-10)
    assert s32 == pytest.approx(ref, rel=1e-4) and s32 != s64  # float32: close, not float64-exact


def test_nested_entry_points_inherit_the_callers_precision():
    """score_zoo(precision="float32") runs its metric and PED in float32 (not auto's float64)."""
    X, y = make_data(4, 80, 5, 3)
    s32 = pedjax.score_zoo({"a": X}, y, "logme", ped=pedjax.PEDConfig(), precision="float32")["a"]
    s64 = pedjax.score_zoo({"a": X}, y, "logme", ped=pedjax.PEDConfig())["a"]
    moved = np.asarray(pedjax.ped(X, y).features)
    assert s64 == pytest.approx(np_logme(moved, y), rel=1e-9)
    assert s32 == pytest.approx(s64, rel=1e-4) and s32 != s64


_CHILD = r"""
import glob, json, os, sys
import jax
jax.config.update("jax_dump_ir_to", sys.argv[1])
import numpy as np
import pedjax
from pedjax import metrics
from pedjax.streaming import score_stream
rng = np.random.default_rng(0)
N, D, C = 61, 7, 3  # odd sizes no other program in this process has
X = rng.standard_normal((N, D)) + 1.0
y = np.arange(N) % C
P = rng.dirichlet(np.ones(5), size=N)
Z = rng.integers(0, 4, size=N)
precision = sys.argv[2]
called = []
for name in metrics.names():
    m = metrics.REGISTRY[name]
    arg = {"features": X, "probs": P, "labels": Z}.get(m.input)
    if arg is None:
        continue  # an input kind this check does not know: reported, so the test fails
    m.fn(arg, y, precision=precision)
    called.append(name)
pedjax.ped(X, y, precision=precision)
pedjax.score_zoo({"a": X, "b": 2 * X}, y, "logme", ped=pedjax.PEDConfig(), precision=precision)
pedjax.ped_zoo({"a": X}, y, pedjax.PEDConfig(), precision=precision)
score_stream({"a": X}, y, metric="gbc", precision=precision)
unknown = sorted(set(metrics.names()) - set(called))
# a plain program outside any entry point: JAX's default precision (the check is not vacuous)
def plain_outside(a):
    return a @ a.T
jax.jit(plain_outside)(np.ones((3, 5), np.float32))
print(json.dumps({"called": called, "unknown": unknown}))
"""


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_every_entry_point_requests_highest_matmul_precision(tmp_path, precision):
    """Every ``dot_general`` in every program compiled inside an entry point asks for HIGHEST, so
    TF32 (recent NVIDIA GPUs) or bfloat16 passes (TPUs) never apply; the plain program compiled
    outside keeps JAX's DEFAULT."""
    dump = tmp_path / "ir"
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_ENABLE_X64",)}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(dump), precision], capture_output=True, text=True,
                         timeout=600, env=env, cwd=os.path.dirname(__file__))
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["unknown"] == []
    inside, outside = [], []
    for path in sorted(dump.glob("*.mlir")):
        dots = [ln for ln in path.read_text().splitlines() if "stablehlo.dot_general" in ln]
        (outside if "jit_plain_outside" in path.name else inside).extend((path.name, ln) for ln in dots)
    assert len(inside) >= 20, "expected the entry points to compile programs with products"
    bad = [(f, ln.strip()[:160]) for f, ln in inside if "precision = [HIGHEST, HIGHEST]" not in ln]
    assert bad == []
    assert outside and all("precision = [DEFAULT, DEFAULT]" in ln for _, ln in outside)
    want = "f32" if precision == "float32" else "f64"
    assert any(want in ln for _, ln in inside)


_X64_OFF_CHILD = r"""
import json
import jax, numpy as np
from pedjax import _linalg, metrics
rng = np.random.default_rng(0)
X = rng.standard_normal((3000, 400)); y = np.arange(3000) % 7   # large enough for the host-BLAS Gram
print(json.dumps({"x64": bool(jax.config.jax_enable_x64), "host": _linalg.host_kernels_enabled(),
                  "hscore": metrics.hscore(X, y), "logme": metrics.logme(X, y)}))
"""


def test_float64_entry_points_work_with_x64_off_process_wide():
    """A plain script (x64 off process-wide) gets float64 results from large inputs too: the host
    kernels, whose callbacks do not see the scoped switch, step aside for the XLA paths."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    out = subprocess.run([sys.executable, "-c", _X64_OFF_CHILD], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["x64"] is False and got["host"] is False
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 400))
    y = np.arange(3000) % 7
    assert got["logme"] == pytest.approx(np_logme(X, y), rel=1e-9)
    assert got["hscore"] == pytest.approx(metrics.hscore(X, y), rel=1e-9)
