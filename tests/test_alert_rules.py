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


def missing_alerts(out: Path) -> list[str]:
    problems = []
    grafana, prom = grafana_rules(out), prometheus_rules(out)
    for name, severity in REQUIRED_ALERTS.items():
        for kind, rules in (("grafana", grafana), ("prometheus", prom)):
            rule = rules.get(name)
            if rule is None:
                problems.append(f"{kind}: {name} missing")
                continue
            if rule["labels"].get("severity") != severity or rule["labels"].get("team") != "rewards":
                problems.append(f"{kind}: {name} labels {rule['labels']}")
            for key in ("summary", "description", "runbook_url"):
                if not rule["annotations"].get(key, "").strip():
                    problems.append(f"{kind}: {name} has no {key}")
    return problems


def test_every_required_alert_is_rendered_with_severity_team_and_annotations(out):
    assert missing_alerts(out) == []


def test_deleting_an_alert_definition_is_caught(repo_copy, tmp_path):
    (repo_copy / "alert_rules" / "RewardDuplicatePayoutAttempt.yaml").unlink()
    unbind_runbook_numbers(repo_copy, "RewardDuplicatePayoutAttempt")
    out = tmp_path / "out"
    assert run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"),
                   "render", "--out", str(out)).returncode == 0
    assert missing_alerts(out) == ["grafana: RewardDuplicatePayoutAttempt missing", "prometheus: RewardDuplicatePayoutAttempt missing"]


def runbook_link_problems(out: Path, root: Path) -> list[str]:
    problems = []
    for name, rule in grafana_rules(out).items():
        match = RUNBOOK_URL.match(rule["annotations"]["runbook_url"])
        if not match:
            problems.append(f"{name}: runbook_url {rule['annotations']['runbook_url']!r} is not <base>/runbooks/<file>.md#<anchor>")
            continue
        path = root / "runbooks" / match["file"]
        if not path.is_file():
            problems.append(f"{name}: {path.name} does not exist")
            continue
        section = [h for h in headings(path.read_text()) if h.anchor == match["anchor"]]
        if not section:
            problems.append(f"{name}: {path.name} has no heading #{match['anchor']}")
    return problems


def test_every_runbook_url_lands_on_an_existing_heading(out):
    assert runbook_link_problems(out, ROOT) == []


def test_runbook_urls_use_the_configured_base(out):
    base = read_stack_file(ROOT / "Pulumi.selfhost.yaml")["runbookBaseUrl"]
    for name, rule in prometheus_rules(out).items():
        assert RUNBOOK_URL.match(rule["annotations"]["runbook_url"])["base"] == base, name


def test_removed_runbook_heading_is_caught(repo_copy, tmp_path, out):
    path = repo_copy / "runbooks" / "payout-provider-retry.md"
    path.write_text(path.read_text().replace("## RewardPayoutProviderOutage", "## Provider outage"))
    # The loader refuses to render at all ...
    result = run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"), "validate")
    assert result.returncode == 1
    assert "alert_rules/RewardPayoutProviderOutage.yaml:runbook: runbooks/payout-provider-retry.md has no heading with anchor #rewardpayoutprovideroutage" in result.stderr
    # ... and the rendered links, checked against that copy, would point nowhere.
    assert runbook_link_problems(out, repo_copy) == ["RewardPayoutProviderOutage: payout-provider-retry.md has no heading #rewardpayoutprovideroutage"]


def test_each_alert_links_to_a_panel_that_shows_its_metrics(out, definitions):
    rules = definitions.recording_rules
    # The abuse alerts link the panel their readers, trust and safety, can open.
    by_id = {uid: {p["id"]: p for p in panels(dashboard(out, uid))} for uid in (OPERATIONS_DASHBOARD_UID, TRUST_SAFETY_DASHBOARD_UID)}
    for name, rule in grafana_rules(out).items():
        notes = rule["annotations"]
        uid = TRUST_SAFETY_DASHBOARD_UID if name in TRUST_SAFETY_ALERTS else OPERATIONS_DASHBOARD_UID
        assert notes["__dashboardUid__"] == uid, name
        panel = by_id[uid].get(int(notes["__panelId__"]))
        assert panel is not None, f"{name} links to panel {notes['__panelId__']}, which does not exist"
        base, _, selected = notes["dashboard_url"].partition("&")
        assert base.endswith(f"/d/{uid}?viewPanel={panel['id']}"), name
        if "$campaign" in str(panel["targets"]):  # a one-campaign panel opens on the campaign that fired
            assert selected == "var-campaign={{ $labels.campaign_id | urlquery }}", name
        else:
            assert selected == "", name
        if name in LOG_ALERTS:
            continue  # log-based: checked in test_trace.py
        # An SLO alert reads recorded error ratios: the metrics they are recorded from count.
        alert_metrics = {s.metric for s in raw_selectors(rule["data"][0]["model"]["expr"], rules)}
        if not alert_metrics:  # the heartbeat (vector(1)) reads nothing; its panel is the scrape's
            assert name == "RewardHeartbeat", name
            continue
        # A panel reading a recorded series shows the metrics its rule reads.
        panel_metrics = {s.metric for t in panel["targets"] for s in raw_selectors(t["expr"], rules)}
        assert alert_metrics & panel_metrics, f"{name} links to {panel['title']!r}, which shows none of {alert_metrics}"


def test_grafana_and_prometheus_rules_are_the_same_alert(out):
    grafana, prom = grafana_rules(out), prometheus_rules(out)
    assert set(grafana) - set(LOG_ALERTS) == set(prom)
    ops = {"gt": ">", "lt": "<"}
    for name, g in grafana.items():
        if name in LOG_ALERTS:
            continue
        p = prom[name]
        query, threshold = g["data"][0]["model"], g["data"][1]["model"]
        assert g["condition"] == threshold["refId"] and threshold["expression"] == query["refId"]
        evaluator = threshold["conditions"][0]["evaluator"]
        combined = f"({query['expr']}) {ops[evaluator['type']]} {evaluator['params'][0]}"
        assert promql.parse(combined).prettify() == promql.parse(p["expr"]).prettify(), name
        assert g["for"] == p["for"] and g["group"] == p["group"], name
        assert g["labels"] == p["labels"], name
        for key in ("runbook_url", "dashboard_url"):
            assert g["annotations"][key] == p["annotations"][key], name


def test_prometheus_rule_file_passes_promtool(out):
    result = subprocess.run(["promtool", "check", "rules", str(out / "prometheus/reward-alerts.rules.yaml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(REQUIRED_ALERTS)} rules found" in result.stdout


def test_no_data_pages_only_for_the_dead_man_rule(out):
    for name, rule in grafana_rules(out).items():
        expected = "Alerting" if name == "RewardMetricsAbsent" else "OK"
        assert rule["noDataState"] == expected, name
        # A query error stops the heartbeat (the dead-man service then alarms) rather than
        # raising DatasourceError with its labels, which would reach the service as a ping.
        assert rule["execErrState"] == ("OK" if name == "RewardHeartbeat" else "Error"), name


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


def test_reordering_alert_definitions_changes_nothing_rendered(definitions, config):
    """Uids and group contents come from names, never from the order files are read in."""
    import dataclasses

    from reward_obs.builders.alerts import grafana_rule_groups

    reordered = dataclasses.replace(definitions, alerts=tuple(reversed(definitions.alerts)))
    assert grafana_rule_groups(reordered, config) == grafana_rule_groups(definitions, config)
    uids = [r["uid"] for g in grafana_rule_groups(definitions, config) for r in g["rules"]]
    assert len(set(uids)) == len(REQUIRED_ALERTS) + len(LOG_ALERTS)
    assert all(len(uid) <= 40 for uid in uids)
