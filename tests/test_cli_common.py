"""pedjax.cli._common: the command line's process settings (compilation cache folder and its repair)."""
from pathlib import Path

import pytest

from pedjax.cli import _common


def test_cache_dir_rules(monkeypatch, tmp_path):
    monkeypatch.setenv(_common.CACHE_ENV, "off")
    assert _common.cache_root() is _common.cache_dir() is _common.feature_cache_dir() is None
    monkeypatch.setenv(_common.CACHE_ENV, str(tmp_path / "c"))
    assert _common.cache_dir() == tmp_path / "c" / "xla"
    assert _common.feature_cache_dir() == tmp_path / "c" / "features"
    monkeypatch.delenv(_common.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _common.cache_dir() == tmp_path / "xdg" / "pedjax" / "xla"
    assert _common.feature_cache_dir() == tmp_path / "xdg" / "pedjax" / "features"


def test_repair_gives_orphan_entries_an_access_time(tmp_path):
    """An entry without its -atime file (a writer killed between the two writes) broke every later
    write of JAX's size-limited cache; after the repair JAX writes again."""
    lru = pytest.importorskip("jax._src.lru_cache")
    (tmp_path / "orphan-cache").write_bytes(b"x" * 10)
    (tmp_path / "kept-cache").write_bytes(b"y")
    (tmp_path / "kept-atime").write_bytes((7).to_bytes(8, "little"))
    cache = lru.LRUCache(str(tmp_path), max_size=1 << 20)
    with pytest.raises(FileNotFoundError):
        cache.put("new", b"z")  # JAX's eviction scan trips over the orphan
    _common._repair_cache(Path(tmp_path))
    assert (tmp_path / "orphan-atime").is_file()
    assert (tmp_path / "kept-atime").read_bytes() == (7).to_bytes(8, "little")  # left as it was
    cache.put("new", b"z")
    assert cache.get("new") == b"z" and cache.get("orphan") == b"x" * 10
