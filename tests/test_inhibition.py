"""Inhibition: which alerts hold back which, from the definitions, in the shape
Alertmanager and Grafana take. Alertmanager's own behaviour is proven in
tests/test_live_stack.py; here, the rules themselves and their validation."""
from __future__ import annotations

import json
import subprocess

import yaml

from reward_obs.builders.alertmanager import alertmanager_config
from reward_obs.builders.inhibition import grafana_inhibition_rules
from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.sinks.files import GRAFANA_INHIBITION_FILE, dump_yaml, render_files

from conftest import ROOT, STACK_FILE, run_cli

OUTAGE, ABSENT, HEARTBEAT = "RewardPayoutProviderOutage", "RewardMetricsAbsent", "RewardHeartbeat"


def _am_rules(definitions) -> list[dict]:
    urls = {cp.name: f"http://127.0.0.1:9/{cp.name}" for cp in definitions.routing.contact_points}
    return alertmanager_config(definitions, urls)["inhibit_rules"]


def test_a_provider_outage_holds_back_that_providers_consequences_only(definitions):
    [rule] = [r for r in _am_rules(definitions) if r["source_matchers"] == [f'alertname="{OUTAGE}"']]
    # The outage's own consequences, the per-provider SLO and staleness alerts (the fleet SLO
    # and the claim alerts have no provider: an outage of one provider never holds them back).
    assert rule["target_matchers"] == ['alertname=~"' + "|".join([
        "RewardClaimToPaidBudgetBurn", "RewardClaimToPaidBudgetSlowBurn", "RewardDuplicatePayoutAttempt",
        "RewardPayoutCreateErrorBudgetBurn", "RewardPayoutCreateErrorBudgetSlowBurn",
        "RewardPayoutErrorBudgetBurn", "RewardPayoutErrorBudgetSlowBurn", "RewardPayoutWebhookFailing",
        "RewardPayoutWebhooksStopped", "RewardPayoutsStuck", "RewardReconciliationStale",
        "RewardWebhookErrorBudgetBurn", "RewardWebhookErrorBudgetSlowBurn"]) + '"']
    assert rule["equal"] == ["environment", "provider"]  # one provider's outage never silences another's


def test_a_missing_scrape_holds_back_every_alert_on_scraped_series_but_not_the_heartbeat(definitions):
    [rule] = [r for r in _am_rules(definitions) if r["source_matchers"] == [f'alertname="{ABSENT}"']]
    targets = set(rule["target_matchers"][0].split('"')[1].split("|"))
    promql_alerts = {a.name for a in definitions.alerts if a.is_promql}
    assert targets == promql_alerts - {ABSENT, HEARTBEAT}
    assert rule["equal"] == ["environment"]


def test_alertmanager_accepts_the_config(definitions, tmp_path):
    urls = {cp.name: f"http://127.0.0.1:9/{cp.name}" for cp in definitions.routing.contact_points}
    path = tmp_path / "alertmanager.yml"
    path.write_text(dump_yaml(alertmanager_config(definitions, urls)))
    result = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(_am_rules(definitions))} inhibit rules" in result.stdout


def test_a_target_without_the_sources_labels_is_refused(repo_copy):
    path = repo_copy / "alert_rules/RewardClaimVolumeAbnormal.yaml"
    data = yaml.safe_load(path.read_text())
    data["inhibited_by"] = [OUTAGE, "RewardNoSuchAlert"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"), "validate")
    assert result.returncode == 1
    assert ("alert_rules/RewardClaimVolumeAbnormal.yaml:inhibited_by[0]: RewardPayoutProviderOutage fires per provider, "
            "but this alert has no provider") in result.stderr
    assert "alert_rules/RewardClaimVolumeAbnormal.yaml:inhibited_by[1]: 'RewardNoSuchAlert' is not a defined alert" in result.stderr


def test_grafana_gets_the_same_rules_only_when_asked(definitions):
    values = read_stack_file(STACK_FILE)
    assert GRAFANA_INHIBITION_FILE not in render_files(definitions, load_config(values, "stack", definitions))
    files = render_files(definitions, load_config(values | {"grafanaInhibitionRules": True}, "stack", definitions))
    rules = json.loads(files[GRAFANA_INHIBITION_FILE])
    # Grafana's schema (docs/sources/alerting/configure-notifications/inhibition-rules.md).
    assert rules == grafana_inhibition_rules(definitions)
    outage = next(r for r in rules if r["source_matchers"] == [{"label": "alertname", "type": "=", "value": OUTAGE}])
    assert outage["equal"] == ["environment", "provider"] and outage["name"] == f"{OUTAGE}-holds-back-its-consequences"
    assert {m["type"] for r in rules for m in r["target_matchers"]} == {"=~"}


def test_pulumi_registers_grafana_inhibition_rules_only_when_asked():
    from helpers import SECRETS
    from pulumi_harness import run_program

    values = read_stack_file(ROOT / "Pulumi.selfhost.yaml")
    off = run_program(values, SECRETS)
    assert off["error"] is None and not [r for r in off["resources"] if r["type"].endswith(":NotificationsInhibitionRule")]
    on = run_program(values | {"grafanaInhibitionRules": True}, SECRETS)
    assert on["error"] is None, on["error"]
    specs = {r["inputs"]["metadata"]["uid"]: r["inputs"]["spec"] for r in on["resources"]
             if r["type"].endswith(":NotificationsInhibitionRule")}
    outage = specs[f"{OUTAGE}-holds-back-its-consequences".lower()]
    assert outage["equals"] == ["environment", "provider"]
    assert outage["sourceMatchers"] == [{"label": "alertname", "type": "=", "value": OUTAGE}]
