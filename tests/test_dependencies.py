"""Every third-party package the code imports is declared where it is installed from:
stack/ in pyproject's dependencies, tests/ in those or the `test` extra, policy/ in the
policy pack's requirements.txt. An undeclared import works on the machine that happens
to have it and breaks a clean `make test`."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

import pytest
from conftest import ROOT


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


_PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
_RUNTIME = {_name(r) for r in _PROJECT["dependencies"]}
_TEST = _RUNTIME | {_name(r) for r in _PROJECT["optional-dependencies"]["test"]}
_POLICY = {_name(r) for r in (ROOT / "policy" / "requirements.txt").read_text().splitlines() if r.strip() and not r.startswith("#")}


# The project's own modules: the package, the policy pack, test helpers.
_LOCAL = {p.stem for folder in ("stack", "tests", "policy") for p in (ROOT / folder).rglob("*.py")} | {
    p.name for folder in ("stack", "tests", "policy") for p in (ROOT / folder).rglob("*") if p.is_dir()}


def _imports(folder: str) -> dict[str, str]:
    """Top-level module -> a file importing it, for absolute imports under ROOT/folder."""
    local = _LOCAL
    found = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local and top != "__future__":
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("folder, declared, where", [
    ("stack", _RUNTIME, "pyproject.toml [project] dependencies"),
    ("tests", _TEST, "pyproject.toml [project] dependencies or the test extra"),
    ("policy", _POLICY, "policy/requirements.txt"),
])
def test_every_imported_package_is_declared(folder, declared, where):
    distributions = packages_distributions()
    undeclared = []
    for module, path in sorted(_imports(folder).items()):
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not names & declared:
            undeclared.append(f"{path}: imports {module} ({', '.join(sorted(names))}), not in {where}")
    assert not undeclared, "\n".join(undeclared)
