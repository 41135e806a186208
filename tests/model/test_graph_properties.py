"""Properties of the step graph: topological order, layers and cycles (STYLE habit 14)."""

from __future__ import annotations

import functools
import itertools
import operator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sire.model.graph import find_cycle, layers, topological_order

Graph = dict[str, list[str]]

bounded = settings(max_examples=200, deadline=None, derandomize=True, database=None)


@st.composite
def dags(draw: st.DrawFn) -> Graph:
    """Acyclic graphs: node i may depend only on nodes of lower index; keys in any order."""
    n = draw(st.integers(min_value=0, max_value=12))
    pairs = [(i, j) for i in range(n) for j in range(i)]
    edges = draw(st.integers(min_value=0, max_value=2 ** len(pairs) - 1))
    names = [f"s{i}" for i in range(n)]
    deps: Graph = {name: [] for name in names}
    for bit, (i, j) in enumerate(pairs):
        if edges >> bit & 1:
            deps[names[i]].append(names[j])
    order = draw(st.permutations(names))
    return {name: deps[name] for name in order}


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    """Any graph: self-loops and edges to an unknown node included."""
    n = draw(st.integers(min_value=0, max_value=8))
    names = [f"s{i}" for i in range(n)]
    pairs = [(i, j) for i in range(n) for j in range(n + 1)]
    # ANDing k random masks keeps each edge with probability 2**-k: sparse graphs (mostly
    # acyclic) come up as often as dense ones (mostly cyclic).
    masks = draw(st.lists(st.integers(0, 2 ** len(pairs) - 1), min_size=1, max_size=4))
    edges = functools.reduce(operator.and_, masks)
    deps: Graph = {name: [] for name in names}
    for bit, (i, j) in enumerate(pairs):
        if edges >> bit & 1:
            deps[names[i]].append(names[j] if j < n else "ghost")
    return deps


@bounded
@given(dags())
def test_topological_order_respects_every_edge(deps: Graph) -> None:
    assert find_cycle(deps) is None
    order = topological_order(deps)
    assert sorted(order) == sorted(deps)
    assert len(order) == len(set(order))
    position = {node: i for i, node in enumerate(order)}
    for node, targets in deps.items():
        for target in targets:
            assert position[target] < position[node]


@bounded
@given(dags())
def test_layers_put_every_node_after_its_dependencies(deps: Graph) -> None:
    # ... so nodes in one layer never depend on each other and may run together.
    grouped = layers(deps)
    flat = [node for layer in grouped for node in layer]
    assert sorted(flat) == sorted(deps)
    assert len(flat) == len(set(flat))
    assert all(grouped), "no layer is empty"
    depth = {node: i for i, layer in enumerate(grouped) for node in layer}
    for node, targets in deps.items():
        for target in targets:
            assert depth[target] < depth[node]
        # each node sits exactly one layer after its deepest dependency
        assert depth[node] == 1 + max((depth[t] for t in targets), default=-1)


@bounded
@given(graphs())
def test_a_cycle_is_reported_exactly_when_there_is_no_order(deps: Graph) -> None:
    cycle = find_cycle(deps)
    try:
        order = topological_order(deps)
    except ValueError:
        order = None
    assert (cycle is None) == (order is not None)
    if cycle is not None:
        assert len(cycle) >= 2
        assert cycle[0] == cycle[-1]
        assert len(set(cycle[:-1])) == len(cycle) - 1, "the cycle is simple"
        for node, nxt in itertools.pairwise(cycle):
            assert nxt in deps[node], f"{node} does not depend on {nxt}"
    else:
        assert order is not None
        position = {node: i for i, node in enumerate(order)}
        for node, targets in deps.items():
            for target in targets:
                if target in deps:
                    assert position[target] < position[node]


def test_a_self_loop_is_a_cycle_of_one_step() -> None:
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    with pytest.raises(ValueError, match="cycle"):
        topological_order({"a": ["a"]})


def test_the_cycle_is_named_from_where_it_was_entered() -> None:
    deps = {"a": ["b"], "b": ["c"], "c": ["d"], "d": ["b"]}
    assert find_cycle(deps) == ["b", "c", "d", "b"]


def test_topological_order_is_stable_for_independent_nodes() -> None:
    assert topological_order({"z": [], "a": [], "m": []}) == ["z", "a", "m"]
    assert layers({"z": [], "a": ["z"], "m": []}) == [["z", "m"], ["a"]]


def test_unknown_dependencies_are_ignored() -> None:
    deps = {"a": ["ghost"], "b": ["a", "a"]}
    assert find_cycle(deps) is None
    assert topological_order(deps) == ["a", "b"]
    assert layers(deps) == [["a"], ["b"]]


def test_an_empty_graph_has_no_layers() -> None:
    assert layers({}) == []
    assert topological_order({}) == []
    assert find_cycle({}) is None


def test_layers_of_a_cyclic_graph_raise() -> None:
    with pytest.raises(ValueError, match="cycle"):
        layers({"a": ["b"], "b": ["a"]})
