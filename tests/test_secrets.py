"""No secret in the repository, a rendered file or the example stack config."""
from __future__ import annotations

import os
import subprocess
import sys

import yaml

from reward_obs.catalog.config import SECRET_KEYS, secret_env_var
from reward_obs.lang.secret_scan import secret_findings

from conftest import ROOT, STACK_FILE


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line]


def test_no_tracked_file_holds_a_secret_looking_value():
    findings = []
    for rel in tracked_files():
        path = ROOT / rel
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        findings += [f"{rel}: {f}" for f in secret_findings(text)]
    assert findings == []


def test_scanner_finds_what_it_looks_for():
    token = "70123" + "45678:" + "AAH" + "z" * 32
    assert secret_findings(f"bot {token}") == ["line 1: looks like a telegram bot token"]
    assert secret_findings("url: https://user:" + "pw" * 6 + "@hooks.invalid/x") == ["line 1: looks like a credentials in a URL"]
    assert secret_findings("all fine here") == []
    digest = "d5ef4892" * 8
    assert secret_findings(f'"sha256": "{digest}"') == []  # a public file's digest, named so
    assert secret_findings(f'key: "{digest}"') == ["line 1: looks like a long hex string"]
    assert secret_findings(f'"source": "https://github.com/grafana/grafana/blob/{digest[:40]}/x.json"') == []


def test_example_stack_file_holds_no_secret_keys():
    config = yaml.safe_load(STACK_FILE.read_text())["config"]
    for key in SECRET_KEYS:
        assert f"reward-observability:{key}" not in config
    assert "grafana:auth" not in config


def test_render_never_reads_secrets_from_the_environment(tmp_path):
    """Even with the secrets in the environment, rendered files hold only references."""
    values = {secret_env_var(k): f"do-not-render-{k}-" + "x" * 20 for k in SECRET_KEYS}
    env = {**os.environ, **values}
    result = subprocess.run([sys.executable, "-m", "reward_obs.cli", "render", "--out", str(tmp_path)],
                            capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    rendered = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    for name, value in values.items():
        assert value not in rendered and value not in result.stdout
        assert f"$__env{{{name}}}" in rendered
    assert secret_findings(rendered) == []
