"""Print, as JSON, the import cycles between runplane's packages (its direct sub-packages and top modules).

Counts every import grimp sees, including function-local and TYPE_CHECKING ones (a cycle hidden in a function
is still a cycle). `pairs` are two packages that import each other directly; `cycles` are the strongly connected
groups of packages (any chain of imports leading back); `runtime` is the same without the imports made only for
type checkers (`if TYPE_CHECKING:`), which never run. Usage: python scripts/import_cycles.py [package]"""

from __future__ import annotations

import json
import sys
from itertools import combinations

import grimp


def package_of(module: str, root: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else root


def package_graph(root: str, *, runtime: bool = False) -> dict[str, set[str]]:
    graph = grimp.build_graph(root, cache_dir=None, exclude_type_checking_imports=runtime)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        source = package_of(module, root)
        for imported in graph.find_modules_directly_imported_by(module):
            target = package_of(imported, root)
            if target != source and imported.startswith(root + "."):
                edges.setdefault(source, set()).add(target)
    return edges


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively small enough for a few dozen packages."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while (member := stack.pop()) != node:
                group.append(member)
            group.append(node)
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(set(edges) | {t for ts in edges.values() for t in ts}):
        if node not in index:
            visit(node)
    return groups


def summary(edges: dict[str, set[str]]) -> dict[str, object]:
    pairs = [sorted((a, b)) for a, b in combinations(sorted(edges), 2) if b in edges[a] and a in edges.get(b, ())]
    groups = strongly_connected(edges)
    return {"mutual_pairs": len(pairs), "pairs": pairs, "cycles": len(groups), "groups": groups}


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else "runplane"
    report = summary(package_graph(root))
    report["runtime"] = summary(package_graph(root, runtime=True))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
