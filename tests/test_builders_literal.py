"""Builders against literal expected output, table-driven in the style of Sloth's
generator tests: each case is an input (a definition, a stack) and the whole object the
builder must produce, written out by hand from the definition files and from what
Grafana/Prometheus expect. Nothing here is computed by the code under test.

The cases use the definitions least likely to change (RewardClaimRejectionRateHigh,
the webhook and Telegram contact points, the per-currency remaining recording rule) and
synthetic panels. When a definition changes on purpose, update the literal.
"""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from reward_obs.builders import alerts as alert_builders
from reward_obs.builders import dashboards as dashboard_builders
from reward_obs.builders import notifications as notification_builders
from reward_obs.builders import recording as recording_builders
from reward_obs.builders.notifications import SecretRef
from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.model.definitions import Panel, Query
from reward_obs.sinks.files import render_files

from conftest import ROOT

ALERT = "RewardClaimRejectionRateHigh"
SELFHOST = ROOT / "Pulumi.selfhost.yaml"
PROD = ROOT / "Pulumi.prod.yaml"

_DESCRIPTION = ("{value} of claim decisions for campaign {{{{ $labels.campaign_id }}}} in the last {window} were "
                "rejections. Either an abuse wave is being caught, or an eligibility rule or data source is wrongly "
                "rejecting honest players.")
_SUMMARY = "{value} of claims in campaign {{{{ $labels.campaign_id }}}} are rejected"
# The prod stack opens the Grafana copy of the runbooks (runbookLinks: grafana). A section's
# panel id is 10 000 + CRC-32("claim-anomalies.md#rewardclaimrejectionratehigh") mod 90 000,
# worked out with binascii.crc32 (= 47734), not read off the render.
# The alert lives in the Trust & Safety folder (access/access.yaml), so its links open that
# folder's runbook dashboard and dashboard; panel 25 keeps its id there.
_PROD_RUNBOOK = "https://grafana.elmental.example/d/reward-runbooks-trust-safety?viewPanel=47734"
_RUNBOOK = "https://github.com/elmental/reward-observability/blob/main/runbooks/claim-anomalies.md#rewardclaimrejectionratehigh"
_GRAFANA_VALUE = "{{ $values.A.Value | humanizePercentage }}"
_PROM_VALUE = "{{ $value | humanizePercentage }}"


def _expr(window: str, min_decisions: int) -> str:
    return (f'sum by (campaign_id) (rate(reward_claim_decisions_total{{decision="rejected"}}[{window}]))\n'
            "/\n"
            f"sum by (campaign_id) (rate(reward_claim_decisions_total[{window}]))\n"
            "and on (campaign_id)\n"
            f"sum by (campaign_id) (increase(reward_claim_decisions_total[{window}])) >= {min_decisions}")


# ---------------------------------------------------------------- alerts

ALERT_CASES = [
    {
        "name": "selfhost stack, definition defaults",
        "stack": SELFHOST,
        "overrides": {},
        "group": {"orgId": 1, "name": "reward-claims-abuse", "folder": "Rewards — Trust & Safety", "interval": "1m"},
        "grafana": {
            "uid": "reward-claim-rejection-rate-high",
            "title": ALERT,
            "condition": "B",
            "data": [
                {"refId": "A", "relativeTimeRange": {"from": 600, "to": 0}, "datasourceUid": "prometheus",
                 "model": {"refId": "A", "datasource": {"type": "prometheus", "uid": "prometheus"},
                           "expr": _expr("10m", 30), "intervalMs": 1000, "maxDataPoints": 43200,
                           "instant": True, "range": False}},
                {"refId": "B", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
                 "model": {"refId": "B", "datasource": {"type": "__expr__", "uid": "__expr__"}, "type": "threshold",
                           "expression": "A", "conditions": [{"evaluator": {"type": "gt", "params": [0.2]}}],
                           "intervalMs": 1000, "maxDataPoints": 43200}},
            ],
            "noDataState": "OK",
            "execErrState": "Error",
            "for": "10m",
            "annotations": {
                "summary": _SUMMARY.format(value=_GRAFANA_VALUE),
                "description": _DESCRIPTION.format(value=_GRAFANA_VALUE, window="10m"),
                "runbook_url": _RUNBOOK,
                "dashboard_url": "http://127.0.0.1:3000/d/reward-trust-safety?viewPanel=25&var-campaign={{ $labels.campaign_id | urlquery }}",
                "__dashboardUid__": "reward-trust-safety",
                "__panelId__": "25",
            },
            # Grafana's own fields for the linked panel (what its panel alert tab filters by),
            # beside the annotations the provisioning API reads.
            "dashboardUid": "reward-trust-safety",
            "panelId": 25,
            "labels": {"severity": "warning", "team": "rewards", "environment": "selfhost"},
            "isPaused": True,
        },
        "prometheus": {
            "alert": ALERT,
            "expr": f"({_expr('10m', 30)}) > 0.2",
            "for": "10m",
            "labels": {"severity": "warning", "team": "rewards", "environment": "selfhost"},
            "annotations": {
                "summary": _SUMMARY.format(value=_PROM_VALUE),
                "description": _DESCRIPTION.format(value=_PROM_VALUE, window="10m"),
                "runbook_url": _RUNBOOK,
                "dashboard_url": "http://127.0.0.1:3000/d/reward-trust-safety?viewPanel=25&var-campaign={{ $labels.campaign_id | urlquery }}",
            },
        },
    },
    {
        # prod leaves the policy tree alone, so the rule routes itself: a warning with
        # team=rewards reaches the Telegram route and inherits its grouping and timings.
        "name": "prod stack, live, every field overridden",
        "stack": PROD,
        # The threshold and min_decisions are internal: private values, not alertOverrides.
        "overrides": {"rewardsLive": True, "alertOverrides": {ALERT: {"for": "600s", "params": {"window": "30m"}}}},
        "private": {ALERT: {"threshold": 0.35, "params": {"min_decisions": 50}}},
        "group": {"orgId": 1, "name": "reward-claims-abuse", "folder": "Rewards — Trust & Safety", "interval": "1m"},
        "grafana": {
            "uid": "reward-claim-rejection-rate-high",
            "title": ALERT,
            "condition": "B",
            "data": [
                {"refId": "A", "relativeTimeRange": {"from": 600, "to": 0}, "datasourceUid": "prometheus-prod",
                 "model": {"refId": "A", "datasource": {"type": "prometheus", "uid": "prometheus-prod"},
                           "expr": _expr("30m", 50), "intervalMs": 1000, "maxDataPoints": 43200,
                           "instant": True, "range": False}},
                {"refId": "B", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
                 "model": {"refId": "B", "datasource": {"type": "__expr__", "uid": "__expr__"}, "type": "threshold",
                           "expression": "A", "conditions": [{"evaluator": {"type": "gt", "params": [0.35]}}],
                           "intervalMs": 1000, "maxDataPoints": 43200}},
            ],
            "noDataState": "OK",
            "execErrState": "Error",
            "for": "10m",
            "annotations": {
                "summary": _SUMMARY.format(value=_GRAFANA_VALUE),
                "description": _DESCRIPTION.format(value=_GRAFANA_VALUE, window="30m"),
                "runbook_url": _PROD_RUNBOOK,
                "dashboard_url": "https://grafana.elmental.example/d/reward-trust-safety?viewPanel=25&var-campaign={{ $labels.campaign_id | urlquery }}",
                "__dashboardUid__": "reward-trust-safety",
                "__panelId__": "25",
            },
            # Grafana's own fields for the linked panel (what its panel alert tab filters by),
            # beside the annotations the provisioning API reads.
            "dashboardUid": "reward-trust-safety",
            "panelId": 25,
            "labels": {"severity": "warning", "team": "rewards", "environment": "prod"},
            "isPaused": False,
            "notification_settings": {
                "receiver": "rewards-telegram",
                "group_by": ["alertname", "grafana_folder", "campaign_id", "provider"],
                "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h",
            },
        },
        "prometheus": {
            "alert": ALERT,
            "expr": f"({_expr('30m', 50)}) > 0.35",
            "for": "10m",
            "labels": {"severity": "warning", "team": "rewards", "environment": "prod"},
            "annotations": {
                "summary": _SUMMARY.format(value=_PROM_VALUE),
                "description": _DESCRIPTION.format(value=_PROM_VALUE, window="30m"),
                "runbook_url": _PROD_RUNBOOK,
                "dashboard_url": "https://grafana.elmental.example/d/reward-trust-safety?viewPanel=25&var-campaign={{ $labels.campaign_id | urlquery }}",
            },
        },
    },
]


def _config(definitions, stack, overrides, private=None):
    config = load_config(read_stack_file(stack) | overrides, str(stack), definitions)
    return dataclasses.replace(config, internal_params=private or {})


@pytest.mark.parametrize("case", ALERT_CASES, ids=lambda c: c["name"])
def test_grafana_alert_rule_is_exactly(definitions, case):
    config = _config(definitions, case["stack"], case["overrides"], case.get("private"))
    found = [({k: v for k, v in g.items() if k != "rules"}, r)
             for g in alert_builders.grafana_rule_groups(definitions, config) for r in g["rules"] if r["title"] == ALERT]
    assert found == [(case["group"], case["grafana"])]


@pytest.mark.parametrize("case", ALERT_CASES, ids=lambda c: c["name"])
def test_prometheus_alert_rule_is_exactly(definitions, case):
    config = _config(definitions, case["stack"], case["overrides"], case.get("private"))
    found = [(g["name"], g["interval"], r) for g in alert_builders.prometheus_rule_file(definitions, config)["groups"]
             for r in g["rules"] if r["alert"] == ALERT]
    assert found == [("reward-claims-abuse", "1m", case["prometheus"])]


# ---------------------------------------------------------------- recording rules


def test_prometheus_recording_rule_is_exactly(definitions):
    """recording_rules/reward-dashboard.yaml, reduced to what Prometheus reads: the
    group, its interval, and each rule's record and expression on one line (the YAML
    folds the rejection ratio over two lines)."""
    groups = recording_builders.prometheus_groups(definitions)
    # The pools' worst ledger discrepancy every 5 minutes, their share of budget every
    # minute, their forecast and day of funding every 5 minutes, the dashboard's group,
    # then per SLO (slos/*.yaml) its ratios every minute and its 30-day budget every 5 minutes.
    assert [(g["name"], g["interval"]) for g in groups] == [
        ("reward-pools-ledger-overview", "5m"), ("reward-pools-ratio", "1m"), ("reward-pools-trend", "5m"),
        ("reward-recorded", "1m"),
        ("reward-slo-claim-to-paid-latency", "1m"), ("reward-slo-claim-to-paid-latency-budget", "5m"),
        ("reward-slo-payout-creation", "1m"), ("reward-slo-payout-creation-budget", "5m"),
        ("reward-slo-payout-success", "1m"), ("reward-slo-payout-success-budget", "5m"),
        ("reward-slo-payout-success-fleet", "1m"), ("reward-slo-payout-success-fleet-budget", "5m"),
        ("reward-slo-webhook-processing", "1m"), ("reward-slo-webhook-processing-budget", "5m")]
    assert groups[0]["rules"] == [
        {"record": "pool:reward_pool_ledger_discrepancy:max",
         "expr": 'max by (pool_id, campaign_id, currency) (label_replace(abs(reward_pool_budget - reward_pool_reserved'
                 ' - reward_pool_paid - reward_pool_remaining), "check", "ledger", "", "") or label_replace(reward_pool_reserved'
                 ' + reward_pool_paid - reward_pool_budget, "check", "spent", "", "") or label_replace(-reward_pool_remaining,'
                 ' "check", "remaining", "", ""))'}]
    groups = groups[1:]
    assert groups[0]["rules"] == [
        {"record": "pool:reward_pool_remaining:ratio_of_budget",
         "expr": "min by (pool_id, campaign_id, currency) (reward_pool_remaining / (reward_pool_budget > 0))"}]
    assert groups[1]["rules"] == [
        {"record": "pool:reward_pool_remaining:predict_linear6h_24h",
         "expr": "min by (pool_id, campaign_id, currency) (predict_linear(reward_pool_remaining[6h], 86400))"},
        {"record": "pool_source:reward_pool_funding:increase1d",
         "expr": 'sum by (pool_id, source) (increase(reward_pool_funding_total{source="other"}[1d]))'}]
    rules = {r["record"]: r for r in groups[2]["rules"]}
    assert rules["currency:reward_pool_remaining:sum"] == {
        "record": "currency:reward_pool_remaining:sum",
        "expr": "sum by (currency) (reward_pool_remaining)",
    }
    assert rules["campaign:reward_claim_rejection:ratio_rate5m"] == {
        "record": "campaign:reward_claim_rejection:ratio_rate5m",
        "expr": 'sum by (campaign_id) (rate(reward_claim_decisions_total{decision="rejected"}[5m]))'
                " / (sum by (campaign_id) (rate(reward_claim_decisions_total[5m])) > 0)",
    }


# ---------------------------------------------------------------- panels

_LEGEND_TABLE = {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True, "calcs": ["lastNotNull"]},
                 "tooltip": {"mode": "multi", "sort": "desc"}}
_PROMETHEUS = {"type": "prometheus", "uid": "${datasource}"}
_LOKI = {"type": "loki", "uid": "${loki}"}

PANEL_CASES = [
    {
        "name": "timeseries over a recorded series, two queries",
        "panel": Panel(id=4, key="reserved_rewards", title="Reserved rewards", type="timeseries", unit="short",
                       width=8, height=8, description="Reserved, per currency.",
                       queries=(Query("currency:reward_pool_reserved:sum", "{{currency}}"),
                                Query("currency:reward_pool_paid:sum", "paid {{currency}}"))),
        "at": (8, 9),
        "json": {
            "id": 4, "type": "timeseries", "title": "Reserved rewards", "description": "Reserved, per currency.",
            "datasource": _PROMETHEUS,
            "gridPos": {"h": 8, "w": 8, "x": 8, "y": 9},
            "fieldConfig": {"defaults": {"unit": "short",
                                         "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]}},
                            "overrides": []},
            "options": _LEGEND_TABLE,
            "targets": [
                {"refId": "A", "datasource": _PROMETHEUS, "expr": "currency:reward_pool_reserved:sum",
                 "legendFormat": "{{currency}}", "range": True, "instant": False},
                {"refId": "B", "datasource": _PROMETHEUS, "expr": "currency:reward_pool_paid:sum",
                 "legendFormat": "paid {{currency}}", "range": True, "instant": False},
            ],
        },
    },
    {
        "name": "instant bar gauge with thresholds, min and max",
        "panel": Panel(id=3, key="pool_remaining_ratio", title="Pools closest to empty", type="bargauge",
                       unit="percentunit", width=8, height=9, description="Bottom 15.",
                       queries=(Query("bottomk(15, pool:reward_pool_remaining:ratio_of_budget)", "{{pool_id}}"),),
                       thresholds=({"value": None, "color": "red"}, {"value": 0.1, "color": "orange"}),
                       min=0, max=1, instant=True),
        "at": (0, 1),
        "json": {
            "id": 3, "type": "bargauge", "title": "Pools closest to empty", "description": "Bottom 15.",
            "datasource": _PROMETHEUS,
            "gridPos": {"h": 9, "w": 8, "x": 0, "y": 1},
            "fieldConfig": {"defaults": {"unit": "percentunit",
                                         "thresholds": {"mode": "absolute", "steps": [{"color": "red", "value": None},
                                                                                      {"color": "orange", "value": 0.1}]},
                                         "color": {"mode": "thresholds"}, "min": 0, "max": 1},
                            "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "orientation": "horizontal", "displayMode": "basic"},
            "targets": [{"refId": "A", "datasource": _PROMETHEUS,
                         "expr": "bottomk(15, pool:reward_pool_remaining:ratio_of_budget)",
                         "legendFormat": "{{pool_id}}", "range": False, "instant": True}],
        },
    },
    {
        "name": "stat over Loki with a no-value text",
        "panel": Panel(id=30, key="missing_ids", title="Events without a correlation id", type="stat", unit="short",
                       width=6, height=4, description="Last hour.", datasource="loki", no_value="0",
                       queries=(Query('sum(count_over_time({app="reward-backend"} [1h]))', ""),)),
        "at": (18, 0),
        "json": {
            "id": 30, "type": "stat", "title": "Events without a correlation id", "description": "Last hour.",
            "datasource": _LOKI,
            "gridPos": {"h": 4, "w": 6, "x": 18, "y": 0},
            "fieldConfig": {"defaults": {"unit": "short",
                                         "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
                                         "noValue": "0"},
                            "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto"},
            "targets": [{"refId": "A", "datasource": _LOKI, "expr": 'sum(count_over_time({app="reward-backend"} [1h]))',
                         "legendFormat": "", "queryType": "range"}],
        },
    },
]


@pytest.mark.parametrize("case", PANEL_CASES, ids=lambda c: c["name"])
def test_panel_json_is_exactly(case):
    assert dashboard_builders.panel_json(case["panel"], *case["at"]) == case["json"]


# ---------------------------------------------------------------- contact points

_MESSAGE = '{{ template "reward.message" . }}'
_TITLE = '{{ template "reward.title" . }}'

CONTACT_POINT_CASES = [
    {
        "name": "rewards-oncall-webhook",
        # builder output: neutral setting names, the secret as a reference to its config key
        "built": {"name": "rewards-oncall-webhook", "uid": "rewards-oncall-webhook", "type": "webhook",
                  "disable_resolve_message": False,
                  "settings": {"http_method": "POST", "max_alerts": 50, "url": SecretRef("oncallWebhookUrl"),
                               "message": _MESSAGE, "title": _TITLE}},
        # provisioning file: Grafana's webhook setting keys, the secret read from the environment
        "provisioned": {"orgId": 1, "name": "rewards-oncall-webhook", "receivers": [{
            "uid": "rewards-oncall-webhook", "type": "webhook", "disableResolveMessage": False,
            "settings": {"httpMethod": "POST", "maxAlerts": 50, "message": _MESSAGE, "title": _TITLE,
                         "url": "$__env{REWARD_OBS_ONCALL_WEBHOOK_URL}"}}]},
    },
    {
        "name": "rewards-telegram",
        "built": {"name": "rewards-telegram", "uid": "rewards-telegram", "type": "telegram",
                  "disable_resolve_message": False,
                  "settings": {"parse_mode": "HTML", "disable_web_page_preview": True,
                               "bot_token": SecretRef("telegramBotToken"), "chat_id": "-1001234567890",
                               "message": _MESSAGE}},
        "provisioned": {"orgId": 1, "name": "rewards-telegram", "receivers": [{
            "uid": "rewards-telegram", "type": "telegram", "disableResolveMessage": False,
            "settings": {"bottoken": "$__env{REWARD_OBS_TELEGRAM_BOT_TOKEN}", "chatid": "-1001234567890",
                         "disable_web_page_preview": True, "message": _MESSAGE, "parse_mode": "HTML"}}]},
    },
]


@pytest.mark.parametrize("case", CONTACT_POINT_CASES, ids=lambda c: c["name"])
def test_contact_point_is_exactly(definitions, config, case):
    built = {cp["name"]: cp for cp in notification_builders.contact_points(definitions, config)}
    assert built[case["name"]] == case["built"]


@pytest.mark.parametrize("case", CONTACT_POINT_CASES, ids=lambda c: c["name"])
def test_provisioned_contact_point_is_exactly(definitions, config, case):
    rendered = yaml.safe_load(render_files(definitions, config)["grafana/provisioning/alerting/contact-points.yaml"])
    assert [cp for cp in rendered["contactPoints"] if cp["name"] == case["name"]] == [case["provisioned"]]
