"""`reward-obs render`/`validate`: the tree, byte-identical output, and refusal of any
wrong definition with a message naming file and field, writing nothing."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from reward_obs.builders.recording import prometheus_groups
from reward_obs.catalog.load import load_stack
from reward_obs.sinks.files import render_files

from conftest import ROOT, run_cli
from spec import REQUIRED_ALERTS

EXPECTED_FILES = {
    "grafana/access/access-plan.json",
    "grafana/dashboards/rewards/reward-operations.json",
    "grafana/dashboards/rewards/reward-runbooks.json",
    "grafana/dashboards/rewards-support/reward-runbooks-support.json",
    "grafana/dashboards/rewards-support/reward-trace.json",
    "grafana/dashboards/rewards-trust-safety/reward-runbooks-trust-safety.json",
    "grafana/dashboards/rewards-trust-safety/reward-trust-safety.json",
    "grafana/provisioning/alerting/contact-points.yaml",
    "grafana/provisioning/alerting/policies.yaml",
    "grafana/provisioning/alerting/rules.yaml",
    "grafana/provisioning/alerting/templates.yaml",
    "grafana/provisioning/dashboards/rewards.yaml",
    "prometheus/reward-alerts.rules.yaml",
    "prometheus/reward-recording.rules.yaml",
}


def tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_render_writes_the_documented_tree(tmp_path):
    result = run_cli("render", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert set(tree(tmp_path)) == EXPECTED_FILES


def test_render_is_byte_identical_from_run_to_run(tmp_path):
    assert run_cli("render", "--out", str(tmp_path / "a")).returncode == 0
    assert run_cli("render", "--out", str(tmp_path / "b")).returncode == 0
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_render_replaces_stale_files_in_the_trees_it_owns(tmp_path):
    stale = tmp_path / "grafana/dashboards/old.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    assert run_cli("render", "--out", str(tmp_path)).returncode == 0
    assert not stale.exists() and keep.read_text() == "mine"


def test_summary_lists_every_alert_with_severity_and_runbook_link(tmp_path):
    stdout = run_cli("render", "--out", str(tmp_path)).stdout
    for name, severity in REQUIRED_ALERTS.items():
        assert re.search(rf"^\s+{name}\s+{severity}\s+https?://\S+/runbooks/[a-z0-9-]+\.md#[a-z0-9-]+$", stdout, re.M), name


def test_validate_writes_nothing(tmp_path):
    result = run_cli("validate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []


def _edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _second_dashboard(root: Path) -> None:
    src = root / "dashboards/reward-operations.yaml"
    (root / "dashboards/copy.yaml").write_text(src.read_text().replace("title: Reward operations", "title: Copy"))


BROKEN = {
    "bad YAML": (lambda r: (r / "alert_rules/RewardPoolLow.yaml").write_text("name: [unclosed\n"),
                 "alert_rules/RewardPoolLow.yaml:line 2: not valid YAML"),
    "schema violation": (lambda r: _edit_yaml(r / "alert_rules/RewardPoolLow.yaml", lambda d: d.update(severity="page")),
                         "alert_rules/RewardPoolLow.yaml:severity: 'page' is not one of ['critical', 'warning', 'none']"),
    "missing field": (lambda r: _edit_yaml(r / "alert_rules/RewardPoolLow.yaml", lambda d: d.pop("runbook")),
                      "alert_rules/RewardPoolLow.yaml:(top level): 'runbook' is a required property"),
    "unknown metric": (lambda r: _edit_yaml(r / "alert_rules/RewardPoolLow.yaml",
                                            lambda d: d.update(expr="min(reward_pool_left / reward_pool_budget)")),
                       "alert_rules/RewardPoolLow.yaml:expr: metric 'reward_pool_left' is not in the metrics contract"),
    "bad PromQL": (lambda r: _edit_yaml(r / "alert_rules/RewardPoolLow.yaml", lambda d: d.update(expr="min(reward_pool_remaining")),
                   "alert_rules/RewardPoolLow.yaml:expr: not valid PromQL"),
    "unknown label in a panel": (lambda r: (r / "dashboards/reward-operations.yaml").write_text(
        (r / "dashboards/reward-operations.yaml").read_text().replace('status="active"', 'state="active"')),
        "dashboards/reward-operations.yaml:rows[1].panels[0].queries[0].expr: reward_campaigns has no label 'state'"),
    "missing runbook": (lambda r: (r / "runbooks/claim-anomalies.md").unlink(),
                        "alert_rules/RewardClaimVolumeAbnormal.yaml:runbook: runbooks/claim-anomalies.md does not exist"),
    "duplicate dashboard uid": (_second_dashboard, "duplicate dashboard uid 'reward-operations'"),
    "duplicate panel id": (lambda r: (r / "dashboards/reward-operations.yaml").write_text(
        (r / "dashboards/reward-operations.yaml").read_text().replace("id: 2\n", "id: 1\n")),
        "dashboards/reward-operations.yaml:rows[1].panels[1].id: duplicate panel id 1"),
    "unknown panel": (lambda r: _edit_yaml(r / "alert_rules/RewardPoolLow.yaml", lambda d: d.update(panel="reward-operations/nope")),
                      "alert_rules/RewardPoolLow.yaml:panel: dashboard 'reward-operations' has no panel with key 'nope'"),
    "undefined parameter": (lambda r: _edit_yaml(r / "alert_rules/RewardPoolExhausted.yaml",
                                                 lambda d: d.update(expr=d["expr"].replace("$window", "$windw"))),
                            "alert_rules/RewardPoolExhausted.yaml:params: $windw is used but not defined under params"),
    "unknown contact point": (lambda r: _edit_yaml(r / "notifications/routing.yaml",
                                                   lambda d: d["policy"]["routes"][0].update(contact_point="pager")),
                              "notifications/routing.yaml:policy.routes[0].contact_point: 'pager' is not a defined contact point"),
    "contract counter without _total": (lambda r: (r / "contract/metrics.yaml").write_text(
        (r / "contract/metrics.yaml").read_text().replace("reward_payouts_total:", "reward_payouts:")),
        "contract/metrics.yaml:metrics.reward_payouts.type: a counter's name must end in _total"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_wrong_definition_fails_naming_file_and_field_and_writes_nothing(repo_copy, tmp_path, case):
    breaks, message = BROKEN[case]
    breaks(repo_copy)
    out = tmp_path / "out"
    result = run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"), "render", "--out", str(out))
    assert result.returncode == 1
    assert message in result.stderr
    assert "nothing was written" in result.stderr
    assert not out.exists()


def test_wrong_definition_leaves_an_earlier_render_untouched(repo_copy, tmp_path):
    out = tmp_path / "out"
    args = ["--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"), "render", "--out", str(out)]
    assert run_cli(*args).returncode == 0
    before = tree(out)
    _edit_yaml(repo_copy / "alert_rules/RewardPoolLow.yaml", lambda d: d.update(severity="page"))
    assert run_cli(*args).returncode == 1
    assert tree(out) == before


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.pop("reward-observability:grafanaUrl"), "reward-observability:grafanaUrl: is required"),
        (lambda c: c.update({"reward-observability:rewardsLive": "yes"}), "reward-observability:rewardsLive: 'yes' is not of type 'boolean'"),
        (lambda c: c.update({"reward-observability:telegramBotToken": "123:abc"}), "reward-observability:telegramBotToken: is a secret"),
        (lambda c: c.pop("reward-observability:telegramChatId"), "reward-observability:telegramChatId: is required: contact point rewards-telegram"),
        (lambda c: c.pop("reward-observability:recordingRules"), "reward-observability:recordingRules: is required: choose one of prometheus, grafana"),
        (lambda c: c.update({"reward-observability:recordingRules": "both"}),
         "reward-observability:recordingRules: 'both' is not one of ['prometheus', 'grafana']"),
    ],
)
def test_bad_stack_config_fails_naming_the_key(repo_copy, tmp_path, edit, message):
    stack = repo_copy / "Pulumi.selfhost.yaml"
    _edit_yaml(stack, lambda d: edit(d["config"]))
    result = run_cli("--root", str(repo_copy), "--stack-config", str(stack), "render", "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"{stack}:{message}" in result.stderr
    assert not (tmp_path / "out").exists()


def test_recording_rule_file_passes_promtool(out):
    import subprocess

    result = subprocess.run(["promtool", "check", "rules", str(out / "prometheus/reward-recording.rules.yaml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    records = [r["record"] for g in yaml.safe_load((out / "prometheus/reward-recording.rules.yaml").read_text())["groups"] for r in g["rules"]]
    assert records and all(":" in r for r in records)  # level:metric:operation naming


# ------------------------------------------------------------------ recordingRules

GRAFANA_RECORDING = "grafana/provisioning/alerting/recording-rules.yaml"
PROMETHEUS_RECORDING = "prometheus/reward-recording.rules.yaml"


def _stack_with(tmp_path: Path, mode: str) -> Path:
    from conftest import STACK_FILE

    path = tmp_path / f"Pulumi.{mode}.yaml"
    data = yaml.safe_load(STACK_FILE.read_text())
    data["config"]["reward-observability:recordingRules"] = mode
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("mode, written, not_written", [
    ("prometheus", PROMETHEUS_RECORDING, GRAFANA_RECORDING),
    ("grafana", GRAFANA_RECORDING, PROMETHEUS_RECORDING),
])
def test_render_writes_the_recording_rules_for_exactly_one_evaluator(tmp_path, mode, written, not_written):
    """Both files loaded would put two writers on every recorded series."""
    out = tmp_path / "out"
    result = run_cli("--stack-config", str(_stack_with(tmp_path, mode)), "render", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert set(tree(out)) == EXPECTED_FILES - {PROMETHEUS_RECORDING} | {written}
    assert f"evaluated by {mode.capitalize()}" in result.stdout


def test_switching_mode_removes_the_other_recording_file(tmp_path):
    out = tmp_path / "out"
    assert run_cli("--stack-config", str(_stack_with(tmp_path, "prometheus")), "render", "--out", str(out)).returncode == 0
    assert run_cli("--stack-config", str(_stack_with(tmp_path, "grafana")), "render", "--out", str(out)).returncode == 0
    assert (out / GRAFANA_RECORDING).exists() and not (out / PROMETHEUS_RECORDING).exists()


def test_grafana_recording_file_is_the_file_provisioning_form_of_the_prometheus_rules(tmp_path, definitions):
    out = tmp_path / "out"
    assert run_cli("--stack-config", str(_stack_with(tmp_path, "grafana")), "render", "--out", str(out)).returncode == 0
    provisioning = yaml.safe_load((out / GRAFANA_RECORDING).read_text())
    assert provisioning["apiVersion"] == 1
    rules = [r for g in provisioning["groups"] for r in g["rules"]]
    assert all(g["folder"] == "Rewards" and g["orgId"] == 1 for g in provisioning["groups"])
    # Grafana's file provisioning reads `record` and, before 12.3, refuses a rule without
    # `condition` (tests/test_grafana_compat.py); the example stack names 11.6, whose file
    # mapper has no targetDatasourceUid. Nothing an alert-only field would add.
    for rule in rules:
        assert set(rule) == {"uid", "title", "condition", "record", "data", "isPaused"}, rule["title"]
        assert rule["record"]["metric"] == rule["title"] and rule["record"]["from"] == rule["data"][0]["refId"] == rule["condition"]
        assert "targetDatasourceUid" not in rule["record"]
    recorded = {r["record"]["metric"]: r["data"][0]["model"]["expr"] for r in rules}
    assert recorded == {r["record"]: r["expr"] for g in prometheus_groups(definitions) for r in g["rules"]}
    alert_groups = {g["name"] for g in yaml.safe_load((out / "grafana/provisioning/alerting/rules.yaml").read_text())["groups"]}
    assert alert_groups.isdisjoint(g["name"] for g in provisioning["groups"])


@pytest.mark.parametrize("stack", ["Pulumi.selfhost.yaml", "Pulumi.prod.yaml"])
def test_builders_take_data_only(stack):
    """Everything a builder needs is in Definitions (recording rules and runbooks
    included): with the definitions' directory gone, every rendered file is the same."""
    definitions, config = load_stack(ROOT, ROOT / stack)
    assert render_files(dataclasses.replace(definitions, root=ROOT / "nonexistent"), config) == render_files(definitions, config)
