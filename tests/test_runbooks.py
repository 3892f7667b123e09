"""Runbooks: the required ones exist, every section has the full shape, links and
queries are real, and nothing in them is a placeholder or a secret."""
from __future__ import annotations

from pathlib import Path

import pytest

from reward_obs.lang.markdown import github_slug, sections

from conftest import ROOT, run_cli
from spec import (
    OPERATIONS_DASHBOARD_UID,
    REQUIRED_ALERTS,
    REQUIRED_RUNBOOKS,
    REWARD_STAGES,
    RUNBOOK_PARTS,
    TRUST_SAFETY_ALERTS,
    TRUST_SAFETY_DASHBOARD_UID,
)


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
        # The panel its readers can open: the abuse alerts' readers are trust and safety.
        board = TRUST_SAFETY_DASHBOARD_UID if name in TRUST_SAFETY_ALERTS else OPERATIONS_DASHBOARD_UID
        assert f"/d/{board}?viewPanel=" in confirm and "```promql" in confirm, f"{name}: Confirm needs a panel and a query"
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
    "unknown panel": ("claim-anomalies.md", "viewPanel=10", "viewPanel=99", "dashboard reward-trust-safety has no panel 99"),
    "unknown operations panel": ("README.md", "viewPanel=19", "viewPanel=99", "dashboard reward-operations has no panel 99"),
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

# Each folder has its own runbook dashboard; the sections written for the abuse alerts are
# on trust and safety's only, so those alerts' links open that one.
RUNBOOK_BOARDS = {"rewards": "reward-runbooks", "rewards-trust-safety": "reward-runbooks-trust-safety",
                  "rewards-support": "reward-runbooks-support"}


def _runbook_boards(definitions, config=None) -> dict[str, dict]:
    """Runbook dashboard uid -> its JSON, for every folder."""
    from reward_obs.builders.runbook_dashboard import runbook_dashboards

    boards = {board["uid"]: board for _folder, board in runbook_dashboards(definitions, config)}
    assert sorted(boards) == sorted(RUNBOOK_BOARDS.values())
    return boards


def _text_panels(definitions, config=None) -> list[dict]:
    """The text panels of every runbook dashboard (a section shown in two folders has one
    panel in each, with the same id and text)."""
    return [p for board in _runbook_boards(definitions, config).values() for p in board["panels"] if p["type"] == "text"]


def test_runbooks_dashboard_has_a_panel_per_section(definitions):
    contents = [p["options"]["content"] for p in _text_panels(definitions)]
    for path in sorted((ROOT / "runbooks").glob("*.md")):
        for section in sections(path):
            assert any(c.startswith(f"## {section.title}\n") for c in contents), f"{path.name}#{section.anchor}"


def test_grafana_runbook_links_land_on_the_alerts_section(definitions):
    from reward_obs.builders.alerts import prometheus_rule_file
    from reward_obs.catalog.config import load_config, read_stack_file

    config = load_config(read_stack_file(ROOT / "Pulumi.selfhost.yaml") | {"runbookLinks": "grafana"}, "t", definitions)
    boards = _runbook_boards(definitions)
    for group in prometheus_rule_file(definitions, config)["groups"]:
        for rule in group["rules"]:
            url = rule["annotations"]["runbook_url"]
            uid = RUNBOOK_BOARDS["rewards-trust-safety" if rule["alert"] in TRUST_SAFETY_ALERTS else "rewards"]
            assert url.startswith(f"{config.grafana_url}/d/{uid}?viewPanel="), url
            panel = {p["id"]: p for p in boards[uid]["panels"]}[int(url.rsplit("=", 1)[1])]
            assert panel["options"]["content"].startswith(f"## {rule['alert']}\n"), rule["alert"]


def test_links_between_runbooks_point_at_existing_panels_in_grafana(definitions):
    import re

    boards = _runbook_boards(definitions)
    ids = {uid: {p["id"] for p in board["panels"]} for uid, board in boards.items()}
    linked = 0
    for board in boards.values():
        for panel in board["panels"]:
            content = panel.get("options", {}).get("content", "")
            assert not re.search(r"\]\([a-z0-9-]+\.md", content), f"{panel['title']} links to a repository file"
            for uid, target in re.findall(r"/d/(reward-runbooks[a-z-]*)\?viewPanel=(\d+)", content):
                assert int(target) in ids[uid], f"{board['uid']}: {panel['title']} -> {uid} panel {target}"
                linked += 1
    assert linked > 0


def test_runbook_panel_ids_do_not_move_when_a_section_is_added(repo_copy, definitions):
    from reward_obs.catalog.definitions import load_definitions

    before = {p["title"]: p["id"] for p in _text_panels(definitions)}
    path = repo_copy / "runbooks" / "claim-anomalies.md"
    extra = "\n".join(["", "## Claim backlog", ""] + [f"### {part}\nStep one: open the claims panel and read it carefully.\n" for part in RUNBOOK_PARTS])
    text = path.read_text()
    path.write_text(text.replace("## RewardClaimVolumeAbnormal", extra.strip() + "\n\n## RewardClaimVolumeAbnormal", 1))
    after = {p["title"]: p["id"] for p in _text_panels(load_definitions(repo_copy))}
    assert "Claim backlog" in after
    assert {t: after[t] for t in before} == before


# ---------------------------------------------------------------- operator actions

# What the issue asks the table to cover, as (action id, the id of what undoes it or None).
REQUIRED_ACTIONS = {
    "pause-accrual": "resume-accrual",
    "pause-claims": "resume-claims",
    "pause-a-provider": "resume-a-provider",
    "hold-payouts-for-a-campaign": "release-payouts-for-a-campaign",
    "hold-payouts-for-a-provider": "release-payouts-for-a-provider",
    "retry-a-payout": None,
    "top-up-a-pool": None,
    "correct-an-over-allocation": None,
    "release-a-held-claim": "hold-a-claim",
    "reject-a-held-claim": "reopen-a-rejected-claim",
}


def _actions() -> dict:
    import yaml

    return {row["id"]: row for row in yaml.safe_load((ROOT / "runbooks/actions.yaml").read_text())["actions"]}


def test_actions_table_covers_every_required_action_with_invocation_role_reason_and_undo():
    import json

    event = json.loads((ROOT / "contract/reward_event.schema.json").read_text())["properties"]
    actions = _actions()
    for action_id, undo in REQUIRED_ACTIONS.items():
        row = actions[action_id]
        assert row["method"] == "POST" and row["path"].startswith("/rewards/") and row["console"].startswith("Rewards admin > ")
        assert row["role"] in event["actor_role"]["enum"], action_id
        assert row["reason_code"] in event["reason_code"]["enum"], action_id
        assert row.get("undo") == undo if undo else row.get("undo_note"), action_id
    # The switches are the ones the dashboard shows, one gauge each.
    assert {actions[a]["switch"] for a in ("pause-accrual", "pause-claims", "pause-a-provider", "hold-payouts-for-a-campaign",
                                           "hold-payouts-for-a-provider")} == {
        "reward_campaign_accrual_enabled", "reward_campaign_claims_enabled", "reward_provider_enabled",
        "reward_campaign_payouts_enabled", "reward_provider_payouts_enabled"}


def test_actions_md_lists_every_action_with_its_call_and_the_docs_link_it():
    text = (ROOT / "runbooks/actions.md").read_text()
    for action_id, row in _actions().items():
        assert f"\n## {row['title']}\n" in text
        assert f"[{row['title']}](#{action_id})" in text
        assert f"`{row['reason_code']}`" in text
    assert "- Call: `POST $REWARD_ADMIN_URL/rewards/campaigns/<campaign_id>/accrual/pause`" in text
    # The generated table is the one list of actions: the README and the runbooks guide link to it.
    assert "(runbooks/actions.md)" in (ROOT / "README.md").read_text()
    assert "(../runbooks/actions.md)" in (ROOT / "docs/runbooks.md").read_text()


def test_every_acting_step_links_to_an_action_that_exists():
    import re

    ids = set(_actions())
    linked = set()
    for path in sorted((ROOT / "runbooks").glob("*.md")):
        linked |= set(re.findall(r"\]\(actions\.md#([a-z0-9-]+)\)", path.read_text()))
    assert linked <= ids
    # The switches and fixes the runbooks use are all reached from a step.
    assert {"pause-accrual", "pause-claims", "pause-a-provider", "hold-payouts-for-a-provider", "retry-a-payout",
            "check-a-payout-with-the-provider", "top-up-a-pool", "resume-accrual"} <= linked


def test_grafana_runbooks_show_the_stacks_admin_url_and_numbers(definitions):
    from reward_obs.catalog.config import load_config, read_stack_file

    def contents(stack: str, extra: dict | None = None) -> str:
        config = load_config(read_stack_file(ROOT / stack) | (extra or {}), stack, definitions)
        return "\n".join(p["options"]["content"] for p in _text_panels(definitions, config))

    selfhost = contents("Pulumi.selfhost.yaml")
    assert "`POST http://127.0.0.1:8081/admin/rewards/campaigns/<campaign_id>/accrual/pause`" in selfhost
    assert "$REWARD_ADMIN_URL" not in selfhost and "<!--" not in selfhost
    # The numbers the issue found drifted, now as the alerts have them.
    assert "More than 10% of a provider's first deliveries in 5 minutes (20 or more, duplicates excluded)" in selfhost
    # an internal number (here its TEST value) is shown in the Grafana copy only
    assert "enough decisions to matter (30 or more), for 10 minutes." in selfhost
    assert "or the target has vanished, for 4 minutes." in selfhost
    # prod overrides RewardPoolLow's threshold to 0.15: its Grafana copy says so.
    prod = contents("Pulumi.prod.yaml")
    assert "less than 15% of its funded budget unallocated for 10 minutes" in prod and "less than 10%" not in prod
    assert "`POST https://admin.elmental.example/rewards/" in prod
    # A window override reaches the text too.
    tuned = contents("Pulumi.selfhost.yaml", {"runbookLinks": "grafana", "alertOverrides": {
        "RewardPayoutWebhookFailing": {"params": {"window": "10m", "min_deliveries": 50}, "for": "90s"}}})
    assert "in 10 minutes (50 or more, duplicates excluded) were rejected with `invalid_signature` or ended `failed`, for 90 seconds." in tuned


def test_repository_copy_agrees_with_the_grafana_copy_of_the_default_stack(definitions):
    """With no overrides the two copies say the same: the Grafana panel is the repository
    section without the binding comments (and with links and the admin URL resolved), but
    for the internal numbers, which only the Grafana copy shows (a number where the
    repository has an `<!--internal ...-->` comment)."""
    import re

    panels = {p["title"]: p["options"]["content"] for p in _text_panels(definitions)}
    for path in sorted((ROOT / "runbooks").glob("*.md")):
        for section in sections(path):
            strip_links = lambda t: re.sub(r"\]\([^)]*\)", "]()", t)  # noqa: E731
            # An internal comment becomes its text with a number where `{}` stands.
            parts = re.split(r"<!--internal [^:]*: ([^>]*?)\s*-->", strip_links(section.text))
            pattern = "".join(re.escape(re.sub(r"<!--.*?-->", "", p, flags=re.S)) if i % 2 == 0
                              else " " + re.escape(p).replace(r"\{\}", r"[0-9.]+") for i, p in enumerate(parts))
            grafana = strip_links(panels[section.title])
            assert re.fullmatch(pattern, grafana, re.S), f"{path.name}#{section.anchor}"


def test_a_stack_that_overrides_a_quoted_number_must_open_the_grafana_copy(repo_copy):
    stack = repo_copy / "Pulumi.selfhost.yaml"
    stack.write_text(stack.read_text() + "  reward-observability:alertOverrides:\n    RewardPoolLow:\n      threshold: 0.2\n")
    result = run_cli("--root", str(repo_copy), "--stack-config", str(stack), "validate")
    assert result.returncode == 1
    assert "runbook-numbers: this stack's alertOverrides or sloObjectives change a number the runbook quotes (RewardPoolLow.threshold 10% -> 20%)" in result.stderr
    stack.write_text(stack.read_text().replace("  reward-observability:alertOverrides:", "  reward-observability:runbookLinks: grafana\n  reward-observability:alertOverrides:"))
    result = run_cli("--root", str(repo_copy), "--stack-config", str(stack), "validate")
    assert result.returncode == 0, result.stderr


def _break_file(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1))


BROKEN_16 = {
    # an action step naming an action the table does not have
    "unknown action": ("runbooks/claim-anomalies.md", "](actions.md#pause-claims)", "](actions.md#freeze-claims)",
                       "links to action 'freeze-claims', which is not in runbooks/actions.yaml"),
    # an acting step that names an admin action without linking it
    "unlinked action": ("runbooks/claim-anomalies.md", "- Wrong rejections suspected: [pause claims](actions.md#pause-claims) for that campaign.",
                        "- Wrong rejections suspected: pause claims for that campaign with the admin action that pauses claims.",
                        "step names an admin action without linking its row in actions.md"),
    # the alert changes, the runbook keeps the old number
    "drifted min volume": ("alert_rules/RewardPayoutWebhookFailing.yaml", "min_deliveries: 20", "min_deliveries: 25",
                           "quotes 20 for RewardPayoutWebhookFailing.min_deliveries, but the alert uses 25"),
    "drifted for": ("alert_rules/RewardMetricsAbsent.yaml", "for: 4m", "for: 5m",
                    "quotes 4 minutes for RewardMetricsAbsent.for, but the alert uses 5 minutes"),
    "drifted threshold": ("runbooks/reward-pool-recovery.md", "less than 10%<!--RewardPoolLow.threshold-->",
                          "less than 15%<!--RewardPoolLow.threshold-->", "quotes 15% for RewardPoolLow.threshold, but the alert uses 10%"),
    "unknown field": ("runbooks/claim-anomalies.md", "<!--RewardClaimVolumeAbnormal.window-->",
                      "<!--RewardClaimVolumeAbnormal.min_volume-->", "RewardClaimVolumeAbnormal has no 'min_volume'"),
    "unbound number": ("runbooks/payout-webhook-failures.md", "(20<!--RewardPayoutWebhookFailing.min_deliveries--> or more",
                       "(20 or more", "quotes 20 without binding it to the alert definition"),
    "logql unknown type": ("runbooks/payout-provider-retry.md", 'type="payout.failed"', 'type="payout.timeout"',
                           "type 'payout.timeout' is not an event type of contract/reward_event.schema.json"),
    "logql unknown stage": ("runbooks/reward-pool-recovery.md", 'stage="admin_audit"', 'stage="audit"',
                            "stage 'audit' is not one of match_settlement"),
    "logql line filter": ("runbooks/payout-webhook-failures.md", '|~ "payout.webhook_invalid_signature|payout.webhook_failed"',
                          '|~ "invalid_signature|failed"', "line filter 'invalid_signature' is not a stage, event type or enumerated value"),
    "logql unknown field": ("runbooks/payout-dispute-handling.md", "{{.causation_id}}", "{{.caused_by}}",
                            "event field 'caused_by' is not in contract/reward_event.schema.json"),
    "action reason not in contract": ("runbooks/actions.yaml", "reason_code: claims_pause", "reason_code: pause_claims_now",
                                      "'pause_claims_now' is not a reason_code of contract/reward_event.schema.json"),
    "actions.md out of date": ("runbooks/actions.yaml", "role: finance\n    admin_action: top_up_pool",
                               "role: rewards_oncall\n    admin_action: top_up_pool", "runbooks/actions.md:(file): is not what runbooks/actions.yaml renders"),
    "missing anchor": ("runbooks/payout-dispute-handling.md", "payout-provider-retry.md#check-with-the-provider-before-any-retry",
                       "payout-provider-retry.md#check-first", "links to payout-provider-retry.md#check-first, which has no such heading"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_16))
def test_validate_refuses_unknown_actions_drifted_numbers_and_wrong_logql(repo_copy, case):
    rel, old, new, message = BROKEN_16[case]
    _break_file(repo_copy, rel, old, new)
    result = run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"), "validate")
    assert result.returncode == 1
    assert message in result.stderr, result.stderr


def test_a_dispute_starts_from_the_players_receipt_reference_and_never_from_personal_data():
    [section] = [s for s in sections(ROOT / "runbooks/payout-dispute-handling.md") if s.anchor == "payout-dispute"]
    confirm = section.parts["Confirm"]
    first_query = confirm.split("```logql\n", 1)[1].split("\n```", 1)[0]
    assert 'receipt_reference="<receipt_reference>"' in first_query and "{{.correlation_id}}" in first_query
    for personal in ("account", "telegram_id", "wallet_address", "user_id", "email", "phone"):
        assert f'{personal}="' not in section.text
    # The backend requirement is written down in the event contract and its documentation.
    import json

    schema = json.loads((ROOT / "contract/reward_event.schema.json").read_text())
    assert "receipt_reference" in next(r for r in schema["allOf"] if r["if"]["properties"]["stage"]["const"] == "claim")["then"]["required"]
    assert "Backend requirement: the claim receipt leads to the chain" in (ROOT / "docs/tracing.md").read_text()


def test_every_retry_is_preceded_by_a_status_check_with_each_provider_type(definitions):
    [check] = [s for s in sections(ROOT / "runbooks/payout-provider-retry.md") if s.anchor == "check-with-the-provider-before-any-retry"]
    recover = check.parts["Recover"]
    for provider in definitions.contract.labels["provider"]["values"]:
        assert f"- `{provider}`:" in recover, provider
    assert "provider_reference" in check.parts["Meaning"] + check.parts["Stop the bleeding"]
    assert "](actions.md#check-a-payout-with-the-provider)" in check.parts["Stop the bleeding"]
    assert _actions()["retry-a-payout"]["requires"] == "check-a-payout-with-the-provider"
    # The general retry procedure sends every retry through the check.
    [retry] = [s for s in sections(ROOT / "runbooks/payout-provider-retry.md") if s.anchor == "retry-payouts-after-a-provider-recovers"]
    step = next(line for line in retry.parts["Recover"].splitlines() if "actions.md#retry-a-payout" in line)
    assert "#check-with-the-provider-before-any-retry" in step
