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
    [section] = [s for s in sections(ROOT / "runbooks/accidental-over-allocation.md") if s.anchor == "accidental-over-allocation"]
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


# ---------------------------------------------------------------- runbooks in Grafana

def _runbook_board(definitions) -> dict:
    from reward_obs.builders.runbook_dashboard import runbook_dashboard_json

    return runbook_dashboard_json(definitions)


def test_runbooks_dashboard_has_a_panel_per_section(definitions):
    board = _runbook_board(definitions)
    contents = [p["options"]["content"] for p in board["panels"] if p["type"] == "text"]
    for path in sorted((ROOT / "runbooks").glob("*.md")):
        for section in sections(path):
            assert any(c.startswith(f"## {section.title}\n") for c in contents), f"{path.name}#{section.anchor}"


def test_grafana_runbook_links_land_on_the_alerts_section(definitions):
    from reward_obs.builders.alerts import prometheus_rule_file
    from reward_obs.config import load_config, read_stack_file

    config = load_config(read_stack_file(ROOT / "Pulumi.selfhost.yaml") | {"runbookLinks": "grafana"}, "t", definitions)
    panels = {p["id"]: p for p in _runbook_board(definitions)["panels"]}
    for group in prometheus_rule_file(definitions, config)["groups"]:
        for rule in group["rules"]:
            url = rule["annotations"]["runbook_url"]
            assert url.startswith(f"{config.grafana_url}/d/reward-runbooks?viewPanel="), url
            panel = panels[int(url.rsplit("=", 1)[1])]
            assert panel["options"]["content"].startswith(f"## {rule['alert']}\n"), rule["alert"]


def test_links_between_runbooks_point_at_existing_panels_in_grafana(definitions):
    import re

    board = _runbook_board(definitions)
    ids = {p["id"] for p in board["panels"]}
    for panel in board["panels"]:
        content = panel.get("options", {}).get("content", "")
        assert not re.search(r"\]\([a-z0-9-]+\.md", content), f"{panel['title']} links to a repository file"
        for target in re.findall(r"/d/reward-runbooks\?viewPanel=(\d+)", content):
            assert int(target) in ids, panel["title"]


def test_runbook_panel_ids_do_not_move_when_a_section_is_added(repo_copy, definitions):
    from reward_obs.definitions import load_definitions

    before = {p["title"]: p["id"] for p in _runbook_board(definitions)["panels"] if p["type"] == "text"}
    path = repo_copy / "runbooks" / "claim-anomalies.md"
    extra = "\n".join(["", "## Claim backlog", ""] + [f"### {part}\nStep one: open the claims panel and read it carefully.\n" for part in RUNBOOK_PARTS])
    text = path.read_text()
    path.write_text(text.replace("## RewardClaimVolumeAbnormal", extra.strip() + "\n\n## RewardClaimVolumeAbnormal", 1))
    after = {p["title"]: p["id"] for p in _runbook_board(load_definitions(repo_copy))["panels"] if p["type"] == "text"}
    assert "Claim backlog" in after
    assert {t: after[t] for t in before} == before
