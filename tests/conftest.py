from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.catalog.definitions import load_definitions

ROOT = Path(__file__).resolve().parents[1]
# Everything a render reads: a copy of these is a complete, independent repository.
DEFINITION_PATHS = ("access", "contract", "schemas", "dashboards", "recording_rules", "slos", "alert_rules", "notifications", "runbooks", "Pulumi.selfhost.yaml")
STACK_FILE = ROOT / "Pulumi.selfhost.yaml"


@pytest.fixture(scope="session")
def definitions():
    return load_definitions(ROOT)


@pytest.fixture(scope="session")
def config(definitions):
    return load_config(read_stack_file(STACK_FILE), str(STACK_FILE), definitions)


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    """A private copy of the definitions, for tests that break them."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in DEFINITION_PATHS:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, root / name)
        else:
            shutil.copy(src, root / name)
    return root


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reward_obs.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture(scope="session")
def out(tmp_path_factory) -> Path:
    """One render of the shipped definitions with the example stack, shared read-only."""
    out = tmp_path_factory.mktemp("render")
    result = run_cli("render", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def unbind_runbook_numbers(root: Path, alert: str) -> None:
    """Drop the numbers the runbooks of a repository copy quote from `alert` (bound to its
    definition): a fixture that changes the alert would otherwise be refused by the runbook
    drift check before the behaviour under test is reached."""
    from reward_obs.catalog.runbook_numbers import BOUND

    for runbook in (root / "runbooks").glob("*.md"):
        text = runbook.read_text()
        runbook.write_text(BOUND.sub(lambda m: "" if m["alert"] == alert else m.group(0), text))


# Tests whose cost dominates a run, started first so that no worker is left with a long
# test at the end. Names are node-id prefixes; the healthy week is the longest by far.
STARTS_FIRST = ("tests/test_scenarios.py::test_scenario_passes_in_promtool[healthy-week",
                "tests/test_live_stack.py", "tests/test_backtest.py")


# A test that starts the CLI, a subprocess or Pulumi's mock engine takes a second or more:
# it is `slow`, outside `make test-fast` (the marks written in the modules add the rest).
_STARTS_A_PROCESS = re.compile(r"\b(?:run_cli|render_repo|run_program)\(|\bsubprocess\.")


def pytest_collection_modifyitems(items):
    for item in items:
        function = getattr(item, "function", None)
        if function is not None and _STARTS_A_PROCESS.search(inspect.getsource(function)):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: next((i for i, p in enumerate(STARTS_FIRST) if item.nodeid.startswith(p)), len(STARTS_FIRST)))
