"""The pull-request workflow is a valid GitHub Actions workflow and does what the
preview path promises."""
from __future__ import annotations

import subprocess
import sys

import yaml
from conftest import ROOT

WORKFLOW = ROOT / ".github/workflows/preview.yml"


def test_workflow_passes_the_github_workflow_schema():
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def steps(workflow: dict, job: str) -> list[dict]:
    return workflow["jobs"][job]["steps"]


def test_workflow_runs_tests_diff_and_guarded_pulumi_preview():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True
    runs = "\n".join(s.get("run", "") for job in workflow["jobs"] for s in steps(workflow, job))
    assert "make test" in runs
    assert "reward-obs diff" in runs and "make render" in runs and "base.sha" not in runs  # base sha passed via env
    [pulumi] = [s for s in steps(workflow, "pulumi-preview") if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["diff"] is True
    assert pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["if"] == "steps.credentials.outputs.available == 'true'"


def test_workflow_holds_no_secret_values():
    text = WORKFLOW.read_text()
    for line in text.splitlines():
        if "secrets." in line:
            assert "${{ secrets." in line, line


def test_make_render_honours_out(tmp_path):
    result = subprocess.run(["make", "render", f"OUT={tmp_path / 'r'}"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r/prometheus/reward-alerts.rules.yaml").is_file()
