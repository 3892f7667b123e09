"""Every third-party package the code imports is declared where it is installed from:
stack/ in pyproject's dependencies, devtools/ in its own pyproject's, tests/ in those or
the `test` extra, policy/ in the policy pack's requirements.txt. An undeclared import works on the machine that happens
to have it and breaks a clean `make test`."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions

import pytest

from conftest import ROOT


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


_PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
_RUNTIME = {_name(r) for r in _PROJECT["dependencies"]}
_DEV = _RUNTIME | {_name(r) for r in tomllib.loads((ROOT / "devtools" / "pyproject.toml").read_text())["project"]["dependencies"]}
_TEST = _DEV | {_name(r) for r in _PROJECT["optional-dependencies"]["test"]}
_POLICY = {_name(r) for r in (ROOT / "policy" / "requirements.txt").read_text().splitlines() if r.strip() and not r.startswith("#")}


# The project's own modules: the package, the policy pack, test helpers.
_FOLDERS = ("stack", "devtools", "tests", "policy")
_LOCAL = {p.stem for folder in _FOLDERS for p in (ROOT / folder).rglob("*.py")} | {
    p.name for folder in _FOLDERS for p in (ROOT / folder).rglob("*") if p.is_dir()}


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
    ("devtools", _DEV, "devtools/pyproject.toml [project] dependencies"),
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


def test_the_deploy_install_needs_no_dev_tooling(tmp_path):
    """What `pulumi up` installs (the root package alone) renders without numpy,
    matplotlib or the dev package: each is made unimportable in a fresh interpreter, and
    no plugin is registered (as without the dev distribution)."""
    assert not {"numpy", "matplotlib", "reward-observability-dev"} & _RUNTIME
    blocker = ("import sys\n"
               "for name in ('numpy', 'matplotlib', 'reward_obs_dev'):\n"
               "    sys.modules[name] = None\n"
               "import importlib.metadata\n"
               "importlib.metadata.entry_points = lambda **kw: []\n"
               "from reward_obs.cli import main\n"
               f"sys.exit(main(['render', '--out', {str(tmp_path / 'out')!r}]))\n")
    result = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "prometheus" / "reward-alerts.rules.yaml").is_file()
