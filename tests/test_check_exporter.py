"""`reward-obs check-exporter`: the project's own simulator conforms (served on loopback,
and as a file in both text formats), and each class of violation planted in its output is
named with a literal message and exit code 1.

The planted cases edit a healthy exposition by hand; the expected messages are written
out here from the contract (contract/metrics.yaml) and the SLO that reads the 600 s
bucket (slos/claim-to-paid-latency.yaml), not computed by the checker."""
from __future__ import annotations

import json
import re

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from reward_obs.cli import main
from reward_obs.tools.check_exporter import SourceError, check, counters_went_down, parse
from reward_obs.tools.check_exporter import run as check_file
from reward_obs_dev.simulator import ContractCollector, Simulator, SimulatorServer, Topology

from conftest import ROOT

START = 1_760_000_000.0  # a fixed simulated start, so the exposition is the same on every run
SMALL_TOPOLOGY = Topology(4, 2, 6)


def exposition(definitions, openmetrics: bool = False, steps: int = 20, topology: Topology = SMALL_TOPOLOGY) -> str:
    """A healthy simulator's /metrics after `steps` simulated 30 s steps."""
    sim = Simulator(definitions.contract, topology, seed=3, start=START)
    for _ in range(steps):
        sim.step(30)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ContractCollector(sim))
    return (generate_openmetrics if openmetrics else generate_latest)(registry).decode()


@pytest.fixture(scope="module")
def healthy(definitions) -> str:
    return exposition(definitions)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(ROOT), "check-exporter", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def violations(definitions, tmp_path, text: str) -> tuple[bool, list[str]]:
    """What the command reports for a file of this text (the command itself, through the
    CLI, is exercised below; loading the definitions once keeps the planted cases fast)."""
    path = tmp_path / "metrics.txt"
    path.write_text(text)
    result = check_file(str(path), definitions)
    return result.ok, [str(v) for v in result.violations]


# ------------------------------------------------------------------ the simulator conforms


def test_the_simulator_served_on_loopback_conforms(definitions, capsys):
    server = SimulatorServer(Simulator(definitions.contract, Topology(4, 2, 6)), port=0, speed=60, tick=0.05).start()
    try:
        code, out, err = run(capsys, f"http://{server.address}/metrics")
    finally:
        server.stop()
    assert code == 0, out + err
    assert "conforms to the metrics contract (31 contract metrics exported" in out


def test_the_simulator_counters_only_go_up_between_two_scrapes(definitions, capsys):
    server = SimulatorServer(Simulator(definitions.contract, Topology(4, 2, 6)), port=0, speed=600, tick=0.05).start()
    try:
        code, out, err = run(capsys, f"http://{server.address}/metrics", "--again", "0.5", "--format", "json")
    finally:
        server.stop()
    assert code == 0, out + err
    assert json.loads(out)["violations"] == []


@pytest.mark.parametrize("openmetrics", [False, True], ids=["prometheus-text", "openmetrics"])
def test_a_file_of_the_simulator_output_conforms(definitions, capsys, tmp_path, openmetrics):
    text = exposition(definitions, openmetrics)
    assert text.rstrip().endswith("# EOF") == openmetrics
    path = tmp_path / "metrics.txt"
    path.write_text(text)
    code, out, err = run(capsys, str(path))
    assert code == 0, out + err


def test_a_deployment_with_fewer_providers_and_pools_conforms(definitions, tmp_path):
    # Providers, pools and campaigns are what a deployment has, not every value the contract
    # allows: three of the six provider types and one pool are a conforming exporter.
    ok, found = violations(definitions, tmp_path, exposition(definitions, topology=Topology(1, 1, 3)))
    assert (ok, found) == (True, [])


# ------------------------------------------------------------------ planted violations


def drop(pattern: str):
    """Remove every line matching the regex."""
    return lambda text: "\n".join(line for line in text.split("\n") if not re.search(pattern, line))


def after(line_start: str, new_line: str):
    """Insert a line right after the first line starting with `line_start` (inside its family)."""
    def edit(text: str) -> str:
        lines = text.split("\n")
        i = next(i for i, line in enumerate(lines) if line.startswith(line_start))
        return "\n".join(lines[: i + 1] + [new_line] + lines[i + 1:])
    return edit


def replace(old: str, new: str):
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new)
    return edit


COUNTERS_AT_ZERO = "(counters start at 0 for every known value)"
SLO_600 = "which the SLO claim-to-paid-latency (slos/claim-to-paid-latency.yaml) reads"
PLANTED = {
    "missing-metric": (drop(r"^reward_provider_up\{"), [
        "reward_provider_up: missing (no series exported); alerts that read it: RewardPayoutProviderOutage"]),
    "wrong-type": (replace("# TYPE reward_claims_held gauge", "# TYPE reward_claims_held counter"), [
        "reward_claims_held: exported as counter; the contract says gauge"]),
    "untyped": (drop(r"^# (TYPE|HELP) reward_provider_up "), [
        "reward_provider_up: exported without a TYPE line (untyped); the contract says gauge"]),
    "identity-label": (replace('reward_claim_requests_total{campaign_id="camp-0001"}',
                               'reward_claim_requests_total{campaign_id="camp-0001",user_id="u-42"}'), [
        "reward_claim_requests_total: label 'user_id' identifies a person or an entity; it belongs in logs, never in a metric label"]),
    "unknown-label": (replace('reward_provider_up{provider="manual"}', 'reward_provider_up{provider="manual",region="eu"}'), [
        "reward_provider_up: label 'region' is not in the contract (its labels: provider)"]),
    "missing-label": (after("reward_payouts_pending{", "reward_payouts_pending 3.0"), [
        "reward_payouts_pending: a series has no label 'provider'"]),
    "value-outside-enumeration": (after("reward_payouts_total{", 'reward_payouts_total{provider="manual",result="refunded"} 0.0'), [
        'reward_payouts_total: result="refunded" is not one of its values (paid, failed, canceled)']),
    "season-points-currency": (after("reward_pool_budget{", 'reward_pool_budget{campaign_id="camp-0001",currency="SP",pool_id="pool-0001"} 5.0'), [
        'reward_pool_budget: currency="SP" is refused by the metrics contract (labels.currency.refused: SP, SEASON_POINTS, SEASONPOINTS)']),
    "season-points-any-case": (after("reward_pool_paid{", 'reward_pool_paid{campaign_id="camp-0001",currency="Season_Points",pool_id="pool-0001"} 5.0'), [
        'reward_pool_paid: currency="Season_Points" is refused by the metrics contract (labels.currency.refused: SP, SEASON_POINTS, SEASONPOINTS)']),
    "counter-not-initialised": (drop(r'^reward_allocations_total\{campaign_id="camp-0002",outcome="duplicate"\}'), [
        f'reward_allocations_total: not initialised: no series {{campaign_id="camp-0002", outcome="duplicate"}} {COUNTERS_AT_ZERO}']),
    "counter-missing-a-provider": (drop(r'^reward_payout_duplicate_attempts_total\{provider="gift_card"\}'), [
        f'reward_payout_duplicate_attempts_total: not initialised: no series for provider="gift_card" {COUNTERS_AT_ZERO}']),
    # The SLO reads le=~"600|600\.0" on every provider but manual: five messages, none for manual.
    "histogram-without-the-slo-bucket": (drop(r'^reward_payout_duration_seconds_bucket\{le="600.0"'), [
        f'reward_payout_duration_seconds: no bucket le=~"600|600\\\\.0" for {{provider="{p}"}}, {SLO_600}'
        for p in ("crypto_exchange", "fiat_provider", "gift_card", "telegram_if_supported", "ton_wallet")]),
    "label-value-too-long": (after("reward_pool_reserved{", f'reward_pool_reserved{{campaign_id="camp-0001",currency="TON",pool_id="{"p" * 65}"}} 1.0'), [
        "reward_pool_reserved: label pool_id has a value of 65 characters, over the contract's labels.pool_id.max_length 64"]),
    "timestamp-in-the-future": (replace('reward_provider_up{provider="manual"} 1.0', 'reward_provider_up{provider="manual"} 1.0 4102444800000'), [
        "reward_provider_up: a sample is timestamped 2100-01-01T00:00:00Z, in the future (more than 60 s ahead of this clock)"]),
    "staleness-gauge-missing": (drop(r"^reward_payout_oldest_pending_age_seconds\{"), [
        "reward_payout_oldest_pending_age_seconds: staleness gauge missing (no series exported); "
        "alerts that read it: RewardPayoutWebhooksStopped, RewardPayoutsStuck"]),
    "staleness-gauge-missing-a-provider": (drop(r'^reward_payout_webhook_last_processed_timestamp_seconds\{provider="manual"\}'), [
        'reward_payout_webhook_last_processed_timestamp_seconds: staleness gauge has no series for provider="manual" '
        "(exported for every one the exporter knows, from startup: 0 when nothing waits)"]),
    "negative-counter": (replace('reward_payouts_total{provider="manual",result="canceled"} 0.0', 'reward_payouts_total{provider="manual",result="canceled"} -1.0'), [
        "reward_payouts_total: a series has the value -1; a counter is never negative or NaN"]),
    "duplicate-series": (after('reward_provider_up{provider="manual"}', 'reward_provider_up{provider="manual"} 0.0'), [
        'reward_provider_up: a series is exported twice: reward_provider_up{provider="manual"}']),
    "metric-not-in-the-contract": (lambda t: t + "# TYPE reward_bonus_total counter\nreward_bonus_total 1.0\n", [
        "reward_bonus_total: not in the metrics contract (a new series is a contract change: add it to contract/metrics.yaml first)"]),
    "prometheus-own-series": (lambda t: t + "# TYPE up gauge\nup 1.0\n", [
        "up: is added by Prometheus itself; an exporter must not export it"]),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_a_planted_violation_is_named(definitions, tmp_path, healthy, case):
    edit, expected = PLANTED[case]
    ok, found = violations(definitions, tmp_path, edit(healthy))
    assert not ok
    assert found == expected


def test_a_token_in_a_label_value_is_never_echoed(definitions, tmp_path, healthy):
    # Built at run time so the repository holds no token-shaped string.
    token = "70123" + "45678:" + "AAH" + "z" * 32
    text = after("reward_payouts_total{", f'reward_payouts_total{{provider="manual",result="{token}"}} 0.0')(healthy)
    _, found = violations(definitions, tmp_path, text)
    assert found == ['reward_payouts_total: result="[redacted]" is not one of its values (paid, failed, canceled)']
    broken = tmp_path / "broken.txt"
    broken.write_text(f"reward_payouts_total{{result={token}}} 1\n")
    with pytest.raises(SourceError) as exc:
        check_file(str(broken), definitions)
    assert token not in str(exc.value) and token[:20] not in str(exc.value)


def test_a_label_value_of_exactly_the_bound_is_accepted(definitions, tmp_path, healthy):
    line = f'reward_pool_reserved{{campaign_id="camp-0001",currency="TON",pool_id="{"p" * 64}"}} 1.0'  # contract/metrics.yaml: pool_id max_length 64
    _, found = violations(definitions, tmp_path, after("reward_pool_reserved{", line)(healthy))
    # A new pool is a known entity now, so only its missing funding counters are reported.
    assert found and all(f.startswith("reward_pool_funding_total: not initialised: no series for pool_id=") for f in found), found


def test_a_planted_violation_in_openmetrics_is_named(definitions, capsys, tmp_path):
    text = drop(r"^reward_provider_up\{")(exposition(definitions, openmetrics=True))
    ok, found = violations(definitions, tmp_path, text)
    assert (ok, found) == (False, ["reward_provider_up: missing (no series exported); alerts that read it: RewardPayoutProviderOutage"])


def test_the_command_names_each_violation_on_its_own_line_and_exits_1(capsys, tmp_path, healthy):
    path = tmp_path / "metrics.txt"
    path.write_text(drop(r"^reward_provider_up\{")(healthy))
    code, out, _ = run(capsys, str(path))
    assert code == 1
    assert out.splitlines() == [f"reward-obs check-exporter: {path}: 1 violation(s) of contract/metrics.yaml",
                                "  reward_provider_up: missing (no series exported); alerts that read it: RewardPayoutProviderOutage"]
    code, out, _ = run(capsys, str(path), "--format", "json")
    assert code == 1
    assert json.loads(out)["violations"] == [
        {"metric": "reward_provider_up", "problem": "missing (no series exported); alerts that read it: RewardPayoutProviderOutage"}]


def test_a_counter_that_went_down_between_two_scrapes_is_named(definitions, healthy):
    line = next(x for x in healthy.splitlines() if x.startswith('reward_payouts_total{provider="gift_card",result="paid"}'))
    lowered = healthy.replace(line, 'reward_payouts_total{provider="gift_card",result="paid"} 1.0')
    assert float(line.split()[-1]) > 1
    found = counters_went_down(parse(healthy, False), parse(lowered, False), definitions.contract)
    assert [str(v) for v in found] == [
        f'reward_payouts_total: reward_payouts_total{{provider="gift_card", result="paid"}} went down from '
        f'{float(line.split()[-1]):g} to 1 between two scrapes (a counter only goes up)']
    assert counters_went_down(parse(healthy, False), parse(healthy, False), definitions.contract) == []


def test_the_timestamp_check_reads_the_clock_it_is_given(definitions, healthy):
    # 100 s after START is in the future of a clock at START, and inside a 60 s skew of START + 50.
    stamped = healthy.replace('reward_provider_up{provider="manual"} 1.0', f'reward_provider_up{{provider="manual"}} 1.0 {int((START + 100) * 1000)}')
    found, _ = check(parse(stamped, False), definitions, now=START)
    assert [str(v) for v in found] == [
        "reward_provider_up: a sample is timestamped 2025-10-09T08:55:00Z, in the future (more than 60 s ahead of this clock)"]
    assert check(parse(stamped, False), definitions, now=START + 50)[0] == []


# ------------------------------------------------------------------ sources that cannot be read


@pytest.mark.parametrize("content, message", [
    ("this is not metrics\n", "not valid Prometheus text format"),
    ("# TYPE x counter\nx 1\n# EOF\n", "not valid OpenMetrics: Clashing name: x"),
    (b"reward_provider_up{provider=\"\xff\"} 1\n", "not UTF-8 at byte 29"),
])
def test_an_unreadable_file_is_one_clear_line_and_exit_1(capsys, tmp_path, content, message):
    path = tmp_path / "metrics.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, out, err = run(capsys, str(path))
    assert code == 1
    assert out == ""
    assert err.startswith(f"reward-obs check-exporter: {path}: {message}") and "Traceback" not in err


def test_an_unreachable_url_is_one_clear_line_and_exit_1(capsys):
    code, _, err = run(capsys, "http://127.0.0.1:9/metrics")  # port 9 (discard): nothing listens on loopback
    assert code == 1
    assert err.startswith("reward-obs check-exporter: http://127.0.0.1:9/metrics: cannot scrape:") and "Traceback" not in err


def test_again_needs_a_url(capsys, tmp_path, healthy):
    path = tmp_path / "metrics.txt"
    path.write_text(healthy)
    code, _, err = run(capsys, str(path), "--again", "1")
    assert code == 2 and "--again needs a URL" in err
