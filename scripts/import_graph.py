"""Print the package import graph of ``dynamo_plan/`` and fail on a cycle or an upward import.

Usage: ``python scripts/import_graph.py [ROOT]`` (ROOT defaults to the ``dynamo_plan`` package
next to this script). Every module is parsed with :mod:`ast`; imports at any depth count
(function-local and ``TYPE_CHECKING`` imports included — lazy imports are common here, and a lazy
import that runs upward is still an upward dependency). A module's *package* is the first name
under the root: ``dynamo_plan/deploy/render.py`` → ``deploy``; top-level modules
(``errors.py``, ``resources.py``) are packages of their own.

Exit status: 0 when the graph is a ladder; 1 on any cycle between packages or any import of a
package on the importer's rung or a higher one of :data:`LAYERS`; 2 when a package is missing
from :data:`LAYERS`.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# The ladder, lowest rung first. A package may import packages on lower rungs only (not its
# neighbours on the same rung). Keep in step with the picture in dynamo_plan/__init__.py and
# with each package's ruff.toml (tests/test_import_graph.py checks both).
LAYERS: list[list[str]] = [
    ["errors", "__init__"],
    ["core"],
    ["formats", "resources", "plotting"],
    ["trace", "predict", "estimator"],
    ["adapters", "control"],
    ["connectors"],
    ["sim"],
    ["live"],
    ["deploy"],
    ["profiler"],
    ["cli"],
    ["__main__"],
]


@dataclass(frozen=True)
class Edge:
    """One import: ``src`` package imports ``dst`` package, at ``where`` (path:line)."""

    src: str
    dst: str
    where: str
    type_checking: bool


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_pkg: bool) -> Iterator[tuple[str, int, bool]]:
    """Yield (absolute module name, line, under TYPE_CHECKING) for every import in ``tree``."""
    tc_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                for sub in ast.walk(child):
                    if hasattr(sub, "lineno"):
                        tc_lines.add(sub.lineno)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, node.lineno in tc_lines
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                base = parts if is_pkg else parts[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            # ``from pkg import x``: x may be a submodule (or a name defined in pkg).
            for alias in node.names:
                yield f"{name}.{alias.name}", node.lineno, node.lineno in tc_lines


def collect(root: Path) -> list[Edge]:
    """All package-to-package edges in the package at ``root`` (self-edges dropped)."""
    top = root.name
    edges: list[Edge] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        is_pkg = rel.name == "__init__.py"
        parts = [top, *rel.with_suffix("").parts]
        if is_pkg:
            parts = parts[:-1]
        module = ".".join(parts)
        src = rel.parts[0].removesuffix(".py") if len(rel.parts) == 1 else rel.parts[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, line, tc in _imports(tree, module, is_pkg):
            bits = name.split(".")
            if bits[0] != top:
                continue
            dst = bits[1] if len(bits) > 1 else "__init__"
            if not ((root / dst).is_dir() or (root / f"{dst}.py").is_file()):
                dst = "__init__"  # a name defined in the package's __init__.py
            if dst != src:
                edges.append(Edge(src, dst, f"{top}/{rel}:{line}", tc))
    return edges


def packages(root: Path) -> list[str]:
    """Every package and top-level module name under ``root``."""
    names = {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    names |= {p.stem for p in root.glob("*.py")}
    return sorted(names)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp: list[str] = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check(root: Path, layers: Sequence[Sequence[str]] = LAYERS) -> tuple[str, int]:
    """The report text and exit status for the package at ``root``."""
    rung = {name: i for i, names in enumerate(layers) for name in names}
    edges = collect(root)
    names = packages(root)
    graph: dict[str, set[str]] = {n: set() for n in names}
    for e in edges:
        graph.setdefault(e.src, set()).add(e.dst)
    lines = [f"{'package':<12} {'rung':>4}  imports"]
    for n in sorted(graph, key=lambda n: (rung.get(n, 99), n)):
        lines.append(f"{n:<12} {rung.get(n, '?')!s:>4}  {', '.join(sorted(graph[n])) or '-'}")
    status = 0
    missing = [n for n in graph if n not in rung]
    if missing:
        lines.append(f"\nnot in LAYERS: {', '.join(sorted(missing))}")
        status = 2
    upward = [e for e in edges if rung.get(e.dst, -1) >= rung.get(e.src, 99)]
    if upward:
        lines.append("\nupward (or sideways) imports:")
        lines += [
            f"  {e.where}: {e.src} (rung {rung[e.src]}) -> {e.dst} (rung {rung[e.dst]})"
            + (" [TYPE_CHECKING]" if e.type_checking else "")
            for e in upward
        ]
        status = status or 1
    found = cycles(graph)
    if found:
        lines.append("\ncycles:")
        for comp in found:
            lines.append(f"  {' <-> '.join(comp)}")
            lines += [
                f"    {e.where}: {e.src} -> {e.dst}"
                for e in edges
                if e.src in comp and e.dst in comp
            ]
        status = status or 1
    if status == 0:
        lines.append("\nok: no cycle, no upward import")
    return "\n".join(lines), status


def main(argv: Sequence[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "dynamo_plan"
    text, status = check(root)
    print(text)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
