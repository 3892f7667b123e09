"""What each recording rule records, checked by Prometheus itself: `promtool test rules`
evaluates the rendered recording rule file on hand-written series, and every recorded
series must equal the value written below, worked out by hand from the input (never
from the rule's expression or its `raw` query). A `sum` turned into `max`, a lost
`by` label or a wrong rate window changes a value and fails here.

Every rule in recording_rules/*.yaml needs a case: a new rule without one fails
`test_every_recording_rule_has_a_hand_checked_case`.
"""
from __future__ import annotations

import subprocess

import pytest
import yaml

from reward_obs.sinks.files import PROMETHEUS_RECORDING_FILE, render_files

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
}


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
    assert rendered == set(CASES)


def test_each_recorded_series_has_its_hand_computed_value(rule_file):
    result = _run_promtool(rule_file, _unit_tests())
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expected_value_fails_promtool(rule_file):
    """The check can fail: one expected value off by one is reported by promtool."""
    tests = _unit_tests()
    tests[0]["promql_expr_test"][0]["exp_samples"][0]["value"] += 1
    result = _run_promtool(rule_file, tests)
    assert result.returncode == 1 and "currency:reward_pool_remaining:sum" in result.stdout + result.stderr
