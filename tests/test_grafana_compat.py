"""What Grafana loads from what we render, version by version.

Each expected value is written out here from Grafana's own source, cited per test, not
computed by the code under test; each test fails on the render before the fix."""
from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.sinks.files import GRAFANA_RECORDING_FILE, render_files

from conftest import ROOT, run_cli
from helpers import render_message, sample_alert
from pulumi_harness import run_program
from spec import TRUST_SAFETY_ALERTS

VERSIONS = ("11.6", "12.0", "12.1", "12.2", "12.3", "12.4")
PROD = ROOT / "Pulumi.prod.yaml"


def _render(definitions, config, **changes) -> dict[str, str]:
    return render_files(definitions, dataclasses.replace(config, **changes))


def _recording_rules(files: dict[str, str]) -> list[dict]:
    return [r for g in yaml.safe_load(files[GRAFANA_RECORDING_FILE])["groups"] for r in g["rules"]]


# --- the stack config key -------------------------------------------------------------

def test_supported_versions_are_declared_once_and_default_to_the_oldest():
    schema = json.loads((ROOT / "schemas/stack_config.schema.json").read_text())["properties"]["grafanaVersion"]
    assert tuple(schema["enum"]) == VERSIONS
    assert schema["default"] == "11.6"


def test_grafana_version_defaults_to_the_oldest_supported(definitions):
    values = read_stack_file(ROOT / "Pulumi.selfhost.yaml")
    del values["grafanaVersion"]
    assert load_config(values, "Pulumi.x.yaml", definitions).grafana_version == "11.6"


@pytest.mark.parametrize("value", [11.6, "10.4", "13.0", "12"])
def test_an_unsupported_grafana_version_is_refused_naming_the_key(tmp_path, value):
    data = yaml.safe_load((ROOT / "Pulumi.selfhost.yaml").read_text())
    data["config"]["reward-observability:grafanaVersion"] = value
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_text(yaml.safe_dump(data))
    result = run_cli("--stack-config", str(stack), "render", "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"{stack}:reward-observability:grafanaVersion:" in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


# --- 1. recording rules carry a condition ----------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_recording_rules_name_their_condition(definitions, config, version):
    """AlertRuleV1.mapToModel (pkg/services/provisioning/alerting/rules_types.go) refuses a
    rule without `condition` before 12.3.0 ("no condition set"; grafana/grafana#109410), and
    Grafana's recording-rule fixtures (testdata/alert_rules/recording-rules/*.yml) carry
    `condition: A` next to `record: {from: A}`. Written at every version: 12.3+ accepts it."""
    rules = _recording_rules(_render(definitions, config, recording_rules="grafana", grafana_version=version))
    assert rules
    assert {(r["condition"], r["record"]["from"], r["data"][0]["refId"]) for r in rules} == {("A", "A", "A")}


# --- 2. targetDatasourceUid only where Grafana reads it --------------------------------

FILE_READS_TARGET = {"11.6": False, "12.0": False, "12.1": False, "12.2": False, "12.3": False, "12.4": True}
API_STORES_TARGET = {"11.6": False, "12.0": False, "12.1": True, "12.2": True, "12.3": True, "12.4": True}


@pytest.mark.parametrize("version", VERSIONS)
def test_file_recording_rules_name_the_target_only_from_12_4(definitions, config, version):
    """RecordV1.TargetDatasourceUID is read by file provisioning from 12.4.0
    (grafana/grafana#115663); before, the key is dropped and [recording_rules]
    default_datasource_uid applies, so writing it would only mislead."""
    rules = _recording_rules(_render(definitions, config, recording_rules="grafana", grafana_version=version))
    targets = {r["record"].get("targetDatasourceUid") for r in rules}
    assert targets == ({"prometheus"} if FILE_READS_TARGET[version] else {None})


@pytest.mark.parametrize("version", VERSIONS)
def test_provider_recording_rules_send_the_target_only_from_12_1(definitions, config, version):
    import pulumi

    from reward_obs.builders import grafana_recording
    from reward_obs.sinks.component import recording_rule_args

    cfg = dataclasses.replace(config, recording_rules="grafana", grafana_version=version)
    rules = [r for g in grafana_recording.grafana_recording_groups(definitions, cfg) for r in g["rules"]]
    targets = {pulumi.get(recording_rule_args(r, version).record, "target_datasource_uid") for r in rules}
    assert targets == ({"prometheus"} if API_STORES_TARGET[version] else {None})


def test_render_tells_the_operator_to_set_the_default_data_source_before_12_4(tmp_path):
    result = run_cli("--stack-config", str(PROD), "render", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert read_stack_file(PROD)["grafanaVersion"] == "12.1"
    assert "[recording_rules] default_datasource_uid = prometheus-prod" in result.stdout


# --- 3. one Rewards folder --------------------------------------------------------------

def test_rules_and_dashboards_name_one_folder_by_title(definitions, config):
    """Alerting is provisioned first (provisioning.go RunInitProvisioners) and creates the
    folder by title with a random uid (rules_provisioner.go getOrCreateFolderByTitle). The
    dashboard provider then looks the folder up by `folderUid` if set, else by title
    (dashboards/file_reader.go getOrCreateFolder): only by title does it find that folder."""
    files = _render(definitions, config, recording_rules="grafana")
    providers = yaml.safe_load(files["grafana/provisioning/dashboards/rewards.yaml"])["providers"]
    assert not any("folderUid" in p for p in providers)
    titles = [p["folder"] for p in providers]
    assert sorted(titles) == ["Rewards", "Rewards — Support", "Rewards — Trust & Safety"]  # each once (access/access.yaml)
    folders = {g["folder"] for name in ("grafana/provisioning/alerting/rules.yaml", GRAFANA_RECORDING_FILE)
               for g in yaml.safe_load(files[name])["groups"]}
    assert folders == {"Rewards", "Rewards — Trust & Safety"}


# --- 4. the rule's own dashboard and panel fields ----------------------------------------

# The abuse alerts link to the trust and safety dashboard, in their own folder (one
# directory per folder in the render); every other alert to the operations dashboard.
_BOARD_FILES = {"reward-operations": "grafana/dashboards/rewards/reward-operations.json",
                "reward-trust-safety": "grafana/dashboards/rewards-trust-safety/reward-trust-safety.json"}


def test_file_rules_carry_dashboard_uid_and_panel_id_matching_their_annotations(out):
    """File provisioning reads `dashboardUid` and `panelId` (AlertRuleV1, rules_types.go);
    the API derives the same from the annotations (SetDashboardAndPanelFromAnnotations),
    so both are written and must agree."""
    rules = [r for g in yaml.safe_load((out / "grafana/provisioning/alerting/rules.yaml").read_text())["groups"]
             for r in g["rules"]]
    boards = {uid: json.loads((out / path).read_text()) for uid, path in _BOARD_FILES.items()}
    panel_ids = {uid: {p["id"] for p in b["panels"] if p["type"] != "row"} for uid, b in boards.items()}
    for rule in rules:
        uid = "reward-trust-safety" if rule["title"] in TRUST_SAFETY_ALERTS else "reward-operations"
        assert rule["dashboardUid"] == rule["annotations"]["__dashboardUid__"] == uid, rule["title"]
        assert isinstance(rule["panelId"], int) and str(rule["panelId"]) == rule["annotations"]["__panelId__"]
        assert rule["panelId"] in panel_ids[uid], rule["title"]
    by_title = {r["title"]: r for r in rules}
    # Literal: alert_rules/RewardPoolLow.yaml links reward-operations/campaign_pool_remaining,
    # RewardClaimsHeldPastTarget.yaml reward-trust-safety/oldest_held_claim.
    assert by_title["RewardPoolLow"]["panelId"] == next(
        p["id"] for p in boards["reward-operations"]["panels"] if p.get("title") == "Pool remaining in $campaign")
    assert by_title["RewardClaimsHeldPastTarget"]["panelId"] == next(
        p["id"] for p in boards["reward-trust-safety"]["panels"] if p.get("title") == "Oldest held claim")


@pytest.fixture(scope="module")
def program():
    values = read_stack_file(ROOT / "Pulumi.selfhost.yaml")
    secrets = {"telegramBotToken": "x", "oncallWebhookUrl": "https://paging.invalid/h",
               "heartbeatWebhookUrl": "https://deadman.invalid/h"}
    result = run_program(values, secrets)
    assert result["error"] is None, result["error"]
    return result


def test_provider_rules_link_their_panel_through_both_annotations(program):
    """The provider has no dashboard/panel field (RuleGroupRuleArgs); the API sets the
    rule's dashboard and panel from `__dashboardUid__` + `__panelId__`, and refuses one
    without the other (models.AlertRule.SetDashboardAndPanelFromAnnotations)."""
    rules = [r for res in program["resources"] if res["type"].endswith(":RuleGroup") for r in res["inputs"]["rules"]]
    assert rules
    for rule in rules:
        notes = rule["annotations"]
        uid = "reward-trust-safety" if rule["name"] in TRUST_SAFETY_ALERTS else "reward-operations"
        assert notes["__dashboardUid__"] == uid and int(notes["__panelId__"]) > 0, rule["name"]
        assert "dashboardUid" not in rule and "panelId" not in rule


# --- 5. email gets plain text -------------------------------------------------------------

def test_email_contact_point_sends_the_plain_text_message(out):
    points = {cp["name"]: cp["receivers"][0] for cp in
              yaml.safe_load((out / "grafana/provisioning/alerting/contact-points.yaml").read_text())["contactPoints"]}
    assert points["rewards-email"]["settings"]["message"] == '{{ template "reward.text" . }}'


def test_provider_email_contact_point_sends_the_plain_text_message(program):
    points = {r["inputs"]["name"]: r["inputs"] for r in program["resources"] if r["type"].endswith(":ContactPoint")}
    assert points["rewards-email"]["emails"][0]["message"] == '{{ template "reward.text" . }}'
    # (a secret setting makes the whole block a Pulumi secret: its value sits under "value")
    assert points["rewards-telegram"]["telegrams"]["value"][0]["message"] == '{{ template "reward.message" . }}'


def test_email_message_is_plain_text():
    """Grafana's email notifier prints the message inside its own HTML template, which
    escapes it: the text must carry no tags and no entities of its own."""
    text = render_message([sample_alert(1), sample_alert(2, "resolved")], "reward.text")
    assert "Payout provider ton_wallet <1> & friends are down" in text
    assert "Runbook: https://runbooks.reward-observability.invalid/elmental/reward-observability/blob/main/runbooks/payout-provider-retry.md#rewardpayoutprovideroutage" in text
    assert "Dashboard panel: https://grafana.reward-observability.invalid/d/reward-operations?viewPanel=14&x=1" in text
    assert "Firing: 1" in text and "Resolved: 1" in text
    for html in ("<b>", "</b>", "<a ", "&amp;", "&lt;", "&gt;", "&#"):
        assert html not in text, html
