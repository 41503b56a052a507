"""Drawing the graph behind a tensor: which ops made it, from which tensors.

    from tinygan.viz import draw_graph
    graph = draw_graph(loss, "loss-graph")   # loss-graph.svg, or loss-graph.dot without `dot`
    print(graph.source)                      # the Graphviz DOT text

Every Function that `backward()` would walk is drawn as an ellipse labelled with its op
(`Mul`, `Tanh`, `Conv2d`); every tensor as a box with its name (if it has one), shape and
dtype: blue for a leaf that requires a gradient (a parameter), grey for a constant, orange
for the tensors drawn from. An edge goes from each input into the op, and from the op to
its output. A gradient taken with `create_graph=True` has a graph of its own, recorded by
the backward pass, and draws the same way: that is the second-order graph of WGAN-GP's
penalty (lesson 13).

The DOT text needs nothing. Pictures need Graphviz's `dot` program: `apt-get install
graphviz` (Debian, Ubuntu), `brew install graphviz` (macOS) or `conda install -c
conda-forge graphviz`. Without it, draw_graph writes the .dot file and says, in one line,
how to render it. In Jupyter the returned Graph shows itself as a picture (when `dot` is
there).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from ._tensor import Tensor
from .files import atomic_write

FORMATS = ("svg", "png", "pdf")
_STYLE = {
    "op": 'shape=ellipse, style=filled, fillcolor="#e8e8e8"',
    "output": 'shape=box, style="rounded,filled", fillcolor="#fdd9a0"',
    "parameter": 'shape=box, style="rounded,filled", fillcolor="#c6dbef"',
    "constant": 'shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontcolor="#555555"',
    "tensor": 'shape=box, style=rounded',
}
RENDER_HINT = ("install Graphviz (apt-get install graphviz, brew install graphviz or conda "
               "install -c conda-forge graphviz)")


def dot_program():
    """The path of Graphviz's `dot`, or None when it is not installed."""
    return shutil.which("dot")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _tensor_label(t: Tensor, name) -> str:
    """name, shape and dtype; and the value of a one-element tensor (micrograd's `data`)."""
    shape = "(" + ", ".join(str(s) for s in t.shape) + ("," if len(t.shape) == 1 else "") + ")"
    value = [f"= {float(t.data.reshape(-1)[0]):.4g}"] if t.data.size == 1 else []
    return "\n".join(([name] if name else []) + [f"{shape} {t.dtype}"] + value)


class Graph:
    """The drawn graph: `source` (DOT text), `nodes` {id: label}, `edges` [(from, to)], and
    `path`, the file written last (None before `render`)."""

    def __init__(self, nodes: dict, edges: list, kinds: dict, rankdir: str = "LR"):
        self.nodes, self.edges, self.kinds, self.rankdir = nodes, edges, kinds, rankdir
        self.path = None

    @property
    def source(self) -> str:
        lines = ["digraph tinygan {", f"  rankdir={self.rankdir};",
                 '  node [fontname="Helvetica", fontsize=11];',
                 '  edge [color="#555555", arrowsize=0.7];']
        lines += [f"  {node} [label={_quote(label)}, {_STYLE[self.kinds[node]]}];"
                  for node, label in self.nodes.items()]
        lines += [f"  {a} -> {b};" for a, b in self.edges]
        return "\n".join(lines + ["}"]) + "\n"

    def render(self, path: str, format: str = "svg") -> str:
        """Write path.FORMAT with `dot`; without `dot`, path.dot and a one-line hint on
        stderr. Returns the file written (a path that already ends in .FORMAT or .dot
        is kept as it is)."""
        if format not in FORMATS:
            raise ValueError(f"draw_graph: format {format!r}; expected one of {FORMATS}")
        stem = os.fspath(path)
        for ext in (f".{format}", ".dot"):
            stem = stem[:-len(ext)] if stem.endswith(ext) else stem
        dot = dot_program()
        if dot is None:
            self.path = stem + ".dot"
            atomic_write(self.path, lambda f: f.write(self.source.encode()))
            print(f"draw_graph: wrote {self.path}; to see it, {RENDER_HINT}, then run: "
                  f"dot -T{format} {self.path} -o {stem}.{format}", file=sys.stderr)
            return self.path
        picture = self._run_dot(dot, format)
        self.path = f"{stem}.{format}"
        atomic_write(self.path, lambda f: f.write(picture))
        return self.path

    def _run_dot(self, dot: str, format: str) -> bytes:
        done = subprocess.run([dot, f"-T{format}"], input=self.source.encode(),
                              capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"draw_graph: dot -T{format} failed: "
                               f"{done.stderr.decode(errors='replace').strip()}")
        return done.stdout

    def _repr_svg_(self):
        """Jupyter shows the graph as a picture (when `dot` is installed)."""
        dot = dot_program()
        return None if dot is None else self._run_dot(dot, "svg").decode()

    def __repr__(self) -> str:
        ops = sum(kind == "op" for kind in self.kinds.values())
        where = f", drawn in {self.path}" if self.path else ""
        return f"<Graph of {len(self.nodes) - ops} tensors and {ops} ops{where}>"


def draw_graph(outputs, path=None, *, params=None, format: str = "svg",
               rankdir: str = "LR") -> Graph:
    """The graph behind `outputs` (a tensor or a list of them), as a Graph; with `path`,
    also drawn there (path.svg, or path.dot when Graphviz is missing).

    Tensors are named by `params` ({name: tensor}, e.g. dict(model.named_parameters()))
    or by their own `.name`. Draw before `backward()`, which frees the graph (unless it
    was called with retain_graph=True or create_graph=True).
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    outputs = list({id(y): y for y in outputs}.values())
    names = {id(t): name for name, t in (params or {}).items()}
    ids: dict = {}  # id(object) -> node id, in the order met
    nodes, kinds, edges = {}, {}, []

    def node(obj, kind, label) -> str:
        if id(obj) not in ids:
            ids[id(obj)] = f"{'f' if kind == 'op' else 't'}{len(ids)}"
            nodes[ids[id(obj)]], kinds[ids[id(obj)]] = label, kind
        return ids[id(obj)]

    def tensor_node(t: Tensor, kind=None) -> str:
        if kind is None:
            kind = ("tensor" if t.creator is not None else
                    "parameter" if t.requires_grad else "constant")
        return node(t, kind, _tensor_label(t, names.get(id(t), t.name)))

    todo = []
    for y in outputs:
        tensor_node(y, "output")
        todo.append(y)
    seen_functions = set()
    while todo:
        y = todo.pop()
        f = y.creator
        if f is None:
            continue
        if "inputs" not in f.__dict__:
            raise RuntimeError(f"draw_graph: the graph through {type(f).__name__} was freed by "
                               "backward(); draw it before backward(), or call backward with "
                               "retain_graph=True")
        op = node(f, "op", type(f).__name__)
        edges.append((op, ids[id(y)]))
        if id(f) in seen_functions:
            continue
        seen_functions.add(id(f))
        for x in f.inputs:
            met = id(x) in ids
            edges.append((tensor_node(x), op))
            if not met:
                todo.append(x)
    graph = Graph(nodes, edges, kinds, rankdir)  # x * x keeps both of its edges
    if path is not None:
        graph.render(path, format)
    return graph
