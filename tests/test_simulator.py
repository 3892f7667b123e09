"""The reward simulator: exactly the metrics contract on /metrics, counters from 0,
scenarios, and reward events that agree with the metrics (no Prometheus needed)."""
from __future__ import annotations

import io
import json
import random
import re
import urllib.request
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reward_obs.model.contract import identity_label
from reward_obs_dev.simulator import FAULTS, SCENARIOS, STAGES, EventSink, Simulator, SimulatorServer, Topology, parse_scenario

from conftest import ROOT, STACK_FILE, run_cli
from spec import REWARD_STAGES

EVENT_ID, CORRELATION_ID = re.compile(r"^evt_[0-9a-f]{24}$"), re.compile(r"^cor_[0-9a-f]{24}$")
EVENT_SCHEMA = ROOT / "contract" / "reward_event.schema.json"


def scrape(server: SimulatorServer) -> dict[str, list]:
    with urllib.request.urlopen(f"http://{server.address}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


@pytest.fixture
def server(definitions):
    srv = SimulatorServer(Simulator(definitions.contract, Topology(4, 2, 6)), port=0, speed=60, tick=0.05).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_metrics_endpoint_serves_exactly_the_contract(definitions, server):
    families = scrape(server)
    contract = definitions.contract
    exported = {m.name for m in contract.metrics.values() if not m.synthetic}
    # prometheus_client names a counter family without _total.
    assert {name if name in contract.metrics else f"{name}_total" for name in families} == exported
    for samples in families.values():
        for sample in samples:
            metric = contract.series_metric(sample.name)
            assert metric is not None, sample.name
            assert set(sample.labels) == contract.series_labels(sample.name) - {"job", "instance"}, sample
            for label, value in sample.labels.items():
                allowed = contract.label_values(sample.name, label) if label != "le" else None
                assert allowed is None or value in allowed, (sample.name, label, value)


def test_counters_start_at_zero_for_every_known_label_value(definitions):
    sim = Simulator(definitions.contract, Topology(4, 2, 6))
    series = sim.series()
    contract = definitions.contract
    for outcome in contract.label_values("reward_allocations_total", "outcome"):
        for campaign in sim.campaigns:
            assert series["reward_allocations_total"][(campaign, outcome)] == 0
    for result in contract.label_values("reward_payout_webhooks_total", "result"):
        for provider in sim.providers:
            assert series["reward_payout_webhooks_total"][(provider, result)] == 0
    for name, values in sim.counters.items():
        if name != "reward_pool_funding_total":  # pools are funded when they open
            assert set(values.values()) == {0.0}, name


def test_scenarios_are_healthy_plus_one_fault_per_alert(definitions):
    assert SCENARIOS[0] == "healthy" and len(FAULTS) == 11
    assert set(FAULTS.values()) <= {a.name for a in definitions.alerts}
    assert parse_scenario("healthy") == frozenset()
    assert parse_scenario("pool_low,provider_outage") == {"pool_low", "provider_outage"}
    with pytest.raises(ValueError, match="unknown scenario"):
        parse_scenario("pool_empty")


def test_each_fault_moves_its_own_signal(definitions):
    contract = definitions.contract
    topology = Topology(4, 2, 6)

    def run(scenario):
        sim = Simulator(contract, topology, scenario, seed=3)
        for _ in range(120):
            sim.step(5.0)
        return sim, sim.series()

    _, healthy = run("healthy")
    sim, faulty = run(",".join(FAULTS))
    t = {fault: sim.target(fault) for fault in FAULTS}
    pool_key = lambda pool_id: next(k for k in faulty["reward_pool_remaining"] if k[0] == pool_id)  # noqa: E731
    assert faulty["reward_pool_remaining"][pool_key(sim.pools[0].pool_id)] <= 0
    low = pool_key(t["pool_low"]["pool_id"])
    assert 0 < faulty["reward_pool_remaining"][low] < 0.1 * faulty["reward_pool_budget"][low]
    assert faulty["reward_pool_funding_total"][(t["forbidden_funding"]["pool_id"], "entry_fee")] > 0
    assert faulty["reward_payout_duplicate_attempts_total"][(t["duplicate_payout"]["provider"],)] > 0
    assert faulty["reward_provider_up"][(t["provider_outage"]["provider"],)] == 0
    bad = t["webhook_failures"]["provider"]
    assert faulty["reward_payout_webhooks_total"][(bad, "invalid_signature")] + faulty["reward_payout_webhooks_total"][(bad, "failed")] > 10
    camp = t["claim_rejection_spike"]["campaign_id"]
    decisions = {d: faulty["reward_claim_decisions_total"][(camp, d)] for d in ("approved", "rejected", "held")}
    assert decisions["rejected"] > 0.3 * sum(decisions.values())
    assert sum(faulty["reward_claim_requests_total"].values()) > 3 * sum(healthy["reward_claim_requests_total"].values())
    # Reconciliation (two runs in these 10 minutes): the double-paying provider confirms
    # more than the ledger paid and the run counts it; the other provider confirms less;
    # the stale one keeps the stamp of the run before the fault.
    def recon(name, provider):
        return {k[1]: v for k, v in faulty[name].items() if k[0] == provider}
    twice = t["double_payment"]["provider"]
    assert any(recon("reward_reconciliation_provider_paid", twice)[cur] > recon("reward_reconciliation_ledger_paid", twice)[cur]
               for cur in recon("reward_reconciliation_ledger_paid", twice))
    assert sum(recon("reward_reconciliation_double_payments_total", twice).values()) >= 1
    short = t["reconciliation_mismatch"]["provider"]
    assert any(recon("reward_reconciliation_provider_paid", short)[cur] < recon("reward_reconciliation_ledger_paid", short)[cur]
               for cur in recon("reward_reconciliation_ledger_paid", short))
    stamps = faulty["reward_reconciliation_last_success_timestamp_seconds"]
    stale, down = t["reconciliation_stale"]["provider"], t["provider_outage"]["provider"]  # a dead provider cannot be reconciled either
    assert max(v for k, v in stamps.items() if k[0] in (stale, down)) < min(v for k, v in stamps.items() if k[0] not in (stale, down))
    assert faulty["reward_payout_duplicate_attempts_total"][(down,)] > 0  # callers retry against the dead provider
    assert healthy["reward_reconciliation_provider_paid"] == healthy["reward_reconciliation_ledger_paid"]
    assert sum(healthy["reward_reconciliation_ledger_paid"].values()) > 0
    assert not any(healthy["reward_reconciliation_double_payments_total"].values())
    # Healthy: nothing of the above.
    assert all(v == 0 for v in healthy["reward_payout_duplicate_attempts_total"].values())
    assert all(v == 1 for v in healthy["reward_provider_up"].values())
    assert all(r > 0.25 * b for r, b in zip(healthy["reward_pool_remaining"].values(), healthy["reward_pool_budget"].values(), strict=True))


def test_events_carry_only_the_documented_fields_and_match_the_counters(definitions):
    buf = io.StringIO()
    sim = Simulator(definitions.contract, Topology(4, 2, 6), ",".join(FAULTS), events=EventSink(buf, random.Random(1)))
    for _ in range(60):
        sim.step(2.0)
    events = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert STAGES == tuple(REWARD_STAGES)
    assert {e["stage"] for e in events} == set(REWARD_STAGES)
    by_id = {e["event_id"]: e for e in events}
    for e in events:
        assert list(e)[: len(EventSink.FIELDS)] == list(EventSink.FIELDS)
        assert set(e) - set(EventSink.FIELDS) <= set(EventSink.OPTIONAL)
        assert e["type"].startswith(e["stage"] + ".")
        assert EVENT_ID.match(e["event_id"]) and CORRELATION_ID.match(e["correlation_id"])
        if e["causation_id"] is not None:  # a cause is an earlier event of the same story
            cause = by_id[e["causation_id"]]
            assert cause["correlation_id"] == e["correlation_id"] and cause["timestamp"] <= e["timestamp"]
        assert not any(identity_label(k) for k in e if k not in ("event_id", "correlation_id", "causation_id"))
    counted = Counter((e["campaign_id"], e["type"].split(".", 1)[1]) for e in events if e["stage"] == "reward_allocation")
    assert {k: v for k, v in sim.counters["reward_allocations_total"].items() if v} == dict(counted)
    decided = Counter((e["campaign_id"], e["type"].split(".", 1)[1]) for e in events
                      if e["stage"] == "claim" and e["type"] != "claim.requested")
    assert {k: v for k, v in sim.counters["reward_claim_decisions_total"].items() if v} == dict(decided)
    webhooks = Counter((e["provider"], e["type"].removeprefix("payout.webhook_")) for e in events
                       if e["type"].startswith("payout.webhook_"))
    assert {k: v for k, v in sim.counters["reward_payout_webhooks_total"].items() if v} == dict(webhooks)
    funded = Counter()
    for e in events:
        if e["type"].startswith("admin_audit.pool_funded_"):
            funded[(e["pool_id"], e["type"].removeprefix("admin_audit.pool_funded_"))] += float(e["amount"])
    assert {k: v for k, v in sim.counters["reward_pool_funding_total"].items() if v} == dict(funded)


@pytest.mark.skipif(not EVENT_SCHEMA.is_file(), reason="no reward event contract in this checkout")
def test_events_follow_the_reward_event_contract(definitions):
    import jsonschema

    validator = jsonschema.Draft202012Validator(json.loads(EVENT_SCHEMA.read_text()))
    buf = io.StringIO()
    sim = Simulator(definitions.contract, Topology(4, 2, 6), ",".join(FAULTS), events=EventSink(buf, random.Random(2)))
    for _ in range(20):
        sim.step(2.0)
    problems = {f"{e['type']}: {err.message}" for e in map(json.loads, buf.getvalue().splitlines())
                for err in validator.iter_errors(e)}
    assert sorted(problems) == []


def test_scenario_switches_over_http(server):
    request = urllib.request.Request(f"http://{server.address}/scenario", data=b"pool_low", method="POST")
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.status == 200
    assert server.sim.faults == {"pool_low"}
    bad = urllib.request.Request(f"http://{server.address}/scenario", data=b"nonsense", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=10)
    assert err.value.code == 400


def test_simulate_command_refuses_more_providers_than_the_contract_has():
    result = run_cli("--root", str(ROOT), "--stack-config", str(STACK_FILE),
                     "simulate", "--providers", "7", "--duration", "0.1", "--port", "0")
    assert result.returncode == 2 and "providers must be between 1 and 6" in result.stderr


def _trace(definitions, tmp_path, scenario):
    path = tmp_path / f"{scenario}.ndjson"
    with open(path, "w", encoding="utf-8") as out:
        sim = Simulator(definitions.contract, Topology(4, 2, 6), scenario, events=EventSink(out, random.Random(4)))
        for _ in range(30):
            sim.step(2.0)
    return run_cli("--root", str(ROOT), "--stack-config", str(STACK_FILE), "trace", str(path))


def test_events_pass_the_trace_checker(definitions, tmp_path):
    """`reward-obs trace` (the chain checker of the event contract) finds every simulated
    chain whole, in every scenario but the bot wave: no payout without a claim, no claim
    without an allocation, no allocation without a settled match, no admin change
    without an audit reason."""
    faults = ",".join(f for f in FAULTS if f != "claim_volume_spike")
    for scenario in ("healthy", faults):
        result = _trace(definitions, tmp_path, scenario)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "broken chains: 0" in result.stdout and result.stdout.rstrip().endswith("OK")


def test_the_bot_wave_shows_as_claims_with_no_allocation(definitions, tmp_path):
    result = _trace(definitions, tmp_path, "claim_volume_spike")
    assert result.returncode == 1
    assert re.search(r"claim with no allocation: [1-9]", result.stdout)
    assert re.search(r"payout with no claim: 0\b", result.stdout)
