"""The example stacks, the explicit notification-policy and recording-rules choices, and
that changing one alert touches only its rule group."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reward_obs.catalog.config import read_stack_file

from conftest import ROOT, run_cli, unbind_runbook_numbers
from helpers import SECRETS
from pulumi_harness import run_program
from spec import LOG_ALERTS, REQUIRED_ALERTS

# End to end through the CLI or Pulumi's mocks: seconds per test, outside the quick loop.
pytestmark = pytest.mark.slow

STACKS = sorted(p.name for p in ROOT.glob("Pulumi.*.yaml"))


def render(tmp_path: Path, stack: str, name: str = "out") -> Path:
    out = tmp_path / name
    result = run_cli("--stack-config", str(ROOT / stack), "render", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_both_example_stacks_exist():
    assert {"Pulumi.selfhost.yaml", "Pulumi.prod.yaml"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_example_stack_validates_and_lints_clean(stack):
    result = run_cli("--stack-config", str(ROOT / stack), "validate")
    assert result.returncode == 0, result.stderr


def test_notification_policy_choice_is_required(repo_copy, tmp_path):
    stack = repo_copy / "Pulumi.selfhost.yaml"
    data = yaml.safe_load(stack.read_text())
    del data["config"]["reward-observability:notificationPolicy"]
    stack.write_text(yaml.safe_dump(data))
    result = run_cli("--root", str(repo_copy), "--stack-config", str(stack), "validate")
    assert result.returncode == 1
    assert "reward-observability:notificationPolicy: is required" in result.stderr


@pytest.mark.parametrize("stack, mode", [("Pulumi.selfhost.yaml", "prometheus"), ("Pulumi.prod.yaml", "grafana")])
def test_example_stacks_choose_where_recording_rules_are_evaluated(stack, mode, tmp_path):
    """selfhost: its own Prometheus loads the rule file; prod: Grafana records into the
    shared Prometheus. Each render carries exactly the one recording file of its mode."""
    assert read_stack_file(ROOT / stack)["recordingRules"] == mode
    out = render(tmp_path, stack)
    assert (out / "prometheus/reward-recording.rules.yaml").exists() is (mode == "prometheus")
    assert (out / "grafana/provisioning/alerting/recording-rules.yaml").exists() is (mode == "grafana")
    result = run_program(read_stack_file(ROOT / stack), SECRETS, stack=stack.split(".")[1])
    assert result["error"] is None, result["error"]
    recording = [r for r in result["resources"] if r["type"].endswith(":RuleGroup")
                 and any(rule.get("record") for rule in r["inputs"]["rules"])]
    assert bool(recording) is (mode == "grafana")


def test_recording_rules_choice_is_required(repo_copy, tmp_path):
    stack = repo_copy / "Pulumi.selfhost.yaml"
    data = yaml.safe_load(stack.read_text())
    del data["config"]["reward-observability:recordingRules"]
    stack.write_text(yaml.safe_dump(data))
    result = run_cli("--root", str(repo_copy), "--stack-config", str(stack), "render", "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"{stack}:reward-observability:recordingRules: is required: choose one of prometheus, grafana" in result.stderr
    assert not (tmp_path / "out").exists()


def test_rule_level_routing_leaves_the_policy_tree_alone(tmp_path):
    out = render(tmp_path, "Pulumi.prod.yaml")
    assert not (out / "grafana/provisioning/alerting/policies.yaml").exists()
    rules = yaml.safe_load((out / "grafana/provisioning/alerting/rules.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            settings = rule["notification_settings"]
            severity = {**REQUIRED_ALERTS, **LOG_ALERTS}[rule["title"]]
            expected = {"critical": "rewards-oncall-webhook", "none": "rewards-heartbeat"}.get(severity, "rewards-telegram")
            assert settings["receiver"] == expected, rule["title"]
            assert settings["group_by"][:2] == ["alertname", "grafana_folder"]
            if severity != "none":  # the heartbeat is one alert, grouped by name
                assert {"campaign_id", "provider"} <= set(settings["group_by"])


def test_owned_tree_renders_policies_and_no_rule_level_settings(tmp_path):
    out = render(tmp_path, "Pulumi.selfhost.yaml")
    assert (out / "grafana/provisioning/alerting/policies.yaml").exists()
    rules = yaml.safe_load((out / "grafana/provisioning/alerting/rules.yaml").read_text())
    assert all("notification_settings" not in r for g in rules["groups"] for r in g["rules"])


def test_rule_level_stack_registers_no_notification_policy():
    result = run_program(read_stack_file(ROOT / "Pulumi.prod.yaml"), SECRETS, stack="prod")
    assert result["error"] is None, result["error"]
    assert not [r for r in result["resources"] if r["type"].endswith(":NotificationPolicy")]
    rules = [rule for r in result["resources"] if r["type"].endswith(":RuleGroup") for rule in r["inputs"]["rules"]
             if not rule.get("record")]  # recording rules never notify
    assert len(rules) == len(REQUIRED_ALERTS) + len(LOG_ALERTS)
    assert all(rule["notificationSettings"]["contactPoint"] in ("rewards-oncall-webhook", "rewards-telegram")
               or (rule["name"], rule["notificationSettings"]["contactPoint"]) == ("RewardHeartbeat", "rewards-heartbeat") for rule in rules)


def test_prod_override_reaches_the_rule(tmp_path):
    out = render(tmp_path, "Pulumi.prod.yaml")
    prom = yaml.safe_load((out / "prometheus/reward-alerts.rules.yaml").read_text())
    [low] = [r for g in prom["groups"] for r in g["rules"] if r["alert"] == "RewardPoolLow"]
    assert low["expr"].endswith("< 0.15")


def test_changing_one_alert_touches_only_its_rule_group(repo_copy, tmp_path):
    unbind_runbook_numbers(repo_copy, "RewardDuplicatePayoutAttempt")  # the runbook quotes the old window
    args = ["--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"), "render", "--out"]
    assert run_cli(*args, str(tmp_path / "before")).returncode == 0
    path = repo_copy / "alert_rules/RewardDuplicatePayoutAttempt.yaml"
    data = yaml.safe_load(path.read_text())
    data["params"]["window"] = "10m"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert run_cli(*args, str(tmp_path / "after")).returncode == 0

    def files(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}

    before, after = files(tmp_path / "before"), files(tmp_path / "after")
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"grafana/provisioning/alerting/rules.yaml", "prometheus/reward-alerts.rules.yaml"}

    def groups(text: str) -> dict:
        return {g["name"]: g for g in yaml.safe_load(text)["groups"]}

    for name in ("grafana/provisioning/alerting/rules.yaml", "prometheus/reward-alerts.rules.yaml"):
        old, new = groups(before[name]), groups(after[name])
        assert {g for g in old if old[g] != new[g]} == {"reward-payouts"}, name
