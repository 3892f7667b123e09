"""Every alert fires on its fault within its bound and stays quiet on a healthy system,
proven by `promtool test rules` on scenarios/*.yaml against the rendered rule file.

The bounds below are copied from the issue, not from the scenario files: a scenario that
loosens its own `within`, or stops covering a behaviour, fails here.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from reward_obs.builders.alerts import prometheus_rule_file
from reward_obs.builders.recording import prometheus_rule_file as recording_file
from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.model.errors import DefinitionError
from reward_obs.sinks.files import dump_yaml
from reward_obs_dev.scenarios import load_scenarios, run
from reward_obs_dev.scenarios.generator import STALE, generate, promtool_values, tokens
from reward_obs_dev.scenarios.loader import scenario_files
from reward_obs_dev.scenarios.runner import parse_failures, read_rules

from conftest import ROOT, STACK_FILE, run_cli
from spec import DETECTION_BOUNDS, SLO_TARGETS

# After recovery the fast page tier resolves within 15 minutes and every slower
# tier within its short window ("about 30 minutes for 6h/30m": 5 minutes of slack for
# the rate windows' edges). long_window -> minutes after the fault's end.
RESET_BOUNDS = {"1h": 15, "6h": 35, "1d": 125, "3d": 365}

# Each behaviour of the issue -> the scenario that proves it (alert under test, or None
# for a scenario in which every alert must stay silent).
BEHAVIOURS = {
    "webhooks fail: 20% invalid_signature": ("webhook-failing-invalid-signature", "RewardPayoutWebhookFailing"),
    "webhooks fail: 20% failed": ("webhook-failing-processing-failed", "RewardPayoutWebhookFailing"),
    "webhooks: silent at 1% failures": ("webhook-low-failure-rate", None),
    "webhooks: silent for any rate of duplicates": ("webhook-duplicate-deliveries", None),
    "pool: an allocation rejected_pool_exhausted": ("pool-exhausted-rejected-allocation", "RewardPoolExhausted"),
    "pool: winners turned away, then accrual paused": ("pool-exhausted-then-paused", "RewardPoolExhausted"),
    "pool: silent when rejected while paused": ("pool-exhausted-paused-campaign", None),
    "pool: silent when rejected into a closed pool": ("pool-exhausted-closed-pool", None),
    "ledger: remaining below zero": ("ledger-over-allocated", "RewardPoolOverAllocated"),
    "ledger: reserved + paid above budget, remaining clamped at 0": ("ledger-over-allocated-remaining-clamped", "RewardPoolOverAllocated"),
    "ledger: budget - reserved - paid != remaining": ("ledger-mismatch-one-sided-payout", "RewardPoolLedgerMismatch"),
    "ledger: silent for rounding and a one-scrape blip": ("ledger-rounding-and-blip", None),
    "ledger: over budget on a paused campaign still pages": ("ledger-over-allocated-while-paused", "RewardPoolOverAllocated"),
    "reconciliation: a confirmed double payment": ("reconciliation-double-payment", "RewardPayoutDoublePaid"),
    "reconciliation: provider confirms less than the ledger paid": ("reconciliation-mismatch-unconfirmed", "RewardReconciliationMismatch"),
    "reconciliation: silent for a difference at one run only": ("reconciliation-one-run-difference", None),
    "reconciliation: no run for an hour": ("reconciliation-stale", "RewardReconciliationStale"),
    "pool: under 10% of budget": ("pool-low", "RewardPoolLow"),
    "pool: silent at 50%": ("pool-half-budget", None),
    "pool: under 40% and empty within a day at its pace": ("pool-emptying-fast", "RewardPoolEmptyingSoon"),
    "pool: silent when low but spent slowly": ("pool-spent-slowly", None),
    "duplicate: a retry loop, blocked a minute for good": ("duplicate-retry-loop", "RewardDuplicatePayoutAttempt"),
    "duplicate: silent for one blocked payout": ("duplicate-payout-blocked", None),
    "duplicate: silent for the retry procedure's burst": ("duplicate-retry-release", None),
    "duplicate: silent when flat at any value": ("duplicate-counter-flat", None),
    "duplicate: silent on reset after restart": ("duplicate-counter-reset-on-restart", None),
    "provider: fails all calls": ("provider-outage-all-calls-fail", "RewardPayoutProviderOutage"),
    "provider: probe down for 5 minutes": ("provider-outage-probe-down", "RewardPayoutProviderOutage"),
    "provider: silent for a single failed probe": ("provider-single-failed-probe", None),
    "provider: silent at 2% errors": ("provider-low-error-rate", None),
    "provider: silent with no traffic and a healthy probe": ("provider-no-traffic", None),
    "claims: 4x the normal level for that time of day": ("claim-volume-spike", "RewardClaimVolumeAbnormal"),
    "claims: a bot wave on a small campaign, per campaign": ("claim-volume-bot-wave-small-campaign", "RewardClaimVolumeAbnormal"),
    "claims: silent for a planned launch (first day, no yesterday)": ("claim-volume-campaign-launch", None),
    "claims: a rejected bot wave on launch day pages through rejections": ("claim-volume-bot-wave-launch-day", "RewardClaimRejectionRateHigh"),
    "claims: an approved bot wave on launch day, against the fleet's median campaign":
        ("claim-volume-bot-wave-launch-day-approved", "RewardClaimVolumeNewCampaign"),
    "claims: silent day over day": ("claim-volume-day-over-day", None),
    "claims: silent on a short burst": ("claim-volume-short-bursts", None),
    "claims: silent at tiny volumes": ("claim-volume-tiny", None),
    "rejections: 30% at normal volume": ("claim-rejections-high", "RewardClaimRejectionRateHigh"),
    "rejections: silent at 5%": ("claim-rejections-normal", None),
    "rejections: silent under 20 decisions": ("claim-rejections-low-volume", None),
    "metrics: target down (up=0)": ("metrics-absent-target-down", "RewardMetricsAbsent"),
    "metrics: target gone (stale)": ("metrics-absent-target-gone", "RewardMetricsAbsent"),
    "metrics: series absent (no staleness marker)": ("metrics-absent-series-vanish", "RewardMetricsAbsent"),
    "funding: entry_fee": ("funding-entry-fee", "RewardPoolFundingSourceInvalid"),
    "funding: a source outside the allowed list": ("funding-unlisted-source", "RewardPoolFundingSourceInvalid"),
    "funding: silent for sponsor funding": ("funding-sponsor-topup", None),
    "funding: recorded as other": ("funding-other-source", "RewardPoolFundingSourceOther"),
    "constraints: a pool in Season Points": ("season-points-as-currency", "RewardSeasonPointsAsCurrency"),
    "a healthy week fires nothing": ("healthy-week", None),
    # The payout SLOs and staleness
    "payouts: every payout at one provider fails": ("slo-payout-total-failure", "RewardPayoutErrorBudgetBurn"),
    "payouts: 40% fail at one provider": ("slo-payout-partial-failure", "RewardPayoutErrorBudgetBurn"),
    "payouts: 40% fail, ticket tier and its resets": ("slo-payout-partial-failure-ticket", "RewardPayoutErrorBudgetSlowBurn"),
    "payouts: only creation fails at a provider": ("slo-payout-create-only-failing", "RewardPayoutErrorBudgetBurn"),
    "webhooks: a low-traffic provider fails every webhook": ("slo-webhook-low-traffic-all-failing", "RewardWebhookErrorBudgetBurn"),
    "webhooks: stop arriving while payouts are pending": ("staleness-webhooks-stopped-while-pending", "RewardPayoutWebhooksStopped"),
    "payouts: one gets stuck": ("staleness-payouts-stuck", "RewardPayoutsStuck"),
    "claims: held past the review target": ("staleness-claims-held-past-target", "RewardClaimsHeldPastTarget"),
    "claims: stop on a campaign with traffic": ("staleness-claims-stopped", "RewardClaimsStopped"),
    "claims: stop on a quiet campaign, over a longer window": ("claims-stopped-small-campaign", "RewardClaimsStoppedSmallCampaign"),
    "payouts: silent for two failures at a low-traffic provider": ("slo-low-traffic-single-failures", None),
    "payouts: 5% fail at every provider (our payout path)": ("slo-fleet-partial-failure", "RewardFleetPayoutErrorBudgetBurn"),
    "payouts: every create call fails, the creation SLO's own page": ("slo-payout-create-burn", "RewardPayoutCreateErrorBudgetBurn"),
    "payouts: 60% paid later than 10 minutes at one provider": ("slo-claim-to-paid-slow-provider", "RewardClaimToPaidBudgetBurn"),
    "payouts: silent while an operator holds a provider's payouts": ("staleness-payouts-held-by-operator", None),
    "claims: silent while an operator pauses a campaign's claims": ("staleness-claims-paused-by-operator", None),
    "payouts: silent for a manual payout waiting overnight for an operator": ("staleness-manual-payout-overnight", None),
    # Slow burns (2-2.5x the budget) that only the 3d ticket sees, one per SLO with a ticket.
    "payouts: 2.5% more paid late at one provider for six hours, a ticket": ("slo-claim-to-paid-slow-burn-ticket", "RewardClaimToPaidBudgetSlowBurn"),
    "payouts: a quarter of a percent fail at every provider for six hours, a fleet ticket": ("slo-fleet-slow-burn-ticket", "RewardFleetPayoutErrorBudgetSlowBurn"),
    "payouts: one create call in eighteen refused, retried, for six hours, a ticket": ("slo-payout-create-slow-burn-ticket", "RewardPayoutCreateErrorBudgetSlowBurn"),
    "webhooks: 3.7% fail processing at one provider for six hours, a ticket": ("slo-webhook-slow-burn-ticket", "RewardWebhookErrorBudgetSlowBurn"),
    # Failure causes: the player's failures are not an outage, their jump is a ticket.
    "payouts: silent for a day of 0.6% player-caused and 0.02% platform failures": ("slo-payout-player-failures-healthy", None),
    "payouts: a jump in player-caused failures opens a ticket": ("payout-player-failures-jump", "RewardPayoutPlayerFailuresHigh"),
}

SCENARIO_NAMES = [p.stem for p in scenario_files(ROOT)]


def _alert_of(name: str) -> str:
    text = (ROOT / "scenarios" / f"{name}.yaml").read_text(encoding="utf-8")
    m = re.search(r"^fault:\n(?:  .*\n)*?  alert: (\w+)", text, re.M)
    return m[1] if m else "silent"


# Longest first, so the week-long world starts first on whichever worker takes it.
SCENARIO_PARAMS = [pytest.param(name, id=f"{name}:{_alert_of(name)}")
                   for name in sorted(SCENARIO_NAMES, key=lambda n: (n != "healthy-week", n))]


@pytest.fixture(scope="session")
def scenarios(definitions):
    return {s.name: s for s in load_scenarios(definitions, ROOT)}


@pytest.fixture(scope="session")
def rendered_rules(out) -> Path:
    """The rule file exactly as `reward-obs render` writes it (the recording rules beside it)."""
    return out / "prometheus" / "reward-alerts.rules.yaml"


def _explain(result) -> str:
    return "\n".join(result.problems) + ("\n" + result.verify_output if result.verify_output else "")


# ---------------------------------------------------------------- the suite on the real rules


@pytest.mark.promtool
@pytest.mark.parametrize("name", SCENARIO_PARAMS)
def test_scenario_passes_in_promtool(scenarios, rendered_rules, definitions, tmp_path, name):
    """promtool's verdict on the scenario's own claims: the alert under test fires within
    its bound with the fault's labels and no others, never before the fault, stops within
    every reset bound, and every silent alert never fires (runner.verify_assertions)."""
    suite = run([scenarios[name]], rendered_rules, definitions.contract, tmp_path, jobs=1, write_report=False,
                measure_faults=False, measure_silent=False, headroom=False)
    result = suite.result(name)
    assert result.passed, _explain(result)


# Silence of one alert where a consequence of the same event may fire: scenario ->
# (alerts that must stay silent, warnings allowed to fire).
QUIET_FOR = {
    "pool spent to 0 as planned does not page": ("pool-spent-as-planned", {"RewardPoolExhausted", "RewardPoolOverAllocated"},
                                                  {"RewardPoolLow", "RewardPoolEmptyingSoon"}),
}


@pytest.mark.parametrize("behaviour", sorted(QUIET_FOR))
def test_each_quiet_case_stays_quiet_for_its_alerts(scenarios, behaviour):
    name, quiet, allowed = QUIET_FOR[behaviour]
    s = scenarios[name]
    assert s.fault is None and quiet <= set(s.silent) and set(s.may_fire) <= allowed, name


def test_pausing_accrual_stops_the_exhausted_page(scenarios):
    """pool-exhausted-then-paused: rejections go on after the pause at 1h20m, but the
    alert's last firing evaluation is the one before the pause (promtool asserts the reset)."""
    f = scenarios["pool-exhausted-then-paused"].fault
    assert f.end == 80 and [(r.labels, r.within) for r in f.resolves] == [({}, 1)]


def _behaviour_id(behaviour: str) -> str:
    return f"{BEHAVIOURS[behaviour][1] or 'silent'}: {behaviour}"


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS), ids=_behaviour_id)
def test_each_behaviour_of_the_issue_has_its_scenario(scenarios, behaviour):
    name, alert = BEHAVIOURS[behaviour]
    assert name in scenarios, f"no scenario {name} for: {behaviour}"
    s = scenarios[name]
    if alert is None:
        assert s.fault is None and not s.may_fire, f"{name} must prove silence of every alert"
        assert set(DETECTION_BOUNDS) <= set(s.silent)
    else:
        assert s.fault is not None and s.fault.alert == alert
        assert s.fault.within <= DETECTION_BOUNDS[alert], f"{name} allows {s.fault.within}m, the issue {DETECTION_BOUNDS[alert]}m"
        assert set(DETECTION_BOUNDS) - {alert} - set(s.may_fire) <= set(s.silent)


@pytest.mark.parametrize("alert", sorted(DETECTION_BOUNDS))
def test_every_alert_has_a_fault_scenario_within_its_bound(scenarios, alert):
    """The bound is the scenario's `within`, which promtool asserts (the scenario's test)."""
    faults = [s for s in scenarios.values() if s.fault and s.fault.alert == alert]
    assert faults, f"no fault scenario for {alert}"
    for s in faults:
        assert s.fault.within <= DETECTION_BOUNDS[alert], f"{s.name}: {alert} allows {s.fault.within}m > {DETECTION_BOUNDS[alert]}m"


@pytest.mark.parametrize("name", sorted(SLO_TARGETS), ids=lambda n: f"{n}:{SLO_TARGETS[n][0]}")
def test_slo_detection_targets(scenarios, name):
    alert, bound = SLO_TARGETS[name]
    f = scenarios[name].fault
    assert f.alert == alert and f.within <= bound, name


FAULTS_WITH_AN_END = sorted(n for n in SCENARIO_NAMES if re.search(r"^  end: ", (ROOT / "scenarios" / f"{n}.yaml").read_text(), re.M))


@pytest.mark.parametrize("name", FAULTS_WITH_AN_END, ids=lambda n: f"{n}:{_alert_of(n)}")
def test_every_recovery_resets_within_its_short_window(scenarios, name):
    """Each fault scenario with an end claims a reset bound for every firing of its alert,
    no looser than its tier's (promtool asserts it); a page scenario claims both page tiers."""
    f = scenarios[name].fault
    assert f.end is not None and f.resolves, f"{name}: a fault with an end must say when it resets"
    for r in f.resolves:
        window = r.labels.get("long_window")
        if window:
            assert r.within <= RESET_BOUNDS[window], f"{name}{r.labels}: reset bound {r.within}m > {RESET_BOUNDS[window]}m"
    if f.alert.endswith("BudgetBurn"):
        assert {r.labels.get("long_window") for r in f.resolves} == {"1h", "6h"}, name


def test_the_reset_bounds_cover_every_tier(scenarios):
    windows = {r.labels.get("long_window") for s in scenarios.values() if s.fault for r in s.fault.resolves}
    assert {"1h", "6h", "1d", "3d"} <= windows


def test_healthy_week_is_a_whole_ordinary_week(scenarios):
    week = scenarios["healthy-week"]
    assert week.duration == 7 * 24 * 60 and week.system.profile == "daily" and week.system.noise
    assert week.fault is None and not week.may_fire and set(DETECTION_BOUNDS) <= set(week.silent)


# ---------------------------------------------------------------- broken thresholds are caught


# The tests below show what one changed rule does; each runs only the rule group of the
# alert it changes (promtool evaluates every group at every minute, so the other groups
# would cost most of the time and prove what the suite above already proves).


def groups_of(rules: dict, alert: str) -> dict:
    """The rule file cut to the group that holds `alert`."""
    kept = [g for g in rules["groups"] if any(r.get("alert") == alert for r in g["rules"])]
    assert len(kept) == 1, (alert, [g["name"] for g in kept])
    return {**rules, "groups": kept}


def rules_with(definitions, overrides: dict, path: Path, alert: str, private: dict | None = None) -> Path:
    """The group of `alert` with the stack overrides applied. `private`: values of
    internal fields (a stack file may not override them)."""
    values = read_stack_file(STACK_FILE) | {"alertOverrides": overrides}
    config = dataclasses.replace(load_config(values, "broken", definitions), internal_params=private or {})
    path.write_text(dump_yaml(groups_of(prometheus_rule_file(definitions, config), alert)), encoding="utf-8")
    return path


def _run(definitions, scenarios, names, rule_file, out):
    return run([scenarios[n] if isinstance(n, str) else n for n in names], rule_file, definitions.contract, out,
               measure_silent=False, headroom=False, measure_faults=False, plots=False)


@pytest.mark.promtool
def test_threshold_too_high_to_see_the_fault_fails(definitions, scenarios, tmp_path):
    broken = rules_with(definitions, {"RewardPayoutWebhookFailing": {"threshold": 0.25}}, tmp_path / "rules.yaml",
                        "RewardPayoutWebhookFailing")
    names = ["webhook-failing-invalid-signature", "webhook-failing-processing-failed", "webhook-low-failure-rate"]
    suite = _run(definitions, scenarios, names, broken, tmp_path / "out")
    assert not suite.passed
    for name in names[:2]:
        r = suite.result(name)
        assert not r.passed and r.first_firing is None
        assert any("RewardPayoutWebhookFailing{provider=" in p and "never fired" in p for p in r.problems), r.problems
    assert suite.result("webhook-low-failure-rate").passed
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert next(a for a in report["alerts"] if a["alert"] == "RewardPayoutWebhookFailing")["all_within_bound"] is False


@pytest.mark.promtool
def test_for_too_long_to_meet_the_bound_fails(definitions, scenarios, tmp_path):
    broken = rules_with(definitions, {"RewardPoolExhausted": {"for": "4m"}}, tmp_path / "rules.yaml", "RewardPoolExhausted")
    names = ["pool-exhausted-then-paused", "pool-exhausted-rejected-allocation"]
    suite = _run(definitions, scenarios, names, broken, tmp_path / "out")
    for name in names:
        r = suite.result(name)
        assert not r.passed, name
        assert r.latency == 4 and any("later than 3m" in p for p in r.problems), r.problems
        assert "FAILED" in r.verify_output  # the verdict is promtool's


SLO_PAGE = "RewardPayoutErrorBudgetBurn"


def _slo_rules(definitions, tmp_path, edit) -> Path:
    """The group of the payout SLO's page and the recording rules beside it (the runner
    keeps the groups it reads), in a directory of their own, the alert file edited."""
    config = load_config(read_stack_file(STACK_FILE), "t", definitions)
    d = tmp_path / "rules"
    d.mkdir()
    (d / "reward-recording.rules.yaml").write_text(dump_yaml(recording_file(definitions)))
    text = edit(dump_yaml(groups_of(prometheus_rule_file(definitions, config), SLO_PAGE)))
    (d / "reward-alerts.rules.yaml").write_text(text)
    return d / "reward-alerts.rules.yaml"


@pytest.mark.promtool
def test_a_looser_objective_misses_the_three_minute_page(definitions, scenarios, tmp_path):
    # 99% instead of 99.9%: the 1h window needs 14.4% bad events, about 9 minutes of a total failure.
    rules = _slo_rules(definitions, tmp_path, lambda t: t.replace(" / 0.001 > 14.4", " / 0.01 > 14.4"))
    r = _run(definitions, scenarios, ["slo-payout-total-failure"], rules, tmp_path / "out").result("slo-payout-total-failure")
    assert not r.passed and "FAILED" in r.verify_output
    assert r.latency is not None and r.latency > 3, r.latency


@pytest.mark.promtool
def test_without_the_short_window_the_page_does_not_reset_in_time(definitions, scenarios, tmp_path):
    # Sloth's and Pyrra's alerts without their short window: the 1h tier holds until the
    # fault has left the whole hour.
    def drop_short(text):
        out = re.sub(r"unless on \(provider\)\n\s*provider:reward_slo_payout_success_errors:ratio_rate5m / 0.001 <= 14.4\n\s*", "", text)
        assert out != text
        return out

    rules = _slo_rules(definitions, tmp_path, drop_short)
    r = _run(definitions, scenarios, ["slo-payout-total-failure"], rules, tmp_path / "out").result("slo-payout-total-failure")
    assert not r.passed and "FAILED" in r.verify_output
    [(labels, minutes)] = [x for x in r.resets() if x[0] == {"long_window": "1h"}]
    assert minutes > 15 and any("kept firing" in p and 'long_window="1h"' in p for p in r.problems), (minutes, r.problems)


FLEET_CLAIM_VOLUME = ("(sum(rate(reward_claim_requests_total[15m])) / sum(rate(reward_claim_requests_total[15m] offset 1d))"
                      " and on () sum(increase(reward_claim_requests_total[15m])) >= 30) > 3")


@pytest.mark.promtool
def test_the_fleet_wide_claim_rule_paged_on_a_launch_and_missed_a_small_bot_wave(definitions, scenarios, tmp_path):
    """The reason for comparing per campaign, shown on promtool: the rule as it was
    (whole fleet against yesterday, `for` 10m) fires on the planned launch and misses the
    bot wave on the small campaign; the shipped rule does the opposite (the suite)."""
    rules = groups_of(prometheus_rule_file(definitions, load_config(read_stack_file(STACK_FILE), "fleet", definitions)),
                      "RewardClaimVolumeAbnormal")
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule["alert"] == "RewardClaimVolumeAbnormal":
                rule.update({"expr": FLEET_CLAIM_VOLUME, "for": "10m"})
    path = tmp_path / "rules.yaml"
    path.write_text(dump_yaml(rules), encoding="utf-8")
    suite = _run(definitions, scenarios, ["claim-volume-campaign-launch", "claim-volume-bot-wave-small-campaign"], path, tmp_path / "out")
    launch = suite.result("claim-volume-campaign-launch")
    assert not launch.passed and {x.alert for x in launch.false_firings()} == {"RewardClaimVolumeAbnormal"}
    wave = suite.result("claim-volume-bot-wave-small-campaign")
    assert not wave.passed and wave.first_firing is None


@pytest.mark.promtool
def test_a_short_for_lets_the_retry_procedure_burst_fire(definitions, scenarios, tmp_path):
    """The duplicate rule's `for` equal to its window is what keeps the retry procedure's
    burst quiet: with 5m it fires."""
    broken = rules_with(definitions, {"RewardDuplicatePayoutAttempt": {"for": "5m"}}, tmp_path / "rules.yaml",
                        "RewardDuplicatePayoutAttempt")
    suite = _run(definitions, scenarios, ["duplicate-retry-release"], broken, tmp_path / "out")
    r = suite.result("duplicate-retry-release")
    assert not r.passed and {x.alert for x in r.false_firings()} == {"RewardDuplicatePayoutAttempt"}


def healthy_weekend(week):
    """Friday and Saturday of the healthy week: its largest day-over-day step (day factors
    1.15 -> 1.4), all the growth an ordinary weekend brings, in two days instead of seven."""
    days = 2
    factors = week.system.day_factors[4:6]
    campaigns = tuple(c for c in week.system.campaigns if c.start < days * 24 * 60)
    return replace(week, name="healthy-weekend", duration=days * 24 * 60,
                   system=replace(week.system, day_factors=factors, campaigns=campaigns),
                   events=tuple(e for e in week.events if e.at < days * 24 * 60),
                   text=week.text + f"\n# cut to {days} days, day factors {factors}")


@pytest.mark.promtool
def test_healthy_weekend_is_quiet_on_the_shipped_rules(definitions, scenarios, tmp_path):
    """The control for the test below: on the shipped rule the same two days are quiet."""
    shipped = rules_with(definitions, {}, tmp_path / "rules.yaml", "RewardClaimVolumeAbnormal")
    r = _run(definitions, scenarios, [healthy_weekend(scenarios["healthy-week"])], shipped, tmp_path / "out").result("healthy-weekend")
    assert r.passed, _explain(r)


@pytest.mark.promtool
def test_threshold_that_fires_on_a_healthy_weekend_fails(definitions, scenarios, tmp_path):
    # "Alert at 10% more claims than yesterday": ordinary weekend growth pages.
    broken = rules_with(definitions, {}, tmp_path / "rules.yaml", "RewardClaimVolumeAbnormal",
                        private={"RewardClaimVolumeAbnormal": {"threshold": 1.1}})
    suite = _run(definitions, scenarios, [healthy_weekend(scenarios["healthy-week"])], broken, tmp_path / "out")
    r = suite.result("healthy-weekend")
    assert not r.passed
    assert {x.alert for x in r.false_firings()} == {"RewardClaimVolumeAbnormal"}
    assert any(p.startswith("false firing: RewardClaimVolumeAbnormal{campaign_id=") and " fired first at " in p
               for p in r.problems), r.problems
    assert "FAILED" in r.verify_output


# ---------------------------------------------------------------- the CLI and the measurements


@pytest.mark.promtool
def test_cli_writes_the_report_with_near_misses_and_headroom(tmp_path):
    out = tmp_path / "report"
    result = run_cli("scenarios", "--out", str(out), "--only", "pool-spent-as-planned", "duplicate-counter-reset-on-restart",
                     "pool-exhausted-rejected-allocation")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pass  pool-spent-as-planned" in result.stdout and "3 passed, 0 failed" in result.stdout
    # One allocation turned away at 1h: `increase(...) > 0` is true at the 1h evaluation,
    # pending then, firing one minute later (`for: 1m`).
    report = json.loads((out / "report.json").read_text())
    exhausted = next(s for s in report["scenarios"] if s["name"] == "pool-exhausted-rejected-allocation")
    assert exhausted["fault"]["latency_min"] == 1 and exhausted["fault"]["within_bound"], exhausted["fault"]
    assert (out / exhausted["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert exhausted["timeline"]
    md = (out / "report.md").read_text()
    assert re.search(r"^\| RewardPoolExhausted \|", md, re.M), md
    restart = next(s for s in report["scenarios"] if s["name"] == "duplicate-counter-reset-on-restart")
    # The restart is one failed scrape: the dead-man rule is pending for it, and no more.
    assert [(x["alert"], x["pending_evaluations"]) for x in restart["near_misses"]] == [("RewardMetricsAbsent", 1)]
    assert restart["peaks"]["RewardMetricsAbsent"] == [[{}, 0.0]]
    planned = next(s for s in report["scenarios"] if s["name"] == "pool-spent-as-planned")
    assert [x["alert"] for x in planned["allowed_firings"]] == ["RewardPoolLow"]
    assert (out / "prometheus" / "reward-alerts.rules.yaml").is_file()


@pytest.mark.promtool
def test_cli_exits_1_when_a_scenario_fails(tmp_path, definitions):
    broken = rules_with(definitions, {"RewardDuplicatePayoutAttempt": {"threshold": 1000}}, tmp_path / "rules.yaml",
                        "RewardDuplicatePayoutAttempt")
    result = run_cli("scenarios", "--out", str(tmp_path / "out"), "--rules", str(broken), "--only", "duplicate-retry-loop",
                     "--no-plots")
    assert result.returncode == 1
    assert "FAIL  duplicate-retry-loop" in result.stdout and "never fired" in result.stdout


# ---------------------------------------------------------------- scenario files are validated


BAD_SCENARIO = """\
version: 2
name: not-the-file-name
description: a scenario with one mistake in every field that can have one
duration: 2 hours
events: []
silent: others
"""

BAD_EVENTS = """\
version: 1
name: bad-events
description: events that do not fit the metrics contract or the alerts
duration: 1h
events:
  - {at: 10m, metric: reward_payout_webhooks_total, labels: {provider: paypal, result: failed}, rate: 5}
  - {at: 10m, metric: reward_pool_remaining, labels: {pool_id: summer-cup-ton}, rate: 5}
  - {at: 10m, metric: reward_provider_up, labels: {provider: ton_wallet}, value: 0, stale: true}
  - {at: 90s, metric: up, value: 0}
  - {at: 10m, metric: reward_provider_errors_total, labels: {provider: ton_wallet, error_code: timeout}, create: true, rate: 1}
  - {at: 10m, metric: reward_provider_errors_total, labels: {provider: ton_wallet, operation: quote, error_code: boom}, create: true, rate: 1}
fault: {start: 20m, alert: RewardNoSuchAlert, within: 50m}
silent: [RewardPoolLow]
"""


def test_bad_scenario_files_are_refused_naming_file_and_field(definitions, tmp_path):
    root = tmp_path / "repo"
    (root / "scenarios").mkdir(parents=True)
    (root / "scenarios" / "bad-schema.yaml").write_text(BAD_SCENARIO)
    (root / "scenarios" / "bad-events.yaml").write_text(BAD_EVENTS)
    with pytest.raises(DefinitionError) as err:
        load_scenarios(definitions, root)
    text = str(err.value)
    expected = [
        "scenarios/bad-schema.yaml:duration: '2 hours' does not match",
        "scenarios/bad-schema.yaml:version: 1 was expected",
        "scenarios/bad-events.yaml:events[0].labels.provider: 'paypal' is not a value of provider on reward_payout_webhooks_total",
        "scenarios/bad-events.yaml:events[1].rate: rate does not apply to reward_pool_remaining, a gauge",
        "scenarios/bad-events.yaml:events[2]: needs exactly one action",
        "scenarios/bad-events.yaml:events[3].at: '90s' is not a whole number of minutes",
        "scenarios/bad-events.yaml:events[4].labels: create needs every label of reward_provider_errors_total; missing: operation",
        "scenarios/bad-events.yaml:events[5].labels.error_code: 'boom' is not a value of error_code on reward_provider_errors_total",
        "scenarios/bad-events.yaml:fault.alert: 'RewardNoSuchAlert' is not a defined alert",
        "scenarios/bad-events.yaml:fault.within: start + within (20m + 50m) is past the end of the run (1h)",
        "scenarios/bad-events.yaml:silent: RewardPayoutWebhookFailing is neither under test, under may_fire nor silent",
    ]
    for line in expected:
        assert line in text, f"missing {line!r} in:\n{text}"


def test_cli_refuses_a_bad_scenario_before_running_anything(repo_copy, tmp_path):
    (repo_copy / "scenarios").mkdir()
    (repo_copy / "scenarios" / "typo.yaml").write_text(
        "name: typo\ndescription: an event field spelled wrong in a scenario\nduration: 1h\n"
        "events:\n  - {at: 10m, metric: up, valeu: 0}\nsilent: others\n")
    result = run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"),
                     "scenarios", "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "scenarios/typo.yaml:events[0]: unknown field(s) ('valeu' was unexpected)" in result.stderr
    assert not (tmp_path / "out" / "report.json").exists()


# ---------------------------------------------------------------- generator and promtool plumbing


def _expand(notation: str) -> list:
    """promtool's series notation back to one entry a minute (the subset the writer uses)."""
    out: list = []
    for part in notation.split():
        if part == "stale":
            out.append(STALE)
        elif part == "_":
            out.append(None)
        elif m := re.fullmatch(r"_x(\d+)", part):
            out += [None] * int(m[1])
        elif m := re.fullmatch(r"(-?[\d.e+-]+?)([+-])([\d.e+-]+)x(\d+)", part):
            start, step = float(m[1]), float(m[3]) * (1 if m[2] == "+" else -1)
            out += [start + i * step for i in range(int(m[4]) + 1)]
        else:
            out.append(float(part))
    return out


@pytest.mark.slow
def test_series_notation_round_trips(definitions, scenarios):
    for name in ("healthy-week", "metrics-absent-target-gone", "duplicate-counter-reset-on-restart", "funding-entry-fee"):
        for series in generate(scenarios[name], definitions.contract).series:
            entries = tokens(series)
            assert _expand(promtool_values(entries)) == entries, (name, series.selector())


def test_generated_series_follow_the_contract(definitions, scenarios):
    contract = definitions.contract
    gen = generate(scenarios["healthy-week"], contract)
    providers = set(contract.labels["provider"]["values"])
    for s in gen.series:
        metric = contract.series_metric(s.metric)
        assert set(metric.labels) <= set(s.labels) | {"job", "instance"}, (s.metric, s.labels)
        for label, value in s.labels.items():
            allowed = contract.label_values(s.metric, label)
            assert allowed is None or value in allowed, (s.metric, label, value)
        if metric.type == "counter" and s.present[0]:
            assert s.values[0] == 0 or s.metric == "reward_pool_funding_total", (s.metric, s.labels)
    for metric in ("reward_payouts_total", "reward_payout_webhooks_total", "reward_provider_requests_total",
                   "reward_payout_duplicate_attempts_total", "reward_provider_up"):
        assert {s.labels["provider"] for s in gen.find(metric, {})} == providers, metric
    outcomes = {s.labels["outcome"] for s in gen.find("reward_allocations_total", {"campaign_id": "summer-cup"})}
    assert outcomes == set(contract.labels["outcome"]["values"])
    up = gen.find("up", {})
    assert len(up) == 1 and up[0].labels == {"job": "rewards", "instance": "rewards-backend:9464"}


def test_promtool_failure_output_is_parsed():
    output = '''Unit Testing:  x.yaml
  FAILED:
    expr: "min_over_time(timestamp(ALERTS{alertstate=\\"firing\\"})[2h1m:1m])", time: 2h,
        exp: {scenario_probe="sentinel"} -1E+00
        got: {alertname="RewardPoolLow", alertstate="firing", pool_id="p"} 4.2E+03, {alertname="B", alertstate="firing"} 6E+01
    expr: "count_over_time(ALERTS[1w1d])", time: 1w1d, err: query timed out
'''
    first, second = parse_failures(output)
    assert first.expr == 'min_over_time(timestamp(ALERTS{alertstate="firing"})[2h1m:1m])' and first.minute == 120
    assert first.got == (({"alertname": "RewardPoolLow", "alertstate": "firing", "pool_id": "p"}, 4200.0),
                         ({"alertname": "B", "alertstate": "firing"}, 60.0))
    assert second.minute == 8 * 24 * 60 and second.error == "query timed out"


def test_rule_file_reader_splits_value_and_threshold(rendered_rules):
    rules = read_rules(rendered_rules)
    assert set(DETECTION_BOUNDS) <= set(rules)
    low = rules["RewardPoolLow"]
    assert (low.op, low.threshold, low.for_) == ("<", 0.1, "10m") and "reward_pool_remaining" in low.value_expr
