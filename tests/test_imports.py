"""The import graph of src/brainlike has no cycle (function-level imports included).

A cycle makes the order of imports matter and hides which module owns a concept; the layer
contracts in pyproject.toml (``lint-imports``) forbid imports up a layer, this test forbids a
circle anywhere, also inside one layer.
"""

from __future__ import annotations

import grimp


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of two or more modules that import each other, directly or through others (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    for root in sorted(edges):
        if root in index:
            continue
        # iterative depth-first search: (node, iterator over its successors)
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, successors = work[-1]
            w = next(successors, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                group = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    group.append(w)
                    if w == v:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_strongly_connected_finds_a_cycle_and_only_it():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": set(), "f": {"f"}}
    assert strongly_connected(edges) == [["a", "b", "c"]]
    assert strongly_connected({"x": {"y"}, "y": set()}) == []


def test_no_import_cycle_in_brainlike():
    graph = grimp.build_graph("brainlike", cache_dir=None)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    cycles = strongly_connected(edges)
    described = []
    for group in cycles:
        members = set(group)
        links = [f"{a} -> {b}" for a in group for b in sorted(edges[a] & members)]
        described.append("; ".join(links))
    assert not cycles, "import cycle(s) in src/brainlike:\n" + "\n".join(described)
