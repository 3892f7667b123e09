"""The Grafana side of traceability: the Reward trace dashboard, correlation-ID links
from the operations dashboard, and the log-based alert on events without an ID."""
from __future__ import annotations

import json
import re

from rendered import dashboard, grafana_rules, panels, prometheus_rules

from conftest import ROOT, run_cli
from spec import LOG_ALERTS, OPERATIONS_DASHBOARD_UID, REWARD_STAGES, TRACE_DASHBOARD_UID, TRUST_SAFETY_DASHBOARD_UID

TRACE_LINK = "/d/reward-trace?var-correlation_id=${__value.raw}"


def schema_fields() -> set[str]:
    return set(json.loads((ROOT / "contract/reward_event.schema.json").read_text())["properties"])


def test_trace_dashboard_is_in_the_rewards_folder_with_a_correlation_id_box(out):
    board = dashboard(out, TRACE_DASHBOARD_UID)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["correlation_id"]["type"] == "textbox"
    assert variables["loki"]["type"] == "datasource" and variables["loki"]["query"] == "loki"
    assert all(p["datasource"]["uid"] == "${loki}" for p in panels(board))


def test_trace_dashboard_shows_every_stage_and_says_which_is_missing(out):
    board = dashboard(out, TRACE_DASHBOARD_UID)
    stage_panels = {}
    for panel in panels(board):
        match = re.search(r'stage="([a-z_]+)"', panel["targets"][0]["expr"])
        if match and panel["type"] == "stat":
            stage_panels[match.group(1)] = panel
    assert sorted(stage_panels) == sorted(REWARD_STAGES)
    for stage in ("match_settlement", "reward_allocation", "claim", "payout"):
        assert stage_panels[stage]["fieldConfig"]["defaults"]["noValue"] == "missing", stage


def test_trace_dashboard_lists_events_in_time_order(out):
    board = dashboard(out, TRACE_DASHBOARD_UID)
    [logs] = [p for p in panels(board) if p["type"] == "logs"]
    assert logs["options"]["sortOrder"] == "Ascending"
    assert 'correlation_id="$correlation_id"' in logs["targets"][0]["expr"]


def test_every_logql_field_is_an_event_schema_field(out):
    fields = schema_fields()
    checked = 0
    for uid in (TRACE_DASHBOARD_UID, OPERATIONS_DASHBOARD_UID, TRUST_SAFETY_DASHBOARD_UID):
        for panel in panels(dashboard(out, uid)):
            for target in panel["targets"]:
                if target["datasource"]["type"] != "loki":
                    continue
                pipeline = target["expr"].split("| json", 1)[1]
                used = set(re.findall(r"\|\s*([a-z_]+)\s*(?:=~|!=|=)", pipeline)) | set(re.findall(r"\{\{\.([a-z_]+)\}\}", pipeline))
                assert used - {"__error__"} <= fields, f"{panel['title']}: {used - fields}"
                checked += 1
    assert checked >= 10


def test_operations_tables_link_each_correlation_id_to_the_trace(out):
    # Held claims are trust and safety's; both teams may open the trace (support folder).
    tables = {OPERATIONS_DASHBOARD_UID: "Failed payouts, by correlation ID", TRUST_SAFETY_DASHBOARD_UID: "Held claims, by correlation ID"}
    for uid, title in tables.items():
        overrides = {p["title"]: p for p in panels(dashboard(out, uid))}[title]["fieldConfig"]["overrides"]
        [link] = [o for o in overrides if o["matcher"]["options"] == "correlation_id"]
        assert link["properties"][0]["value"][0]["url"] == TRACE_LINK


def test_payout_duration_panel_shows_exemplars(out):
    board = {p["title"]: p for p in panels(dashboard(out, OPERATIONS_DASHBOARD_UID))}
    assert board["Payout duration p95"]["targets"][0]["exemplar"] is True


def test_log_alert_is_grafana_only_with_runbook_and_panel(out):
    grafana, prom = grafana_rules(out), prometheus_rules(out)
    for name, severity in LOG_ALERTS.items():
        rule = grafana[name]
        assert name not in prom
        assert rule["labels"]["severity"] == severity and rule["labels"]["team"] == "rewards"
        assert rule["data"][0]["model"]["datasource"]["type"] == "loki"
        assert 'correlation_id=""' in rule["data"][0]["model"]["expr"]
        assert rule["annotations"]["runbook_url"].endswith("/runbooks/reward-traceability.md#rewardeventsmissingcorrelationid")
        panel = {p["id"]: p for p in panels(dashboard(out, OPERATIONS_DASHBOARD_UID))}[int(rule["annotations"]["__panelId__"])]
        assert 'correlation_id=""' in panel["targets"][0]["expr"]


def test_a_logql_field_not_in_the_event_contract_is_refused(repo_copy):
    path = repo_copy / "dashboards/reward-trace.yaml"
    path.write_text(path.read_text().replace("ref={{.provider_reference}}", "ref={{.provider_ref}}"))
    result = run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"), "validate")
    assert result.returncode == 1
    assert "dashboards/reward-trace.yaml:rows[1].panels[1].queries[0].expr: event field 'provider_ref' is not in contract/reward_event.schema.json" in result.stderr


def test_a_log_alert_reading_an_unknown_field_is_refused(repo_copy):
    path = repo_copy / "alert_rules/RewardEventsMissingCorrelationId.yaml"
    path.write_text(path.read_text().replace('correlation_id=""', 'correlationId=""'))
    result = run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"), "validate")
    assert result.returncode == 1
    assert "alert_rules/RewardEventsMissingCorrelationId.yaml:expr: event field 'correlationId' is not in" in result.stderr
