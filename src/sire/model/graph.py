"""Step dependencies as a graph: topological order, layers, and cycles named in full."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence


def find_cycle(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one cycle as `[a, b, ..., a]`, or None when the graph is acyclic.

    `deps` maps each node to the nodes it depends on; unknown targets are ignored.
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(deps, white)
    for root in deps:
        if colour[root] != white:
            continue
        path: list[str] = [root]
        stack = [iter(deps[root])]
        colour[root] = grey
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                colour[path.pop()] = black
            elif child in colour:
                if colour[child] == grey:
                    return [*path[path.index(child) :], child]
                if colour[child] == white:
                    colour[child] = grey
                    path.append(child)
                    stack.append(iter(deps[child]))
    return None


def layers(deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Group nodes into layers: each node sits one layer after its deepest dependency.

    Nodes in one layer never depend on each other, so they may run together. The
    input must be acyclic; order within a layer follows `deps`.
    """
    depth: dict[str, int] = {}
    for node in topological_order(deps):
        depth[node] = 1 + max((depth[d] for d in deps[node] if d in depth), default=-1)
    result: list[list[str]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for node in deps:
        result[depth[node]].append(node)
    return result


def topological_order(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Nodes ordered so that each comes after all it depends on (Kahn; stable).

    Raises:
        ValueError: the graph has a cycle.
    """
    waiting = {node: len({d for d in targets if d in deps}) for node, targets in deps.items()}
    dependents: dict[str, list[str]] = {node: [] for node in deps}
    for node, targets in deps.items():
        for target in dict.fromkeys(targets):
            if target in deps:
                dependents[target].append(node)
    ready = deque(node for node, count in waiting.items() if count == 0)
    order: list[str] = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for dependent in dependents[node]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    if len(order) != len(deps):
        raise ValueError("graph has a cycle")
    return order
