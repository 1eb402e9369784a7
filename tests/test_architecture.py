"""The package's shape: no import cycles, small modules, each saying what it is for.

Imports are read with ``ast``, so every import counts: at module level, inside functions
(imported on first use) and under ``TYPE_CHECKING``. A low layer that must name a high one
does it with a string entry point, which is not an import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rlhf_gym"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _walk(node: ast.AST):
    """Every node, but those of a script's ``if __name__ == "__main__":`` block (never run on import)."""
    for child in ast.iter_child_nodes(node):
        if (
            isinstance(child, ast.If)
            and ast.unparse(child.test).replace("'", '"') == '__name__ == "__main__"'
        ):
            continue
        yield child
        yield from _walk(child)


def imports_of(name: str, tree: ast.AST, modules: set[str] | dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports, itself excluded."""
    is_package = MODULES.get(name, Path()).name == "__init__.py"
    found: set[str] = set()
    for node in _walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            # the module itself, or the package it is a name of; and every package on the way
            while target and target not in modules:
                target = target.rpartition(".")[0]
            parts = target.split(".")
            found.update(
                ".".join(parts[:k]) for k in range(1, len(parts) + 1) if ".".join(parts[:k]) in modules
            )
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    return {name: imports_of(name, ast.parse(path.read_text()), MODULES) for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_are_read_everywhere() -> None:
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from rlhf_gym.train.rlhf import RLHF\n"
        "def f():\n    from rlhf_gym.data import segments\n"
        "if __name__ == '__main__':\n    from rlhf_gym.cli.main import main\n"
        "import rlhf_gym.config\n"
    )
    modules = {"rlhf_gym", "rlhf_gym.train", "rlhf_gym.train.rlhf", "rlhf_gym.data", "rlhf_gym.data.segments"}
    modules |= {"rlhf_gym.config", "rlhf_gym.cli.main"}
    found = imports_of("rlhf_gym.x", ast.parse(code), modules)
    assert {"rlhf_gym.train.rlhf", "rlhf_gym.data.segments", "rlhf_gym.config"} <= found
    assert "rlhf_gym.cli.main" not in found  # a script's main block never runs on import


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles in rlhf_gym:\n" + "\n".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_small_and_says_what_it_is_for(name: str) -> None:
    path = MODULES[name]
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"{path.name} has {len(text.splitlines())} lines"
    doc = ast.get_docstring(ast.parse(text))
    assert doc and len(doc.split()) >= 4, f"{name} opens with no docstring saying what it is for"


def test_top_level_is_small() -> None:
    top = [p for p in PACKAGE.iterdir() if p.suffix == ".py"]
    assert len(top) <= 12, sorted(p.name for p in top)


def test_the_public_api_resolves_to_its_defining_modules() -> None:
    import rlhf_gym
    from rlhf_gym import (  # the names the README promises
        RLHF,
        WARP,
        FeedbackStore,
        FixedHorizon,
        LearnedReward,
        LearnedRewardVec,
        get_task,
    )

    assert RLHF.__module__ == "rlhf_gym.train.rlhf" and WARP.__module__ == "rlhf_gym.algos.warp"
    assert {FeedbackStore.__name__, FixedHorizon.__name__, LearnedReward.__name__} == {
        "FeedbackStore",
        "FixedHorizon",
        "LearnedReward",
    }
    assert LearnedRewardVec.__module__ == "rlhf_gym.wrappers" and callable(get_task)
    for name, module in rlhf_gym._EXPORTS.items():
        assert getattr(rlhf_gym, name).__module__ == module, name
