"""The package's layout: no import cycle outside the autograd core, no module hidden by a name.

The import graph is read from the source (ast): every import a module makes, at its top
or inside a function (an import deferred into a function hides a cycle, it does not break
it), except in its `if __name__ == "__main__":` block, which runs only as a command.
"""
import ast
import importlib
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "tinygan"

# Tensor, the graph and the ops are one layer: they may import each other.
CORE = ("tinygan._tensor", "tinygan.autograd", "tinygan.functional", "tinygan.kernels")


def module_files() -> dict:
    """Every module of tinygan by dotted name -> its file."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = module_files()


def _is_main_block(node) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__")


def _statements(body):
    """Every statement of a module, nested ones included, but for its __main__ block."""
    for node in body:
        if _is_main_block(node):
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            yield from _statements(getattr(node, field, []))


def _absolute(module: str | None, level: int, package: str) -> str:
    """The dotted name of `from <level dots><module> import ...` written in `package`."""
    if not level:
        return module
    parts = package.split(".")[:len(package.split(".")) - level + 1]
    return ".".join(parts + ([module] if module else []))


def imports_of(name: str) -> set:
    """The tinygan modules that importing `name` imports directly."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _statements(ast.parse(path.read_text(encoding="utf-8")).body):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, package)
            submodules = {f"{base}.{a.name}" for a in node.names} & MODULES.keys()
            # `from pkg import submodule` runs the submodule; any other name, pkg itself
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(base)
    return {m for m in found if m in MODULES and m != name}


def _in_core(name: str) -> bool:
    return any(name == c or name.startswith(c + ".") for c in CORE)


def cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_outside_the_core():
    graph = {name: imports_of(name) for name in MODULES}
    outside = [c for c in cycles(graph) if not all(_in_core(m) for m in c)]
    assert not outside, f"import cycles outside {', '.join(CORE)}: {outside}"


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert imports_of("tinygan.gans.wgan_gp") >= {"tinygan.gans.base", "tinygan.gans.nets"}


def hidden_submodules(package, names, import_submodule) -> list:
    """The names among `names` (submodules of `package`) that the package binds, eagerly
    or through its module-level __getattr__, to something other than the submodule."""
    lazy = getattr(package, "__getattr__", None)
    hidden = []
    for name in names:
        module = import_submodule(name)
        seen = [vars(package)[name]] if name in vars(package) else []
        if lazy is not None:
            try:
                seen.append(lazy(name))
            except AttributeError:
                pass
        if any(value is not module for value in seen):
            hidden.append(name)
    return hidden


def _packages():
    return sorted(n for n, p in MODULES.items() if p.name == "__init__.py")


@pytest.mark.parametrize("package", _packages())
def test_no_package_attribute_hides_a_submodule(package):
    """`tinygan.x.y` is the module y wherever y is a submodule of tinygan.x: no function
    or lazily exported name of the package takes its place (as `torch.tensor` would hide a
    module tensor.py, which is why PyTorch's is _tensor.py)."""
    names = sorted(m.rpartition(".")[2] for m in MODULES if m.rpartition(".")[0] == package)
    hidden = hidden_submodules(importlib.import_module(package), names,
                               lambda name: importlib.import_module(f"{package}.{name}"))
    assert not hidden, (f"{package}: these names are both a submodule and another object: "
                        f"{hidden}; rename the module")


def test_the_hiding_check_sees_eager_and_lazy_names():
    submodules = {name: types.ModuleType(f"pkg.{name}") for name in ("eager", "lazy", "fine")}
    pkg = types.ModuleType("pkg")
    pkg.eager = len                                   # a function where the module would be
    pkg.fine = submodules["fine"]

    def lazy_names(name):
        if name == "lazy":
            return len
        raise AttributeError(name)

    pkg.__getattr__ = lazy_names
    assert hidden_submodules(pkg, sorted(submodules), submodules.__getitem__) == ["eager", "lazy"]
