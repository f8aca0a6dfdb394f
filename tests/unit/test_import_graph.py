"""The import graph of src/vcops: no cycles, and the layers import downward.

Every import counts, at the top of a module or inside a function (a lazy import is
still a dependency). The checker runs on a small tree with a cycle first, so it is
known to find one.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same tree it imports (packages count as modules)."""
    files = {}
    for f in root.rglob("*.py"):
        name = ".".join(f.relative_to(root).with_suffix("").parts)
        files[name.removesuffix(".__init__")] = f
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, f in files.items():
        package = module if f.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                names = [base, *(f"{base}.{a.name}" for a in node.names)]
            for imported in names:
                name = imported
                while name and name not in files:
                    name = name.rpartition(".")[0]
                related = module.startswith(name + ".") or name.startswith(module + ".")
                if name and name != module and not related:
                    graph[module].add(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_checker_finds_a_cycle_even_through_a_lazy_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import x\n")
    (pkg / "b.py").write_text("def x():\n    from . import c\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "d.py").write_text("from pkg import a\n")
    assert cycles(import_graph(tmp_path)) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_src_has_no_import_cycle() -> None:
    assert cycles(import_graph(SRC)) == []


def test_nothing_below_the_window_layer_imports_it_to_ask_permission() -> None:
    """The policy gate sits below enforce, snapshot and window; none of them (nor the
    gate, the registry or the inventory) imports ``vcops.window``."""
    graph = import_graph(SRC)
    below = ("vcops.policy", "vcops.roles", "vcops.inventory", "vcops.enforce", "vcops.snapshot")
    offenders = {
        m: sorted(t for t in targets if t.startswith("vcops.window"))
        for m, targets in graph.items()
        if m.startswith(below)
    }
    assert {m: t for m, t in offenders.items() if t} == {}
    assert graph["vcops.roles"] == set()  # the registry sits below everything
    assert graph["vcops.policy"] <= {"vcops.errors", "vcops.inventory.models"}
