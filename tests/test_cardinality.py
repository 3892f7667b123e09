"""Cardinality budget: each metric's series count grows with pools, campaigns and
providers only, never with traffic, time, players or claims."""
from __future__ import annotations

import dataclasses

import pytest

from reward_obs.model.contract import MetricsContract
from reward_obs_dev.cardinality import SCALING, budget, unbudgeted_labels
from reward_obs_dev.simulator import FAULTS, Simulator, Topology


def simulated_counts(contract: MetricsContract, topology: Topology, scenario: str = "healthy", seconds: float = 0) -> dict[str, int]:
    """Series per contract metric that the simulator exports after `seconds` of activity."""
    sim = Simulator(contract, topology, scenario)
    remaining = seconds
    while remaining > 0:
        sim.step(min(60.0, remaining))
        remaining -= 60.0
    counts: dict[str, int] = {}
    for series_name, values in sim.series().items():
        metric = contract.series_metric(series_name).name
        counts[metric] = counts.get(metric, 0) + len(values)
    return counts

TOPOLOGIES = [Topology(4, 2, 3), Topology(10, 5, 4), Topology(40, 20, 6), Topology.scaled(100)]


def test_every_label_of_every_metric_is_bounded(definitions):
    assert unbudgeted_labels(definitions.contract) == []


def test_an_open_label_without_a_budget_is_caught(definitions):
    contract = definitions.contract
    metric = contract.metrics["reward_claim_requests_total"]
    grown = dataclasses.replace(contract, labels={**contract.labels, "player_tier": {"help": "open"}},
                                metrics={**contract.metrics, metric.name: dataclasses.replace(metric, labels=metric.labels + ("player_tier",))})
    assert unbudgeted_labels(grown) == ["reward_claim_requests_total:player_tier"]


@pytest.mark.slow
@pytest.mark.parametrize("topology", TOPOLOGIES, ids=str)
def test_simulated_series_match_the_budget_and_do_not_grow_with_traffic(definitions, topology):
    expected = {name: b.series for name, b in budget(definitions.contract, topology).items()}
    assert simulated_counts(definitions.contract, topology) == expected  # every counter exists at 0 from the start
    assert simulated_counts(definitions.contract, topology, seconds=6 * 3600) == expected  # six hours of traffic later


def test_faults_add_no_unbounded_series(definitions):
    topology = Topology(10, 5, 6)
    expected = {name: b.series for name, b in budget(definitions.contract, topology).items()}
    for fault in FAULTS:
        counts = simulated_counts(definitions.contract, topology, fault, seconds=3600)
        extra = {name: counts[name] - expected[name] for name in counts if counts[name] != expected[name]}
        # A forbidden funding source is the only new series: one, on the pool it funded.
        assert extra == ({"reward_pool_funding_total": 1} if fault == "forbidden_funding" else {}), fault


def test_series_grow_only_with_pools_campaigns_and_providers(definitions):
    base = Topology(12, 6, 3)
    counts = {name: b.series for name, b in budget(definitions.contract, base).items()}
    formulas = {name: b.formula for name, b in budget(definitions.contract, base).items()}
    for dimension in SCALING.values():
        doubled = dataclasses.replace(base, **{dimension: getattr(base, dimension) * 2})
        grown = simulated_counts(definitions.contract, doubled)
        for name, n in counts.items():
            if dimension in formulas[name].split(" x "):
                assert grown[name] == 2 * n, (name, dimension)  # linear in that dimension
            else:
                assert grown[name] == n, (name, dimension)
