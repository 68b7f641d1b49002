"""The package's layers, read from the source (AST): each layer imports only from layers before it,
nothing imports the command line, and there is no import cycle between modules.

Layers (docs/design.md, "Layout"), in data-flow order:
base helpers → data → models → zoo → features → physics → metrics → scoring → rank → recommend → meta → plots → cli
"""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "pedjax"

#: layer name -> its modules/packages (relative to pedjax); position = order
LAYERS = [
    ("base", ["_validate", "_linalg", "_executables", "_precision", "util"]),
    ("data", ["data"]),
    ("models", ["models"]),
    ("zoo", ["zoo"]),
    ("features", ["features"]),
    ("physics", ["physics"]),
    ("metrics", ["metrics"]),
    ("scoring", ["scoring", "streaming"]),
    ("rank", ["rank"]),
    ("recommend", ["recommend"]),
    ("meta", ["meta"]),
    ("plots", ["plots"]),
    ("cli", ["cli"]),
]


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int | None:
    """Index of the layer of ``pedjax.X...`` (None for the package root)."""
    parts = module.split(".")
    if parts[0] != "pedjax" or len(parts) == 1:
        return None
    for i, (_, members) in enumerate(LAYERS):
        if parts[1] in members:
            return i
    raise AssertionError(f"module {module} belongs to no layer; add it to LAYERS and docs/design.md")


def imports(path: Path) -> list[tuple[str, int]]:
    """Every pedjax module imported by ``path`` (function-level imports included), with line numbers."""
    mod = module_name(path)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "pedjax"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "pedjax":
                continue
            if node.module or node.level == 0:  # `from . import x` imports x, not its (already loaded) parent
                out.append((target, node.lineno))
            for a in node.names:  # `from . import metrics` imports the submodule pedjax.metrics
                sub = f"{target}.{a.name}"
                if (PKG.parent / (sub.replace(".", "/") + ".py")).exists() or (PKG.parent / sub.replace(".", "/")).is_dir():
                    out.append((sub, node.lineno))
    return out


SOURCES = sorted(p for p in PKG.rglob("*.py"))


def test_every_module_has_a_layer():
    for p in SOURCES:
        mod = module_name(p)
        if mod != "pedjax":
            layer_of(mod)


def test_layers_import_only_earlier_layers():
    bad = []
    for p in SOURCES:
        mod = module_name(p)
        here = layer_of(mod)
        for target, line in imports(p):
            there = layer_of(target)
            if there is None:
                if here is not None and LAYERS[here][0] != "cli":  # the public API is for users and the CLI
                    bad.append(f"{p.relative_to(PKG.parent)}:{line} imports the package root {target}")
                continue
            if here is None:
                if LAYERS[there][0] == "cli":
                    bad.append(f"{p.relative_to(PKG.parent)}:{line}: the package root imports the command line")
                continue
            if there > here:
                bad.append(f"{p.relative_to(PKG.parent)}:{line}: layer {LAYERS[here][0]} imports {target} "
                           f"(layer {LAYERS[there][0]}, later)")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    known = {module_name(p) for p in SOURCES}
    for p in SOURCES:
        mod = module_name(p)
        deps = set()
        for target, _ in imports(p):
            while target not in known and "." in target:  # from pkg.mod import name -> pkg.mod
                target = target.rsplit(".", 1)[0]
            if target in known and target != mod and not mod.startswith(target + "."):
                deps.add(target)
        graph[mod] = deps
    # a package __init__ importing its own submodules is how re-exports work, not a cycle
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if state.get(d) is None:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if state.get(m) is None:
            visit(m)


def test_module_sizes_have_reasons():
    """No module above ~500 lines without a reason at its top ("Size:" in its docstring)."""
    big = []
    for p in SOURCES:
        n = len(p.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(p.read_text())) or ""
        if n > 520 and "Size:" not in doc:
            big.append(f"{p.relative_to(PKG.parent)} ({n} lines)")
    assert not big, "modules above ~500 lines without a 'Size:' reason in their docstring: " + ", ".join(big)


def test_layer_test_sees_violations(tmp_path):
    """The checker itself: a fake later-layer import is reported."""
    assert layer_of("pedjax.cli.demo") > layer_of("pedjax.metrics._logme")
    assert layer_of("pedjax.util") == 0
