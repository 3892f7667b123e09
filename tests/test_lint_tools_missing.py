"""A check that cannot run says so: without amtool, `validate` and `lint` warn that the
Telegram message check was skipped and how to install the tool, instead of "lint clean"."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

# End to end through the CLI or Pulumi's mocks: seconds per test, outside the quick loop.
pytestmark = pytest.mark.slow


def _cli(command: str, path: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reward_obs.cli", command], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env={**os.environ, "PATH": path})


@pytest.mark.parametrize("command", ["validate", "lint"])
def test_missing_amtool_is_a_warning_naming_the_check_and_the_install(command, tmp_path):
    result = _cli(command, str(tmp_path))  # an empty directory: no amtool on PATH
    assert result.returncode == 0, result.stderr
    warning = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("WARNING:")]
    assert len(warning) == 1, result.stdout + result.stderr
    assert "telegram-message skipped" in warning[0] and "amtool is not on PATH" in warning[0]
    assert "make tools" in warning[0] and "prometheus-alertmanager" in warning[0]
    assert "lint clean (" not in result.stdout
    assert "1 skipped check" in result.stdout or "1 check(s) skipped" in result.stdout


@pytest.mark.skipif(shutil.which("amtool") is None, reason="needs amtool (make tools)")
@pytest.mark.parametrize("command", ["validate", "lint"])
def test_with_amtool_nothing_is_skipped(command):
    result = _cli(command, os.environ["PATH"])
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stdout + result.stderr and "skipped" not in result.stdout
