"""draw_graph: the DOT text parses, and its nodes and edges are the graph of the expression.

The structure is read back from the DOT text by a small parser (always) and from Graphviz's
own `dot -Tplain` (where `dot` is installed: `apt-get install graphviz`), and rebuilt into
the expression it draws, which must be the one computed, for a first-order graph and for
the graph that `grad(..., create_graph=True)` records.
"""
import re
import shutil
import subprocess

import numpy as np
import pytest

import tinygan
from tinygan import Function, nn, viz
from tinygan.viz import draw_graph

requires_dot = pytest.mark.skipif(shutil.which("dot") is None,
                                  reason="Graphviz's dot is not installed "
                                         "(apt-get install graphviz)")

_NODE = re.compile(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)"(.*)\];$')
_EDGE = re.compile(r"^\s*(\w+) -> (\w+);$")


def parse_dot(source: str):
    """{node: label lines}, the set of op nodes and [(tail, head)] of the DOT that
    draw_graph writes; every other line must be the graph's header, a default attribute or
    the closing brace."""
    lines = source.strip().splitlines()
    assert lines[0] == "digraph tinygan {" and lines[-1] == "}"
    nodes, ops, edges = {}, set(), []
    for line in lines[1:-1]:
        if m := _NODE.match(line):
            nodes[m.group(1)] = m.group(2).replace('\\"', '"').split("\\n")
            if "shape=ellipse" in m.group(3):
                ops.add(m.group(1))
        elif m := _EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        else:
            assert re.match(r"^\s*(rankdir=\w+|node \[.*\]|edge \[.*\]);$", line), line
    assert {n for e in edges for n in e} <= set(nodes)
    return nodes, ops, edges


def parse_plain(text: str):
    """The node names and edges of `dot -Tplain` output."""
    nodes, edges = set(), []
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "node":
            nodes.add(parts[1])
        elif parts and parts[0] == "edge":
            edges.append((parts[1], parts[2]))
    return nodes, edges


def expression(parsed, root="t0"):
    """The expression a node stands for: an op applied to its inputs (in the order of the
    edges), a tensor made by an op as that op, a named leaf by its name, an unnamed one as
    const(shape)."""
    nodes, ops, edges = parsed
    inputs = [a for a, b in edges if b == root]
    if root in ops:
        return f"{nodes[root][0]}({', '.join(expression(parsed, a) for a in inputs)})"
    if inputs:
        return expression(parsed, inputs[0])
    label = nodes[root][0]
    return "const" + label.split()[0] if label.startswith("(") else label


def neuron():
    x = tinygan.tensor([2.0, -1.0])
    w = tinygan.tensor([-0.5, 1.5], requires_grad=True)
    b = tinygan.tensor(0.8, requires_grad=True)
    x.name, w.name, b.name = "x", "w", "b"
    return ((w * x).sum() + b).tanh(), (x, w, b)


class Sin(Function):
    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        return gy * Cos()(self.inputs[0])


class Cos(Function):
    def forward(self, x):
        return np.cos(x)

    def backward(self, gy):
        return -gy * Sin()(self.inputs[0])


def test_the_graph_of_a_neuron_is_its_expression():
    L, _ = neuron()
    graph = draw_graph(L)
    parsed = nodes, ops, edges = parse_dot(graph.source)
    assert nodes == {n: label.split("\n") for n, label in graph.nodes.items()}
    assert edges == graph.edges
    assert ops == {n for n, kind in graph.kinds.items() if kind == "op"}
    assert expression(parsed) == "Tanh(Add(Sum(Mul(w, x)), b))"
    assert sorted(nodes[n][0] for n in ops) == ["Add", "Mul", "Sum", "Tanh"]
    assert len(nodes) == 11 and len(edges) == 10  # 7 tensors, 4 ops; each tensor in or out
    assert nodes["t9"] == ["w", "(2,) float32"] and graph.kinds["t9"] == "parameter"
    assert graph.kinds["t10"] == "constant" and nodes["t5"] == ["b", "() float32", "= 0.8"]


def test_a_tensor_used_twice_has_two_edges():
    a = tinygan.tensor(3.0, requires_grad=True)
    a.name = "a"
    assert expression(parse_dot(draw_graph(a * a + a).source)) == "Add(Mul(a, a), a)"


def test_the_graph_that_create_graph_records_is_drawn():
    t = tinygan.tensor(0.5, requires_grad=True)
    t.name = "t"
    (dy,) = tinygan.grad(Sin()(t), t, create_graph=True)   # cos(t), made by Sin.backward
    assert expression(parse_dot(draw_graph(dy).source)) == "Mul(const(), Cos(t))"  # 1 * cos t
    (d2y,) = tinygan.grad(dy, t, create_graph=True)                 # second order
    text = expression(parse_dot(draw_graph(d2y).source))
    assert "Sin(t)" in text and "Cos" not in text  # d(cos t)/dt = -sin t: Cos.backward's graph
    assert d2y.item() == pytest.approx(-np.sin(0.5))


def test_the_gradient_penalty_reaches_the_critic_through_the_backward_graph():
    rng = np.random.default_rng(0)
    w = tinygan.tensor(rng.standard_normal((1, 4)), requires_grad=True)
    x = tinygan.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    (g,) = tinygan.grad(tinygan.functional.linear(x, w).sum(), x, create_graph=True)
    penalty = ((((g * g).sum(1)) ** 0.5 - 1.0) ** 2).mean()
    graph = draw_graph(penalty, params={"w": w, "x_hat": x})
    nodes, _, edges = parse_dot(graph.source)
    named = {label[0]: n for n, label in nodes.items()}
    assert "w" in named and "x_hat" not in named  # grad_x of a linear map does not read x
    reach, frontier = {named["w"]}, [named["w"]]
    while frontier:
        frontier = [b for a, b in edges if a in frontier and b not in reach]
        reach.update(frontier)
    assert "t0" in reach  # w -> (the backward's matmul) -> ... -> the penalty


def test_a_freed_graph_is_a_clear_error():
    L, _ = neuron()
    L.backward()
    with pytest.raises(RuntimeError, match="freed by backward"):
        draw_graph(L)


def test_parameters_are_named_from_params():
    layer = nn.Linear(3, 2)
    y = layer(tinygan.randn(4, 3)).sum()
    nodes, _, _ = parse_dot(draw_graph(y, params=dict(layer.named_parameters())).source)
    labels = [label[0] for label in nodes.values()]
    assert "weight" in labels and "bias" in labels


def test_without_dot_it_writes_the_dot_file_and_says_how_to_render(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.setattr(viz, "dot_program", lambda: None)
    L, _ = neuron()
    graph = draw_graph(L, tmp_path / "neuron")
    assert graph.path == str(tmp_path / "neuron.dot")
    assert (tmp_path / "neuron.dot").read_text() == graph.source
    hint = capsys.readouterr().err.strip()
    assert len(hint.splitlines()) == 1
    assert "apt-get install graphviz" in hint and "conda" in hint
    assert f"dot -Tsvg {tmp_path / 'neuron.dot'} -o {tmp_path / 'neuron.svg'}" in hint
    assert graph._repr_svg_() is None
    with pytest.raises(ValueError, match="format 'jpg'"):
        graph.render(tmp_path / "x", "jpg")


@requires_dot
def test_dot_parses_it_into_the_same_nodes_and_edges(tmp_path):
    t = tinygan.tensor(0.5, requires_grad=True)
    (dy,) = tinygan.grad(Sin()(t) * t, t, create_graph=True)
    graph = draw_graph(dy, tmp_path / "second-order")
    assert graph.path == str(tmp_path / "second-order.svg")
    assert "<svg" in (tmp_path / "second-order.svg").read_text()
    assert "<svg" in graph._repr_svg_()
    plain = subprocess.run(["dot", "-Tplain"], input=graph.source, capture_output=True,
                           text=True, check=True).stdout
    nodes, edges = parse_plain(plain)
    assert nodes == set(graph.nodes) and sorted(edges) == sorted(graph.edges)
    assert draw_graph(dy, tmp_path / "g.png", format="png").path == str(tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
