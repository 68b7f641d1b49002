"""Fingerprints of the code that computes scores, for the resumable studies
(``float32_fidelity.py``, ``zoo_benchmark.py``): a stored result is reused only while its
fingerprint matches the code.

``fingerprint()`` hashes every source that computes scores (:data:`SHARED` and all of
``pedjax/metrics``). ``fingerprint(metric)`` hashes :data:`SHARED` and only the metric's own
module with the modules of ``pedjax/metrics`` it imports (transitively), so that a change to one
metric invalidates that metric's stored results and no other's. PED is in :data:`SHARED`
(``pedjax/physics``), so every "+ped" variant follows its metric. A metric's fingerprint hashes
the code only (the syntax tree without docstrings; comments are not in it), so that editing the
documentation of a module does not throw its measurements away; ``fingerprint()`` hashes the
files' bytes (the form the studies stored before per-metric fingerprints, kept as the key of their
``legacy`` maps).
"""
from __future__ import annotations

import ast
import hashlib
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METRICS = ROOT / "pedjax" / "metrics"
#: the sources every score depends on: PED, the scoring loop, precision, linear algebra,
#: validation, and the metric registry
SHARED = ("pedjax/physics", "pedjax/scoring.py", "pedjax/_precision.py", "pedjax/_linalg.py", "pedjax/_validate.py",
          "pedjax/metrics/__init__.py", "pedjax/metrics/_registry.py")
#: what ``fingerprint()`` hashes, in this order (its value for unchanged code is the one the
#: studies stored before per-metric fingerprints)
EVERYTHING = ("pedjax/metrics", "pedjax/physics", "pedjax/scoring.py", "pedjax/_precision.py", "pedjax/_linalg.py",
              "pedjax/_validate.py")
_IMPORT = re.compile(r"^\s*from \.(_\w+) import", re.M)


def _files(rel: str) -> list[Path]:
    p = ROOT / rel
    return sorted(p.rglob("*.py")) if p.is_dir() else [p]


def _hash(files, code_only: bool = False) -> str:
    h = hashlib.sha1()
    for f in files:
        if f.exists():
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(_code(f) if code_only else f.read_bytes())
    return h.hexdigest()[:12]


def _code(f: Path) -> bytes:
    """The module's syntax tree without docstrings (nor comments), as text."""
    tree = ast.parse(f.read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False).encode()


def metric_modules(metric: str) -> list[Path]:
    """The files of ``pedjax/metrics`` that compute ``metric``: its module (where its core
    function is defined) and the sibling modules it imports, transitively."""
    import inspect

    from pedjax.metrics import REGISTRY

    if metric not in REGISTRY:
        raise ValueError(f"metric: unknown {metric!r}; choose from {sorted(REGISTRY)}")
    start = METRICS / Path(inspect.getsourcefile(REGISTRY[metric].core)).name
    seen, todo = set(), [start]
    while todo:
        f = todo.pop()
        if f in seen or not f.exists():
            continue
        seen.add(f)
        todo += [METRICS / f"{m}.py" for m in _IMPORT.findall(f.read_text())]
    return sorted(seen)


@cache
def fingerprint(metric: str | None = None) -> str:
    """The fingerprint of the code behind ``metric``'s scores (``None``: behind every score)."""
    if metric is None:
        return _hash([f for rel in EVERYTHING for f in _files(rel)])
    shared = [f for rel in SHARED for f in _files(rel)]
    return _hash(shared + [f for f in metric_modules(metric) if f not in shared], code_only=True)
