"""Contact points, the policy tree and the message template, as Grafana provisions them,
and the template rendered by a real Go-template renderer (amtool)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from reward_obs.checks.lint import html_problems

from helpers import render_message, sample_alert

TELEGRAM_LIMIT = 4096


def provisioning(out: Path, name: str) -> dict:
    return yaml.safe_load((out / "grafana/provisioning/alerting" / name).read_text())


def test_contact_points_read_credentials_from_the_environment(out):
    points = {cp["name"]: cp["receivers"][0] for cp in provisioning(out, "contact-points.yaml")["contactPoints"]}
    assert points["rewards-telegram"]["type"] == "telegram"
    assert points["rewards-telegram"]["settings"]["bottoken"] == "$__env{REWARD_OBS_TELEGRAM_BOT_TOKEN}"
    assert points["rewards-telegram"]["settings"]["parse_mode"] == "HTML"
    assert points["rewards-oncall-webhook"]["settings"]["url"] == "$__env{REWARD_OBS_ONCALL_WEBHOOK_URL}"
    assert points["rewards-email"]["type"] == "email" and "@" in points["rewards-email"]["settings"]["addresses"]
    # Telegram and the webhook get the HTML message; email plain text (its notifier wraps
    # the message in Grafana's own HTML template: test_email_message_is_plain_text).
    assert points["rewards-telegram"]["settings"]["message"] == '{{ template "reward.message" . }}'
    assert points["rewards-oncall-webhook"]["settings"]["message"] == '{{ template "reward.message" . }}'
    assert points["rewards-email"]["settings"]["message"] == '{{ template "reward.text" . }}'


INTERPOLATED_OK = re.compile(r"\$__env\{[A-Z0-9_]+\}|\$\$")


def _unescaped_dollars(value) -> list[str]:
    if isinstance(value, dict):
        return [d for v in value.values() for d in _unescaped_dollars(v)]
    if isinstance(value, list):
        return [d for v in value for d in _unescaped_dollars(v)]
    if isinstance(value, str) and "$" in INTERPOLATED_OK.sub("", value):
        return [value]
    return []


def test_no_bare_dollar_where_grafana_interpolates_environment_variables(out):
    """Grafana's file provisioning reads `$X` in labels, settings and policies as an
    environment variable (annotations and query models are left alone)."""
    rules = provisioning(out, "rules.yaml")
    labels = [r["labels"] for g in rules["groups"] for r in g["rules"]]
    assert _unescaped_dollars(labels) == []
    assert _unescaped_dollars(provisioning(out, "contact-points.yaml")) == []
    assert _unescaped_dollars(provisioning(out, "policies.yaml")) == []
    assert _unescaped_dollars(provisioning(out, "templates.yaml")) == []


def test_label_with_a_dollar_is_escaped():
    from reward_obs.sinks.files import escape_env

    assert escape_env("{{ $labels.provider }}") == "{{ $$labels.provider }}"


def _team_route(root: dict) -> dict:
    [team] = [r for r in root["routes"] if r["object_matchers"] == [["team", "=", "rewards"]]]
    return team


def test_heartbeat_reaches_only_its_dead_man_contact_point_every_5_minutes(out, definitions, tmp_path):
    """An always-firing alert, routed to its own contact point whose URL is a
    secret; no resolved message (the dead-man service would take it as a ping)."""
    points = {cp["name"]: cp["receivers"][0] for cp in provisioning(out, "contact-points.yaml")["contactPoints"]}
    heartbeat = points["rewards-heartbeat"]
    assert heartbeat["type"] == "webhook" and heartbeat["settings"]["url"] == "$__env{REWARD_OBS_HEARTBEAT_WEBHOOK_URL}"
    assert heartbeat["disableResolveMessage"] is True
    assert all(p["disableResolveMessage"] is False for name, p in points.items() if name != "rewards-heartbeat")
    [root] = provisioning(out, "policies.yaml")["policies"]
    first = root["routes"][0]  # before the team route, which would post it to chat
    assert (first["object_matchers"], first["receiver"], first["repeat_interval"]) == ([["heartbeat", "=", "true"]], "rewards-heartbeat", "5m")
    rules = {r["alert"]: r for g in yaml.safe_load((out / "prometheus/reward-alerts.rules.yaml").read_text())["groups"]
             for r in g["rules"]}
    beat = rules["RewardHeartbeat"]
    assert beat["expr"] == "(vector(1)) > 0" and beat["for"] == "0s"
    assert _amtool_routes(tmp_path, definitions, {"alertname": "RewardHeartbeat", **beat["labels"]}) == ["rewards-heartbeat"]


def test_policy_routes_by_severity_and_groups_by_campaign_and_provider(out):
    [root] = provisioning(out, "policies.yaml")["policies"]
    team = _team_route(root)
    assert team["object_matchers"] == [["team", "=", "rewards"]]
    assert {"alertname", "campaign_id", "provider"} <= set(team["group_by"])
    routes = [(r["object_matchers"], r["receiver"], r.get("continue", False)) for r in team["routes"]]
    assert ([["severity", "=", "critical"]], "rewards-oncall-webhook", True) in routes
    assert ([["severity", "=", "warning"]], "rewards-telegram", False) in routes
    assert team["repeat_interval"] and team["group_interval"]


def _amtool_routes(tmp_path: Path, definitions, labels: dict) -> list[str]:
    """The receivers Alertmanager's own router picks for these labels (amtool)."""
    from reward_obs.builders.alertmanager import alertmanager_config
    from reward_obs.sinks.files import dump_yaml

    urls = {cp.name: f"http://127.0.0.1:9/{cp.name}" for cp in definitions.routing.contact_points}
    path = tmp_path / "alertmanager.yml"
    path.write_text(dump_yaml(alertmanager_config(definitions, urls)))
    result = subprocess.run(["amtool", "config", "routes", "test", f"--config.file={path}",
                             *[f"{k}={v}" for k, v in sorted(labels.items())]], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(",")


def test_forbidden_funding_pages_once_then_reminds_daily(out, definitions, tmp_path):
    """Finance takes days; on-call is paged once (again only after 4 days,
    under the 5-day notification log of Grafana and Alertmanager), chat daily, instead of
    every hour like other critical alerts."""
    rules = {r["alert"]: r for g in yaml.safe_load((out / "prometheus/reward-alerts.rules.yaml").read_text())["groups"]
             for r in g["rules"]}
    funding = {"alertname": "RewardPoolFundingSourceInvalid", **rules["RewardPoolFundingSourceInvalid"]["labels"]}
    assert funding["reminder"] == "daily"
    assert _amtool_routes(tmp_path, definitions, funding) == ["rewards-oncall-webhook", "rewards-telegram"]
    [root] = provisioning(out, "policies.yaml")["policies"]
    team = _team_route(root)
    reminder = [(r["receiver"], r["repeat_interval"], r.get("continue", False)) for r in team["routes"]
                if ["reminder", "=", "daily"] in r["object_matchers"]]
    assert reminder == [("rewards-oncall-webhook", "4d", True), ("rewards-telegram", "1d", False)]
    hourly = [r["repeat_interval"] for r in team["routes"] if r["object_matchers"] == [["severity", "=", "critical"]]]
    assert hourly == ["1h", "1h"]
    # Every other critical alert still reaches the hourly routes, not the daily ones.
    exhausted = {"alertname": "RewardPoolExhausted", **rules["RewardPoolExhausted"]["labels"]}
    assert "reminder" not in exhausted
    assert _amtool_routes(tmp_path, definitions, exhausted) == ["rewards-oncall-webhook", "rewards-telegram"]


SUMMARY_MAX = 200  # schemas/alert_rule.schema.json caps summaries at 200 characters


def test_message_shows_summary_runbook_and_dashboard_link():
    text = render_message([sample_alert(1)])
    assert "Payout provider ton_wallet &lt;1&gt; &amp; friends are down" in text
    assert 'href="https://runbooks.reward-observability.invalid/elmental/reward-observability/blob/main/runbooks/payout-provider-retry.md#rewardpayoutprovideroutage"' in text
    assert 'href="https://grafana.reward-observability.invalid/d/reward-operations?viewPanel=14&amp;x=1"' in text


@pytest.mark.parametrize("count", [1, 10, 50])
def test_telegram_message_fits_and_is_valid_html(count):
    # Every summary at the schema's maximum length, with characters that grow when escaped.
    longest = ("Pool p-12 & campaign <c-7> " * 10)[:SUMMARY_MAX]
    alerts = [sample_alert(i, summary=longest) for i in range(count)] + [sample_alert(100 + i, "resolved", longest) for i in range(count // 2)]
    text = render_message(alerts)
    assert len(text) < TELEGRAM_LIMIT  # stricter than Telegram, which counts text after parsing entities
    assert html_problems(text) == []  # the tags Telegram's HTML parse mode accepts, nested
    assert f"Firing: {count}" in text


def test_title_names_status_and_alert():
    assert render_message([sample_alert(1)], "reward.title").strip() == "[FIRING] RewardPayoutProviderOutage"
