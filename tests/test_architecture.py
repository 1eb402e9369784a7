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


def _exports() -> dict[str, str]:
    """The package's lazy public names (``rlhf_gym._EXPORTS``): name -> defining module."""
    for node in ast.parse((PACKAGE / "__init__.py").read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_EXPORTS":
            return ast.literal_eval(node.value)
    raise AssertionError("rlhf_gym/__init__.py defines no _EXPORTS")


EXPORTS = _exports()

# The stages, lowest first: a module may import its own stage and those below, never one above.
LAYERS = (
    (
        "rlhf_gym",
        "rlhf_gym.processes",
        "rlhf_gym.provenance",
        "rlhf_gym.schema",
        "rlhf_gym.types",
        "rlhf_gym.config",
    ),
    ("rlhf_gym.tasks",),
    ("rlhf_gym.data",),
    ("rlhf_gym.reward",),
    ("rlhf_gym.feedback",),
    ("rlhf_gym.wrappers",),
    ("rlhf_gym.agents",),
    ("rlhf_gym.algos",),  # the algorithms on the agents: KL anchor, CPL, best-of-N
    ("rlhf_gym.train",),
    ("rlhf_gym.algos.warp",),  # WARP drives the loop
    ("rlhf_gym.experiments",),
    ("rlhf_gym.human",),
    ("rlhf_gym.cli",),
)


def layer(module: str) -> int:
    """The index in ``LAYERS`` of the longest prefix that names ``module``'s stage."""
    best, found = -1, -1
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), i
    assert found >= 0, f"{module} belongs to no stage of LAYERS"
    return found


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
            if base == "rlhf_gym":  # a lazy public name loads its defining module
                targets += [EXPORTS[alias.name] for alias in node.names if alias.name in EXPORTS]
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
        "if TYPE_CHECKING:\n    from rlhf_gym.train.resolve import resolve_config\n"
        "def f():\n    from rlhf_gym.data import segments\n"
        "if __name__ == '__main__':\n    from rlhf_gym.cli.main import main\n"
        "import rlhf_gym.config as c\n"
        "from . import sibling\n"
        "from ..reward.model import RewardModel\n"
        "from rlhf_gym import RLHF\n"
    )
    modules = {"rlhf_gym", "rlhf_gym.train", "rlhf_gym.train.rlhf", "rlhf_gym.train.resolve", "rlhf_gym.data"}
    modules |= {"rlhf_gym.data.segments", "rlhf_gym.config", "rlhf_gym.cli.main", "rlhf_gym.train.sibling"}
    modules |= {"rlhf_gym.reward", "rlhf_gym.reward.model", "rlhf_gym.train.loop"}
    found = imports_of("rlhf_gym.train.loop", ast.parse(code), modules)
    assert {"rlhf_gym.train.resolve", "rlhf_gym.data.segments", "rlhf_gym.config"} <= found
    assert {"rlhf_gym.train.sibling", "rlhf_gym.reward.model"} <= found  # relative imports
    assert "rlhf_gym.train.rlhf" in found  # rlhf_gym.RLHF loads rlhf_gym.train.rlhf
    assert "rlhf_gym.cli.main" not in found  # a script's main block never runs on import


def test_layers_are_known() -> None:
    assert layer("rlhf_gym.algos.warp") > layer("rlhf_gym.train.loop") > layer("rlhf_gym.algos.cpl")
    assert layer("rlhf_gym.tasks.envs.catch") == layer("rlhf_gym.tasks") < layer("rlhf_gym.data.segments")


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles in rlhf_gym:\n" + "\n".join(" <-> ".join(c) for c in found)


# The package's one side effect: ``import rlhf_gym`` registers the project's environments.
REGISTRATION = {("rlhf_gym", "rlhf_gym.tasks"), ("rlhf_gym", "rlhf_gym.tasks.envs")}


def test_lower_stages_never_import_higher_ones() -> None:
    upward = [
        f"{a} ({LAYERS[layer(a)][0]}) imports {b} ({LAYERS[layer(b)][0]})"
        for a, targets in import_graph().items()
        for b in sorted(targets)
        if layer(b) > layer(a) and (a, b) not in REGISTRATION
    ]
    assert not upward, "imports that point up the stages:\n" + "\n".join(upward)


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
    from rlhf_gym import RLHF, WARP, FeedbackStore, FixedHorizon, LearnedReward, LearnedRewardVec, get_task

    assert RLHF.__module__ == "rlhf_gym.train.rlhf" and WARP.__module__ == "rlhf_gym.algos.warp"
    assert {FeedbackStore.__name__, FixedHorizon.__name__, LearnedReward.__name__} == {
        "FeedbackStore",
        "FixedHorizon",
        "LearnedReward",
    }
    assert LearnedRewardVec.__module__ == "rlhf_gym.wrappers" and callable(get_task)
    for name, module in rlhf_gym._EXPORTS.items():
        assert getattr(rlhf_gym, name).__module__ == module, name
