"""The house's shape: no import circles in nc_core or dashboard, and no arrow from a lower layer of
nc_core to a higher one. Any import counts, at any depth of a file (a function-level import is
still a dependency a reader follows), as ``../shared/tools/import_cycles.py`` counts them."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers.paths import ROOT

#: nc_core's layers, lowest first; a module may import its own layer and those below.
LAYERS = {
    "nc_core.errors": 0,
    "nc_core._lazy": 0,
    "nc_core.runtime": 0,
    "nc_core.schema": 0,
    "nc_core.backend": 0,
    "nc_core.files": 0,
    "nc_core.loading": 1,
    "nc_core.optimise": 2,
    "nc_core.detection": 3,
    "nc_core.reports": 4,
    "nc_core.repair": 5,
    "nc_core.runs": 6,
    "nc_core.audit": 7,
    "nc_core.cli": 8,
    "nc_core.__main__": 9,
}


def _modules(packages=("nc_core", "dashboard")) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            found[".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = path
    return found


def _imports(path: Path, module: str, known: dict[str, Path]) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names |= {f"{base}.{alias.name}" for alias in node.names} | {base}
    targets = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module and known[name].name != "__init__.py":
            targets.add(name)
    return targets


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {module: _imports(path, module, known) for module, path in known.items() if path.name != "__init__.py"}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _layer(module: str) -> int | None:
    return next((rank for prefix, rank in LAYERS.items() if module == prefix or module.startswith(prefix + ".")), None)


def test_there_is_no_import_circle():
    assert _cycles(_graph()) == []


def test_no_lower_layer_of_nc_core_imports_a_higher_one():
    upward = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        if module.startswith("nc_core")
        for target in targets
        if _layer(module) is not None and _layer(target) is not None and _layer(target) > _layer(module)
    ]
    assert upward == []


def test_every_nc_core_module_has_a_layer_and_none_imports_the_ui():
    graph = _graph()
    assert [m for m in graph if m.startswith("nc_core") and _layer(m) is None] == []
    assert [
        m for m, targets in graph.items() if m.startswith("nc_core") and any(t.startswith("dashboard") for t in targets)
    ] == []
