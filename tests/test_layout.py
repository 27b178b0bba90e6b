"""The package's shape: no import cycles, and the core never loads the comparison harness."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import adarank

SRC = Path(adarank.__file__).resolve().parent


def _module_name(path: Path) -> tuple[str, list[str]]:
    """Dotted name of ``path`` and the package its relative imports start from."""
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), parts
    return ".".join(parts), parts[:-1]


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at module level or inside functions, except under ``if TYPE_CHECKING``
    (those never run, so they cannot close a cycle)."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            stack.append(child)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p)[0]: p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = _module_name(path)[1]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                wanted = [a.name for a in node.names]
            else:
                base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
                module = ".".join(p for p in (base, node.module or "") if p)
                wanted = [module] + [f"{module}.{a.name}" for a in node.names]
            graph[name] |= {w for w in wanted if w in files and w != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_sees_relative_and_function_level_imports():
    graph = import_graph()
    assert "adarank.peft_export" in graph["adarank.plan"]  # a relative import
    assert "adarank.compare.report" in graph["adarank.compare.grid"]  # inside a function
    assert "adarank.plan" not in graph["adarank.peft_export"]  # only under TYPE_CHECKING
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_itself_back():
    assert cycles(import_graph()) == []


def test_import_adarank_leaves_the_comparison_harness_out():
    code = ("import json, sys, adarank, adarank.cli; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('adarank.compare'))))")
    env = {**os.environ, "PYTHONPATH": str(SRC.parent), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
