"""What each recording rule records, checked by Prometheus itself: `promtool test rules`
evaluates the rendered recording rule file on hand-written series, and every recorded
series must equal the value written below, worked out by hand from the input (never
from the rule's expression or its `raw` query). A `sum` turned into `max`, a lost
`by` label or a wrong rate window changes a value and fails here.

Every rule in recording_rules/*.yaml needs a case: a new rule without one fails
`test_every_recording_rule_has_a_hand_checked_case`. So does every rule generated from an
SLO (slos/*.yaml): SLO_CASES give each SLO constant rates from two replicas, so every
window of it holds the same hand-computed ratio (the windows themselves are checked as
literal expressions in tests/test_slo.py).
"""
from __future__ import annotations

import subprocess

import pytest
import yaml

from reward_obs.sinks.files import PROMETHEUS_RECORDING_FILE, render_files

pytestmark = [pytest.mark.promtool, pytest.mark.xdist_group("recording-promtool")]

JOB = 'job="rewards"'
A = f'{JOB}, instance="backend-a:9464"'
B = f'{JOB}, instance="backend-b:9464"'  # a second replica exporting the same pool


def _series(name: str, labels: str, values: str) -> dict:
    return {"series": f"{name}{{{labels}}}", "values": values}


# record -> (input series, {eval time: {expected series: value}}).
# Series notation: 'a+bxN' is a, a+b, ... for N more one-minute steps; 'axN' holds a.
# Counters climb by 60·k a minute, so their rate is exactly k per second.
CASES: dict[str, tuple[list[dict], dict[str, dict[str, float]]]] = {
    "currency:reward_pool_remaining:sum": (
        [
            _series("reward_pool_remaining", f'{A}, pool_id="p1", campaign_id="c1", currency="USDT"', "100x11"),
            _series("reward_pool_remaining", f'{A}, pool_id="p2", campaign_id="c1", currency="USDT"', "40x5 10x5"),
            _series("reward_pool_remaining", f'{A}, pool_id="p3", campaign_id="c2", currency="TON"', "7x11"),
        ],
        {
            "3m": {'currency:reward_pool_remaining:sum{currency="USDT"}': 140,
                   'currency:reward_pool_remaining:sum{currency="TON"}': 7},
            "9m": {'currency:reward_pool_remaining:sum{currency="USDT"}': 110,
                   'currency:reward_pool_remaining:sum{currency="TON"}': 7},
        },
    ),
    "pool:reward_pool_remaining:ratio_of_budget": (
        [
            # p1 is exported by two replicas that disagree: the rule keeps the smaller ratio.
            _series("reward_pool_remaining", f'{A}, pool_id="p1", campaign_id="c1", currency="USDT"', "100x10"),
            _series("reward_pool_budget", f'{A}, pool_id="p1", campaign_id="c1", currency="USDT"', "200x10"),
            _series("reward_pool_remaining", f'{B}, pool_id="p1", campaign_id="c1", currency="USDT"', "60x10"),
            _series("reward_pool_budget", f'{B}, pool_id="p1", campaign_id="c1", currency="USDT"', "200x10"),
            _series("reward_pool_remaining", f'{A}, pool_id="p2", campaign_id="c1", currency="USDT"', "25x10"),
            _series("reward_pool_budget", f'{A}, pool_id="p2", campaign_id="c1", currency="USDT"', "100x10"),
            # a pool being set up (budget 0) has no ratio rather than +Inf
            _series("reward_pool_remaining", f'{A}, pool_id="p3", campaign_id="c2", currency="TON"', "5x10"),
            _series("reward_pool_budget", f'{A}, pool_id="p3", campaign_id="c2", currency="TON"', "0x10"),
        ],
        {"10m": {'pool:reward_pool_remaining:ratio_of_budget{pool_id="p1", campaign_id="c1", currency="USDT"}': 0.3,
                 'pool:reward_pool_remaining:ratio_of_budget{pool_id="p2", campaign_id="c1", currency="USDT"}': 0.25}},
    ),
    # recording_rules/reward-pools-ledger-overview.yaml (every 5m in production).
    "pool:reward_pool_ledger_discrepancy:max": (
        [
            # p1 adds up and is within budget: 100 - 30 - 20 = 50 remaining; nothing off.
            *(_series(f"reward_pool_{g}", f'{A}, pool_id="p1", campaign_id="c1", currency="USDT"', f"{v}x10")
              for g, v in (("budget", 100), ("reserved", 30), ("paid", 20), ("remaining", 50))),
            # p2 released 5 on one side only: remaining 55 where 50 adds up (the difference
            # is -5; its size counts).
            *(_series(f"reward_pool_{g}", f'{A}, pool_id="p2", campaign_id="c1", currency="USDT"', f"{v}x10")
              for g, v in (("budget", 100), ("reserved", 30), ("paid", 20), ("remaining", 55))),
            # p3 is over-allocated, worst seen from the spent side: 80 + 50 is 30 above the
            # budget, remaining -10, and 100 - 80 - 50 is 20 from -10.
            *(_series(f"reward_pool_{g}", f'{A}, pool_id="p3", campaign_id="c2", currency="TON"', f"{v}x10")
              for g, v in (("budget", 100), ("reserved", 80), ("paid", 50), ("remaining", -10))),
            # p6, worst seen from remaining: -40, where 60 + 50 is 10 above the budget and
            # 100 - 60 - 50 is 30 from -40.
            *(_series(f"reward_pool_{g}", f'{A}, pool_id="p6", campaign_id="c3", currency="TON"', f"{v}x10")
              for g, v in (("budget", 100), ("reserved", 60), ("paid", 50), ("remaining", -40))),
            # p4's replicas disagree: B's remaining is 10 short of what adds up; the worse counts.
            *(_series(f"reward_pool_{g}", f'{r}, pool_id="p4", campaign_id="c2", currency="TON"', f"{v}x10")
              for r, rem in ((A, 80), (B, 70))
              for g, v in (("budget", 100), ("reserved", 10), ("paid", 10), ("remaining", rem))),
            # p5 is being set up: everything 0 is 0 off.
            *(_series(f"reward_pool_{g}", f'{A}, pool_id="p5", campaign_id="c3", currency="USDT"', "0x10")
              for g in ("budget", "reserved", "paid", "remaining")),
        ],
        {"10m": {'pool:reward_pool_ledger_discrepancy:max{pool_id="p1", campaign_id="c1", currency="USDT"}': 0,
                 'pool:reward_pool_ledger_discrepancy:max{pool_id="p2", campaign_id="c1", currency="USDT"}': 5,
                 'pool:reward_pool_ledger_discrepancy:max{pool_id="p3", campaign_id="c2", currency="TON"}': 30,
                 'pool:reward_pool_ledger_discrepancy:max{pool_id="p4", campaign_id="c2", currency="TON"}': 10,
                 'pool:reward_pool_ledger_discrepancy:max{pool_id="p5", campaign_id="c3", currency="USDT"}': 0,
                 'pool:reward_pool_ledger_discrepancy:max{pool_id="p6", campaign_id="c3", currency="TON"}': 40}},
    ),
    "currency:reward_pool_reserved:sum": (
        [
            _series("reward_pool_reserved", f'{A}, pool_id="p1", campaign_id="c1", currency="USDT"', "30x10"),
            _series("reward_pool_reserved", f'{A}, pool_id="p2", campaign_id="c2", currency="USDT"', "12x10"),
            _series("reward_pool_reserved", f'{A}, pool_id="p3", campaign_id="c2", currency="TON"', "5x10"),
        ],
        {"10m": {'currency:reward_pool_reserved:sum{currency="USDT"}': 42,
                 'currency:reward_pool_reserved:sum{currency="TON"}': 5}},
    ),
    "currency:reward_pool_paid:sum": (
        [
            _series("reward_pool_paid", f'{A}, pool_id="p1", campaign_id="c1", currency="USDT"', "20x10"),
            _series("reward_pool_paid", f'{A}, pool_id="p2", campaign_id="c2", currency="USDT"', "3x10"),
            _series("reward_pool_paid", f'{A}, pool_id="p3", campaign_id="c2", currency="TON"', "1x10"),
        ],
        {"10m": {'currency:reward_pool_paid:sum{currency="USDT"}': 23,
                 'currency:reward_pool_paid:sum{currency="TON"}': 1}},
    ),
    "campaign:reward_claim_rejection:ratio_rate5m": (
        [
            # c1: rejections on two replicas, 1/s + 3/s, out of 1 + 3 + 4 = 8 decisions/s
            _series("reward_claim_decisions_total", f'{A}, campaign_id="c1", decision="rejected"', "0+60x10"),
            _series("reward_claim_decisions_total", f'{B}, campaign_id="c1", decision="rejected"', "0+180x10"),
            _series("reward_claim_decisions_total", f'{A}, campaign_id="c1", decision="approved"', "0+240x10"),
            # c2: decisions, none rejected
            _series("reward_claim_decisions_total", f'{A}, campaign_id="c2", decision="rejected"', "0+0x10"),
            _series("reward_claim_decisions_total", f'{A}, campaign_id="c2", decision="approved"', "0+120x10"),
            _series("reward_claim_decisions_total", f'{A}, campaign_id="c2", decision="held"', "0+120x10"),
            # c3: no decisions at all: no ratio (0/0)
            _series("reward_claim_decisions_total", f'{A}, campaign_id="c3", decision="rejected"', "0+0x10"),
            _series("reward_claim_decisions_total", f'{A}, campaign_id="c3", decision="approved"', "0+0x10"),
        ],
        {"10m": {'campaign:reward_claim_rejection:ratio_rate5m{campaign_id="c1"}': 0.5,
                 'campaign:reward_claim_rejection:ratio_rate5m{campaign_id="c2"}': 0}},
    ),
    "outcome:reward_allocations:rate5m": (
        [
            _series("reward_allocations_total", f'{A}, campaign_id="c1", outcome="allocated"', "0+120x10"),
            _series("reward_allocations_total", f'{A}, campaign_id="c2", outcome="allocated"', "0+60x10"),
            _series("reward_allocations_total", f'{A}, campaign_id="c1", outcome="rejected_pool_exhausted"', "0+60x10"),
            _series("reward_allocations_total", f'{A}, campaign_id="c2", outcome="duplicate"', "0+0x10"),
        ],
        {"10m": {'outcome:reward_allocations:rate5m{outcome="allocated"}': 3,
                 'outcome:reward_allocations:rate5m{outcome="rejected_pool_exhausted"}': 1,
                 'outcome:reward_allocations:rate5m{outcome="duplicate"}': 0}},
    ),
    "reason:reward_claims_held:sum": (
        [
            _series("reward_claims_held", f'{A}, campaign_id="c1", reason="abuse_review"', "4x10"),
            _series("reward_claims_held", f'{A}, campaign_id="c2", reason="abuse_review"', "3x10"),
            _series("reward_claims_held", f'{A}, campaign_id="c1", reason="manual_review"', "2x10"),
        ],
        {"10m": {'reason:reward_claims_held:sum{reason="abuse_review"}': 7,
                 'reason:reward_claims_held:sum{reason="manual_review"}': 2}},
    ),
    "all:reward_claim_requests:rate5m": (
        [
            _series("reward_claim_requests_total", f'{A}, campaign_id="c1"', "0+60x10"),
            _series("reward_claim_requests_total", f'{A}, campaign_id="c2"', "0+180x10"),
        ],
        {"10m": {"all:reward_claim_requests:rate5m": 4}},
    ),
    "provider_error_code:reward_provider_errors:rate5m": (
        [
            _series("reward_provider_errors_total", f'{A}, provider="ton_wallet", operation="create", error_code="timeout"', "0+60x10"),
            _series("reward_provider_errors_total", f'{A}, provider="ton_wallet", operation="status", error_code="timeout"', "0+120x10"),
            _series("reward_provider_errors_total", f'{A}, provider="ton_wallet", operation="create", error_code="http_5xx"', "0+60x10"),
            _series("reward_provider_errors_total", f'{A}, provider="gift_card", operation="quote", error_code="rate_limited"', "0+0x10"),
        ],
        {"10m": {'provider_error_code:reward_provider_errors:rate5m{provider="ton_wallet", error_code="timeout"}': 3,
                 'provider_error_code:reward_provider_errors:rate5m{provider="ton_wallet", error_code="http_5xx"}': 1,
                 'provider_error_code:reward_provider_errors:rate5m{provider="gift_card", error_code="rate_limited"}': 0}},
    ),
    # recording_rules/reward-pools-trend.yaml (every 5m in production; promtool evaluates
    # every minute, so the eval times are whole 5 minutes).
    "pool:reward_pool_remaining:predict_linear6h_24h": (
        [
            # p1 spends 1 a minute: 630 left at 370m, so 630 - 1440 = -810 a day later.
            _series("reward_pool_remaining", f'{A}, pool_id="p1", campaign_id="c1", currency="USDT"', "1000-1x400"),
            # p2 is flat, and two replicas disagree: the rule keeps the lower forecast.
            _series("reward_pool_remaining", f'{A}, pool_id="p2", campaign_id="c2", currency="TON"', "500x400"),
            _series("reward_pool_remaining", f'{B}, pool_id="p2", campaign_id="c2", currency="TON"', "400x400"),
        ],
        {"370m": {'pool:reward_pool_remaining:predict_linear6h_24h{pool_id="p1", campaign_id="c1", currency="USDT"}': -810,
                  'pool:reward_pool_remaining:predict_linear6h_24h{pool_id="p2", campaign_id="c2", currency="TON"}': 400}},
    ),
    "pool_source:reward_pool_funding:increase1d": (
        [
            # 10 a minute booked as `other` to p1: 14,400 over the day before 1500m.
            _series("reward_pool_funding_total", f'{A}, pool_id="p1", source="other"', "0+10x1500"),
            # a sponsor's funding is not this rule's; p2's `other` funding stopped long ago.
            _series("reward_pool_funding_total", f'{A}, pool_id="p1", source="sponsor"', "0+50x1500"),
            _series("reward_pool_funding_total", f'{A}, pool_id="p2", source="other"', "0+1x30 30x1470"),
        ],
        {"1500m": {'pool_source:reward_pool_funding:increase1d{pool_id="p1", source="other"}': 14400,
                   'pool_source:reward_pool_funding:increase1d{pool_id="p2", source="other"}': 0}},
    ),
}


# SLO name -> (level, input series, {labels: (bad/s, total/s, error ratio, budget left)}),
# evaluated at 2h. Counters start at 0 and climb 60·k a minute (k per second), so every
# rate window at 2h is exact and bad and total share every partial window's factor: each
# window's ratio is bad/total. Budget left = 1 - ratio / (1 - objective). Two replicas per
# provider: `sum` adds them, a `max` would not.
# The budget sums the recorded 1h rates at hourly steps over 30 days: at 2h the steps
# with a value are 1h and 2h (the 1h rate at 0h has one sample, so none). Both are
# bad/total times the same factor (the 1h rate at 1h extrapolates its partial window the
# same way on both sides), so the sums' ratio is still bad/total and the values below
# hold unchanged from the raw [30d] ratio they were first computed for.
SLO_AT = "2h"
SLO_CASES: dict[str, tuple[str, list[dict], dict[str, tuple[float, float, float, float]]]] = {
    # 99.9%, counting the platform's failures only (contract/metrics.yaml, cause.blame).
    # ton_wallet: 200 final payouts a second (97 + 100 paid, 3 failed); of the 3 failed, 1
    # timed out (the platform's) and 2 had an invalid destination (the player's): bad is 1.
    # gift_card: 50 a second, 1 of them failed for an invalid destination: bad is 0.
    "payout_success": ("provider", [
        _series("reward_payouts_total", f'{A}, provider="ton_wallet", result="failed"', "0+180x130"),
        _series("reward_payout_failures_total", f'{A}, provider="ton_wallet", cause="timeout"', "0+60x130"),
        _series("reward_payout_failures_total", f'{B}, provider="ton_wallet", cause="invalid_destination"', "0+120x130"),
        _series("reward_payouts_total", f'{A}, provider="ton_wallet", result="paid"', "0+5820x130"),
        _series("reward_payouts_total", f'{B}, provider="ton_wallet", result="paid"', "0+6000x130"),
        _series("reward_payouts_total", f'{A}, provider="ton_wallet", result="canceled"', "0+600x130"),  # not final
        _series("reward_payouts_total", f'{A}, provider="gift_card", result="paid"', "0+2940x130"),
        _series("reward_payouts_total", f'{A}, provider="gift_card", result="failed"', "0+60x130"),
        _series("reward_payout_failures_total", f'{A}, provider="gift_card", cause="invalid_destination"', "0+60x130"),
        # Exported at 0 from startup, as the contract asks: without it gift_card has no ratio.
        _series("reward_payout_failures_total", f'{A}, provider="gift_card", cause="provider_error"', "0x130"),
    ], {'{provider="ton_wallet"}': (1, 200, 0.005, -4), '{provider="gift_card"}': (0, 50, 0, 1)}),
    # The same payouts over all providers: 1 platform failure of 250 a second.
    "payout_success_fleet": ("all", [
        _series("reward_payouts_total", f'{A}, provider="ton_wallet", result="failed"', "0+180x130"),
        _series("reward_payout_failures_total", f'{A}, provider="ton_wallet", cause="timeout"', "0+60x130"),
        _series("reward_payout_failures_total", f'{B}, provider="ton_wallet", cause="invalid_destination"', "0+120x130"),
        _series("reward_payouts_total", f'{A}, provider="ton_wallet", result="paid"', "0+5820x130"),
        _series("reward_payouts_total", f'{B}, provider="ton_wallet", result="paid"', "0+6000x130"),
        _series("reward_payouts_total", f'{A}, provider="gift_card", result="paid"', "0+2940x130"),
        _series("reward_payouts_total", f'{A}, provider="gift_card", result="failed"', "0+60x130"),
        _series("reward_payout_failures_total", f'{A}, provider="gift_card", cause="invalid_destination"', "0+60x130"),
    ], {"{}": (1, 250, 0.004, -3)}),
    # 97.5%: 2 failed creates of 80 a second; status calls and their errors do not count.
    "payout_creation": ("provider", [
        _series("reward_provider_errors_total", f'{A}, provider="crypto_exchange", operation="create", error_code="timeout"', "0+60x130"),
        _series("reward_provider_errors_total", f'{B}, provider="crypto_exchange", operation="create", error_code="http_5xx"', "0+60x130"),
        _series("reward_provider_errors_total", f'{A}, provider="crypto_exchange", operation="status", error_code="timeout"', "0+600x130"),
        _series("reward_provider_requests_total", f'{A}, provider="crypto_exchange", operation="create"', "0+1800x130"),
        _series("reward_provider_requests_total", f'{B}, provider="crypto_exchange", operation="create"', "0+3000x130"),
        _series("reward_provider_requests_total", f'{A}, provider="crypto_exchange", operation="status"', "0+6000x130"),
    ], {'{provider="crypto_exchange"}': (2, 80, 0.025, 0)}),
    # 98.5%: 3 rejected or failed of 100 first deliveries a second; duplicates do not count.
    "webhook_processing": ("provider", [
        _series("reward_payout_webhooks_total", f'{A}, provider="fiat_provider", result="processed"', "0+5820x130"),
        _series("reward_payout_webhooks_total", f'{A}, provider="fiat_provider", result="invalid_signature"', "0+60x130"),
        _series("reward_payout_webhooks_total", f'{B}, provider="fiat_provider", result="failed"', "0+120x130"),
        _series("reward_payout_webhooks_total", f'{A}, provider="fiat_provider", result="duplicate"', "0+6000x130"),
    ], {'{provider="fiat_provider"}': (3, 100, 0.03, -1)}),
    # 99% within 10 minutes: of 20 paid a second, 19 within 600s (the bucket's le is "600"
    # from one client library and "600.0" from another); the +Inf bucket does not count.
    "claim_to_paid_latency": ("provider", [
        _series("reward_payout_duration_seconds_count", f'{A}, provider="gift_card"', "0+600x130"),
        _series("reward_payout_duration_seconds_bucket", f'{A}, provider="gift_card", le="600"', "0+540x130"),
        _series("reward_payout_duration_seconds_bucket", f'{A}, provider="gift_card", le="+Inf"', "0+600x130"),
        _series("reward_payout_duration_seconds_count", f'{B}, provider="gift_card"', "0+600x130"),
        _series("reward_payout_duration_seconds_bucket", f'{B}, provider="gift_card", le="600.0"', "0+600x130"),
        _series("reward_payout_duration_seconds_bucket", f'{B}, provider="gift_card", le="+Inf"', "0+600x130"),
        # Manual payouts are paid by hand, none within 10 minutes: left out of the SLO.
        _series("reward_payout_duration_seconds_count", f'{A}, provider="manual"', "0+60x130"),
        _series("reward_payout_duration_seconds_bucket", f'{A}, provider="manual", le="600"', "0x130"),
    ], {'{provider="gift_card"}': (1, 20, 0.05, -4)}),
}
SLO_RATE_WINDOWS = ("5m", "1h")
SLO_RATIO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def _slo_expected(name: str) -> dict[str, dict[str, float]]:
    """record -> {labels: value} of one SLO, from its row in SLO_CASES."""
    level, _, rows = SLO_CASES[name]
    prefix = f"{level}:reward_slo_{name}"
    out: dict[str, dict[str, float]] = {}
    for labels, (bad, total, ratio, budget) in rows.items():
        for w in SLO_RATE_WINDOWS:
            out.setdefault(f"{prefix}_bad:rate{w}", {})[labels] = bad
            out.setdefault(f"{prefix}_total:rate{w}", {})[labels] = total
        for w in SLO_RATIO_WINDOWS:
            out.setdefault(f"{prefix}_errors:ratio_rate{w}", {})[labels] = ratio
        out.setdefault(f"{prefix}_budget:remaining30d", {})[labels] = budget
    return out


def _slo_unit_tests() -> list[dict]:
    """One test group per SLO. Rates over 30 days divide by the whole window, so the ratio
    carries float noise in its last bits: every value is compared rounded to 1e-6."""
    return [{
        "name": f"slo {name}", "interval": "1m", "input_series": series,
        "promql_expr_test": [
            {"expr": f"round({record}, 0.000001)", "eval_time": SLO_AT,
             "exp_samples": [{"labels": labels, "value": value} for labels, value in samples.items()]}
            for record, samples in _slo_expected(name).items()],
    } for name, (_, series, _) in SLO_CASES.items()]


def _unit_tests() -> list[dict]:
    tests = []
    for record, (series, expected) in CASES.items():
        tests.append({
            "name": record,
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {"expr": record, "eval_time": at,
                 "exp_samples": [{"labels": labels, "value": value} for labels, value in samples.items()]}
                for at, samples in expected.items()
            ],
        })
    return tests


@pytest.fixture(scope="module")
def rule_file(definitions, config, tmp_path_factory):
    assert config.recording_rules == "prometheus"
    path = tmp_path_factory.mktemp("recording") / "recording.rules.yaml"
    path.write_text(render_files(definitions, config)[PROMETHEUS_RECORDING_FILE])
    return path


def _run_promtool(rule_file, tests) -> subprocess.CompletedProcess:
    test_file = rule_file.parent / "recording.test.yaml"
    test_file.write_text(yaml.safe_dump(
        {"rule_files": [rule_file.name], "evaluation_interval": "1m", "tests": tests}, sort_keys=False))
    return subprocess.run(["promtool", "test", "rules", test_file.name], cwd=rule_file.parent,
                          capture_output=True, text=True, timeout=120)


def test_every_recording_rule_has_a_hand_checked_case(rule_file):
    rendered = {r["record"] for g in yaml.safe_load(rule_file.read_text())["groups"] for r in g["rules"]}
    assert rendered == set(CASES) | {record for name in SLO_CASES for record in _slo_expected(name)}


def test_each_recorded_series_has_its_hand_computed_value(rule_file):
    result = _run_promtool(rule_file, _unit_tests())
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_slo_series_has_its_hand_computed_value(rule_file):
    result = _run_promtool(rule_file, _slo_unit_tests())
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expected_value_fails_promtool(rule_file):
    """The check can fail: one expected value off by one is reported by promtool."""
    tests = _unit_tests()
    tests[0]["promql_expr_test"][0]["exp_samples"][0]["value"] += 1
    result = _run_promtool(rule_file, tests)
    assert result.returncode == 1 and "currency:reward_pool_remaining:sum" in result.stdout + result.stderr
