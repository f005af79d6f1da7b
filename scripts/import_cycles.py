"""Fail on any import cycle: between Retain's top-level packages, or between the modules of one app.

    .venv/bin/python scripts/import_cycles.py        (run by `make lint` and CI, after lint-imports)

Every import counts: module-level, inside a function, under ``TYPE_CHECKING``; migrations are left out
(Django orders them by their dependencies, not by imports). The graph is grimp's, the library behind
import-linter, so both tools read the same imports.

* **Between packages**: a package imports another when any of its modules does. The layers contract of
  ``pyproject.toml`` already forbids upward imports; this check also covers a cycle the contract would let
  through, and it applies the contract's ``ignore_imports`` (the composition root ``cs_platform.urls``,
  and the temporary list) so that both tools agree on what is exempt.
* **Inside an app**: two modules of one app that import each other, directly or through a chain, are a
  cycle (``a -> b -> a``): one of them should not need the other, or what both need belongs in a third.
  :data:`TEMPORARY_INTRA_APP_EDGES` (empty) may set aside an edge while a branch in flight breaks its
  cycle; an entry that matches no import fails the check, so the list can only shrink.

Exit status 0 when there is no cycle, 1 otherwise (each cycle printed with its imports and line numbers).
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cs_platform", "accounts", "feedback", "health", "renewals", "value", "playbooks")

#: Intra-app edges set aside while a cycle is being broken, ``"a.b -> a.c": "owner (issue)"``. Empty: issue 11
#: broke the last one (health's rollups, services, tasks and triggers). Use it only for a cycle that a
#: branch in flight removes: an entry that matches no import fails the check, so the list can only shrink.
TEMPORARY_INTRA_APP_EDGES: dict[str, str] = {}


def _pattern(expression: str) -> re.Pattern[str]:
    """import-linter's module expression (``a.b``, ``a.*``, ``a.**``) as a regular expression."""
    parts = []
    for part in expression.split("."):
        parts.append(r"[^.]+(\.[^.]+)*" if part == "**" else r"[^.]+" if part == "*" else re.escape(part))
    return re.compile(r"\.".join(parts) + r"\Z")


def contract_ignores(pyproject: Path = ROOT / "pyproject.toml") -> list[tuple[re.Pattern[str], re.Pattern[str]]]:
    """The layers contract's ``ignore_imports`` as (importer, imported) patterns."""
    config = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]
    ignores = []
    for contract in config.get("contracts", []):
        if contract.get("type") != "layers":
            continue
        for line in contract.get("ignore_imports", []):
            importer, imported = (side.strip() for side in line.split("->"))
            ignores.append((_pattern(importer), _pattern(imported)))
    return ignores


def build_graph() -> grimp.ImportGraph:
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    for module in list(graph.modules):
        if ".migrations" in f".{module}." and module in graph.modules:
            graph.remove_module(module)
    return graph


def _edges(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    return {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}


def _strongly_connected(nodes: set[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the groups of two or more nodes that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, set()) & nodes)))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, set()) & nodes))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def _lines(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    return ", ".join(f"l.{d['line_number']}" for d in details) or "?"


def package_cycles(graph: grimp.ImportGraph) -> list[str]:
    """Cycles between top-level packages, with the module imports that make each package edge."""
    ignores = contract_ignores()
    package_edges: dict[str, set[str]] = defaultdict(set)
    witnesses: dict[tuple[str, str], list[str]] = defaultdict(list)
    for importer, imported_set in _edges(graph).items():
        for imported in imported_set:
            source, target = importer.split(".")[0], imported.split(".")[0]
            if source == target:
                continue
            if any(a.match(importer) and b.match(imported) for a, b in ignores):
                continue
            package_edges[source].add(target)
            witnesses[(source, target)].append(f"{importer} -> {imported} ({_lines(graph, importer, imported)})")
    problems = []
    for group in _strongly_connected(set(PACKAGES), package_edges):
        lines = [f"cycle between packages: {' <-> '.join(group)}"]
        for source in group:
            for target in sorted(package_edges[source] & set(group)):
                lines += [f"    {w}" for w in sorted(witnesses[(source, target)])]
        problems.append("\n".join(lines))
    return problems


def intra_app_cycles(graph: grimp.ImportGraph) -> tuple[list[str], list[str]]:
    """(cycles between modules of one app, temporary entries that match no import)."""
    edges = _edges(graph)
    stale = []
    for entry in TEMPORARY_INTRA_APP_EDGES:
        importer, imported = (side.strip() for side in entry.split("->"))
        if imported in edges.get(importer, set()):
            edges[importer] = edges[importer] - {imported}
        else:
            stale.append(f"{entry}: no such import any more; delete it from TEMPORARY_INTRA_APP_EDGES")
    problems = []
    for package in PACKAGES:
        modules = {m for m in graph.modules if m == package or m.startswith(f"{package}.")}
        for group in _strongly_connected(modules, edges):
            lines = [f"cycle inside {package}: {' <-> '.join(group)}"]
            for importer in group:
                for imported in sorted(edges[importer] & set(group)):
                    lines.append(f"    {importer} -> {imported} ({_lines(graph, importer, imported)})")
            problems.append("\n".join(lines))
    return problems, stale


def main() -> int:
    graph = build_graph()
    problems = package_cycles(graph)
    intra, stale = intra_app_cycles(graph)
    problems += intra + stale
    for problem in problems:
        print(problem)
    if problems:
        print(f"\n{len(problems)} import cycle problem(s). See docs/architecture.md, 'Checking the layers'.")
        return 1
    allowed = ", ".join(f"{entry} ({owner})" for entry, owner in TEMPORARY_INTRA_APP_EDGES.items())
    print(f"No import cycle between packages or inside an app (temporarily set aside: {allowed or 'nothing'}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
