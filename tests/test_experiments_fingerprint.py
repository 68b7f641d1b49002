"""The resumable studies' code fingerprints (experiments/_fingerprint.py): one metric's code change
invalidates that metric only, a shared module's change every metric, a docstring or comment none."""
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import _fingerprint as F  # noqa: E402


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A copy of the scoring sources, which the fingerprints then read."""
    for rel in set(F.EVERYTHING) | set(F.SHARED):
        src, dst = ROOT / rel, tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)
    monkeypatch.setattr(F, "ROOT", tmp_path)
    monkeypatch.setattr(F, "METRICS", tmp_path / "pedjax" / "metrics")
    F.fingerprint.cache_clear()
    yield tmp_path
    F.fingerprint.cache_clear()


def _all():
    F.fingerprint.cache_clear()
    return {m: F.fingerprint(m) for m in ("sfda", "logme", "linear_probe", "knn")} | {None: F.fingerprint()}


def test_a_metric_depends_on_its_modules_and_their_imports():
    names = {p.name for p in F.metric_modules("linear_probe")}
    assert {"_linear_probe.py", "_knn.py", "_registry.py"} <= names and "_logme.py" not in names
    with pytest.raises(ValueError, match="metric"):
        F.metric_modules("no-such-metric")


def test_fingerprints_follow_the_code_not_the_docs(tree):
    before = _all()
    f = tree / "pedjax" / "metrics" / "_knn.py"
    text = f.read_text()
    f.write_text(text.replace('"""', '"""Edited. ', 1) + "\n# a comment\n")
    after_doc = _all()
    assert {m: after_doc[m] for m in before if m} == {m: before[m] for m in before if m}
    assert after_doc[None] != before[None]  # the global one hashes the bytes
    f.write_text(text + "\n_CHANGED = 1\n")
    after_code = _all()
    assert after_code["knn"] != before["knn"] and after_code["linear_probe"] != before["linear_probe"]  # imports _knn
    assert after_code["sfda"] == before["sfda"] and after_code["logme"] == before["logme"]
    shared = tree / "pedjax" / "metrics" / "_registry.py"
    shared.write_text(shared.read_text() + "\n_CHANGED = 1\n")
    after_shared = _all()
    assert all(after_shared[m] != after_code[m] for m in ("sfda", "logme", "linear_probe", "knn"))
