"""The preview workflow's SLO report job: the Prometheus URL is an environment secret that
reaches two steps of one job, never for a fork's pull request, never a step that installs
packages, and the report reaches the diff comment through a job output read from the
environment (never spliced into a script)."""
from __future__ import annotations

import json
import shutil

import yaml
from test_workflow import SAME_REPOSITORY, WORKFLOW, lint, plant, steps


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_the_prometheus_url_reaches_two_steps_of_one_guarded_job():
    job = workflow()["jobs"]["slo-report"]
    assert job["if"] == SAME_REPOSITORY
    assert job["environment"] == "slo-report"  # environment secret: no other job can read it
    assert job["permissions"] == {"contents": "read"}  # it posts nothing itself
    assert "secrets." not in json.dumps(job.get("env", {}))
    readers = [s.get("name") for s in job["steps"] if "secrets." in json.dumps(s)]
    assert readers == ["Prometheus available?", "Report"]
    [render] = [s for s in job["steps"] if s.get("name") == "Render head and base"]
    assert "make render" in render["run"] and "secrets." not in json.dumps(render)
    report = next(s for s in job["steps"] if s.get("name") == "Report")
    assert "reward-obs diff --changed-slos" in report["run"] and "reward-obs slo report" in report["run"]
    assert "2>&1" not in report["run"]  # an error message (the URL) stays in the log
    assert job["outputs"]["report"] == "${{ steps.report.outputs.report }}"


def test_the_diff_comment_reads_the_report_from_the_environment():
    job = workflow()["jobs"]["semantic-diff"]
    assert job["needs"] == "slo-report" and job["if"] == "${{ !cancelled() }}"  # also when the report is skipped
    [diff] = [s for s in steps(workflow(), "semantic-diff") if s.get("name") == "Diff"]
    assert diff["env"]["SLO_REPORT"] == "${{ needs.slo-report.outputs.report }}"
    assert "${{" not in diff["run"] and '"$SLO_REPORT"' in diff["run"]


def test_splicing_the_report_into_the_script_fails_the_linters(tmp_path):
    github = tmp_path / ".github"
    shutil.copytree(WORKFLOW.parents[1], github)
    plant(github, '''printf '\\n%s\\n' "$SLO_REPORT"''', '''printf '\\n%s\\n' "${{ needs.slo-report.outputs.report }}"''')
    found = lint(github)
    assert [f for f in found if f.startswith("zizmor template-injection ")], found
