"""Cardinality budget: how many series each contract metric has, as a function of the
reward system's size, and nothing else.

Every label of every metric must be one of:
- a scaling dimension: pool_id (pools), campaign_id (campaigns), provider (providers);
- dependent on a scaling label of the same metric (currency: one per pool);
- enumerated: the contract lists its values (per metric where label_values says so);
- budgeted: open in the contract, with a fixed cap here (source; currency where no pool fixes it).
A label that is none of these would let a metric's series count grow with something
else (players, claims, time): `unbudgeted_labels` reports it and a test fails.
"""
from __future__ import annotations

from dataclasses import dataclass

from reward_obs.model.contract import MetricsContract
from reward_obs_dev.simulator import CURRENCIES, DURATION_BUCKETS, Topology

SCALING = {"pool_id": "pools", "campaign_id": "campaigns", "provider": "providers"}
DEPENDENT = {"currency": "pool_id", "campaign_id": "pool_id"}  # a pool has one currency and one campaign
# Open labels and their caps: the allowed funding sources (a forbidden source is a fault
# that adds one series to one pool).
# Reconciliation is per provider and currency (no pool): its currency is capped at the
# currencies payouts settle in, a short list finance adds to.
BUDGETED = {"source": None, "currency": len(CURRENCIES)}  # None: the contract's listed values
TARGET_LABELS = ("job", "instance")  # one scrape target: one value each


@dataclass(frozen=True)
class MetricBudget:
    metric: str
    formula: str
    series: int


def unbudgeted_labels(contract: MetricsContract) -> list[str]:
    """metric:label for every label that is not scaling, dependent, enumerated or budgeted."""
    out = []
    for name, metric in sorted(contract.metrics.items()):
        if metric.synthetic:
            continue
        for label in metric.labels:
            if label in SCALING or label in BUDGETED or label in DEPENDENT and DEPENDENT[label] in metric.labels:
                continue
            if contract.label_values(name, label) is not None:
                continue
            out.append(f"{name}:{label}")
    return out


def label_cardinality(contract: MetricsContract, metric: str, label: str, topology: Topology) -> tuple[int, str]:
    """(values of the label on this metric, the factor as text)."""
    if label in DEPENDENT and DEPENDENT[label] in contract.metrics[metric].labels:
        return 1, ""
    if label in SCALING:
        return getattr(topology, SCALING[label]), SCALING[label]
    if label in BUDGETED and BUDGETED[label] is not None:
        return BUDGETED[label], str(BUDGETED[label])
    values = contract.label_values(metric, label) or contract.labels[label].get("values")
    if values is None:
        raise ValueError(f"{metric}:{label} has no budget")
    return len(values), str(len(values))


def budget(contract: MetricsContract, topology: Topology) -> dict[str, MetricBudget]:
    """Series per contract metric (a histogram counts its buckets, _sum and _count)."""
    out = {}
    for name, metric in sorted(contract.metrics.items()):
        if metric.synthetic:
            continue
        count, factors = 1, []
        for label in metric.labels:
            n, text = label_cardinality(contract, name, label, topology)
            count *= n
            if text:
                factors.append(text)
        if metric.type == "histogram":
            per = len(DURATION_BUCKETS) + 1 + 2
            count *= per
            factors.append(f"({len(DURATION_BUCKETS) + 1} buckets + 2)")
        out[name] = MetricBudget(name, " x ".join(factors) or "1", count)
    return out
