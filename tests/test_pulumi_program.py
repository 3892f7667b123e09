"""The Pulumi program, run under Pulumi's own mocks: what it registers, that it matches
the offline render exactly, and that bad config registers nothing."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import STACK_FILE, run_cli
from helpers import SECRET_SIG, SECRETS, distinct_assignment, plain_text, signal_panels, stack_values
from pulumi_harness import run_program
from spec import LOG_ALERTS, OPERATIONS_DASHBOARD_UID, REQUIRED_ALERTS, TRUST_SAFETY_DASHBOARD_UID

# End to end through the CLI or Pulumi's mocks: seconds per test, outside the quick loop.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def program():
    result = run_program(stack_values(), SECRETS)
    assert result["error"] is None, result["error"]
    return result


def resources(program, type_suffix: str) -> list[dict]:
    return [r for r in program["resources"] if r["type"].endswith(type_suffix)]


def test_everything_is_owned_by_one_component(program):
    types = [r["type"] for r in program["resources"]]
    assert types.count("reward-observability:index:RewardObservability") == 1


def test_default_folder_is_rewards(program):
    folders = {f["inputs"]["uid"]: f["inputs"]["title"] for f in resources(program, ":Folder")}
    assert folders["rewards"] == "Rewards"


def test_dashboard_shows_all_signals_in_the_folder(program):
    """Each signal on its own panel, each dashboard in its audience's folder (the mock
    returns the folder's uid input as its output)."""
    dashboards = {r["name"]: r for r in resources(program, ":Dashboard")}
    folders = {OPERATIONS_DASHBOARD_UID: "rewards", TRUST_SAFETY_DASHBOARD_UID: "rewards-trust-safety"}
    boards = {}
    for uid, folder in folders.items():
        dash = dashboards[f"dashboard-{uid}"]
        assert dash["inputs"]["folder"] == folder, uid
        boards[uid] = json.loads(dash["inputs"]["configJson"])
        assert boards[uid]["uid"] == uid
    assert distinct_assignment(signal_panels(boards)) is not None


def pulumi_rules(program) -> dict[str, dict]:
    """The alert rules (recording rules, which carry `record`, are not alerts)."""
    return {rule["name"]: {**rule, "group": group["inputs"]["name"]}
            for group in resources(program, ":RuleGroup") for rule in group["inputs"]["rules"] if not rule.get("record")}


def recording_groups(program) -> list[dict]:
    """RuleGroup resources holding Grafana-managed recording rules."""
    return [g for g in resources(program, ":RuleGroup") if any(r.get("record") for r in g["inputs"]["rules"])]


def test_every_required_alert_is_registered_with_its_runbook(program):
    rules = pulumi_rules(program)
    assert set(rules) == set(REQUIRED_ALERTS) | set(LOG_ALERTS)
    for name, severity in REQUIRED_ALERTS.items():
        rule = rules[name]
        assert rule["labels"]["severity"] == severity and rule["labels"]["team"] == "rewards"
        assert "/runbooks/" in rule["annotations"]["runbook_url"] and "#" in rule["annotations"]["runbook_url"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["isPaused"] is True  # rewardsLive defaults to false


def test_rule_groups_live_in_their_folder_and_evaluate_every_minute(program):
    # access/access.yaml: the abuse groups in the Trust & Safety folder, every other in Rewards
    for group in resources(program, ":RuleGroup"):
        folder = "rewards-trust-safety" if group["inputs"]["name"] in ("reward-claims-abuse", "reward-claims-volume") else "rewards"
        assert group["inputs"]["folderUid"] == folder and group["inputs"]["intervalSeconds"] == 60


def test_pulumi_rules_are_the_rendered_rules(program, tmp_path):
    """The deployed stack and the offline render come from the same builders."""
    assert run_cli("render", "--out", str(tmp_path)).returncode == 0
    rendered = yaml.safe_load((tmp_path / "grafana/provisioning/alerting/rules.yaml").read_text())
    by_name = {r["title"]: (g["name"], r) for g in rendered["groups"] for r in g["rules"]}
    for name, rule in pulumi_rules(program).items():
        group, file_rule = by_name[name]
        assert rule["group"] == group and rule["uid"] == file_rule["uid"]
        assert rule["for"] == file_rule["for"] and rule["condition"] == file_rule["condition"]
        assert rule["noDataState"] == file_rule["noDataState"] and rule["execErrState"] == file_rule["execErrState"]
        assert rule["annotations"] == file_rule["annotations"] and rule["labels"] == file_rule["labels"]
        assert [json.loads(d["model"]) for d in rule["datas"]] == [d["model"] for d in file_rule["data"]]
        assert [d["datasourceUid"] for d in rule["datas"]] == [d["datasourceUid"] for d in file_rule["data"]]


def test_contact_points_keep_credentials_secret(program):
    points = {r["inputs"]["name"]: r["inputs"] for r in resources(program, ":ContactPoint")}
    assert set(points) == {"rewards-telegram", "rewards-oncall-webhook", "rewards-email", "rewards-heartbeat"}
    assert points["rewards-telegram"]["telegrams"][SECRET_SIG] and points["rewards-oncall-webhook"]["webhooks"][SECRET_SIG]
    assert SECRETS["telegramBotToken"] == points["rewards-telegram"]["telegrams"]["value"][0]["token"]
    assert SECRETS["oncallWebhookUrl"] == points["rewards-oncall-webhook"]["webhooks"]["value"][0]["url"]
    # The heartbeat's dead-man URL is a secret too, and it sends no resolved messages.
    assert points["rewards-heartbeat"]["webhooks"][SECRET_SIG]
    assert SECRETS["heartbeatWebhookUrl"] == points["rewards-heartbeat"]["webhooks"]["value"][0]["url"]
    assert points["rewards-heartbeat"]["webhooks"]["value"][0]["disableResolveMessage"] is True
    assert points["rewards-email"]["emails"][0]["addresses"] == stack_values()["emailAddresses"]


def test_secret_values_appear_only_inside_secret_wrappers_and_never_in_outputs(program):
    plain = plain_text([r["inputs"] for r in program["resources"]])
    outputs = json.dumps(program["outputs"])
    for value in SECRETS.values():
        assert value not in plain and value not in outputs
        assert value not in program["stderr"]


def test_policy_routes_rewards_alerts_by_severity(program):
    [policy] = resources(program, ":NotificationPolicy")
    heartbeat, team = policy["inputs"]["policies"]
    assert (heartbeat["matchers"], heartbeat["contactPoint"]) == ([{"label": "heartbeat", "match": "=", "value": "true"}], "rewards-heartbeat")
    assert team["matchers"] == [{"label": "team", "match": "=", "value": "rewards"}]
    assert {"alertname", "campaign_id", "provider"} <= set(team["groupBies"])
    routes = [(r["matchers"][0]["value"], r["contactPoint"], r.get("continue", False)) for r in team["policies"]]
    assert ("critical", "rewards-oncall-webhook", True) in routes
    assert ("warning", "rewards-telegram", False) in routes


def test_stack_outputs(program):
    outputs = program["outputs"]
    assert outputs["folder_uid"] == "rewards"
    assert outputs["dashboard_urls"][OPERATIONS_DASHBOARD_UID].endswith(f"/d/{OPERATIONS_DASHBOARD_UID}")
    assert outputs["alert_names"] == sorted(set(REQUIRED_ALERTS) | set(LOG_ALERTS))
    assert outputs["recording_rules_evaluated_by"] == "prometheus"


def test_two_runs_register_identical_inputs(program):
    """Registration order is async; what is registered under each name must not vary."""
    again = run_program(stack_values(), SECRETS)
    by_name = lambda run: {(r["type"], r["name"]): r["inputs"] for r in run["resources"]}  # noqa: E731
    assert by_name(again) == by_name(program)
    assert len(by_name(program)) == len(program["resources"])


def test_missing_config_registers_nothing():
    values = {k: v for k, v in stack_values().items() if k != "grafanaUrl"}
    result = run_program(values, {"telegramBotToken": SECRETS["telegramBotToken"]})
    assert "reward-observability:grafanaUrl: is required" in result["error"]
    assert "reward-observability:oncallWebhookUrl: is required" in result["error"]
    assert [r for r in result["resources"] if r["type"].startswith("grafana:")] == []


def test_malformed_config_registers_nothing():
    result = run_program({**stack_values(), "rewardsLive": "sometimes"}, SECRETS)
    assert "reward-observability:rewardsLive: expects boolean" in result["error"]
    assert result["resources"] == []


def test_rewards_live_unpauses_every_rule():
    result = run_program({**stack_values(), "rewardsLive": True, "recordingRules": "grafana"}, SECRETS)
    assert all(rule["isPaused"] is False for rule in pulumi_rules(result).values())
    recording = [r for g in recording_groups(result) for r in g["inputs"]["rules"]]
    assert recording and all(rule["isPaused"] is False for rule in recording)


# ------------------------------------------------------------------ recordingRules


def grafana_stack_file(tmp_path):
    """The example stack with recordingRules: grafana, as a file render can read."""
    data = yaml.safe_load(STACK_FILE.read_text())
    data["config"]["reward-observability:recordingRules"] = "grafana"
    path = tmp_path / "Pulumi.grafana.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def grafana_program():
    result = run_program({**stack_values(), "recordingRules": "grafana"}, SECRETS)
    assert result["error"] is None, result["error"]
    return result


def test_prometheus_mode_creates_no_recording_rule(program):
    assert stack_values()["recordingRules"] == "prometheus"
    assert recording_groups(program) == []
    assert all(not r.get("record") for g in resources(program, ":RuleGroup") for r in g["inputs"]["rules"])


def test_grafana_mode_registers_the_rendered_recording_rules(grafana_program, tmp_path):
    """Pulumi and file provisioning send the same groups; their series are those of the
    Prometheus rule file the other mode renders."""
    assert run_cli("--stack-config", str(grafana_stack_file(tmp_path)), "render", "--out", str(tmp_path / "g")).returncode == 0
    assert run_cli("render", "--out", str(tmp_path / "p")).returncode == 0
    rendered = yaml.safe_load((tmp_path / "g/grafana/provisioning/alerting/recording-rules.yaml").read_text())
    groups = {g["inputs"]["name"]: g for g in recording_groups(grafana_program)}
    assert set(groups) == {g["name"] for g in rendered["groups"]} and groups
    for file_group in rendered["groups"]:
        group = groups[file_group["name"]]
        assert group["name"].startswith("recording-rule-group-")
        # Every group each minute, but an SLO's 30-day budget (model/slo.py), the pools'
        # forecast and day of funding (recording_rules/reward-pools-trend.yaml) and their
        # ledger discrepancy for the overview panel (reward-pools-ledger-overview.yaml) every 5 minutes
        five_minutes = ("reward-pools-trend", "reward-pools-ledger-overview")
        interval = 300 if file_group["name"].endswith("-budget") or file_group["name"] in five_minutes else 60
        assert group["inputs"]["folderUid"] == "rewards" and group["inputs"]["intervalSeconds"] == interval
        rules = group["inputs"]["rules"]
        assert [r["uid"] for r in rules] == [r["uid"] for r in file_group["rules"]]
        for rule, file_rule in zip(rules, file_group["rules"], strict=True):
            assert rule["name"] == file_rule["title"]
            assert rule["record"] == file_rule["record"]
            assert [json.loads(d["model"]) for d in rule["datas"]] == [d["model"] for d in file_rule["data"]]
            assert [d["datasourceUid"] for d in rule["datas"]] == [d["datasourceUid"] for d in file_rule["data"]]
            # Not paused before rewardsLive, unlike the alerts: they page nobody and the dashboard reads them.
            assert rule["isPaused"] is file_rule["isPaused"] is False
    prometheus = yaml.safe_load((tmp_path / "p/prometheus/reward-recording.rules.yaml").read_text())
    recorded = {r["record"]["metric"]: json.loads(r["datas"][0]["model"])["expr"]
                for g in groups.values() for r in g["inputs"]["rules"]}
    assert recorded == {r["record"]: r["expr"] for g in prometheus["groups"] for r in g["rules"]}
    # The example stack names Grafana 11.6: neither path sends a target data source there
    # (the API stores it from 12.1, file provisioning reads it from 12.4: test_grafana_compat.py).
    assert stack_values()["grafanaVersion"] == "11.6"
    assert all("targetDatasourceUid" not in r["record"] for g in groups.values() for r in g["inputs"]["rules"])


def test_grafana_recording_rules_send_nothing_grafana_clears(grafana_program):
    """condition/for/noDataState/execErrState next to `record`: the provider refuses them,
    Grafana clears them (a perpetual diff); annotations and routes mean nothing there."""
    rules = [r for g in recording_groups(grafana_program) for r in g["inputs"]["rules"]]
    assert rules
    for rule in rules:
        assert set(rule) <= {"uid", "name", "datas", "record", "isPaused", "labels"}, rule["name"]
        assert rule["record"]["from"] == rule["datas"][0]["refId"]


def test_grafana_mode_keeps_the_alert_rules(program, grafana_program):
    by_name = lambda run: {(r["type"], r["name"]): r["inputs"] for r in run["resources"]}  # noqa: E731
    alerts, with_recording = by_name(program), by_name(grafana_program)
    assert {k: v for k, v in with_recording.items() if not k[1].startswith("recording-rule-group-")} == alerts
    assert grafana_program["outputs"]["recording_rules_evaluated_by"] == "grafana"


@pytest.mark.parametrize("value, message", [
    (None, "Pulumi.test.yaml:reward-observability:recordingRules: is required: choose one of prometheus, grafana"),
    ("both", "Pulumi.test.yaml:reward-observability:recordingRules: 'both' is not one of ['prometheus', 'grafana']"),
])
def test_recording_rules_choice_is_required_and_checked(value, message):
    values = {k: v for k, v in stack_values().items() if k != "recordingRules"}
    if value is not None:
        values["recordingRules"] = value
    result = run_program(values, SECRETS)
    assert message in result["error"]
    assert result["resources"] == []


# ------------------------------------------------------------------ literal oracle
# What Pulumi registers for the example stack, written out by hand from the definition
# files and Pulumi.selfhost.yaml, in the pulumiverse-grafana provider's input names
# (the SDK's camelCase property names: alerting/_inputs.py ContactPointTelegramArgs
# `chatId`, `parseMode`, `disableWebPagePreview`; RuleGroupRuleArgs `noDataState`,
# `execErrState`, `datas`; RuleGroupArgs `folderUid`, `intervalSeconds`; oss Dashboard
# `configJson`, `folder`, `overwrite`). Not derived from the builders: a field the builder
# drops or renames fails here even though the render would follow it.

EXPECTED_RESOURCES = {
    "reward-observability:index:RewardObservability": ["rewards"],
    # access/access.yaml: three folders, three teams, one permission per folder
    "grafana:oss/folder:Folder": ["folder-rewards", "folder-rewards-support", "folder-rewards-trust-safety"],
    "grafana:oss/team:Team": ["team-oncall", "team-support", "team-trust-safety"],
    "grafana:oss/folderPermission:FolderPermission": ["folder-permission-rewards", "folder-permission-rewards-support",
                                                      "folder-permission-rewards-trust-safety"],
    # notifications/routing.yaml: one template, four contact points; the stack owns the policy tree
    "grafana:alerting/messageTemplate:MessageTemplate": ["template-reward-message"],
    "grafana:alerting/contactPoint:ContactPoint": ["contact-point-rewards-email", "contact-point-rewards-heartbeat",
                                                   "contact-point-rewards-oncall-webhook", "contact-point-rewards-telegram"],
    "grafana:alerting/notificationPolicy:NotificationPolicy": ["policy-rewards"],
    # dashboards/*.yaml (three) and one runbooks dashboard per folder
    "grafana:oss/dashboard:Dashboard": ["dashboard-reward-operations", "dashboard-reward-runbooks",
                                        "dashboard-reward-runbooks-support", "dashboard-reward-runbooks-trust-safety",
                                        "dashboard-reward-trace", "dashboard-reward-trust-safety"],
    # the ten `group:` values of alert_rules/*.yaml and one alert group per SLO
    # (slos/*.yaml: reward-slo-<name>-alerts); recordingRules: prometheus adds none
    "grafana:alerting/ruleGroup:RuleGroup": ["rule-group-reward-claims", "rule-group-reward-claims-abuse", "rule-group-reward-claims-volume", "rule-group-reward-health", "rule-group-reward-payouts",
                                             "rule-group-reward-pools", "rule-group-reward-pools-ledger", "rule-group-reward-pools-over-allocation",
                                             "rule-group-reward-reconciliation",
                                             "rule-group-reward-slo-claim-to-paid-latency-alerts",
                                             "rule-group-reward-slo-payout-creation-alerts",
                                             "rule-group-reward-slo-payout-success-alerts",
                                             "rule-group-reward-slo-payout-success-fleet-alerts",
                                             "rule-group-reward-slo-webhook-processing-alerts",
                                             "rule-group-reward-traceability"],
}


def _registered(program, name: str) -> dict:
    [resource] = [r for r in program["resources"] if r["name"] == name]
    return resource["inputs"]


def test_registered_resources_are_exactly(program):
    found: dict[str, list[str]] = {}
    for r in program["resources"]:
        found.setdefault(r["type"], []).append(r["name"])
    assert {t: sorted(names) for t, names in found.items()} == EXPECTED_RESOURCES


def test_folder_is_exactly(program):
    assert _registered(program, "folder-rewards") == {"uid": "rewards", "title": "Rewards", "orgId": "1"}


def test_operations_dashboard_is_exactly(program):
    inputs = dict(_registered(program, "dashboard-reward-operations"))
    board = json.loads(inputs.pop("configJson"))
    assert inputs == {"folder": "rewards", "overwrite": True, "orgId": "1"}
    # dashboards/reward-operations.yaml: uid, title, refresh; 8 rows and 36 panels = 44 panels
    # (the 7 abuse panels are on reward-trust-safety)
    assert (board["uid"], board["title"], board["refresh"], len(board["panels"])) == (
        "reward-operations", "Reward operations", "1m", 44)


def test_telegram_contact_point_is_exactly(program):
    inputs = _registered(program, "contact-point-rewards-telegram")
    assert set(inputs) == {"name", "orgId", "telegrams"}
    assert (inputs["name"], inputs["orgId"]) == ("rewards-telegram", "1")
    assert inputs["telegrams"][SECRET_SIG]  # the whole block is a Pulumi secret (it holds the bot token)
    assert inputs["telegrams"]["value"] == [{
        "token": SECRETS["telegramBotToken"],  # secrets.bot_token: telegramBotToken
        "chatId": "-1001234567890",  # config.chat_id: telegramChatId of Pulumi.selfhost.yaml
        "parseMode": "HTML",
        "disableWebPagePreview": True,
        "message": '{{ template "reward.message" . }}',  # the routing file's one template
    }]


def test_reward_pool_low_rule_is_exactly(program):
    """alert_rules/RewardPoolLow.yaml as a Grafana rule in the group reward-pools."""
    group = _registered(program, "rule-group-reward-pools")
    assert (group["name"], group["folderUid"], group["intervalSeconds"], group["orgId"]) == ("reward-pools", "rewards", 60, "1")
    [rule] = [r for r in group["rules"] if r["name"] == "RewardPoolLow"]
    a, b = rule["datas"]
    assert {k: v for k, v in rule.items() if k not in ("datas", "annotations")} == {
        "name": "RewardPoolLow",
        "uid": "reward-pool-low",
        "for": "10m",
        "condition": "B",
        "noDataState": "OK",
        "execErrState": "Error",
        "isPaused": True,  # rewardsLive: false
        "labels": {"severity": "warning", "team": "rewards", "environment": "selfhost"},
    }
    assert (a["refId"], a["datasourceUid"], a["relativeTimeRange"]) == ("A", "prometheus", {"from": 600, "to": 0})
    assert json.loads(a["model"])["expr"] == \
        "min by (pool_id, campaign_id, currency) (pool:reward_pool_remaining:ratio_of_budget)"
    # condition {op: "<", threshold: 0.1}: Grafana's threshold expression with evaluator lt
    assert (b["refId"], b["datasourceUid"]) == ("B", "__expr__")
    model_b = json.loads(b["model"])
    assert (model_b["type"], model_b["expression"], model_b["conditions"][0]["evaluator"]) == (
        "threshold", "A", {"params": [0.1], "type": "lt"})
    notes = rule["annotations"]
    assert notes["runbook_url"] == "https://github.com/elmental/reward-observability/blob/main/runbooks/reward-pool-recovery.md#rewardpoollow"
    assert (notes["__dashboardUid__"], notes["__panelId__"]) == ("reward-operations", "23")  # panel campaign_pool_remaining
    assert notes["summary"] == "Reward pool {{ $labels.pool_id }} has {{ $values.A.Value | humanizePercentage }} of its budget left"
