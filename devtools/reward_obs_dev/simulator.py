"""A simulated reward system: the whole metrics contract on a local `/metrics`, driven by a
scenario, plus newline-delimited JSON reward events that tell the same story.

The model is flow-based. Each step of simulated time settles matches, allocates
rewards from pools, takes claims, decides them, pays them out through providers and
receives the providers' webhooks, in that order; every counter increment is one event
with the same labels, so `wc -l` on the events and `increase()` on the metrics agree.

Scenarios are `healthy` and one fault per reward alert (see FAULTS); faults can be
combined, and each hits its own pool, campaign or provider (`Simulator.target`), so a
combined run tells which fault raised which alert. The metrics-absent fault is simply
stopping the simulator.

Counters start at 0 for every known label value (the contract's rule): every campaign's
outcomes and decisions, every provider's results and operations, every pool's allowed
funding sources and the simulator's fixed set of provider error codes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from reward_obs.catalog.event_contract import current_schema_version
from reward_obs.catalog.load import load
from reward_obs.model.contract import MetricsContract
from reward_obs_dev.traffic import (
    ALLOCATION_SHARE,
    DECISION_SHARE,
    OUTAGE_CAUSE,
    PAYOUT_RESULT_SHARE,
    WEBHOOK_SHARE,
    failure_cause,
)

# ------------------------------------------------------------------ scenarios

HEALTHY = "healthy"
# fault scenario -> the alert it must raise
FAULTS = {
    "webhook_failures": "RewardPayoutWebhookFailing",
    "pool_exhausted": "RewardPoolExhausted",
    "pool_low": "RewardPoolLow",
    "duplicate_payout": "RewardDuplicatePayoutAttempt",
    "provider_outage": "RewardPayoutProviderOutage",
    "claim_volume_spike": "RewardClaimVolumeAbnormal",
    "claim_rejection_spike": "RewardClaimRejectionRateHigh",
    "forbidden_funding": "RewardPoolFundingSourceInvalid",
    # Reconciliation: what providers confirm against the ledger.
    "double_payment": "RewardPayoutDoublePaid",
    "reconciliation_mismatch": "RewardReconciliationMismatch",
    "reconciliation_stale": "RewardReconciliationStale",
}
# Not a scenario of the running simulator: stop it and this alert fires.
METRICS_ABSENT_ALERT = "RewardMetricsAbsent"
SCENARIOS = (HEALTHY, *FAULTS)

FORBIDDEN_SOURCE = "entry_fee"  # PvP entry fees are match fees and never fund a pool
CURRENCIES = ("TON", "USDT", "STARS_GIFT")
# Failed provider calls draw their error_code from the contract's list; a dead provider
# answers with this one.
DOWN_ERROR_CODE = "provider_unavailable"
HEALTHY_PENDING_AGE = 60.0  # seconds: a healthy provider confirms within minutes
HEALTHY_HELD_AGE = 1200.0  # seconds: reviews keep up, well inside the 4-hour target
DURATION_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
STAGES = ("match_settlement", "reward_allocation", "claim", "payout", "admin_audit")

# Healthy rates, per simulated second.
ALLOCATIONS_PER_CAMPAIGN = 0.5
CLAIM_SHARE = 0.9  # of allocated rewards that players claim
PROBE_INTERVAL = 15.0
INITIAL_BUDGET = 20000.0
# pool_low: the share of the budget the low pool loses per simulated second, down to 1% left.
LOW_DRAIN_PER_SECOND = 1e-5
LOW_DRAIN_FLOOR = 0.04
RECONCILIATION_INTERVAL = 300.0  # simulated seconds between reconciliation runs
UNCONFIRMED_SHARE = 0.1  # reconciliation_mismatch: share of paid amounts the provider has no record of
OUTAGE_RETRY_DUPLICATES = 0.1  # per simulated second: retries against a dead provider, blocked by the key


def parse_scenario(text: str) -> frozenset[str]:
    """`healthy`, one fault, or faults joined by commas; ValueError for an unknown name."""
    names = {n.strip() for n in text.split(",") if n.strip()}
    unknown = sorted(names - set(SCENARIOS))
    if unknown or not names:
        raise ValueError(f"unknown scenario {', '.join(unknown) or text!r} (one of: {', '.join(SCENARIOS)}; faults combine with commas)")
    return frozenset(names - {HEALTHY})


# ------------------------------------------------------------------ topology


@dataclass(frozen=True)
class Topology:
    """How big the reward system is. Pools are spread over campaigns round-robin; the
    providers are the first N of the contract's provider types."""

    pools: int = 4
    campaigns: int = 2
    providers: int = 6

    def check(self, contract: MetricsContract) -> None:
        known = contract.labels["provider"]["values"]
        if not 1 <= self.campaigns <= self.pools:
            raise ValueError(f"campaigns must be between 1 and the number of pools ({self.pools}), got {self.campaigns}")
        if not 1 <= self.providers <= len(known):
            raise ValueError(f"providers must be between 1 and {len(known)} (the contract's provider types), got {self.providers}")

    def pool_ids(self) -> list[str]:
        return [f"pool-{i:04d}" for i in range(1, self.pools + 1)]

    def campaign_ids(self) -> list[str]:
        return [f"camp-{i:04d}" for i in range(1, self.campaigns + 1)]

    def campaign_of(self, pool_index: int) -> str:
        return f"camp-{pool_index % self.campaigns + 1:04d}"

    def currency_of(self, pool_index: int) -> str:
        return CURRENCIES[pool_index % len(CURRENCIES)]

    @staticmethod
    def scaled(pools: int, known_providers: int = 6) -> Topology:
        """The bench's proportional growth: two pools per campaign, and one provider per
        ~3 pools up to the contract's six provider types."""
        return Topology(pools=pools, campaigns=max(1, pools // 2), providers=max(1, min(known_providers, math.ceil(pools / 3))))


# ------------------------------------------------------------------ events


class EventSink:
    """Newline-delimited JSON reward events in the envelope of
    contract/reward_event.schema.json: ids, stage, `stage.what` type, UTC timestamp, and
    the same campaign/pool/provider/currency values as the metric labels. A field that
    does not apply to an event is left out (never null). No personal data, no secrets."""

    FIELDS = ("schema_version", "event_id", "correlation_id", "causation_id", "stage", "type", "timestamp")
    OPTIONAL = ("campaign_id", "pool_id", "match_id", "provider", "amount", "currency", "claim_status", "payout_result",
                "admin_action", "reason_code", "actor_role", "receipt_reference", "failure_cause")

    def __init__(self, stream: IO[str], rng: random.Random):
        self.stream = stream
        self.rng = rng
        self.count = 0
        self.schema_version = current_schema_version()

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{self.rng.getrandbits(96):024x}"

    def emit(self, stage: str, what: str, ts: float, *, correlation_id: str | None = None, causation_id: str | None = None,
             amount: float | None = None, **fields) -> dict:
        """One event; without a correlation_id it starts a new chain."""
        event = {
            "schema_version": self.schema_version,
            "event_id": self.new_id("evt"),
            "correlation_id": correlation_id or self.new_id("cor"),
            "causation_id": causation_id,
            "stage": stage,
            "type": f"{stage}.{what}",
            "timestamp": datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        unknown = set(fields) - set(self.OPTIONAL)
        if unknown:
            raise TypeError(f"not an event field: {', '.join(sorted(unknown))}")
        if amount is not None:
            event["amount"] = f"{amount:.2f}"
        event.update({k: v for k, v in fields.items() if v is not None})
        if stage == "claim" and "receipt_reference" not in event:
            event["receipt_reference"] = receipt_reference(event["correlation_id"])
        self.stream.write(json.dumps(event, separators=(",", ":")) + "\n")
        self.count += 1
        return event

    def flush(self) -> None:
        self.stream.flush()


def receipt_reference(correlation_id: str) -> str:
    """The claim receipt reference the player sees (RCP-XXXX-XXXX-XXXX). The backend keeps
    its own mapping to the chain; the simulator derives one from the correlation id."""

    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    n = int.from_bytes(hashlib.sha256(correlation_id.encode()).digest()[:8], "big")
    chars = "".join(alphabet[(n >> (5 * i)) & 31] for i in range(12))
    return f"RCP-{chars[:4]}-{chars[4:8]}-{chars[8:]}"


CLAIM_STATUS = {"requested": "claim_started", "approved": "claimable", "rejected": "rejected", "held": "eligibility_review"}


# ------------------------------------------------------------------ the model


@dataclass
class _Pool:
    pool_id: str
    campaign_id: str
    currency: str
    budget: float = INITIAL_BUDGET
    reserved: float = 0.0
    paid: float = 0.0

    @property
    def remaining(self) -> float:
        return self.budget - self.reserved - self.paid


@dataclass
class _Carry:
    """Turns expected event counts into whole events without drift."""

    rng: random.Random
    acc: dict = field(default_factory=dict)

    def take(self, key, expected: float) -> int:
        if expected <= 0:
            return 0
        value = self.acc.get(key, self.rng.random()) + expected
        whole = int(value)
        self.acc[key] = value - whole
        return whole


class Simulator:
    """The reward system's state; `step(dt)` advances simulated time by dt seconds."""

    def __init__(self, contract: MetricsContract, topology: Topology = Topology(), scenario: str = HEALTHY,
                 seed: int = 1, start: float | None = None, events: EventSink | None = None):
        topology.check(contract)
        self.contract = contract
        self.topology = topology
        self.faults = parse_scenario(scenario)
        self.rng = random.Random(seed)
        self.carry = _Carry(random.Random(seed + 1))
        self.now = time.time() if start is None else start
        self.events = events
        self.lock = threading.Lock()
        self.providers = list(contract.labels["provider"]["values"][: topology.providers])
        self.campaigns = topology.campaign_ids()
        self.pools = [_Pool(pid, topology.campaign_of(i), topology.currency_of(i)) for i, pid in enumerate(topology.pool_ids())]
        self.pools_by_campaign: dict[str, list[_Pool]] = {c: [] for c in self.campaigns}
        for pool in self.pools:
            self.pools_by_campaign[pool.campaign_id].append(pool)
        self._since_probe = PROBE_INTERVAL
        self._rr: dict[str, int] = {}
        self._next_provider = 0
        self._matches = 0
        self._last_paid: dict[str, tuple] = {}  # provider -> (correlation, event, campaign, pool) of its last payout
        # Reconciliation timestamps are compared with Prometheus' time(): a served simulator
        # (accelerated clock) stamps runs with the wall clock, a backfill with simulated time.
        self.wall_clock = None
        self._init_series()
        self._init_reconciliation()

    # -- targets of each fault: distinct entities, so combined faults stay apart

    def target(self, fault: str) -> dict[str, str]:
        """The labels the fault's alert carries when this simulator raises it."""
        pools, providers, campaigns = self.pools, self.providers, self.campaigns
        return {
            "pool_exhausted": {"campaign_id": pools[0].campaign_id, "pool_id": pools[0].pool_id},
            "pool_low": {"pool_id": pools[1 % len(pools)].pool_id},
            "forbidden_funding": {"pool_id": pools[-1].pool_id, "source": FORBIDDEN_SOURCE},
            "claim_rejection_spike": {"campaign_id": campaigns[-1]},
            "claim_volume_spike": {},
            "webhook_failures": {"provider": providers[2 % len(providers)]},
            "provider_outage": {"provider": providers[1 % len(providers)]},
            "duplicate_payout": {"provider": providers[3 % len(providers)]},
            "double_payment": {"provider": providers[4 % len(providers)]},
            "reconciliation_mismatch": {"provider": providers[5 % len(providers)]},
            "reconciliation_stale": {"provider": providers[0]},
        }[fault]

    def _target_pool(self, fault: str) -> _Pool | None:
        if fault not in self.faults:
            return None
        if fault == "pool_exhausted":
            return self.pools[0]
        pool_id = self.target(fault)["pool_id"]
        return next(p for p in self.pools if p.pool_id == pool_id)

    def _target(self, fault: str, key: str) -> str | None:
        return self.target(fault)[key] if fault in self.faults else None

    def set_scenario(self, scenario: str) -> None:
        faults = parse_scenario(scenario)
        with self.lock:
            self.faults = faults

    # -- series, all created at 0

    def _init_series(self) -> None:
        c = self.contract
        values = lambda metric, label: c.label_values(metric, label)  # noqa: E731
        self.gauges: dict[str, dict[tuple, float]] = {
            "reward_campaigns": {(s,): 0.0 for s in values("reward_campaigns", "status")},
            "reward_claims_held": {(camp, r): 0.0 for camp in self.campaigns for r in values("reward_claims_held", "reason")},
            "reward_payouts_pending": {(p,): 0.0 for p in self.providers},
            "reward_provider_up": {(p,): 1.0 for p in self.providers},
        }
        self.counters: dict[str, dict[tuple, float]] = {
            "reward_pool_funding_total": {(pool.pool_id, s): 0.0 for pool in self.pools
                                          for s in c.labels["source"]["values"]},
            "reward_allocations_total": {(camp, o): 0.0 for camp in self.campaigns for o in values("reward_allocations_total", "outcome")},
            "reward_claim_requests_total": {(camp,): 0.0 for camp in self.campaigns},
            "reward_claim_decisions_total": {(camp, d): 0.0 for camp in self.campaigns for d in values("reward_claim_decisions_total", "decision")},
            "reward_payouts_total": {(p, r): 0.0 for p in self.providers for r in values("reward_payouts_total", "result")},
            "reward_payout_failures_total": {(p, cause): 0.0 for p in self.providers for cause in values("reward_payout_failures_total", "cause")},
            "reward_payout_duplicate_attempts_total": {(p,): 0.0 for p in self.providers},
            "reward_payout_webhooks_total": {(p, r): 0.0 for p in self.providers for r in values("reward_payout_webhooks_total", "result")},
            "reward_provider_requests_total": {(p, op): 0.0 for p in self.providers for op in values("reward_provider_requests_total", "operation")},
            "reward_provider_errors_total": {(p, op, e): 0.0 for p in self.providers
                                             for op in values("reward_provider_errors_total", "operation")
                                             for e in values("reward_provider_errors_total", "error_code")},
        }
        self.histogram = {p: [0] * len(DURATION_BUCKETS) for p in self.providers}  # per-bucket (not cumulative)
        self.histogram_count = {p: 0 for p in self.providers}
        self.histogram_sum = {p: 0.0 for p in self.providers}
        self.gauges["reward_campaigns"][("active",)] = float(len(self.campaigns))
        self._init_staleness()
        for pool in self.pools:  # every pool starts funded from an allowed source
            self._fund(pool, "sponsor", pool.budget, None, initial=True)
        self._init_switches()

    # -- operator switches (runbooks/actions.yaml): all on until an operator flips one

    SWITCHES = {  # metric -> the entity it is per
        "reward_campaign_accrual_enabled": "campaign",
        "reward_campaign_claims_enabled": "campaign",
        "reward_campaign_payouts_enabled": "campaign",
        "reward_provider_enabled": "provider",
        "reward_provider_payouts_enabled": "provider",
    }

    def _init_switches(self) -> None:
        for metric, per in self.SWITCHES.items():
            if metric in self.contract.metrics:
                keys = self.campaigns if per == "campaign" else self.providers
                self.gauges[metric] = {(key,): 1.0 for key in keys}

    def set_switch(self, metric: str, key: str, on: bool) -> None:
        """What an operator action does to its switch (the simulator does not model the effect)."""
        with self.lock:
            if (key,) not in self.gauges[metric]:
                raise KeyError(f"{metric} has no series for {key!r}")
            self.gauges[metric][(key,)] = 1.0 if on else 0.0

    def _fund(self, pool: _Pool, source: str, amount: float, ts: float | None, initial: bool = False) -> None:
        key = (pool.pool_id, source)
        self.counters["reward_pool_funding_total"][key] = self.counters["reward_pool_funding_total"].get(key, 0.0) + amount
        if not initial:
            pool.budget += amount
        if self.events is not None:
            self.events.emit("admin_audit", f"pool_funded_{source}", self.now if ts is None else ts,
                             campaign_id=pool.campaign_id, pool_id=pool.pool_id, amount=amount, currency=pool.currency,
                             admin_action="top_up_pool", reason_code="pool_top_up", actor_role="finance")

    # -- one step of simulated time

    def step(self, dt: float) -> None:
        with self.lock:
            self._step(dt)

    def _step(self, dt: float) -> None:
        t0 = self.now
        events = self.events
        faults = self.faults
        rng = self.rng
        take = self.carry.take
        c = self.counters
        exhausted = self._target_pool("pool_exhausted")
        low = self._target_pool("pool_low")
        rejecting = self._target("claim_rejection_spike", "campaign_id")
        webhook_bad = self._target("webhook_failures", "provider")
        outage = self._target("provider_outage", "provider")
        duplicate = self._target("duplicate_payout", "provider")
        forbidden = self._target_pool("forbidden_funding")
        spike = "claim_volume_spike" in faults
        n_prov = len(self.providers)
        approved_per_provider = [[] for _ in range(n_prov)]  # (campaign, pool, amount, correlation, cause)
        seq = 0

        def ts() -> float:  # strictly increasing timestamps inside the step
            nonlocal seq
            seq += 1
            return t0 + dt * min(seq, 10_000) / 10_001

        # Pools that a fault pins at a level.
        if exhausted is not None:
            exhausted.paid = exhausted.budget - exhausted.reserved
        if low is not None:
            # Low and still draining, as a low pool does: from 5% of its budget toward a
            # 1% floor (so the pool's forecast and RewardPoolLow see it; it never empties).
            self._low_drain = min(LOW_DRAIN_FLOOR, getattr(self, "_low_drain", 0.0) + LOW_DRAIN_PER_SECOND * dt)
            low.paid = max(0.0, low.budget * (0.95 + self._low_drain) - low.reserved)

        for ci, campaign in enumerate(self.campaigns):
            pools = self.pools_by_campaign[campaign]
            attempts = take(("alloc", campaign), ALLOCATIONS_PER_CAMPAIGN * dt)
            outcomes = {"allocated": 0, "rejected_pool_exhausted": 0, "rejected_cap": 0, "duplicate": 0}
            allocated: list[tuple[_Pool, float, str | None, str | None]] = []
            for _ in range(attempts):
                self._rr[campaign] = (self._rr.get(campaign, -1) + 1) % len(pools)
                pool = pools[self._rr[campaign]]
                roll = rng.random()
                amount = float(rng.randint(1, 5))
                if pool.remaining < amount:
                    outcome = "rejected_pool_exhausted"
                elif roll < ALLOCATION_SHARE["rejected_cap"]:
                    outcome = "rejected_cap"
                elif roll < ALLOCATION_SHARE["rejected_cap"] + ALLOCATION_SHARE["duplicate"]:
                    outcome = "duplicate"
                else:
                    outcome = "allocated"
                outcomes[outcome] += 1
                correlation = cause = None
                if events is not None:
                    self._matches += 1
                    match = events.emit("match_settlement", "settled", ts(), campaign_id=campaign, match_id=f"match-{self._matches}")
                    correlation = match["correlation_id"]
                    alloc = events.emit("reward_allocation", outcome, ts(), correlation_id=correlation,
                                        causation_id=match["event_id"], campaign_id=campaign, pool_id=pool.pool_id,
                                        amount=amount, currency=pool.currency)
                    cause = alloc["event_id"]
                if outcome == "allocated":
                    pool.reserved += amount
                    allocated.append((pool, amount, correlation, cause))
            for outcome, n in outcomes.items():
                c["reward_allocations_total"][(campaign, outcome)] += n

            # Claims: players claim most allocated rewards. A bot wave adds claims with no
            # allocation behind them; they queue for the abuse check (no decision yet),
            # so the spike moves claim volume and not the rejection ratio.
            claims = [a for a in allocated if rng.random() < CLAIM_SHARE]
            bot_claims = take(("bots", campaign), ALLOCATIONS_PER_CAMPAIGN * CLAIM_SHARE * 5 * dt) if spike else 0
            c["reward_claim_requests_total"][(campaign,)] += len(claims) + bot_claims
            decisions = {"approved": 0, "rejected": 0, "held": 0}
            reject_share = 0.5 if campaign == rejecting else DECISION_SHARE["rejected"]
            for pool, amount, correlation, cause in claims:
                claim = None
                if events is not None:
                    claim = events.emit("claim", "requested", ts(), correlation_id=correlation, causation_id=cause,
                                        campaign_id=campaign, pool_id=pool.pool_id, amount=amount, currency=pool.currency,
                                        claim_status=CLAIM_STATUS["requested"])
                roll = rng.random()
                decision = "rejected" if roll < reject_share else "held" if roll < reject_share + DECISION_SHARE["held"] else "approved"
                decisions[decision] += 1
                decided = None
                if events is not None:
                    decided = events.emit("claim", decision, ts(), correlation_id=correlation,
                                          causation_id=claim["event_id"], campaign_id=campaign, pool_id=pool.pool_id,
                                          amount=amount, currency=pool.currency, claim_status=CLAIM_STATUS[decision])
                if decision == "approved":
                    self._next_provider = provider_index = (self._next_provider + 1) % n_prov
                    approved_per_provider[provider_index].append(
                        (campaign, pool, amount, correlation, decided["event_id"] if decided else None))
                else:
                    pool.reserved -= amount  # released: rejected or parked for review
            if events is not None:
                for _ in range(bot_claims):
                    events.emit("claim", "requested", ts(), campaign_id=campaign, claim_status=CLAIM_STATUS["requested"])
            for decision, n in decisions.items():
                c["reward_claim_decisions_total"][(campaign, decision)] += n
            held = self.gauges["reward_claims_held"]
            held[(campaign, "eligibility_review")] = float(decisions["held"]) + (ci % 3)
            held[(campaign, "abuse_review")] = float(bot_claims) + (1 if ci % 4 == 0 else 0)
            held[(campaign, "manual_review")] = float(ci % 2)

        # Payouts, provider calls and webhooks.
        self._since_probe += dt
        probe = self._since_probe >= PROBE_INTERVAL
        if probe:
            self._since_probe = 0.0
        for pi, provider in enumerate(self.providers):
            batch = approved_per_provider[pi]
            down = provider == outage
            # Healthy: the failure causes of reward_obs_dev/traffic.py, mostly the players' own.
            fail_share = 0.8 if down else PAYOUT_RESULT_SHARE["failed"]
            payouts = {"paid": 0, "failed": 0, "canceled": 0}
            requests = {"quote": 0, "create": 0, "status": 0, "cancel": 0}
            for campaign, pool, amount, correlation, cause in batch:
                roll = rng.random()
                result = "failed" if roll < fail_share else "canceled" if roll < fail_share + PAYOUT_RESULT_SHARE["canceled"] else "paid"
                for op in ("quote", "create", "status") + (("cancel",) if result == "canceled" else ()):
                    requests[op] += 1
                    failed = rng.random() < fail_share
                    if failed:
                        codes = self.contract.label_values("reward_provider_errors_total", "error_code")
                        code = DOWN_ERROR_CODE if down else codes[rng.randrange(len(codes))]
                        c["reward_provider_errors_total"][(provider, op, code)] += 1
                    if events is not None:
                        events.emit("payout", "provider_error" if failed else "provider_request", ts(),
                                    correlation_id=correlation, causation_id=cause, campaign_id=campaign,
                                    pool_id=pool.pool_id, provider=provider)
                payouts[result] += 1
                failure = {}
                if result == "failed":
                    failure = {"failure_cause": OUTAGE_CAUSE if down else failure_cause(rng.random())}
                    c["reward_payout_failures_total"][(provider, failure["failure_cause"])] += 1
                pool.reserved -= amount
                payout = None
                if result == "paid":
                    pool.paid += amount
                    self._book_paid(provider, pool.currency, amount)
                    duration = min(3500.0, rng.expovariate(1 / 90.0) + 3.0)
                    self.histogram[provider][next((i for i, b in enumerate(DURATION_BUCKETS) if duration <= b), len(DURATION_BUCKETS) - 1)] += 1
                    self.histogram_count[provider] += 1
                    self.histogram_sum[provider] += duration
                if events is not None:
                    payout = events.emit("payout", result, ts(), correlation_id=correlation, causation_id=cause,
                                         campaign_id=campaign, pool_id=pool.pool_id, provider=provider, amount=amount,
                                         currency=pool.currency, payout_result=result, **failure)
                if result == "paid":
                    self._last_paid[provider] = (correlation, payout["event_id"] if payout else None, campaign, pool.pool_id)
                    deliveries = ["processed"]
                    if provider == webhook_bad and rng.random() < 0.4:
                        deliveries = ["invalid_signature" if rng.random() < 0.5 else "failed"]
                    elif rng.random() < WEBHOOK_SHARE["failed"]:
                        deliveries = ["failed"]
                    if rng.random() < WEBHOOK_SHARE["duplicate"]:
                        deliveries.append("duplicate")  # providers re-send; handled idempotently
                    for result_ in deliveries:
                        c["reward_payout_webhooks_total"][(provider, result_)] += 1
                        if events is not None:
                            events.emit("payout", f"webhook_{result_}", ts(), correlation_id=correlation,
                                        causation_id=payout["event_id"], campaign_id=campaign, pool_id=pool.pool_id,
                                        provider=provider)
            for op, n in requests.items():
                c["reward_provider_requests_total"][(provider, op)] += n
            for result, n in payouts.items():
                c["reward_payouts_total"][(provider, result)] += n
            self.gauges["reward_payouts_pending"][(provider,)] = float(len(batch) // 2 + (pi % 3))
            if probe:
                self.gauges["reward_provider_up"][(provider,)] = 0.0 if down else 1.0
            if (provider == duplicate or down) and provider in self._last_paid:
                # A second attempt to pay an already paid claim, blocked by the idempotency
                # key: part of that claim's story (same correlation id). A dead provider gets
                # them too: callers retry payouts whose confirmation never came.
                n = take(("dup", provider), (0.5 if provider == duplicate else OUTAGE_RETRY_DUPLICATES) * dt)
                c["reward_payout_duplicate_attempts_total"][(provider,)] += n
                if events is not None:
                    correlation, paid_event, campaign, pool_id = self._last_paid[provider]
                    for _ in range(n):
                        events.emit("payout", "duplicate_blocked", ts(), correlation_id=correlation, causation_id=paid_event,
                                    campaign_id=campaign, pool_id=pool_id, provider=provider)

        # Admin: top up pools from an allowed source before they run low (healthy), and
        # the forbidden funding fault.
        for pool in self.pools:
            if pool is exhausted or pool is low:
                continue
            if pool.remaining < 0.5 * pool.budget:
                self._fund(pool, "treasury" if self.rng.random() < 0.5 else "sponsor", INITIAL_BUDGET / 2, ts())
        if forbidden is not None and (forbidden.pool_id, FORBIDDEN_SOURCE) not in c["reward_pool_funding_total"]:
            self._fund(forbidden, FORBIDDEN_SOURCE, 500.0, ts())
        self._step_staleness(t0 + dt, dt, outage)
        self.now = t0 + dt
        self._reconcile(dt)

    # -- reconciliation: providers' confirmed payouts against the ledger

    def _init_reconciliation(self) -> None:
        keys = [(p, cur) for p in self.providers for cur in CURRENCIES]
        self._ledger_paid = {k: 0.0 for k in keys}  # the ledger's paid, live
        self._confirmed_paid = {k: 0.0 for k in keys}  # what the provider's records say, live
        self._double_paid: dict = {}  # (provider, currency) -> "paid twice" until a run finds it, then "found"
        self._since_reconciliation = 0.0
        for name in ("reward_reconciliation_provider_paid", "reward_reconciliation_ledger_paid",
                     "reward_reconciliation_last_success_timestamp_seconds"):
            self.gauges[name] = {k: 0.0 for k in keys}
        self.counters["reward_reconciliation_double_payments_total"] = {k: 0.0 for k in keys}
        self._run_reconciliation(set())

    def _book_paid(self, provider: str, currency: str, amount: float) -> None:
        key = (provider, currency)
        self._ledger_paid[key] += amount
        unconfirmed = provider == self._target("reconciliation_mismatch", "provider")
        self._confirmed_paid[key] += amount * (1 - UNCONFIRMED_SHARE if unconfirmed else 1.0)
        if provider == self._target("double_payment", "provider") and key not in self._double_paid:
            # The provider pays one claim a second time (its own retry): it confirms the
            # amount twice, the ledger books it once.
            self._double_paid[key] = "paid twice"
            self._confirmed_paid[key] += amount

    def _reconcile(self, dt: float) -> None:
        self._since_reconciliation += dt
        if self._since_reconciliation < RECONCILIATION_INTERVAL:
            return
        self._since_reconciliation = 0.0
        # A stale provider's run fails; so does a dead provider's (its report API is down too).
        skipped = {self._target("reconciliation_stale", "provider"), self._target("provider_outage", "provider")}
        self._run_reconciliation(skipped - {None})

    def _run_reconciliation(self, skipped: set) -> None:
        g, c = self.gauges, self.counters
        stamp = self.wall_clock() if self.wall_clock is not None else self.now
        for key in self._ledger_paid:
            if key[0] in skipped:
                continue  # the run for this provider failed: nothing is updated
            g["reward_reconciliation_provider_paid"][key] = round(self._confirmed_paid[key], 2)
            g["reward_reconciliation_ledger_paid"][key] = round(self._ledger_paid[key], 2)
            g["reward_reconciliation_last_success_timestamp_seconds"][key] = float(int(stamp))
            if self._double_paid.get(key) == "paid twice":
                self._double_paid[key] = "found"
                c["reward_reconciliation_double_payments_total"][key] += 1

    # -- staleness: ages of the oldest unfinished payout and held claim, and
    #    the time of the last processed webhook

    def _init_staleness(self) -> None:
        reasons = self.contract.label_values("reward_claim_oldest_held_age_seconds", "reason")
        self.gauges["reward_payout_oldest_pending_age_seconds"] = {(p,): 0.0 for p in self.providers}
        self.gauges["reward_payout_webhook_last_processed_timestamp_seconds"] = {(p,): 0.0 for p in self.providers}
        self.gauges["reward_claim_oldest_held_age_seconds"] = {(r,): 0.0 for r in reasons}
        self._processed_seen = {p: 0.0 for p in self.providers}

    def _step_staleness(self, now: float, dt: float, outage: str | None) -> None:
        g = self.gauges
        processed = self.counters["reward_payout_webhooks_total"]
        for pi, p in enumerate(self.providers):
            if processed[(p, "processed")] > self._processed_seen[p]:
                self._processed_seen[p] = processed[(p, "processed")]
                g["reward_payout_webhook_last_processed_timestamp_seconds"][(p,)] = now
            age = g["reward_payout_oldest_pending_age_seconds"]
            if p == outage:
                age[(p,)] += dt  # nothing completes: the oldest payout keeps ageing
            else:
                age[(p,)] = HEALTHY_PENDING_AGE + 30.0 * (pi % 3) if g["reward_payouts_pending"][(p,)] > 0 else 0.0
        held = g["reward_claims_held"]
        for ri, (reason,) in enumerate(list(g["reward_claim_oldest_held_age_seconds"])):
            any_held = any(v > 0 for (_, r), v in held.items() if r == reason)
            g["reward_claim_oldest_held_age_seconds"][(reason,)] = HEALTHY_HELD_AGE * (ri + 1) if any_held else 0.0

    # -- reading the state

    def pool_gauges(self) -> dict[str, dict[tuple, float]]:
        out = {"reward_pool_budget": {}, "reward_pool_reserved": {}, "reward_pool_paid": {}, "reward_pool_remaining": {}}
        for pool in self.pools:
            key = (pool.pool_id, pool.campaign_id, pool.currency)
            out["reward_pool_budget"][key] = pool.budget
            out["reward_pool_reserved"][key] = pool.reserved
            out["reward_pool_paid"][key] = pool.paid
            out["reward_pool_remaining"][key] = pool.remaining
        return out

    def histogram_series(self) -> dict[str, dict[tuple, float]]:
        """The histogram as its three exported series families (cumulative buckets)."""
        buckets, counts, sums = {}, {}, {}
        for provider in self.providers:
            running = 0
            for bound, n in zip(DURATION_BUCKETS, self.histogram[provider], strict=True):
                running += n
                buckets[(provider, _le(bound))] = float(running)
            buckets[(provider, "+Inf")] = float(self.histogram_count[provider])
            counts[(provider,)] = float(self.histogram_count[provider])
            sums[(provider,)] = self.histogram_sum[provider]
        return {"reward_payout_duration_seconds_bucket": buckets, "reward_payout_duration_seconds_count": counts,
                "reward_payout_duration_seconds_sum": sums}

    def series(self) -> dict[str, dict[tuple, float]]:
        """Every exported series: series name -> label values (in contract order) -> value."""
        with self.lock:
            out = {name: dict(values) for name, values in self.gauges.items()}
            out.update({name: dict(values) for name, values in self.counters.items()})
            out.update(self.pool_gauges())
            out.update(self.histogram_series())
            return out

    def label_names(self, series_name: str) -> tuple[str, ...]:
        metric = self.contract.series_metric(series_name)
        return metric.labels + (("le",) if series_name.endswith("_bucket") else ())


def _le(bound: float) -> str:
    return repr(float(bound))


class ContractCollector:
    """prometheus_client collector exposing the simulator's state as the contract's metrics."""

    def __init__(self, sim: Simulator):
        self.sim = sim

    def collect(self) -> Iterable:
        sim = self.sim
        series = sim.series()
        for name, metric in sorted(sim.contract.metrics.items()):
            if metric.synthetic:
                continue
            labels = list(metric.labels)
            if metric.type == "counter":
                family = CounterMetricFamily(name, metric.help, labels=labels)
                for key, value in sorted(series[name].items()):
                    family.add_metric(list(key), value)
            elif metric.type == "gauge":
                family = GaugeMetricFamily(name, metric.help, labels=labels)
                for key, value in sorted(series[name].items()):
                    family.add_metric(list(key), value)
            else:
                family = HistogramMetricFamily(name, metric.help, labels=labels)
                buckets = series[f"{name}_bucket"]
                for key, total in sorted(series[f"{name}_sum"].items()):
                    bounds = [(_le(b), buckets[key + (_le(b),)]) for b in DURATION_BUCKETS] + [("+Inf", buckets[key + ("+Inf",)])]
                    family.add_metric(list(key), bounds, total)
            yield family


# ------------------------------------------------------------------ serving


class SimulatorServer:
    """The simulator on http://ADDRESS:PORT/metrics, stepped by a background clock.

    `speed` is simulated seconds per real second (the accelerated clock). GET /scenario
    shows the running scenario; POST /scenario with a scenario name in the body switches.
    """

    def __init__(self, sim: Simulator, address: str = "127.0.0.1", port: int = 0, speed: float = 1.0, tick: float = 0.25):
        self.sim = sim
        self.speed = speed
        self.tick = tick
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ContractCollector(sim))
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path.split("?")[0] == "/metrics":
                    self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif self.path == "/scenario":
                    self._send(200, (",".join(sorted(sim.faults)) or HEALTHY).encode() + b"\n", "text/plain")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def do_POST(self):  # noqa: N802
                if self.path != "/scenario":
                    return self._send(404, b"not found\n", "text/plain")
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                try:
                    sim.set_scenario(body.strip())
                except ValueError as exc:
                    return self._send(400, f"{exc}\n".encode(), "text/plain")
                self._send(200, b"ok\n", "text/plain")

            def _send(self, code, body: bytes, content_type: str):
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        sim.wall_clock = time.time  # reconciliation runs are stamped with real time (see Simulator)
        self.httpd = ThreadingHTTPServer((address, port), Handler)
        self.httpd.daemon_threads = True
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host}:{port}"

    def _clock(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.tick):
            now = time.monotonic()
            self.sim.step((now - last) * self.speed)
            last = now
            if self.sim.events is not None:
                with self.sim.lock:
                    self.sim.events.flush()

    def start(self) -> SimulatorServer:
        self._threads = [threading.Thread(target=self.httpd.serve_forever, daemon=True),
                         threading.Thread(target=self._clock, daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for t in self._threads:
            t.join(timeout=5)
        if self.sim.events is not None:
            self.sim.events.flush()


# ------------------------------------------------------------------ CLI


def cmd_simulate(args) -> int:

    definitions, _config = load(args)
    topology = Topology(pools=args.pools, campaigns=args.campaigns, providers=args.providers)
    try:
        topology.check(definitions.contract)
        parse_scenario(args.scenario)
    except ValueError as exc:
        print(f"reward-obs simulate: {exc}", file=sys.stderr)
        return 2
    stream = None
    if args.events == "-":
        stream = sys.stdout
    elif args.events:
        stream = open(args.events, "a", encoding="utf-8")
    sink = EventSink(stream, random.Random(args.seed + 7)) if stream else None
    sim = Simulator(definitions.contract, topology, args.scenario, seed=args.seed, events=sink)
    server = SimulatorServer(sim, args.address, args.port, speed=args.speed).start()
    print(f"reward-obs simulate: serving http://{server.address}/metrics (scenario {args.scenario}, "
          f"{topology.pools} pools, {topology.campaigns} campaigns, {topology.providers} providers, speed x{args.speed:g})",
          file=sys.stderr, flush=True)
    try:
        if args.duration:
            time.sleep(args.duration)
        else:
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if stream not in (None, sys.stdout):
            stream.close()
    return 0


def register(sub) -> None:
    p = sub.add_parser("simulate", help="serve the metrics contract from a simulated reward system, with reward events",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default=HEALTHY, help=f"one of {', '.join(SCENARIOS)}; faults combine with commas")
    p.add_argument("--address", default="127.0.0.1", help="listen address (default: loopback only)")
    p.add_argument("--port", type=int, default=9464, help="listen port (0 picks a free one)")
    p.add_argument("--pools", type=int, default=4)
    p.add_argument("--campaigns", type=int, default=2)
    p.add_argument("--providers", type=int, default=6)
    p.add_argument("--speed", type=float, default=1.0, help="accelerated clock: simulated seconds per real second")
    p.add_argument("--events", help="append newline-delimited JSON reward events to this file ('-' for stdout)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, help="stop after this many real seconds (default: run until interrupted)")
    p.set_defaults(handler=cmd_simulate)
