"""Runbooks: the required ones exist, every section has the full shape, links and
queries are real, and nothing in them is a placeholder or a secret."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from spec import REQUIRED_ALERTS, REQUIRED_RUNBOOKS, REWARD_STAGES, RUNBOOK_PARTS

from reward_obs.runbook_index import github_slug
from reward_obs.runbooks import sections


@pytest.mark.parametrize("topic, file", sorted(REQUIRED_RUNBOOKS.items()))
def test_required_runbook_exists_with_complete_sections(topic, file):
    found = sections(ROOT / "runbooks" / file)
    assert found, f"{file} ({topic}) has no sections"
    for section in found:
        assert list(section.parts) == RUNBOOK_PARTS, f"{file}#{section.anchor}"
        assert all(len(body.split()) >= 5 for body in section.parts.values()), f"{file}#{section.anchor}"


def test_every_alert_lands_on_a_section_with_every_part(definitions):
    for name in REQUIRED_ALERTS:
        alert = definitions.alert(name)
        [section] = [s for s in sections(ROOT / "runbooks" / alert.runbook_file) if s.anchor == alert.runbook_anchor]
        assert list(section.parts) == RUNBOOK_PARTS, name
        confirm = section.parts["Confirm"]
        assert "/d/reward-operations?viewPanel=" in confirm and "```promql" in confirm, f"{name}: Confirm needs a panel and a query"
        assert "correlation_id" in confirm, f"{name}: Confirm must say how to pull correlation IDs"


def test_dispute_handling_traces_every_stage_by_correlation_id():
    text = (ROOT / "runbooks/payout-dispute-handling.md").read_text()
    assert "correlation_id" in text
    assert [stage for stage in REWARD_STAGES if stage not in text] == []


def test_over_allocation_says_how_to_find_decide_and_communicate():
    [section] = sections(ROOT / "runbooks/accidental-over-allocation.md")
    assert "reward_pool_budget" in section.parts["Confirm"] and "correlation_id" in section.parts["Confirm"]
    assert "honour" in section.parts["Recover"].lower() or "honor" in section.parts["Recover"].lower()
    assert "support" in section.parts["Recover"].lower()


@pytest.mark.parametrize("text, slug", [
    ("RewardPoolLow", "rewardpoollow"),
    ("Recover a paused or exhausted pool", "recover-a-paused-or-exhausted-pool"),
    ("What's `up`?", "whats-up"),
    ("A & B", "a--b"),
    ("Accidental over-allocation", "accidental-over-allocation"),
])
def test_github_slug(text, slug):
    assert github_slug(text) == slug


def _break(root: Path, file: str, old: str, new: str) -> None:
    path = root / "runbooks" / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


# Built at run time so the repository itself never holds a token-shaped string.
FAKE_BOT_TOKEN = "70123" + "45678:" + "AAH" + "q" * 32

BROKEN = {
    "missing part": ("payout-webhook-failures.md", "### Verify", "### Check", "runbooks/payout-webhook-failures.md:#rewardpayoutwebhookfailing: parts must be exactly"),
    "placeholder": ("claim-anomalies.md", "### Meaning\n", "### Meaning\nTODO write this.\n", "placeholder text: 'TODO'"),
    "secret": ("reward-metrics-missing.md", "### Meaning\n", "### Meaning\nThe bot token: " + FAKE_BOT_TOKEN + "\n", "looks like a telegram bot token"),
    "unknown panel": ("claim-anomalies.md", "viewPanel=10", "viewPanel=99", "dashboard reward-operations has no panel 99"),
    "unknown metric": ("accidental-over-allocation.md", "changes(reward_pool_budget[1d])", "changes(reward_pool_limit[1d])", "metric 'reward_pool_limit' is not in the metrics contract"),
    "empty part": ("pool-funding-source.md", "### Escalate\n", "### Escalate\n\n### Escalate later\n", "parts must be exactly"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_runbook_fails_validation(repo_copy, case):
    file, old, new, message = BROKEN[case]
    _break(repo_copy, file, old, new)
    result = run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"), "validate")
    assert result.returncode == 1
    assert message in result.stderr


def test_runbooks_command_maps_every_alert_to_its_section():
    result = run_cli("runbooks")
    assert result.returncode == 0, result.stderr
    for name in REQUIRED_ALERTS:
        assert any(line.startswith(name) and "/runbooks/" in line and "#" in line for line in result.stdout.splitlines()), name
