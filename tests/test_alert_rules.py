"""Every required alert exists in both renders, with its labels, annotations, runbook
link and panel link, and the Grafana and Prometheus forms say the same thing."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.lang import promql
from reward_obs.lang.markdown import headings

from conftest import ROOT, run_cli, unbind_runbook_numbers
from helpers import dashboard, grafana_rules, panels, prometheus_rules, raw_selectors
from spec import LOG_ALERTS, OPERATIONS_DASHBOARD_UID, REQUIRED_ALERTS, TRUST_SAFETY_ALERTS, TRUST_SAFETY_DASHBOARD_UID

RUNBOOK_URL = re.compile(r"^(?P<base>https?://\S+)/runbooks/(?P<file>[a-z0-9-]+\.md)#(?P<anchor>[a-z0-9-]+)$")


ALERTS = sorted(REQUIRED_ALERTS)
PROMQL_ALERTS = sorted(set(REQUIRED_ALERTS) - set(LOG_ALERTS))


def alert_problems(out: Path, name: str) -> list[str]:
    problems = []
    for kind, rules in (("grafana", grafana_rules(out)), ("prometheus", prometheus_rules(out))):
        if kind == "prometheus" and name in LOG_ALERTS:
            continue  # LogQL: Grafana evaluates it, Prometheus cannot
        rule = rules.get(name)
        if rule is None:
            problems.append(f"{kind}: {name} missing")
            continue
        if rule["labels"].get("severity") != REQUIRED_ALERTS[name] or rule["labels"].get("team") != "rewards":
            problems.append(f"{kind}: {name} labels {rule['labels']}")
        for key in ("summary", "description", "runbook_url"):
            if not rule["annotations"].get(key, "").strip():
                problems.append(f"{kind}: {name} has no {key}")
    return problems


@pytest.mark.parametrize("name", ALERTS)
def test_alert_is_rendered_with_severity_team_and_annotations(out, name):
    assert alert_problems(out, name) == []


def test_deleting_an_alert_definition_is_caught(repo_copy, tmp_path):
    (repo_copy / "alert_rules" / "RewardDuplicatePayoutAttempt.yaml").unlink()
    unbind_runbook_numbers(repo_copy, "RewardDuplicatePayoutAttempt")
    out = tmp_path / "out"
    assert run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"),
                   "render", "--out", str(out)).returncode == 0
    assert alert_problems(out, "RewardDuplicatePayoutAttempt") == ["grafana: RewardDuplicatePayoutAttempt missing",
                                                                  "prometheus: RewardDuplicatePayoutAttempt missing"]


def runbook_link_problem(out: Path, root: Path, name: str) -> str | None:
    url = grafana_rules(out)[name]["annotations"]["runbook_url"]
    match = RUNBOOK_URL.match(url)
    if not match:
        return f"{name}: runbook_url {url!r} is not <base>/runbooks/<file>.md#<anchor>"
    path = root / "runbooks" / match["file"]
    if not path.is_file():
        return f"{name}: {path.name} does not exist"
    if not [h for h in headings(path.read_text()) if h.anchor == match["anchor"]]:
        return f"{name}: {path.name} has no heading #{match['anchor']}"
    return None


@pytest.mark.parametrize("name", ALERTS)
def test_runbook_url_lands_on_an_existing_heading(out, name):
    assert runbook_link_problem(out, ROOT, name) is None


@pytest.mark.parametrize("name", PROMQL_ALERTS)
def test_runbook_url_uses_the_configured_base(out, name):
    base = read_stack_file(ROOT / "Pulumi.selfhost.yaml")["runbookBaseUrl"]
    assert RUNBOOK_URL.match(prometheus_rules(out)[name]["annotations"]["runbook_url"])["base"] == base


def test_removed_runbook_heading_is_caught(repo_copy, tmp_path, out):
    path = repo_copy / "runbooks" / "payout-provider-retry.md"
    path.write_text(path.read_text().replace("## RewardPayoutProviderOutage", "## Provider outage"))
    # The loader refuses to render at all ...
    result = run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"), "validate")
    assert result.returncode == 1
    assert "alert_rules/RewardPayoutProviderOutage.yaml:runbook: runbooks/payout-provider-retry.md has no heading with anchor #rewardpayoutprovideroutage" in result.stderr
    # ... and the rendered links, checked against that copy, would point nowhere.
    assert [p for name in ALERTS if (p := runbook_link_problem(out, repo_copy, name))] == [
        "RewardPayoutProviderOutage: payout-provider-retry.md has no heading #rewardpayoutprovideroutage"]


@pytest.mark.parametrize("name", ALERTS)
def test_alert_links_to_a_panel_that_shows_its_metrics(out, definitions, name):
    rule = grafana_rules(out)[name]
    notes = rule["annotations"]
    # The abuse alerts link the panel their readers, trust and safety, can open.
    uid = TRUST_SAFETY_DASHBOARD_UID if name in TRUST_SAFETY_ALERTS else OPERATIONS_DASHBOARD_UID
    assert notes["__dashboardUid__"] == uid
    panel = {p["id"]: p for p in panels(dashboard(out, uid))}.get(int(notes["__panelId__"]))
    assert panel is not None, f"{name} links to panel {notes['__panelId__']}, which does not exist"
    base, _, selected = notes["dashboard_url"].partition("&")
    assert base.endswith(f"/d/{uid}?viewPanel={panel['id']}")
    if "$campaign" in str(panel["targets"]):  # a one-campaign panel opens on the campaign that fired
        assert selected == "var-campaign={{ $labels.campaign_id | urlquery }}"
    else:
        assert selected == ""
    if name in LOG_ALERTS:
        return  # log-based: checked in test_trace.py
    # An SLO alert reads recorded error ratios: the metrics they are recorded from count.
    rules = definitions.recording_rules
    alert_metrics = {s.metric for s in raw_selectors(rule["data"][0]["model"]["expr"], rules)}
    if not alert_metrics:  # the heartbeat (vector(1)) reads nothing; its panel is the scrape's
        assert name == "RewardHeartbeat"
        return
    # A panel reading a recorded series shows the metrics its rule reads.
    panel_metrics = {s.metric for t in panel["targets"] for s in raw_selectors(t["expr"], rules)}
    assert alert_metrics & panel_metrics, f"{name} links to {panel['title']!r}, which shows none of {alert_metrics}"


def test_grafana_and_prometheus_render_the_same_alerts(out):
    assert set(grafana_rules(out)) - set(LOG_ALERTS) == set(prometheus_rules(out))


@pytest.mark.parametrize("name", PROMQL_ALERTS)
def test_grafana_and_prometheus_rules_are_the_same_alert(out, name):
    g, p = grafana_rules(out)[name], prometheus_rules(out)[name]
    query, threshold = g["data"][0]["model"], g["data"][1]["model"]
    assert g["condition"] == threshold["refId"] and threshold["expression"] == query["refId"]
    evaluator = threshold["conditions"][0]["evaluator"]
    combined = f"({query['expr']}) {({'gt': '>', 'lt': '<'})[evaluator['type']]} {evaluator['params'][0]}"
    assert promql.parse(combined).prettify() == promql.parse(p["expr"]).prettify()
    assert g["for"] == p["for"] and g["group"] == p["group"]
    assert g["labels"] == p["labels"]
    for key in ("runbook_url", "dashboard_url"):
        assert g["annotations"][key] == p["annotations"][key]


def test_prometheus_rule_file_passes_promtool(out):
    result = subprocess.run(["promtool", "check", "rules", str(out / "prometheus/reward-alerts.rules.yaml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(REQUIRED_ALERTS)} rules found" in result.stdout


@pytest.mark.parametrize("name", ALERTS)
def test_no_data_pages_only_for_the_dead_man_rule(out, name):
    rule = grafana_rules(out)[name]
    assert rule["noDataState"] == ("Alerting" if name == "RewardMetricsAbsent" else "OK")
    # A query error stops the heartbeat (the dead-man service then alarms) rather than
    # raising DatasourceError with its labels, which would reach the service as a ping.
    assert rule["execErrState"] == ("OK" if name == "RewardHeartbeat" else "Error")


def test_rules_are_paused_until_rewards_are_live(definitions, out):
    assert all(rule["isPaused"] is True for rule in grafana_rules(out).values())
    values = read_stack_file(ROOT / "Pulumi.selfhost.yaml") | {"rewardsLive": True}
    from reward_obs.builders.alerts import grafana_rule_groups

    live = load_config(values, "live", definitions)
    assert all(r["isPaused"] is False for g in grafana_rule_groups(definitions, live) for r in g["rules"])


def test_threshold_override_changes_only_that_rule(definitions):
    from reward_obs.builders.alerts import prometheus_rule_file

    values = read_stack_file(ROOT / "Pulumi.selfhost.yaml")
    base = load_config(values, "base", definitions)
    tuned = load_config(values | {"alertOverrides": {"RewardPoolLow": {"threshold": 0.2, "for": "15m"}}}, "tuned", definitions)
    before = {r["alert"]: r for g in prometheus_rule_file(definitions, base)["groups"] for r in g["rules"]}
    after = {r["alert"]: r for g in prometheus_rule_file(definitions, tuned)["groups"] for r in g["rules"]}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"RewardPoolLow"}
    assert after["RewardPoolLow"]["expr"].endswith("< 0.2") and after["RewardPoolLow"]["for"] == "15m"


def test_window_override_reaches_the_expression(definitions):
    values = read_stack_file(ROOT / "Pulumi.selfhost.yaml")
    tuned = load_config(values | {"alertOverrides": {"RewardPayoutWebhookFailing": {"params": {"window": "10m"}}}}, "t", definitions)
    resolved = definitions.alert("RewardPayoutWebhookFailing").resolved(tuned.alert_overrides["RewardPayoutWebhookFailing"])
    assert "[10m]" in resolved.expr and "[5m]" not in resolved.expr and "10m" in resolved.description


def test_bad_override_is_refused(definitions):
    from reward_obs.model.errors import DefinitionError

    values = read_stack_file(ROOT / "Pulumi.selfhost.yaml")
    with pytest.raises(DefinitionError) as err:
        load_config(values | {"alertOverrides": {"RewardPoolLow": {"threshold": "low"}}}, "stack.yaml", definitions)
    assert "stack.yaml:reward-observability:alertOverrides.RewardPoolLow.threshold: 'low' is not of type 'number'" in str(err.value)
    with pytest.raises(DefinitionError) as err:
        load_config(values | {"alertOverrides": {"RewardPayoutWebhookFailing": {"params": {"window": "5 minutes"}}}}, "stack.yaml", definitions)
    assert "alertOverrides.RewardPayoutWebhookFailing: makes the rule's query invalid: not valid PromQL" in str(err.value)


@pytest.mark.parametrize(("alert", "param", "value"), [
    ("RewardPoolEmptyingSoon", "window", "3h"),
    ("RewardPoolEmptyingSoon", "horizon", "12h"),
    ("RewardPoolFundingSourceOther", "window", "2d"),
])
def test_override_of_a_number_the_query_does_not_read_is_refused(definitions, alert, param, value):
    """These windows live in recording_rules/reward-pools-trend.yaml: overriding them in a
    stack would change the alert's words and not what it computes."""
    from reward_obs.model.errors import DefinitionError

    values = read_stack_file(ROOT / "Pulumi.selfhost.yaml")
    with pytest.raises(DefinitionError) as err:
        load_config(values | {"alertOverrides": {alert: {"params": {param: value}}}}, "stack.yaml", definitions)
    assert (f"stack.yaml:reward-observability:alertOverrides.{alert}.params.{param}: {alert}'s query does not read "
            f"'{param}': a recording rule fixes it") in str(err.value)


@pytest.mark.parametrize(("alert", "param", "value"), [
    ("RewardPayoutWebhooksStopped", "pending_age", "15 minutes"),  # the words of pending_age_seconds
    ("RewardPoolEmptyingSoon", "max_share_text", "30%"),
])
def test_override_of_the_words_of_a_number_the_query_reads_is_taken(definitions, alert, param, value):
    values = read_stack_file(ROOT / "Pulumi.selfhost.yaml")
    tuned = load_config(values | {"alertOverrides": {alert: {"params": {param: value}}}}, "t", definitions)
    assert value in definitions.alert(alert).resolved(tuned.alert_overrides[alert]).description


def test_pool_trend_recordings_compute_what_their_alerts_say(definitions):
    """The recorded forecast and funding sum use the window and horizon the alerts quote
    (6h fit, 24h = 86400 s ahead; a 1d sum), and the alerts read them."""
    recorded = {r.record: r for r in definitions.recording_rules}
    forecast = recorded["pool:reward_pool_remaining:predict_linear6h_24h"]
    funding = recorded["pool_source:reward_pool_funding:increase1d"]
    soon, other = definitions.alert("RewardPoolEmptyingSoon"), definitions.alert("RewardPoolFundingSourceOther")
    assert (soon.params["window"], soon.params["horizon"], other.params["window"]) == ("6h", "24h", "1d")
    assert "predict_linear(reward_pool_remaining[6h], 86400)" in forecast.expr
    assert 'increase(reward_pool_funding_total{source="other"}[1d])' in funding.expr
    assert (forecast.interval, funding.interval) == ("5m", "5m")
    assert "last_over_time(pool:reward_pool_remaining:predict_linear6h_24h[10m])" in soon.expr
    assert "last_over_time(pool_source:reward_pool_funding:increase1d[10m])" in other.expr


@pytest.mark.parametrize("name", ["RewardPoolExhausted", "RewardPoolOverAllocated", "RewardPoolLedgerMismatch"])
def test_pool_money_page_reads_the_raw_gauges(definitions, name):
    """A page on a pool's money reads what the backend exports, never a recorded series: a
    recording group that stops, or records every 5m (the ledger overview), would delay or
    silence it."""
    recorded = {r.record for r in definitions.recording_rules}
    expr = definitions.alert(name).expr
    assert "reward_pool_" in expr
    assert not {m for m in re.findall(r"\b[a-z_]+:[a-z0-9_:]+", expr) if m in recorded}, expr


def test_reordering_alert_definitions_changes_nothing_rendered(definitions, config):
    """Uids and group contents come from names, never from the order files are read in."""
    import dataclasses

    from reward_obs.builders.alerts import grafana_rule_groups

    reordered = dataclasses.replace(definitions, alerts=tuple(reversed(definitions.alerts)))
    assert grafana_rule_groups(reordered, config) == grafana_rule_groups(definitions, config)
    uids = [r["uid"] for g in grafana_rule_groups(definitions, config) for r in g["rules"]]
    assert len(set(uids)) == len(REQUIRED_ALERTS) + len(LOG_ALERTS)
    assert all(len(uid) <= 40 for uid in uids)
