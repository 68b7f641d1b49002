"""The public API documents itself (issue 25): every function and class exported in the ``__all__``
of ``pedjax`` and its public subpackages and modules has a docstring (Google style, rendered by
``make docs``) that names every parameter under ``Args:`` (``Attributes:`` for a class's fields),
says what it returns under ``Returns:`` (``Yields:`` for a generator) when it returns a value,
and lists under ``Raises:`` the errors it raises itself; and no module is shadowed by a function
of the same name (``pedjax.metrics.logme`` is the function; its module is private).
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import textwrap
import types

import pytest

import pedjax


def _modules() -> list[types.ModuleType]:
    out = [pedjax]
    for info in pkgutil.walk_packages(pedjax.__path__, "pedjax."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts[1:]) or parts[1] == "cli":
            continue
        out.append(importlib.import_module(info.name))
    return out


def _public_objects() -> dict[str, object]:
    seen: dict[tuple[str, str], str] = {}
    objs: dict[str, object] = {}
    for mod in _modules():
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            obj = inspect.unwrap(obj)
            key = (obj.__module__, obj.__qualname__)
            if key in seen or not obj.__module__.startswith("pedjax"):
                continue
            seen[key] = mod.__name__
            objs[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return objs


OBJECTS = _public_objects()


def _own_body(fn) -> list[ast.AST]:
    """The nodes of ``fn``'s own body (not of functions or classes nested in it)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return []
    top = tree.body[0]
    out, stack = [], list(getattr(top, "body", []))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _params(obj) -> list[str]:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _section(doc: str, *titles: str) -> str:
    """The text of the first of ``titles`` present (up to the next section header), or ''."""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if line.strip() in {t + ":" for t in titles}:
            body = []
            for nxt in lines[i + 1:]:
                if nxt and not nxt.startswith(" ") and nxt.rstrip().endswith(":"):
                    break
                body.append(nxt)
            return "\n".join(body)
    return ""


def problems(name: str, obj) -> list[str]:
    doc = inspect.getdoc(obj) or ""
    if not doc.strip():
        return [f"{name}: no docstring"]
    out = []
    if inspect.isclass(obj):
        fields = ([f.name for f in dataclasses.fields(obj) if not f.name.startswith("_")]
                  if dataclasses.is_dataclass(obj) else [])
        documented = _section(doc, "Attributes") + _section(doc, "Args")
        params = fields or [p for p in _params(obj)]
        missing = [p for p in params if p not in documented]
        if missing:
            out.append(f"{name}: Attributes/Args do not name {missing}")
        return out
    args = _section(doc, "Args")
    missing = [p for p in _params(obj) if p not in args]
    if missing:
        out.append(f"{name}: Args do not name {missing}")
    body = _own_body(obj)
    returns = any(isinstance(n, ast.Return) and n.value is not None
                  and not (isinstance(n.value, ast.Constant) and n.value.value is None) for n in body)
    yields = any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in body)
    if yields and not _section(doc, "Yields", "Returns"):
        out.append(f"{name}: no Yields section")
    elif returns and not yields and not _section(doc, "Returns"):
        out.append(f"{name}: no Returns section")
    if any(isinstance(n, ast.Raise) and n.exc is not None for n in body) and not _section(doc, "Raises"):
        out.append(f"{name}: raises but has no Raises section")
    return out


def test_the_public_api_is_found():
    assert len(OBJECTS) > 150 and "pedjax.scoring.score_zoo" in OBJECTS


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_public_docstring_sections(name):
    found = problems(name, OBJECTS[name])
    assert not found, "\n".join(found)


def test_no_module_is_shadowed_by_a_function():
    shadowed = []
    for mod in [pedjax] + [m for m in _modules() if hasattr(m, "__path__")]:
        if not hasattr(mod, "__path__"):
            continue
        for info in pkgutil.iter_modules(mod.__path__):
            if info.name == "__main__":
                continue
            sub = importlib.import_module(f"{mod.__name__}.{info.name}")
            if getattr(mod, info.name, sub) is not sub:
                shadowed.append(f"{sub.__name__} (shadowed by {type(getattr(mod, info.name)).__name__})")
    assert not shadowed, "modules shadowed by a same-named attribute: " + ", ".join(shadowed)
