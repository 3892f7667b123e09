"""Alert definitions -> Grafana-managed rule groups and a Prometheus rule file.

Both come from the same ResolvedAlert: same name, expression, threshold, `for`,
labels and annotations. Grafana evaluates query A (the value expression) and the
threshold expression B on it; Prometheus evaluates `(A) op threshold`.
"""
from __future__ import annotations

import re
from collections import defaultdict

from reward_obs.builders.access import folder_of_group
from reward_obs.builders.notifications import policy_tree, rule_notification_settings
from reward_obs.builders.runbook_dashboard import runbook_url
from reward_obs.catalog.config import StackConfig
from reward_obs.lang import promql
from reward_obs.lang.dashboard_queries import label_values_query
from reward_obs.model.definitions import Definitions, ResolvedAlert
from reward_obs.model.lookup import required
from reward_obs.model.names import LOKI_DATASOURCE_TYPE, PROMETHEUS_DATASOURCE_TYPE, TEAM, rule_uid

EVALUATION_INTERVAL = "1m"
QUERY_REF, CONDITION_REF = "A", "B"
# Query-model fields Grafana fills in and returns; sending them avoids a perpetual diff.
INTERVAL_MS = 1000
MAX_DATA_POINTS = 43200
RELATIVE_RANGE_SECONDS = 600
_GRAFANA_THRESHOLD_TYPE = {">": "gt", "<": "lt"}


def resolved_alerts(definitions: Definitions, config: StackConfig) -> list[ResolvedAlert]:
    """Every alert with the stack's overrides applied, sorted by name."""
    return sorted(
        (rule.resolved(config.overrides(rule.name)) for rule in definitions.alerts),
        key=lambda a: a.name,
    )


def labels(alert: ResolvedAlert, config: StackConfig) -> dict:
    return {**alert.rule.labels, "severity": alert.rule.severity, "team": TEAM, "environment": config.environment}


def dashboard_url(alert: ResolvedAlert, definitions: Definitions, config: StackConfig) -> str:
    """The alert's panel. When the panel shows one value of a single-select variable (one
    campaign) and the alert's result carries that variable's label, the link selects the
    alerting value (`&var-campaign={{ $labels.campaign_id | urlquery }}`), so it opens on
    the campaign that fired, not on the first one. `urlquery` (a Go text/template built-in,
    in Prometheus' and Grafana's annotation templates alike) escapes the value, so a `&` or
    `#` in it cannot end the parameter or add another one."""

    rule = alert.rule
    dashboard = required(definitions.dashboard(rule.dashboard_uid), f"{rule.name}: dashboard {rule.dashboard_uid}")
    panel = required(dashboard.panel(rule.panel_key), f"{rule.name}: panel {rule.panel_key}")
    url = config.panel_url(rule.dashboard_uid, panel.id)
    if not rule.is_promql:
        return url
    result_labels = promql.output_labels(promql.parse(alert.expr), required(definitions.series_contract, "the metrics contract"))
    for v in dashboard.variables:
        uses = re.compile(rf"\$\{{?{re.escape(v['name'])}\b")
        if v.get("include_all", True) or "query" not in v or not any(uses.search(q.expr) for q in panel.queries):
            continue
        _, label = label_values_query(v["query"])
        if label in result_labels:
            url += f"&var-{v['name']}={{{{ $labels.{label} | urlquery }}}}"
    return url


def rule_annotations(alert: ResolvedAlert, definitions: Definitions, config: StackConfig) -> dict:
    rule = alert.rule
    return {
        "summary": alert.summary,
        "description": alert.description,
        "runbook_url": runbook_url(definitions, config, rule.runbook_file, rule.runbook_anchor),
        "dashboard_url": dashboard_url(alert, definitions, config),
    }


def _grafana_text(text: str) -> str:
    # Prometheus templates expose the sample as $value; Grafana as $values.<refId>.Value.
    return re.sub(r"\$value\b", f"$values.{QUERY_REF}.Value", text)


def grafana_rule(alert: ResolvedAlert, definitions: Definitions, config: StackConfig) -> dict:
    """One rule in Grafana's provisioning shape (the same shape its API returns)."""

    rule = alert.rule
    dashboard = required(definitions.dashboard(rule.dashboard_uid), f"{rule.name}: dashboard {rule.dashboard_uid}")
    panel = required(dashboard.panel(rule.panel_key), f"{rule.name}: panel {rule.panel_key}")
    notes = {k: _grafana_text(v) for k, v in rule_annotations(alert, definitions, config).items()}
    notes["__dashboardUid__"] = rule.dashboard_uid
    notes["__panelId__"] = str(panel.id)
    return {
        "uid": rule_uid(rule.name),
        "title": rule.name,
        "condition": CONDITION_REF,
        "data": [
            {
                "refId": QUERY_REF,
                "relativeTimeRange": {"from": RELATIVE_RANGE_SECONDS, "to": 0},
                "datasourceUid": _datasource_uid(rule, config),
                "model": _query_model(alert, config),
            },
            {
                "refId": CONDITION_REF,
                "relativeTimeRange": {"from": 0, "to": 0},
                "datasourceUid": "__expr__",
                "model": {
                    "refId": CONDITION_REF,
                    "datasource": {"type": "__expr__", "uid": "__expr__"},
                    "type": "threshold",
                    "expression": QUERY_REF,
                    "conditions": [{"evaluator": {"type": _GRAFANA_THRESHOLD_TYPE[rule.op], "params": [alert.threshold]}}],
                    "intervalMs": INTERVAL_MS,
                    "maxDataPoints": MAX_DATA_POINTS,
                },
            },
        ],
        # The rule's own panel link: what Grafana stores as the rule's dashboard and panel
        # (and filters the panel's alert tab by). File provisioning reads these fields
        # (pkg/services/provisioning/alerting/rules_types.go AlertRuleV1: dashboardUid,
        # panelId); the provisioning API behind the Pulumi provider reads the two
        # annotations above instead (AlertRule.SetDashboardAndPanelFromAnnotations).
        "dashboardUid": rule.dashboard_uid,
        "panelId": panel.id,
        "noDataState": rule.no_data_state,
        "execErrState": rule.exec_err_state,
        "for": alert.for_,
        "annotations": notes,
        "labels": labels(alert, config),
        "isPaused": not config.rewards_live,
        **({} if config.owns_policy_tree else
           {"notification_settings": rule_notification_settings(policy_tree(definitions), labels(alert, config))}),
    }


def _datasource_uid(rule, config: StackConfig) -> str:
    return config.prometheus_datasource_uid if rule.is_promql else config.loki_datasource_uid


def _query_model(alert: ResolvedAlert, config: StackConfig) -> dict:
    model = {
        "refId": QUERY_REF,
        "datasource": {"type": PROMETHEUS_DATASOURCE_TYPE if alert.rule.is_promql else LOKI_DATASOURCE_TYPE,
                       "uid": _datasource_uid(alert.rule, config)},
        "expr": alert.expr,
        "intervalMs": INTERVAL_MS,
        "maxDataPoints": MAX_DATA_POINTS,
    }
    if alert.rule.is_promql:
        model.update({"instant": True, "range": False})
    else:
        model["queryType"] = "instant"
    return model


def grafana_rule_groups(definitions: Definitions, config: StackConfig) -> list[dict]:
    """Rule groups in provisioning shape, groups and rules sorted by name."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for alert in resolved_alerts(definitions, config):
        groups[alert.rule.group].append(grafana_rule(alert, definitions, config))
    return [
        {"orgId": config.org_id, "name": name, "folder": folder_of_group(definitions, name).title, "interval": EVALUATION_INTERVAL,
         "rules": rules}
        for name, rules in sorted(groups.items())
    ]


def prometheus_rule_file(definitions: Definitions, config: StackConfig) -> dict:
    """The same alerts as a Prometheus rule file (for promtool, and Prometheus users).
    Log-based (Loki) rules are Grafana's alone and are left out."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for alert in resolved_alerts(definitions, config):
        if not alert.rule.is_promql:
            continue
        groups[alert.rule.group].append({
            "alert": alert.name,
            "expr": alert.condition_expr,
            "for": alert.for_,
            "labels": labels(alert, config),
            "annotations": rule_annotations(alert, definitions, config),
        })
    return {"groups": [{"name": name, "interval": EVALUATION_INTERVAL, "rules": rules} for name, rules in sorted(groups.items())]}
