"""The package's import graph has no cycle, hidden or not (issue 13).

The graph is read from the source, not from a run: every ``import`` and ``from ... import``
statement at any depth (module level, inside functions, under ``if TYPE_CHECKING``), every
``importlib.import_module`` / ``__import__`` call with a literal name, and every string constant
that names a submodule of the package exactly (a registry that loads modules by name). An edge
``a -> b`` means module ``a`` may import module ``b``. Importing ``a.b`` also runs ``a``'s
``__init__``, but that implicit edge to a parent package is left out, as import-cycle checkers
do: a package that re-exports its submodules would otherwise be a cycle with each of them.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

import mrusfusion

PACKAGE = Path(mrusfusion.__file__).resolve().parent


def module_files(root: Path, name: str) -> Dict[str, Path]:
    """Module name -> source file, for every ``.py`` file of the package at ``root``, and every
    compiled module known by its ``.pyi`` stub (``_core``; its stub imports nothing of ours)."""
    out = {}
    for path in sorted(root.rglob("*.pyi")) + sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join([name, *parts])] = path
    return out


def _resolve(module: str, is_package: bool, target: Optional[str], level: int) -> str:
    """Absolute name of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _literal(node: ast.AST) -> Optional[str]:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def import_graph(root: Path, name: str) -> Dict[str, Set[str]]:
    """Edges between the package's modules (see the module docstring)."""
    files = module_files(root, name)
    modules = set(files)

    def owner(dotted: str) -> Optional[str]:
        # `import a.b.c` or a name inside a module: the longest prefix that is a module
        parts = dotted.split(".")
        for k in range(len(parts), 0, -1):
            candidate = ".".join(parts[:k])
            if candidate in modules:
                return candidate
        return None

    graph: Dict[str, Set[str]] = {m: set() for m in modules}
    for mod, path in files.items():
        if path.suffix == ".pyi":
            continue
        is_pkg = path.name == "__init__.py"
        targets: List[str] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, is_pkg, node.module, node.level)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    # `from pkg import sub` imports the submodule; `from mod import name` the module
                    targets.append(sub if sub in modules else base)
            elif isinstance(node, ast.Call) and node.args:
                func = node.func
                called = (func.attr if isinstance(func, ast.Attribute)
                          else func.id if isinstance(func, ast.Name) else None)
                literal = _literal(node.args[0])
                if called in ("import_module", "__import__") and literal is not None:
                    package = next((_literal(k.value) for k in node.keywords
                                    if k.arg == "package"), None)
                    if literal.startswith(".") and package is not None:
                        level = len(literal) - len(literal.lstrip("."))
                        literal = _resolve(package, True, literal.lstrip(".") or None, level)
                    targets.append(literal)
            elif _literal(node) in modules and "." in (_literal(node) or ""):
                # a dotted name only: the bare package name is also a word ("mrusfusion": version)
                targets.append(_literal(node) or "")
        for target in targets:
            dest = owner(target)
            if dest is not None and dest != mod:
                graph[mod].add(dest)
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One cycle ``[a, b, ..., a]`` of the graph, or None (iterative depth-first search)."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if start in state:
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_the_package_import_graph_is_acyclic():
    graph = import_graph(PACKAGE, "mrusfusion")
    assert len(graph) > 40 and sum(map(len, graph.values())) > 100  # the walk saw the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_command_line_is_the_top_floor():
    # Nothing outside mrusfusion.cli (and __main__, which runs it) imports the command line.
    graph = import_graph(PACKAGE, "mrusfusion")
    users = {m for m, deps in graph.items() if any(d.split(".")[:2] == ["mrusfusion", "cli"]
                                                   for d in deps)}
    assert {m for m in users if not m.startswith("mrusfusion.cli")} <= {"mrusfusion.__main__"}


def _write(root: Path, files: Dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_hidden_imports_make_edges_and_cycles_are_found(tmp_path):
    # A cycle closed only by a function-level import, and one closed only by importlib with a
    # literal name: both are found; a name that is not a module makes no edge.
    pkg = tmp_path / "toy"
    _write(pkg, {
        "__init__.py": "from .a import f\n",
        "a.py": "from . import b\ndef f():\n    return b\n",
        "b.py": "def g():\n    from .a import f\n    return f\n",
        "c.py": "import importlib\nmod = importlib.import_module('toy.d')\n",
        "d.py": "REGISTRY = {'c': 'toy.c'}\nTEXT = 'toy.c is not a module of the name toy.x'\n",
        "sub/__init__.py": "from .. import a\nfrom ..a import f\n",
    })
    graph = import_graph(pkg, "toy")
    assert graph["toy"] == {"toy.a"}
    assert graph["toy.a"] == {"toy.b"} and graph["toy.b"] == {"toy.a"}
    assert graph["toy.c"] == {"toy.d"} and graph["toy.d"] == {"toy.c"}
    assert graph["toy.sub"] == {"toy.a"}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert all(b in graph[a] for a, b in zip(cycle, cycle[1:]))
    _write(pkg, {"b.py": "def g():\n    return 1\n", "d.py": "X = 1\n"})
    assert find_cycle(import_graph(pkg, "toy")) is None
