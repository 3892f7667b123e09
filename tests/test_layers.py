"""The package's layers (README, "Architecture"): imports point only down, never in a cycle,
and never from inside a function (a function-level import is how a cycle hides).

Read from the source with `ast`, so a cycle or an upward import fails here even if no test
happens to import the modules in the order that would break."""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "stack" / "reward_obs"
# The development tooling, a distribution of its own that a deploy does not install: it
# sits above every layer of the product, which never imports it.
DEV_PACKAGE = ROOT / "devtools" / "reward_obs_dev"
PACKAGES = (PACKAGE, DEV_PACKAGE)
# Bottom to top. A module may import its own layer and the layers below it.
LAYERS = ("model", "lang", "catalog", "builders", "checks", "sinks", "tools", "cli", "dev")
# Third-party packages that are heavy and needed by one command only may be imported late.
LATE_IMPORTS_ALLOWED = {"matplotlib", "matplotlib.pyplot", "numpy"}


def module_name(path: Path) -> str:
    package = next(p for p in PACKAGES if path.is_relative_to(p))
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted(package.rglob("*.py")) if p.name != "__main__.py"}


def ours(module: str) -> bool:
    return module.split(".")[0] in ("reward_obs", "reward_obs_dev")


def layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "reward_obs_dev":
        return "dev"
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def shown(path: Path) -> Path:
    return path.relative_to(ROOT)


def resolve(node: ast.ImportFrom, importer: str, is_package: bool) -> list[str]:
    """The reward_obs modules an import statement loads (a `from pkg import mod` loads pkg.mod)."""
    if node.level:
        base = importer.split(".")
        if not is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, *([node.module] if node.module else [])])
    else:
        target = node.module or ""
    if not ours(target):
        return []
    known = modules()
    found = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in known]
    return found or [target]


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported reward_obs module, line, inside a function) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    out = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                for target in resolve(child, name, path.name == "__init__.py"):
                    out.append((target, child.lineno, in_function))
                if in_function and child.level == 0 and child.module and not ours(child.module) \
                        and child.module not in LATE_IMPORTS_ALLOWED:
                    out.append((f"third-party:{child.module}", child.lineno, True))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if ours(alias.name):
                        out.append((alias.name, child.lineno, in_function))
                    elif in_function and alias.name not in LATE_IMPORTS_ALLOWED:
                        out.append((f"third-party:{alias.name}", child.lineno, True))
            visit(child, nested)

    visit(tree, False)
    return out


def graph() -> dict[str, set[str]]:
    return {name: {t for t, _, _ in imports(path) if not t.startswith("third-party:") and t != name}
            for name, path in modules().items()}


def test_every_module_is_in_a_layer():
    loose = [m for m in modules() if m not in ("reward_obs", "reward_obs_dev") and layer(m) is None]
    assert not loose, f"modules outside the layers {LAYERS}: {loose}"


def test_imports_point_only_down():
    upward = []
    for name, path in modules().items():
        own = layer(name)
        if own is None:
            continue
        for target, line, _ in imports(path):
            other = layer(target)
            if other is not None and LAYERS.index(other) > LAYERS.index(own):
                upward.append(f"{shown(path)}:{line}: {own} imports {target} ({other})")
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_no_function_level_imports():
    late = [f"{shown(path)}:{line}: imports {target} inside a function"
            for name, path in modules().items() for target, line, in_function in imports(path) if in_function]
    assert not late, "\n".join(late)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            # importing a package runs its __init__ too, but an empty __init__ imports nothing
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("edges, has_cycle", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
    ({"a": {"a2"}, "a2": {"a"}}, True),
])
def test_cycle_finder_itself(edges, has_cycle):
    assert (find_cycle(edges) is not None) is has_cycle
