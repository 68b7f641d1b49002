"""Files pedjax writes get the user's permissions (issue 25): a file as ``open()`` would create it
under the current umask (``0o666 & ~umask``), a folder as ``mkdir`` would (``0o777 & ~umask``).

Each umask runs in a fresh process (the umask is process-wide; changing it here would race with
anything else the test process does), which writes through every atomic writer of
:mod:`pedjax.util` and through the places that create folders: the zoo store, the output lock,
the feature cache, figures and saved PED configurations (JSON and orbax).
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pedjax import util

CHILD = r"""
import json, os, stat, sys
from pathlib import Path

os.umask(int(sys.argv[2], 8))
root = Path(sys.argv[1])

import numpy as np

from pedjax import util
from pedjax.features.cache import FeatureCache
from pedjax.meta.configs import save_config
from pedjax.models import nets
from pedjax.physics import PEDConfig
from pedjax import zoo as modelzoo

util.atomic_save_npy(root / "new" / "deeper" / "a.npy", np.arange(3.0))  # missing parents created
util.atomic_savez(root / "z", x=np.ones(2))
util.atomic_write_text(root / "t.txt", "text")
util.atomic_write_json(root / "j.json", {"a": 1})
with util.atomic_path(root / "p.bin") as tmp:
    tmp.write_bytes(b"raw")
with util.output_lock(root / "locked" / "out"):
    pass
FeatureCache(root / "cache").put("k", np.ones((2, 2), np.float32))
save_config(root / "cfg.json", PEDConfig())
from pedjax.plots import scores_vs_truth

scores_vs_truth({"m": {"a": 1.0, "b": 2.0, "c": 0.5}}, {"a": 0.1, "b": 0.3, "c": 0.2}, root / "figs" / "s.png")
save_config(root / "cfg_orbax", PEDConfig())
for fmt in ("npz", "orbax"):
    module = modelzoo.create_module("mlp", {"hidden": [4]})
    params = nets.init(module, 0)
    D = 4
    spec = modelzoo.MemberSpec("m-" + fmt, "mlp", "random", {"hidden": [4]}, seed=0)
    modelzoo.add_member(root / "zoo", spec, params, source_mean=np.zeros(D), source_std=np.ones(D),
                        probe={"accuracy": 0.5, "W": np.zeros((D, 10)), "b": np.zeros(10)},
                        record={"config": {"steps": 0}}, fingerprint="0" * 40, params_format=fmt)
modes = {}
for dirpath, dirs, files in os.walk(root):
    for name in dirs + files:
        p = Path(dirpath) / name
        st = os.lstat(p)
        modes[str(p.relative_to(root))] = ["dir" if stat.S_ISDIR(st.st_mode) else "file", stat.S_IMODE(st.st_mode)]
print(json.dumps(modes))
"""

#: what the child writes through pedjax's own atomic writers (the rest is folders, orbax's files, the lock)
OWN_FILES = ("new/deeper/a.npy", "z.npz", "t.txt", "j.json", "p.bin", "cfg.json", "figs/s.png", "zoo/manifest.json",
             "locked/out/.pedjax.lock")


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_and_folders_follow_the_umask(tmp_path, umask):
    root = tmp_path / "out"
    root.mkdir()
    env = {**os.environ, "PEDJAX_CACHE_DIR": "off"}
    r = subprocess.run([sys.executable, "-c", CHILD, str(root), f"{umask:o}"], check=False, capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    modes = json.loads(r.stdout.strip().splitlines()[-1])
    for f in OWN_FILES:
        assert f in modes, sorted(modes)
    cache = [k for k in modes if k.startswith("cache/") and k.endswith(".npy")]
    members = [k for k in modes if k.startswith("zoo/members/") and k.count("/") == 3 and k.endswith("stats.npz")]
    assert len(cache) == 1 and len(members) == 2, sorted(modes)
    assert not [k for k in modes if Path(k).name.startswith(".") and k.endswith(".tmp")], "temporary file left"
    want = {"file": 0o666 & ~umask, "dir": 0o777 & ~umask}
    wrong = {k: (kind, oct(mode)) for k, (kind, mode) in modes.items() if mode != want[kind]}
    assert not wrong, f"umask {umask:03o}: expected files {want['file']:o}, folders {want['dir']:o}; got {wrong}"


def test_atomic_writes_never_touch_the_umask(tmp_path, monkeypatch):
    """Reading the umask means setting it (``os.umask``), which is process-wide and races with
    other threads; the writers leave it to the kernel (``os.open(..., 0o666)``) instead. The mode
    equals that of a file ``open()`` creates beside it."""
    def forbidden(*a):
        raise AssertionError("os.umask called")

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    monkeypatch.setattr(os, "umask", forbidden)
    written = [util.atomic_write_text(tmp_path / "a.txt", "x"), util.atomic_write_json(tmp_path / "b.json", [1]),
               util.atomic_save_npy(tmp_path / "c.npy", np.zeros(2)), util.atomic_savez(tmp_path / "d.npz", x=np.zeros(2))]
    for p in written:
        assert stat.S_IMODE(p.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode), p
    # replacing a file keeps the rule (the new file's mode, not the old one's)
    os.chmod(written[0], 0o600)
    util.atomic_write_text(written[0], "y")
    assert stat.S_IMODE(written[0].stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_temporary_names_are_unique_and_cleaned_up(tmp_path):
    target = tmp_path / "f.txt"
    seen = set()
    for _ in range(20):
        with util.atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".f.txt.") and tmp.exists()
            seen.add(tmp.name)
            tmp.write_text("x")
    assert len(seen) == 20 and sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
