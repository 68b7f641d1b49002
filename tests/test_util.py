"""pedjax.util: atomic writes, strict JSON, content hashes, the git commit, the no-op progress bar.
(The output lock: tests/test_hostile_inputs.py.)"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pedjax import util


def test_atomic_write_replaces_whole_or_leaves_the_old_file(tmp_path):
    p = util.atomic_write_text(tmp_path / "sub" / "a.txt", "one")
    assert p.read_text() == "one"
    util.atomic_write_text(p, "two")
    assert p.read_text() == "two"
    with pytest.raises(RuntimeError):
        with util.atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    assert p.read_text() == "two"
    assert sorted(f.name for f in p.parent.iterdir()) == ["a.txt"]  # no temporary file left


def test_strict_json_of_numpy_values(tmp_path):
    obj = {"a": np.float32(1.5), "b": (np.int64(2), np.array([1.0, np.nan])), 3: np.bool_(True), "c": -math.inf}
    assert util.to_jsonable(obj) == {"a": 1.5, "b": [2, [1.0, None]], "3": True, "c": None}
    text = util.dumps_json(obj)
    assert "NaN" not in text and "Infinity" not in text and json.loads(text)["b"] == [2, [1.0, None]]
    p = util.atomic_write_json(tmp_path / "x.json", obj)
    assert json.loads(p.read_text()) == json.loads(text) and p.read_text().endswith("\n")


def test_hashes_see_shape_dtype_and_content():
    a = np.arange(6, dtype=np.float64)
    assert util.sha1_arrays(a) == util.sha1_arrays(a.copy())
    assert len({util.sha1_arrays(a), util.sha1_arrays(a.reshape(2, 3)), util.sha1_arrays(a.astype(np.float32)),
                util.sha1_arrays(a + 1)}) == 4
    assert util.sha1_json({"x": 1, "y": [2]}) == util.sha1_json({"y": [2], "x": 1}) != util.sha1_json({"x": 2, "y": [2]})


def test_git_commit_and_disabled_progress():
    c = util.git_commit()
    assert c == "unknown" or (len(c) == 40 and all(ch in "0123456789abcdef" for ch in c))
    with util.Progress(False, 3, "nothing") as p:
        p.advance()
        p.advance(2)


def test_atomic_array_writes(tmp_path):
    import numpy as np

    from pedjax.util import atomic_save_npy, atomic_savez

    a = np.arange(6.0).reshape(2, 3)
    p = atomic_save_npy(tmp_path / "a.npy", a)
    np.testing.assert_array_equal(np.load(p), a)
    z = atomic_savez(tmp_path / "z", x=a, y=np.ones(2))  # NumPy's rule: .npz appended
    assert z.name == "z.npz" and set(np.load(z).files) == {"x", "y"}
    before = p.read_bytes()

    class Boom:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("boom")

    try:
        atomic_save_npy(p, Boom())
    except RuntimeError:
        pass
    assert p.read_bytes() == before  # the old file is untouched
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.npy", "z.npz"]  # no temporary left
