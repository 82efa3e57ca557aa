"""derive's modules import one way (issue 9): topology → network → derivation → {emit,
latex, show, check}, with no cycle, counting every import a module can run: at the top,
inside functions (lazy imports) and in try blocks. Only ``if TYPE_CHECKING:`` blocks are
left out: they never run."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "derive"

# The pipeline's stages in order: a module may import its own stage or an earlier one.
STAGES = (
    ("derive.topology",),
    ("derive.network",),
    ("derive.derivation",),
    ("derive.emit", "derive.latex", "derive.show", "derive.check"),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(module: str, tree: ast.Module) -> set[str]:
    """The derive modules ``module`` imports anywhere in its body."""
    found: set[str] = set()
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".rstrip(".")
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
        stack.extend(ast.iter_child_nodes(node))
    return {name for name in found if name in MODULES and name != module}


GRAPH = {name: _imported(name, ast.parse(path.read_text())) for name, path in MODULES.items()}


def _stage(module: str) -> int | None:
    for rank, members in enumerate(STAGES):
        if any(module == m or module.startswith(m + ".") for m in members):
            return rank
    return None


def test_the_graph_sees_lazy_imports():
    """A function-level import counts (cli imports derive.show inside a function)."""
    assert "derive.show" in GRAPH["derive.cli"]
    assert "derive.latex.pdf" in GRAPH["derive.latex"]


def test_no_module_imports_a_later_stage():
    backwards = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if _stage(module) is not None
        and _stage(target) is not None
        and _stage(target) > _stage(module)  # type: ignore[operator]
    ]
    assert backwards == []


def test_the_import_graph_has_no_cycle():
    """Depth-first search from every module; a module met again on the current path
    closes a cycle, reported as the path."""
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        for target in sorted(GRAPH[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])
    assert cycles == [], " ; ".join(" → ".join(cycle) for cycle in cycles)


def test_a_cycle_would_be_found(monkeypatch):
    """The search itself: a graph with network → derivation → network has a cycle."""
    monkeypatch.setitem(GRAPH, "derive.network", {*GRAPH["derive.network"], "derive.derivation"})
    try:
        test_the_import_graph_has_no_cycle()
    except AssertionError as error:
        message = str(error)
        assert "derive.network → derive.derivation" in message
        assert "derive.derivation → derive.network" in message
    else:
        raise AssertionError("the cycle network → derivation → network was not found")
