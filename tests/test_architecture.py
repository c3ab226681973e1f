"""The folder tree is the data flow: imports between stage packages run one way, no import
cycles (deferred imports included), small modules, and a docstring on every package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
MAX_LINES = 400
SHARED = (
    "okrsync",
    "okrsync.errors",
    "okrsync.secrets",
    "okrsync.timefmt",
    "okrsync.logs",
    "okrsync.numfmt",
)
# Lower layers never import higher ones; connectors are reached only through entry points.
LAYERS = [
    "shared",
    "okrsync.connector",
    "okrsync.connectors",
    "okrsync.config",
    "okrsync.measure",
    "okrsync.progress",
    "okrsync.store",
    "okrsync.sinks",
    "okrsync.review",
    "okrsync.report",
    "okrsync.service",
    "okrsync.testing",
    "okrsync.cli",
    "okrsync.__main__",
]


def modules() -> dict[str, Path]:
    """Every module of the installed package by dotted name (connectors/ as okrsync.connectors)."""
    found: dict[str, Path] = {}
    for base, prefix in (
        (ROOT / "okrsync", "okrsync"),
        (ROOT / "connectors", "okrsync.connectors"),
    ):
        for path in sorted(base.rglob("*.py")):
            parts = [prefix, *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = modules()


def group(name: str) -> str:
    """The stage a module belongs to: its package under okrsync, or 'shared'."""
    if name in SHARED:
        return "shared"
    return next(
        g for g in sorted(LAYERS, key=len, reverse=True) if name == g or name.startswith(g + ".")
    )


def imports(name: str, path: Path) -> set[str]:
    """okrsync modules `name` imports anywhere in its body, plus its parent packages."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        elif isinstance(node, ast.Call) and _dynamic_import(node):
            first = node.args[0]
            targets = [str(first.value)] if isinstance(first, ast.Constant) else []
        out |= {str(t) for t in targets if t in MODULES}
    parent = name.rpartition(".")[0]
    while parent:
        out.add(parent)
        parent = parent.rpartition(".")[0]
    out.discard(name)
    return out


def _dynamic_import(call: ast.Call) -> bool:
    """`importlib.import_module("okrsync...")` or `__import__("okrsync...")`: an import too."""
    func = call.func
    named = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id in ("import_module", "__import__")
    )
    return named and bool(call.args)


GRAPH = {name: imports(name, path) for name, path in MODULES.items()}


def test_imports_between_stages_run_one_way() -> None:
    """A stage imports only earlier stages; nothing in the core imports a connector module."""
    wrong = [
        f"{a} -> {b}"
        for a, targets in GRAPH.items()
        for b in targets
        if LAYERS.index(group(b)) > LAYERS.index(group(a))
    ]
    core_to_connectors = [
        f"{a} -> {b}"
        for a, targets in GRAPH.items()
        for b in targets
        if b.startswith("okrsync.connectors") and not a.startswith("okrsync.connectors")
    ]
    assert wrong == [] and core_to_connectors == []


def test_no_import_cycles_even_through_deferred_imports() -> None:
    """Following imports (top-level and inside functions) never leads back to the start."""
    cycles: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert cycles == []


@pytest.mark.parametrize("name", sorted(MODULES), ids=str)
def test_modules_are_small(name: str) -> None:
    """No module grows past ~400 lines: past that it asks to be split along the data flow."""
    assert len(MODULES[name].read_text().splitlines()) <= MAX_LINES


def test_every_package_says_what_it_holds() -> None:
    """Each package's __init__.py starts with a docstring."""
    packages = [p for p in MODULES.values() if p.name == "__init__.py"]
    missing = [
        str(p.relative_to(ROOT))
        for p in packages
        if not ast.get_docstring(ast.parse(p.read_text()))
    ]
    assert len(packages) >= 8 and missing == []


def test_every_package_is_installed() -> None:
    """pyproject lists packages by hand: a new package missing there works in the editable
    checkout but not in the wheel the container installs."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    packages = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert packages <= listed, f"add to [tool.setuptools] packages: {sorted(packages - listed)}"
