"""`reward-obs diff` on real pairs of renders."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import run_cli, unbind_runbook_numbers
from helpers import edit_yaml as edit
from helpers import render_repo as render

# End to end through the CLI or Pulumi's mocks: seconds per test, outside the quick loop.
pytestmark = pytest.mark.slow


def diff(base: Path, head: Path) -> str:
    result = run_cli("diff", str(base), str(head))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def base(repo_copy, tmp_path) -> Path:
    return render(repo_copy, tmp_path / "base")


def test_identical_renders_have_no_diff(repo_copy, base, tmp_path):
    assert diff(base, render(repo_copy, tmp_path / "head")).strip() == "No change to alerts, recording rules, dashboards or routing."


def test_alert_changes_are_named(repo_copy, base, tmp_path):
    edit(repo_copy / "alert_rules/RewardPoolLow.yaml", lambda d: d.update({"for": "15m", "severity": "critical",
                                                                          "condition": {"op": "<", "threshold": 0.2}}))
    # A longer window needs as long a `for`, or the lint refuses the render (for-window).
    edit(repo_copy / "alert_rules/RewardPayoutWebhookFailing.yaml", lambda d: (d["params"].update(window="10m"), d.update({"for": "10m"})))
    (repo_copy / "alert_rules/RewardDuplicatePayoutAttempt.yaml").unlink()
    for name in ("RewardPoolLow", "RewardPayoutWebhookFailing", "RewardDuplicatePayoutAttempt"):  # the runbooks' quotes
        unbind_runbook_numbers(repo_copy, name)
    out = diff(base, render(repo_copy, tmp_path / "head"))
    assert "- **changed** `RewardPoolLow`: threshold < 0.1 → < 0.2; for 10m → 15m; severity warning → critical" in out
    assert "- **changed** `RewardPayoutWebhookFailing`:" in out and "query changed" in out
    assert "    +sum by (provider) (rate(reward_payout_webhooks_total{result=~\"invalid_signature|failed\"}[10m]))" in out
    assert "- **removed** `RewardDuplicatePayoutAttempt` (warning)" in out
    assert "RewardClaimVolumeAbnormal" not in out


def test_recording_rule_changes_are_named(repo_copy, base, tmp_path):
    edit(repo_copy / "recording_rules/reward-dashboard.yaml",
         lambda d: next(r for r in d["rules"] if r["record"] == "all:reward_claim_requests:rate5m").update(
             expr="sum (rate(reward_claim_requests_total[10m]))"))
    out = diff(base, render(repo_copy, tmp_path / "head"))
    assert "### Recording rules\n- **changed** `all:reward_claim_requests:rate5m`: query changed" in out
    assert "    +sum (rate(reward_claim_requests_total[10m]))" in out
    stack = repo_copy / "Pulumi.selfhost.yaml"
    edit(stack, lambda d: d["config"].update({"reward-observability:recordingRules": "grafana"}))
    out = diff(base, render(repo_copy, tmp_path / "grafana", stack))
    assert "- **changed** `currency:reward_pool_paid:sum`: evaluated by Prometheus → Grafana" in out


def test_added_alert_is_listed(repo_copy, tmp_path):
    (repo_copy / "alert_rules/RewardDuplicatePayoutAttempt.yaml").rename(tmp_path / "dup.yaml")
    runbook = repo_copy / "runbooks/payout-provider-retry.md"
    bound = runbook.read_text()
    unbind_runbook_numbers(repo_copy, "RewardDuplicatePayoutAttempt")  # they quote an alert the base lacks
    base = render(repo_copy, tmp_path / "base")
    runbook.write_text(bound)
    (tmp_path / "dup.yaml").rename(repo_copy / "alert_rules/RewardDuplicatePayoutAttempt.yaml")
    out = diff(base, render(repo_copy, tmp_path / "head"))
    assert out.startswith("### Alerts\n- **added** `RewardDuplicatePayoutAttempt` (warning, > 5, for 15m), runbook ")


def test_panel_changes_are_named(repo_copy, base, tmp_path):
    path = repo_copy / "dashboards/reward-operations.yaml"
    path.write_text(path.read_text().replace("title: Provider errors", "title: Provider API errors")
                    .replace("unit: reqps", "unit: short"))
    out = diff(base, render(repo_copy, tmp_path / "head"))
    assert '- **changed** panel 14 "Provider API errors" on `reward-operations`: title, unit' in out
    assert "### Alerts" not in out


def test_routing_changes_are_named_without_secret_values(repo_copy, base, tmp_path):
    edit(repo_copy / "notifications/routing.yaml", lambda d: d["policy"]["routes"][0].update(repeat_interval="2h"))
    edit(repo_copy / "Pulumi.selfhost.yaml", lambda d: d["config"].update({"reward-observability:telegramChatId": "-1001111111111"}))
    out = diff(base, render(repo_copy, tmp_path / "head"))
    assert "- **changed** contact point `rewards-telegram`: chatid -1001234567890 → -1001111111111" in out
    assert "- **notification policy changed**:" in out and "repeat_interval=2h" in out


def test_secret_settings_are_never_printed(tmp_path):
    """Even a render holding a real credential (say, exported from a live Grafana) is masked."""
    for name, url in (("base", "https://paging.invalid/old-" + "k" * 20), ("head", "https://paging.invalid/new-" + "k" * 20)):
        path = tmp_path / name / "grafana/provisioning/alerting/contact-points.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(yaml.safe_dump({"contactPoints": [{"name": "pager", "receivers": [{"type": "webhook", "settings": {"url": url}}]}]}))
    out = diff(tmp_path / "base", tmp_path / "head")
    assert "- **changed** contact point `pager`: url (secret) → (secret)" in out
    assert "paging.invalid" not in out


def test_switching_to_rule_level_routing_is_visible(repo_copy, base, tmp_path):
    edit(repo_copy / "Pulumi.selfhost.yaml", lambda d: d["config"].update({"reward-observability:notificationPolicy": "rule-level"}))
    out = diff(base, render(repo_copy, tmp_path / "head"))
    assert "routing (policy tree) → rewards-oncall-webhook" in out
    assert "(no policy tree: rules route themselves)" in out


def test_diff_refuses_a_directory_that_is_not_a_render(tmp_path):
    result = run_cli("diff", str(tmp_path), str(tmp_path))
    assert result.returncode == 2 and "is not a render" in result.stdout
