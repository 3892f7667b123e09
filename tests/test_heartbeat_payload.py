"""The dead-man heartbeat sends a fixed body, not Grafana's webhook payload: the template
Grafana renders for it (through Alertmanager's own engine, amtool), and the contact point
both deploy paths give Grafana 12.0 and later. Before 12.0 Grafana has no custom payload
(grafana/alerting receivers/webhook/v1/config.go, `payload` "New in 12.0"), and lint says
what the service then receives."""
from __future__ import annotations

import json

import pytest
import yaml

from reward_obs.catalog.config import read_stack_file
from reward_obs.checks.lint import render_template

from conftest import ROOT, run_cli
from pulumi_harness import run_program

# End to end through the CLI or Pulumi's mocks: seconds per test, outside the quick loop.
pytestmark = pytest.mark.slow

TEMPLATE = ROOT / "notifications/templates/reward.tmpl"
PAYLOAD = '{{ template "reward.heartbeat.payload" . }}'
INTERNAL = "https://grafana.internal.invalid"


def test_the_body_is_fixed_whatever_the_alert_carries():
    """Rendered with everything Grafana would otherwise send: its root URL, rule, silence and
    dashboard links, the environment label, every annotation."""
    alert = {"status": "firing",
             "labels": {"alertname": "RewardHeartbeat", "heartbeat": "true", "environment": "prod", "team": "rewards"},
             "annotations": {"summary": "The reward alerting pipeline is alive", "runbook_url": f"{INTERNAL}/d/reward-runbooks",
                             "dashboard_url": f"{INTERNAL}/d/reward-operations?viewPanel=1"},
             "startsAt": "2026-11-26T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": f"{INTERNAL}/alerting/grafana/heartbeat/view", "fingerprint": "0123456789abcdef"}
    body = render_template([TEMPLATE], "reward.heartbeat.payload", {
        "receiver": "rewards-heartbeat", "status": "firing", "alerts": [alert],
        "groupLabels": {"alertname": "RewardHeartbeat"}, "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"], "externalURL": INTERNAL})
    assert body == '{"check":"reward-heartbeat","status":"alive"}'
    assert json.loads(body) == {"check": "reward-heartbeat", "status": "alive"}  # Grafana posts it as application/json


def _heartbeat_file_receiver(tmp_path, stack: str) -> dict:
    out = tmp_path / stack
    result = run_cli("--stack-config", str(ROOT / f"Pulumi.{stack}.yaml"), "render", "--out", str(out))
    assert result.returncode == 0, result.stderr
    points = yaml.safe_load((out / "grafana/provisioning/alerting/contact-points.yaml").read_text())["contactPoints"]
    templates = yaml.safe_load((out / "grafana/provisioning/alerting/templates.yaml").read_text())["templates"]
    assert any('define "reward.heartbeat.payload"' in t["template"] for t in templates)  # provisioned with the others
    [receiver] = [p["receivers"][0] for p in points if p["name"] == "rewards-heartbeat"]
    return receiver


def test_file_provisioning_on_12_sends_only_the_template(tmp_path):
    receiver = _heartbeat_file_receiver(tmp_path, "prod")  # grafanaVersion 12.1
    assert receiver["settings"] == {"url": "$__env{REWARD_OBS_HEARTBEAT_WEBHOOK_URL}", "httpMethod": "POST",
                                    "payload": {"template": PAYLOAD}}


def test_on_11_6_no_payload_is_written_and_lint_says_what_is_sent(tmp_path):
    receiver = _heartbeat_file_receiver(tmp_path, "selfhost")  # grafanaVersion 11.6
    assert "payload" not in receiver["settings"]
    result = run_cli("--stack-config", str(ROOT / "Pulumi.selfhost.yaml"), "lint")
    assert result.returncode == 0
    assert ("NOTE: contact point rewards-heartbeat: Grafana 11.6 cannot send the fixed body it asks for"
            in result.stdout + result.stderr)
    prod = run_cli("--stack-config", str(ROOT / "Pulumi.prod.yaml"), "lint")
    assert "rewards-heartbeat" not in prod.stdout + prod.stderr


def test_pulumi_sends_the_same_payload_on_12():
    secrets = {"telegramBotToken": "t" * 10, "oncallWebhookUrl": "https://paging.invalid/x",
               "heartbeatWebhookUrl": "https://deadman.invalid/ping/x"}
    result = run_program(read_stack_file(ROOT / "Pulumi.prod.yaml"), secrets)
    assert result["error"] is None, result["error"]
    [point] = [r for r in result["resources"] if r["name"] == "contact-point-rewards-heartbeat"]
    [webhook] = point["inputs"]["webhooks"]["value"]
    assert webhook["payload"] == {"template": PAYLOAD}
    assert "message" not in webhook and "title" not in webhook
