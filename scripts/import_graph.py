"""The import graph of ``src/dpo_diff``: cycles and long modules (``python scripts/import_graph.py``).

Every ``import`` counts, at module level or inside a function (an import hidden in a function
still ties two modules together), except those under ``if TYPE_CHECKING:``. Importing
``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so those count as well. The registries'
lazy ``importlib`` lookups by name are not imports of this kind. Exit status 1 on a cycle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "dpo_diff"
LONG = 300
REASON = "longer than 300 lines because"


def modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    targets: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                continue
            if isinstance(child, ast.Import):
                targets.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    anchor = base[: len(base) - (child.level - 1)]
                    module = ".".join(anchor + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                targets.add(module)
                targets.update(f"{module}.{a.name}" for a in child.names)  # "from pkg import submodule"
            visit(child)

    visit(tree)
    edges = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):  # the module and every package above it run
            candidate = ".".join(parts[:i])
            if candidate in known and candidate != name and not name.startswith(candidate + "."):
                edges.add(candidate)
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            strong(v)
    return found


def long_modules(found: dict[str, Path]) -> list[tuple[str, int, bool]]:
    rows = []
    for name, path in sorted(found.items()):
        text = path.read_text()
        n = text.count("\n")
        if n > LONG:
            rows.append((name, n, REASON in text[:2000].lower()))
    return rows


def main() -> int:
    found = modules()
    graph = {name: imports(name, path, set(found)) for name, path in found.items()}
    loops = cycles(graph)
    print(f"{len(found)} modules, {sum(len(e) for e in graph.values())} import edges inside {PACKAGE}")
    for loop in loops:
        print("CYCLE: " + " <-> ".join(loop))
    print("no import cycle" if not loops else f"{len(loops)} import cycle(s)")
    for name, n, reasoned in long_modules(found):
        print(f"{name}: {n} lines" + (" (reason at its top)" if reasoned else " (NO reason at its top)"))
    return 1 if loops else 0


if __name__ == "__main__":
    raise SystemExit(main())
