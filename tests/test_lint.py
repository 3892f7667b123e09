"""`reward-obs lint`: every check passes on the shipped definitions and fails on a
fixture that has exactly the pitfall it looks for."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.catalog.definitions import load_definitions
from reward_obs.checks import lint as lint_module
from reward_obs.sinks.files import render_files

from conftest import ROOT, run_cli, unbind_runbook_numbers


def run_lint(root: Path, config_changes: dict | None = None):
    definitions = load_definitions(root)
    values = read_stack_file(root / "Pulumi.selfhost.yaml") | (config_changes or {})
    config = load_config(values, "stack", definitions)
    return lint_module.lint(definitions, config, render_files(definitions, config))


def edit_alert(root: Path, name: str, **changes) -> None:
    path = root / "alert_rules" / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    unbind_runbook_numbers(root, name)  # lint, not the runbook drift check, is under test


def checks(report) -> set[tuple[str, str]]:
    return {(Path(f.file).name, f.check) for f in report.findings}


def test_shipped_definitions_are_lint_clean():
    report = run_lint(ROOT)
    assert report.findings == []
    # The documented exceptions are listed with their reasons.
    assert [(e.alert, e.check) for e in report.exceptions] == [("RewardClaimsStopped", "for-window"),
                                                               ("RewardClaimsStoppedSmallCampaign", "for-window"),
                                                               ("RewardPayoutProviderOutage", "for-window"),
                                                               ("RewardPoolFundingSourceInvalid", "counter-without-rate")]
    assert all(len(e.reason) > 20 for e in report.exceptions)


DUP = "RewardDuplicatePayoutAttempt"
FAILING = {
    "alert-comparison": (DUP, {"expr": "sum by (provider) (increase(reward_payout_duplicate_attempts_total[$window])) > bool 0"}, None),
    "counter-without-rate": (DUP, {"expr": "sum by (provider) (reward_payout_duplicate_attempts_total)", "params": None,
                                   "description": "A duplicate payout was blocked at {{ $labels.provider }} and must be looked at."}, None),
    "range-window": (DUP, {}, {"scrapeInterval": "5m"}),
    "ratio-guard": ("RewardPayoutWebhookFailing", {
        "expr": ('sum by (provider) (rate(reward_payout_webhooks_total{result="failed"}[$window]))\n/\n'
                 "sum by (provider) (rate(reward_payout_webhooks_total[$window]))"),
        "params": {"window": "5m"}}, None),
    "dead-man": ("RewardMetricsAbsent", {"for": "1m"}, {"scrapeInterval": "1m"}),
    "template-label": (DUP, {"summary": "A duplicate payout for pool {{ $labels.pool_id }} was blocked"}, None),
    "value-in-label": (DUP, {"labels": {"attempts": "{{ $value }}"}}, None),
    "for-interval": (DUP, {"for": "30s"}, None),
    # The claim-volume rule as it was, 10m of `for` on a 15m window.
    "for-window": ("RewardClaimVolumeAbnormal", {"for": "10m"}, None),
    "no-data-state": ("RewardPoolLow", {"no_data_state": "Alerting"}, None),
}


@pytest.mark.parametrize("check", sorted(FAILING))
def test_check_fails_on_its_pitfall(repo_copy, check):
    alert, changes, config_changes = FAILING[check]
    edit_alert(repo_copy, alert, **changes)
    report = run_lint(repo_copy, config_changes)
    assert (f"{alert}.yaml", check) in checks(report), [str(f) for f in report.findings]


def test_for_window_judges_counts_and_ratios_not_single_events_or_burn_rates(repo_copy):
    # A count of harmful events where one is the fault: `> 0`, no ratio of rates.
    edit_alert(repo_copy, "RewardPayoutDoublePaid", **{"for": "0s"})
    edit_alert(repo_copy, "RewardPoolExhausted", **{"for": "1m"})
    # A multiwindow burn rate (1h and 5m): protected by its long window.
    edit_alert(repo_copy, "RewardPayoutWebhookFailing", **{"for": "2m", "params": {"window": "1h", "min_deliveries": 20}, "expr": (
        'sum by (provider) (rate(reward_payout_webhooks_total{result="failed"}[$window]))\n/\n'
        'sum by (provider) (rate(reward_payout_webhooks_total[$window])) > 0.1\n'
        'and on (provider)\n'
        'sum by (provider) (rate(reward_payout_webhooks_total{result="failed"}[5m]))\n/\n'
        'sum by (provider) (rate(reward_payout_webhooks_total[5m]))\n'
        'and on (provider) sum by (provider) (increase(reward_payout_webhooks_total[$window])) >= $min_deliveries')})
    found = {c for c in checks(run_lint(repo_copy)) if c[1] == "for-window"}
    assert found == set()
    # A threshold above one event is a count a burst can reach: judged again.
    edit_alert(repo_copy, "RewardPayoutDoublePaid", condition={"op": ">", "threshold": 2})
    assert ("RewardPayoutDoublePaid.yaml", "for-window") in checks(run_lint(repo_copy))


def test_gauge_ratio_without_a_guarded_divisor_fails(repo_copy):
    edit_alert(repo_copy, "RewardPoolLow", expr="min by (pool_id, campaign_id, currency) (reward_pool_remaining / reward_pool_budget)")
    assert ("RewardPoolLow.yaml", "ratio-guard") in checks(run_lint(repo_copy))


def test_non_dead_man_alert_that_watches_the_scrape_fails(repo_copy):
    edit_alert(repo_copy, "RewardPoolLow", expr=(
        "min by (pool_id, campaign_id, currency) (reward_pool_remaining / (reward_pool_budget > 0))\n"
        "and on () max(up{job=\"rewards\"}) > 0"))
    report = run_lint(repo_copy)
    assert any(f.check == "dead-man" and "restart" in f.message for f in report.findings)


def test_an_exception_switches_a_check_off_only_with_a_reason(repo_copy):
    edit_alert(repo_copy, "RewardPoolFundingSourceInvalid", lint_exceptions=None)
    assert ("RewardPoolFundingSourceInvalid.yaml", "counter-without-rate") in checks(run_lint(repo_copy))


def test_exception_for_an_unknown_check_fails(repo_copy):
    edit_alert(repo_copy, DUP, lint_exceptions={"no-such-check": "because it is a test of unknown checks"})
    assert ("RewardDuplicatePayoutAttempt.yaml", "lint-exception") in checks(run_lint(repo_copy))


def test_group_interval_must_be_a_multiple_of_ten_seconds(monkeypatch):
    from reward_obs.builders import alerts

    monkeypatch.setattr(alerts, "EVALUATION_INTERVAL", "45s")
    assert {f.check for f in run_lint(ROOT).findings} >= {"group-interval"}


def test_repeat_interval_shorter_than_group_interval_fails(repo_copy):
    path = repo_copy / "notifications/routing.yaml"
    data = yaml.safe_load(path.read_text())
    [team] = [r for r in data["policy"]["routes"] if r.get("matchers") == {"team": "rewards"}]
    team["repeat_interval"] = "1m"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert ("routing.yaml", "repeat-interval") in checks(run_lint(repo_copy))


def test_datasource_alerts_must_reach_the_rewards_route(repo_copy):
    path = repo_copy / "notifications/routing.yaml"
    data = yaml.safe_load(path.read_text())
    [team] = [r for r in data["policy"]["routes"] if r.get("matchers") == {"team": "rewards"}]
    team["matchers"] = {"team": "payments"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    report = run_lint(repo_copy)
    assert any(f.check == "datasource-alert-routing" and "DatasourceError" in f.message for f in report.findings)


@pytest.mark.parametrize("board, old, new, field", [
    # The forbidden-funding stat as a range query: the per-pool counter at every step.
    ("reward-operations", "        # The counter is per pool and the stat shows the latest total: one evaluation.\n        instant: true\n", "",
     "rows[1].panels[6].queries[0].expr"),
    # A campaign panel that stops selecting one campaign.
    ("reward-trust-safety", 'reward_claims_held{campaign_id="$campaign"}', 'reward_claims_held{campaign_id=~".+"}',
     "rows[1].panels[1].queries[0].expr"),
    # The top-10 bar gauge turned into a range query over every campaign's recorded ratio.
    ("reward-trust-safety", "instant: true\n        queries:\n          - expr: topk(10,", "queries:\n          - expr: topk(10,",
     "rows[0].panels[3].queries[0].expr"),
])
def test_a_range_panel_reading_every_pool_or_campaign_fails(repo_copy, board, old, new, field):
    path = repo_copy / f"dashboards/{board}.yaml"
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    report = run_lint(repo_copy)
    found = [f for f in report.findings if f.check == "panel-scale"]
    assert [(f.file, f.field) for f in found] == [(f"dashboards/{board}.yaml", field)], [str(f) for f in report.findings]


def test_lint_runs_the_grafana_provisioning_validator(definitions, config):
    """An unescaped `$` in a rendered label (read as an environment variable) and the other
    provisioning checks: tests/test_grafana_provisioning.py holds their negative fixtures."""
    from reward_obs.sinks.files import render_files

    files = render_files(definitions, config)
    path = "grafana/provisioning/alerting/rules.yaml"
    files[path] = files[path].replace("team: rewards", "team: $TEAM", 1)
    findings = [f for f in lint_module.lint(definitions, config, files).findings if f.check == "grafana-provisioning"]
    assert len(findings) == 1 and findings[0].field.endswith(".labels") and "'$TEAM'" in findings[0].message, findings


def test_telegram_message_check_catches_a_long_and_a_broken_template(repo_copy):
    template = repo_copy / "notifications/templates/reward.tmpl"
    template.write_text('{{ define "reward.title" }}t{{ end }}{{ define "reward.message" }}{{ range .Alerts }}'
                        '<b>{{ .Annotations.summary }} <a href="{{ .Annotations.runbook_url }}">runbook</a>\n{{ end }}{{ end }}')
    report = run_lint(repo_copy)
    messages = [f.message for f in report.findings if f.check == "telegram-message"]
    assert any("Telegram refuses" in m for m in messages) and any("never closed" in m or "closes nothing" in m for m in messages)


def test_route_follows_continue_and_falls_back_to_the_parent():
    tree = {"contact_point": "root", "routes": [{"matchers": [("team", "=", "rewards")], "contact_point": "team", "routes": [
        {"matchers": [("severity", "=", "critical")], "contact_point": "page", "continue": True},
        {"matchers": [("severity", "=", "critical")], "contact_point": "chat"}]}]}
    assert lint_module.route(tree, {"team": "rewards", "severity": "critical"}) == ["page", "chat"]
    assert lint_module.route(tree, {"team": "rewards", "severity": "warning"}) == ["team"]
    assert lint_module.route(tree, {"team": "other"}) == ["root"]


def test_cli_reports_file_field_check_and_exits_nonzero(repo_copy):
    edit_alert(repo_copy, "RewardPoolLow", no_data_state="Alerting")
    result = run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"), "lint")
    assert result.returncode == 1
    assert "alert_rules/RewardPoolLow.yaml:no_data_state: no-data-state: maps no data to Alerting" in result.stdout
    assert run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"), "validate").returncode == 1


def test_cli_lint_on_the_shipped_definitions_lists_the_exception():
    result = run_cli("lint")
    assert result.returncode == 0, result.stdout
    assert "RewardPoolFundingSourceInvalid: counter-without-rate:" in result.stdout
