"""pedjax._executables: a long process stays under the kernel's memory-map limit (compiled XLA:CPU
programs hold ~5 mappings each; at vm.max_map_count the next compilation crashes)."""
import jax
import jax.numpy as jnp
import pytest

from pedjax import _executables


def _compile_some(k):
    fs = [jax.jit(lambda x, i=i: jnp.cos(x * i).sum()) for i in range(k)]
    for f in fs:
        f(jnp.ones(3)).block_until_ready()
    return fs


@pytest.mark.skipif(_executables.map_count() is None, reason="no /proc/self/maps (not Linux)")
def test_relieve_clears_compiled_programs_only_above_the_headroom(monkeypatch):
    fs = _compile_some(40)
    before = _executables.map_count()
    assert before > 40 * 2  # each compiled program holds mappings of its own
    monkeypatch.setattr(_executables, "_limit", 10 * before)  # far below half the limit: nothing happens
    assert not _executables.relieve() and _executables.map_count() >= before - 10
    monkeypatch.setattr(_executables, "_limit", 3 * before)  # under half of it, over a quarter
    assert not _executables.relieve() and _executables.map_count() >= before - 10
    assert _executables.relieve(headroom=0.25)  # the test suite's threshold
    fs = _compile_some(40)
    before = _executables.map_count()
    monkeypatch.setattr(_executables, "_limit", before)  # above half of it: JAX's caches are dropped
    del fs
    assert _executables.relieve()
    assert _executables.map_count() < before - 40 * 2
    assert float(jax.jit(lambda x: x + 1)(jnp.ones(())) ) == 2.0  # and compiling works again


def test_entry_points_look_every_check_every_calls(monkeypatch):
    """The outermost entry point calls relieve(force_check=False): one look at the count per
    CHECK_EVERY calls; nested entry points do not count."""
    import numpy as np

    import pedjax

    looks = []
    monkeypatch.setattr(_executables, "map_count", lambda: looks.append(1) or 0)
    monkeypatch.setattr(_executables, "_calls", 0)
    X, y = np.random.default_rng(0).normal(size=(30, 3)), np.arange(30) % 2
    for _ in range(_executables.CHECK_EVERY):
        pedjax.metrics.logme(X, y)
    assert len(looks) == 1
    assert _executables._calls == _executables.CHECK_EVERY
