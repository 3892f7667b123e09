"""An alert's dashboard link selects the campaign that fired with its value URL-escaped:
expanded by Prometheus itself (promtool test rules) for a campaign id carrying every
character that would otherwise end or add a query parameter."""
from __future__ import annotations

import subprocess

import yaml

from reward_obs.sinks.files import dump_yaml

# The rendered link of every alert whose panel shows one campaign.
CAMPAIGN_LINK = "&var-campaign={{ $labels.campaign_id | urlquery }}"
HOSTILE_ID = 'spring & "cup"/#1 ü'
# Go's url.QueryEscape (what `urlquery` calls): space as +, every other reserved byte and
# each UTF-8 byte of ü (C3 BC) as %XX.
ESCAPED_ID = "spring+%26+%22cup%22%2F%231+%C3%BC"


def _campaign_alert(out) -> dict:
    rules = [r for g in yaml.safe_load((out / "prometheus/reward-alerts.rules.yaml").read_text())["groups"] for r in g["rules"]]
    linked = [r for r in rules if r["annotations"]["dashboard_url"].endswith(CAMPAIGN_LINK)]
    assert linked, "no alert links to one campaign's panel"
    unescaped = [r["alert"] for r in rules if "$labels" in r["annotations"]["dashboard_url"] and "| urlquery }}" not in r["annotations"]["dashboard_url"]]
    assert unescaped == []
    return linked[0]


def test_prometheus_expands_the_campaign_link_url_escaped(out, tmp_path):
    rule = _campaign_alert(out)
    link = rule["annotations"]["dashboard_url"]
    # The rendered link, on a rule that fires at once for the hostile campaign.
    (tmp_path / "rules.yaml").write_text(dump_yaml({"groups": [{"name": "links", "rules": [{
        "alert": rule["alert"], "expr": 'reward_test_campaign > 0',
        "annotations": {"dashboard_url": link}}]}]}))
    (tmp_path / "test.yaml").write_text(dump_yaml({
        "rule_files": ["rules.yaml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m",
                   "input_series": [{"series": 'reward_test_campaign{campaign_id="spring & \\"cup\\"/#1 ü"}', "values": "1x5"}],
                   "alert_rule_test": [{"eval_time": "2m", "alertname": rule["alert"], "exp_alerts": [{
                       "exp_labels": {"campaign_id": HOSTILE_ID},
                       "exp_annotations": {"dashboard_url": link.replace(CAMPAIGN_LINK, "&var-campaign=" + ESCAPED_ID)}}]}]}]}))
    result = subprocess.run(["promtool", "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
