"""The simulated reward system behind every scenario: one sample a minute of every
series the backend exports (metric contract names and label values), then the
scenario's events applied on top.

The healthy system is a flow: players start claims (daily cycle, day factors, Poisson
noise); claims are decided (approved, rejected, held); approved claims are allocated
from their campaign's pool and paid out through the providers, which are called through
their API and send webhooks. Pool gauges follow the allocations. Every counter starts at
0 for every known label value (the contract's rule), and every series carries the
scrape target's `job` and `instance`, with `up{job="rewards"}` = 1 while it is scraped.

Counters are generated as per-minute increments (mean, then noise) and summed; gauges as
values. Events change the means, values and presence; see schemas/scenario.schema.json.
"""
from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass, field

import numpy as np

from reward_obs.model.contract import MetricsContract
from reward_obs.model.names import SCRAPE_JOB
from reward_obs_dev.scenarios.model import Campaign, Event, Scenario
from reward_obs_dev.traffic import (
    ALLOCATION_SHARE,
    DECISION_SHARE,
    FAILURE_CAUSE_SHARE,
    PAYOUT_RESULT_SHARE,
    PROVIDER_SHARE,
    WEBHOOK_SHARE,
)

JOB = SCRAPE_JOB
INSTANCE = "rewards-backend:9464"
STALE = "stale"

# Share of the evening peak, per hour of the day (linear between hours).
HOURLY = (0.35, 0.22, 0.12, 0.07, 0.05, 0.06, 0.10, 0.20, 0.32, 0.42, 0.50, 0.55,
          0.62, 0.62, 0.58, 0.58, 0.63, 0.72, 0.85, 0.95, 1.00, 0.95, 0.78, 0.55)
FLAT_LEVEL = 0.6

HELD_REASON_SHARE = {"eligibility_review": 0.6, "abuse_review": 0.3, "manual_review": 0.1}
NO_API = {"manual"}  # paid by hand: no API calls, no webhooks
CALLS_PER_PAYOUT = {"quote": 1.0, "create": 1.0, "status": 2.0, "cancel": 0.01}
ERROR_CODES = {"timeout": 0.002}  # the codes the backend initialises; others appear on first use
ERROR_OPERATIONS = {"quote", "create", "status"}  # operations whose errors are initialised (cancel is rare)
RESERVED_MINUTES = 30  # an allocation stays reserved this long before it is paid
HELD_MINUTES = 60
PENDING_MINUTES = 3
# Claim to paid (reward_payout_duration_seconds, observed when a payout is paid): the share
# of paid payouts at or under each bucket bound on a healthy day, as the exported `le`. Two
# in 1,000 take longer than 10 minutes, inside the 99% latency SLO (slos/claim-to-paid-latency.yaml).
PAID_WITHIN_SHARE = {"60": 0.5, "600": 0.998, "+Inf": 1.0}
MEAN_PAID_SECONDS = 90.0
# Exported from the pool ledger, so a restart does not zero them (the funding alert
# reads the raw counter and must hold until the pool is closed).
LEDGER_COUNTERS = {"reward_pool_funding_total"}


@dataclass
class Series:
    metric: str
    labels: dict
    counter: bool
    mean: np.ndarray  # counter: expected increase in the minute ending at each sample; gauge: value
    present: np.ndarray
    extra: np.ndarray | None = None  # exact one-off increases
    resets: set = field(default_factory=set)
    stale: set = field(default_factory=set)
    derived: bool = False  # pool gauges: computed from allocations after counters are drawn
    values: np.ndarray | None = None

    @property
    def key(self) -> tuple:
        return (self.metric, tuple(sorted(self.labels.items())))

    def matches(self, metric: str, labels: dict) -> bool:
        return self.metric == metric and all(self.labels.get(k) == v for k, v in labels.items())

    def selector(self) -> str:
        labels = {**self.labels, "job": JOB, "instance": INSTANCE}
        return self.metric + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


@dataclass
class Generated:
    """A scenario's series: token lists ready for promtool, plus the numbers for charts."""
    scenario: Scenario
    series: list[Series]

    def find(self, metric: str, labels: dict) -> list[Series]:
        return [s for s in self.series if s.matches(metric, labels)]


# ---------------------------------------------------------------- the healthy system


def _profile(scenario: Scenario) -> np.ndarray:
    system = scenario.system
    minutes = np.arange(scenario.duration + 1) + system.clock
    if system.profile == "flat":
        level = np.full(minutes.shape, FLAT_LEVEL)
    else:
        hours = (minutes % 1440) / 60.0
        table = np.array(HOURLY + (HOURLY[0],))
        level = np.interp(hours, np.arange(25), table)
    days = minutes // 1440
    factors = np.array(system.day_factors)[days % len(system.day_factors)]
    return level * factors


def _active(c: Campaign, n: int) -> np.ndarray:
    t = np.arange(n)
    return (t >= c.start) & (t < (c.end if c.end is not None else n + 1))


def _label_values(contract: MetricsContract, metric: str, label: str, fallback=()) -> tuple:
    """The values a label is known to take on a metric (declared even when the label is open)."""
    spec = contract.metrics[metric]
    if label in spec.label_values:
        return tuple(spec.label_values[label])
    declared = contract.labels.get(label, {}).get("values")
    return tuple(declared) if declared else tuple(fallback)


def _build(scenario: Scenario, contract: MetricsContract) -> list[Series]:
    n = scenario.duration + 1
    system = scenario.system
    zeros = np.zeros(n)
    always = np.ones(n, dtype=bool)
    out: list[Series] = []

    def add(metric, labels, mean, counter, present=always, derived=False):
        out.append(Series(metric, dict(labels), counter, np.array(mean, dtype=float), present.copy(), derived=derived))

    claims_total = system.claims_per_minute * _profile(scenario)
    campaigns = system.campaigns
    active = {c.id: _active(c, n) for c in campaigns}
    share_sum = sum(c.share * active[c.id] for c in campaigns)
    share_sum = np.where(share_sum > 0, share_sum, 1)
    approved_total = zeros.copy()

    add("up", {"job": JOB, "instance": INSTANCE}, np.ones(n), counter=False)
    t = np.arange(n)
    for status in _label_values(contract, "reward_campaigns", "status", ()):
        count = zeros.copy()
        for c in campaigns:
            if status == "active":
                count += active[c.id]
            elif status == "ended" and c.end is not None:
                count += t >= c.end
            elif status == "upcoming":
                count += t < c.start
        add("reward_campaigns", {"status": status}, count, counter=False)

    for c in campaigns:
        exists = t >= c.start  # counters exist from the campaign's creation on, and stay after it ends
        claims = claims_total * active[c.id] * c.share / share_sum
        add("reward_claim_requests_total", {"campaign_id": c.id}, claims, True, exists)
        for decision in _label_values(contract, "reward_claim_decisions_total", "decision", DECISION_SHARE):
            add("reward_claim_decisions_total", {"campaign_id": c.id, "decision": decision},
                claims * DECISION_SHARE.get(decision, 0.0), True, exists)
        approved = claims * DECISION_SHARE["approved"]
        approved_total += approved
        for outcome in _label_values(contract, "reward_allocations_total", "outcome", ALLOCATION_SHARE):
            add("reward_allocations_total", {"campaign_id": c.id, "outcome": outcome},
                approved * ALLOCATION_SHARE.get(outcome, 0.0), True, exists)
        for reason in _label_values(contract, "reward_claims_held", "reason", HELD_REASON_SHARE):
            add("reward_claims_held", {"campaign_id": c.id, "reason": reason}, zeros, False, exists, derived=True)
        # The operator's accrual switch: on from the campaign's creation.
        add("reward_campaign_accrual_enabled", {"campaign_id": c.id}, np.ones(n), False, exists)
        # Its other operator switches, on until a scenario pauses or holds.
        for switch in ("reward_campaign_claims_enabled", "reward_campaign_payouts_enabled"):
            add(switch, {"campaign_id": c.id}, np.ones(n), False, exists)
        pool = active[c.id]
        for gauge in ("reward_pool_budget", "reward_pool_reserved", "reward_pool_paid", "reward_pool_remaining"):
            add(gauge, {"pool_id": c.pool, "campaign_id": c.id, "currency": c.currency}, zeros, False, pool, derived=True)
        sources = _label_values(contract, "reward_pool_funding_total", "source")
        for source in sources + ((c.source,) if c.source not in sources else ()):
            add("reward_pool_funding_total", {"pool_id": c.pool, "source": source}, zeros, True, exists)

    providers = _label_values(contract, "reward_payouts_total", "provider", PROVIDER_SHARE)
    for p in providers:
        payouts = approved_total * PROVIDER_SHARE.get(p, 0.0)
        api = 0.0 if p in NO_API else 1.0
        for result in _label_values(contract, "reward_payouts_total", "result", PAYOUT_RESULT_SHARE):
            add("reward_payouts_total", {"provider": p, "result": result}, payouts * PAYOUT_RESULT_SHARE.get(result, 0.0), True)
        # One cause per failed payout: the causes add up to the failed payouts above.
        for cause in _label_values(contract, "reward_payout_failures_total", "cause", FAILURE_CAUSE_SHARE):
            add("reward_payout_failures_total", {"provider": p, "cause": cause}, payouts * FAILURE_CAUSE_SHARE.get(cause, 0.0), True)
        add("reward_payouts_pending", {"provider": p}, zeros, False, derived=True)
        add("reward_payout_duplicate_attempts_total", {"provider": p}, zeros, True)
        for result in _label_values(contract, "reward_payout_webhooks_total", "result", WEBHOOK_SHARE):
            add("reward_payout_webhooks_total", {"provider": p, "result": result}, payouts * api * WEBHOOK_SHARE.get(result, 0.0), True)
        for op in _label_values(contract, "reward_provider_requests_total", "operation", CALLS_PER_PAYOUT):
            calls = payouts * api * CALLS_PER_PAYOUT.get(op, 0.0)
            add("reward_provider_requests_total", {"provider": p, "operation": op}, calls, True)
            for code, share in ERROR_CODES.items():
                if op in ERROR_OPERATIONS:
                    add("reward_provider_errors_total", {"provider": p, "operation": op, "error_code": code}, calls * share, True)
        add("reward_provider_up", {"provider": p}, np.ones(n), False)
        for switch in ("reward_provider_enabled", "reward_provider_payouts_enabled"):
            add(switch, {"provider": p}, np.ones(n), False)
        paid = payouts * PAYOUT_RESULT_SHARE["paid"]
        for le, share in PAID_WITHIN_SHARE.items():
            add("reward_payout_duration_seconds_bucket", {"provider": p, "le": le}, paid * share, True)
        add("reward_payout_duration_seconds_count", {"provider": p}, paid, True)
        add("reward_payout_duration_seconds_sum", {"provider": p}, paid * MEAN_PAID_SECONDS, True)
    _build_staleness(contract, providers, add, zeros)
    _build_reconciliation(out, providers, campaigns, n)
    return out


def _build_staleness(contract: MetricsContract, providers, add, zeros) -> None:
    """Ages of the oldest unfinished payout and held claim, and the time of the
    last processed webhook (derived in _derive_staleness)."""
    for p in providers:
        add("reward_payout_oldest_pending_age_seconds", {"provider": p}, zeros, False, derived=True)
        add("reward_payout_webhook_last_processed_timestamp_seconds", {"provider": p}, zeros, False, derived=True)
    for reason in _label_values(contract, "reward_claim_oldest_held_age_seconds", "reason", HELD_REASON_SHARE):
        add("reward_claim_oldest_held_age_seconds", {"reason": reason}, zeros, False, derived=True)


# Reconciliation: the backend reconciles every RECONCILIATION_MINUTES; each run
# exports what the provider confirms and what the ledger paid, both at the run's cutoff.
RECONCILIATION_MINUTES = 15
RECONCILIATION_GAUGES = ("reward_reconciliation_provider_paid", "reward_reconciliation_ledger_paid",
                         "reward_reconciliation_last_success_timestamp_seconds")


def _build_reconciliation(out: list[Series], providers, campaigns, n: int) -> None:
    """Per provider and currency, from the first campaign paying in that currency on."""
    zeros = np.zeros(n)
    for p in providers:
        for currency in sorted({c.currency for c in campaigns}):
            exists = np.arange(n) >= min(c.start for c in campaigns if c.currency == currency)
            labels = {"provider": p, "currency": currency}
            for gauge in RECONCILIATION_GAUGES:
                out.append(Series(gauge, dict(labels), False, zeros.copy(), exists.copy(), derived=True))
            out.append(Series("reward_reconciliation_double_payments_total", dict(labels), True, zeros.copy(), exists.copy()))


def _derive_reconciliation(scenario: Scenario, by_key: dict, paid_by_currency: dict[str, np.ndarray]) -> None:
    """Both sides agree (a healthy provider): the provider's share of the amount the pools of
    each currency paid, as of each run; the run's time as promtool's clock (0 at the start)."""
    n = scenario.duration + 1
    runs = np.arange(n) - np.arange(n) % RECONCILIATION_MINUTES
    for (metric, labels), s in by_key.items():
        if metric not in RECONCILIATION_GAUGES:
            continue
        labels = dict(labels)
        if metric == "reward_reconciliation_last_success_timestamp_seconds":
            s.values = runs * 60.0
        else:
            paid = paid_by_currency.get(labels["currency"], np.zeros(n)) * PROVIDER_SHARE.get(labels["provider"], 0.0)
            s.values = np.round(paid[runs], 2)


def series_catalog(scenario: Scenario, contract: MetricsContract) -> list[tuple[str, dict]]:
    """(metric, labels) of every series the scenario's healthy system exports."""
    return [(s.metric, s.labels) for s in _build(scenario, contract)]


# ---------------------------------------------------------------- events and drawing


def _span(e: Event, n: int) -> slice:
    return slice(e.at, n if e.until is None else min(e.until, n))


def _rng(scenario: Scenario, series: Series) -> np.random.Generator:
    key = repr(series.key).encode()
    return np.random.default_rng([scenario.system.seed, zlib.crc32(key)])


def generate(scenario: Scenario, contract: MetricsContract) -> Generated:
    """Every series of the scenario, one value (or gap, or staleness marker) a minute."""
    n = scenario.duration + 1
    series = _build(scenario, contract)
    gauge_events: list[tuple[Event, list[Series]]] = []
    presence_events: list[tuple[Event, list[Series]]] = []
    funding: list[Event] = []

    for e in scenario.events:
        span = _span(e, n)
        if e.action == "fund":
            pool, source, amount = e.arg["pool"], e.arg["source"], float(e.arg["amount"])
            hits = [s for s in series if s.matches("reward_pool_funding_total", {"pool_id": pool, "source": source})]
            if not hits:
                present = np.arange(n) >= e.at
                hits = [Series("reward_pool_funding_total", {"pool_id": pool, "source": source}, True, np.zeros(n), present)]
                series.append(hits[0])  # a new source appears with its first value, like any new counter child
            _extra(hits[0])[e.at] += amount
            funding.append(e)
            continue
        if e.action in ("restart", "target"):
            presence_events.append((e, series))
            continue
        if e.create:
            spec = contract.metrics[e.metric]
            counter = spec.type == "counter"
            present = np.arange(n) >= e.at
            new = Series(e.metric, dict(e.labels), counter, np.zeros(n), present)
            series.append(new)
            targets = [new]
        else:
            targets = [s for s in series if s.matches(e.metric, e.labels)]
        for s in targets:
            if e.action in ("absent", "stale"):
                presence_events.append((e, [s]))
            elif not s.counter:
                gauge_events.append((e, [s]))
            elif e.action == "rate":
                s.mean[span] = float(e.arg)
            elif e.action == "scale":
                s.mean[span] *= float(e.arg)
            elif e.action == "increment":
                _extra(s)[e.at] += float(e.arg)
            elif e.action == "reset":
                s.resets.add(e.at)

    restarts = [e.at for e, _ in presence_events if e.action == "restart"]
    for s in series:
        if s.counter:
            if s.metric not in LEDGER_COUNTERS:
                s.resets |= {r + 1 for r in restarts if r + 1 < n}
            s.values = _draw_counter(scenario, s)
    _derive(scenario, series, funding)
    for s in series:
        if not s.counter and s.values is None:
            s.values = s.mean.copy()
    for e, targets in gauge_events:
        for s in targets:
            _gauge_event(e, s, n)
    _book_remaining(scenario, series, gauge_events)
    for e, targets in presence_events:
        _presence_event(e, targets, n)
    return Generated(scenario, series)


def _extra(s: Series) -> np.ndarray:
    if s.extra is None:
        s.extra = np.zeros(len(s.mean))
    return s.extra


def _draw_counter(scenario: Scenario, s: Series) -> np.ndarray:
    mean = np.where(s.present, s.mean, 0.0)
    mean[0] = 0.0  # the first sample is the counter's value when the run starts
    if scenario.system.noise:
        inc = _rng(scenario, s).poisson(np.maximum(mean, 0.0)).astype(float)
    else:
        cum = np.floor(np.cumsum(mean) + 1e-9)
        inc = np.diff(cum, prepend=0.0)
    if s.extra is not None:
        inc = inc + s.extra
    first = int(np.argmax(s.present)) if s.present.any() else 0
    inc[:first] = 0.0
    starts = sorted({first} | {r for r in s.resets if r > first})
    values = np.empty_like(inc)
    bounds = starts + [len(inc)]
    values[:first] = 0.0
    for a, b in itertools.pairwise(bounds):
        values[a:b] = np.cumsum(inc[a:b])
    return values


def _derive(scenario: Scenario, series: list[Series], funding: list[Event]) -> None:
    """Pool gauges, held claims and pending payouts follow the counters drawn."""
    n = scenario.duration + 1
    by_key = {s.key: s for s in series}

    def get(metric, **labels):
        return by_key.get((metric, tuple(sorted(labels.items()))))

    def rolling(x: np.ndarray, minutes: int) -> np.ndarray:
        c = np.cumsum(x)
        return c - np.concatenate((np.zeros(minutes), c[:-minutes])) if minutes < len(c) else c

    paid_by_currency: dict[str, np.ndarray] = {}
    for c in scenario.system.campaigns:
        allocated = get("reward_allocations_total", campaign_id=c.id, outcome="allocated")
        inc = np.diff(allocated.values, prepend=allocated.values[0]) if allocated is not None else np.zeros(n)
        inc = np.maximum(inc, 0.0)  # a counter reset is not negative spending
        budget = np.full(n, float(c.budget))
        for e in funding:
            if e.arg["pool"] == c.pool:
                budget[e.at:] += float(e.arg["amount"])
        spent = c.spent * c.budget + c.reward * np.cumsum(inc)
        reserved = c.reward * rolling(inc, RESERVED_MINUTES)
        labels = {"pool_id": c.pool, "campaign_id": c.id, "currency": c.currency}
        values = {
            "reward_pool_budget": budget,
            "reward_pool_reserved": reserved,
            "reward_pool_paid": np.maximum(spent - reserved, 0.0),
            "reward_pool_remaining": np.maximum(budget - spent, 0.0),
        }
        paid_by_currency[c.currency] = paid_by_currency.get(c.currency, np.zeros(n)) + c.reward * np.cumsum(inc)
        for metric, v in values.items():
            s = get(metric, **labels)
            s.values = np.round(v, 4)
            # The pool closes when the campaign ends: its gauges go stale.
            if c.end is not None and c.end < n:
                s.stale.add(c.end)
        funded = get("reward_pool_funding_total", pool_id=c.pool, source=c.source)
        if funded is not None:
            funded.values = funded.values + np.where(np.arange(n) >= c.start, c.budget, 0.0)
        held = get("reward_claim_decisions_total", campaign_id=c.id, decision="held")
        held_inc = np.maximum(np.diff(held.values, prepend=held.values[0]), 0.0) if held is not None else np.zeros(n)
        for reason, share in HELD_REASON_SHARE.items():
            s = get("reward_claims_held", campaign_id=c.id, reason=reason)
            if s is not None:
                s.values = np.round(rolling(held_inc, HELD_MINUTES) * share)
    _derive_reconciliation(scenario, by_key, paid_by_currency)
    for s in series:
        if s.metric == "reward_payouts_pending":
            paid = get("reward_payouts_total", provider=s.labels["provider"], result="paid")
            inc = np.maximum(np.diff(paid.values, prepend=paid.values[0]), 0.0)
            s.values = rolling(inc, PENDING_MINUTES)
    _derive_staleness(series, get, n)
    _derive_durations(scenario, series, get)


def _derive_durations(scenario: Scenario, series: list[Series], get) -> None:
    """The claim-to-paid histogram follows the paid payouts drawn, so it stays a histogram:
    _count is the paid counter, each bucket a binomial draw from the payouts in the bucket
    above it, at the share the buckets' means give (a `scale` event on a bucket changes the
    share of payouts within its bound), and _sum their mean duration. Drawn independently,
    `_count - _bucket{le="600"}` would be noise, even negative."""
    for count in [s for s in series if s.metric == "reward_payout_duration_seconds_count"]:
        provider = count.labels["provider"]
        paid = get("reward_payouts_total", provider=provider, result="paid")
        step = np.diff(paid.values, prepend=0.0)
        restarted = step < 0
        step[restarted] = paid.values[restarted]  # a counter restarts from what it counted since
        buckets = sorted((s for s in series if s.metric == "reward_payout_duration_seconds_bucket"
                          and s.labels["provider"] == provider), key=lambda s: -float(s.labels["le"]))
        above_step, above_mean = step, count.mean
        for b in buckets:
            if b.labels["le"] != "+Inf":
                share = np.clip(b.mean / np.where(above_mean > 0, above_mean, 1.0), 0.0, 1.0)
                if scenario.system.noise:
                    above_step = _rng(scenario, b).binomial(above_step.astype(np.int64), share).astype(float)
                else:
                    above_step = np.diff(np.floor(np.cumsum(above_step * share) + 1e-9), prepend=0.0)
            b.values = _restarting_sum(above_step, restarted)
            above_mean = b.mean
        count.values = paid.values.copy()
        total = get("reward_payout_duration_seconds_sum", provider=provider)
        total.values = paid.values * MEAN_PAID_SECONDS


def _restarting_sum(step: np.ndarray, restarted: np.ndarray) -> np.ndarray:
    """Cumulative sum that starts over where the counter restarted."""
    out = np.empty_like(step)
    running = 0.0
    for t, (x, reset) in enumerate(zip(step, restarted, strict=True)):
        running = x if reset else running + x
        out[t] = running
    return out


def _derive_staleness(series: list[Series], get, n: int) -> None:
    """A pending payout is at most PENDING_MINUTES old and a held claim HELD_MINUTES old on a
    healthy system (scenarios ramp the ages for a fault); the last processed webhook is the
    last minute the processed counter rose (promtool's time() is 60 x the minute), 0 for a
    provider that has sent none."""
    minute = np.arange(n)
    for s in series:
        if s.metric == "reward_payout_oldest_pending_age_seconds":
            pending = get("reward_payouts_pending", provider=s.labels["provider"])
            s.values = np.where(pending.values > 0, 60.0 * PENDING_MINUTES, 0.0)
        elif s.metric == "reward_payout_webhook_last_processed_timestamp_seconds":
            processed = get("reward_payout_webhooks_total", provider=s.labels["provider"], result="processed")
            rose = np.diff(processed.values, prepend=processed.values[0]) > 0
            last = np.maximum.accumulate(np.where(rose, minute, -1))
            s.values = np.where(last >= 0, 60.0 * last, 0.0)
        elif s.metric == "reward_claim_oldest_held_age_seconds":
            held = np.zeros(n) + sum(h.values for h in series if h.metric == "reward_claims_held" and h.labels["reason"] == s.labels["reason"])
            s.values = np.where(np.asarray(held) > 0, 60.0 * HELD_MINUTES, 0.0)


def _book_remaining(scenario: Scenario, series: list[Series], gauge_events) -> None:
    """A scenario that moves a pool's remaining spent the money: paid follows, so the
    ledger still adds up (budget - reserved - paid = remaining). A scenario that sets paid
    or reserved itself is left alone: that is how a ledger that does not add up is made."""
    touched: dict[str, set[str]] = {}
    for _event, targets in gauge_events:
        for s in targets:
            if "pool_id" in s.labels:
                touched.setdefault(s.labels["pool_id"], set()).add(s.metric)
    by_key = {s.key: s for s in series}
    for c in scenario.system.campaigns:
        metrics = touched.get(c.pool, set())
        if "reward_pool_remaining" not in metrics or metrics & {"reward_pool_paid", "reward_pool_reserved", "reward_pool_budget"}:
            continue
        labels = tuple(sorted({"pool_id": c.pool, "campaign_id": c.id, "currency": c.currency}.items()))

        def get(metric: str, labels: tuple = labels) -> np.ndarray:
            return by_key[(metric, labels)].values

        get("reward_pool_paid")[:] = np.round(get("reward_pool_budget") - get("reward_pool_reserved") - get("reward_pool_remaining"), 4)


def _gauge_event(e: Event, s: Series, n: int) -> None:
    span = _span(e, n)
    if e.action == "value":
        s.values[span] = float(e.arg)
    elif e.action == "scale":
        s.values[span] = s.values[span] * float(e.arg)
    elif e.action == "ramp_to":
        start = float(s.values[e.at - 1]) if e.at > 0 else float(s.values[0])
        end = e.at + e.over
        stop = span.stop
        for m in range(e.at, stop):
            if m < end:
                s.values[m] = round(start + (float(e.arg) - start) * (m - e.at + 1) / e.over, 4)
            else:
                s.values[m] = float(e.arg)


def _presence_event(e: Event, targets: list[Series], n: int) -> None:
    span = _span(e, n)
    if e.action == "absent":
        for s in targets:
            s.present[span] = False
    elif e.action == "stale":
        for s in targets:
            s.stale.add(e.at)
            s.present[span.start + 1:span.stop] = False
    elif e.action == "restart":
        # One failed scrape: up=0, Prometheus marks every other series stale.
        for s in targets:
            if s.metric == "up":
                s.values[e.at] = 0.0
            elif s.present[e.at]:
                s.stale.add(e.at)
    elif e.action == "target":
        for s in targets:
            if s.metric == "up" and e.arg == "down":
                s.values[span] = 0.0
            elif e.arg == "vanished":
                s.present[span] = False
            elif s.present[e.at]:
                s.stale.add(e.at)
                s.present[span.start + 1:span.stop] = False


# ---------------------------------------------------------------- promtool notation


def tokens(s: Series) -> list:
    """One entry a minute: a number, None for no sample, or STALE."""
    out: list = []
    for m, value in enumerate(s.values):
        if m in s.stale:
            out.append(STALE)
        elif not s.present[m]:
            out.append(None)
        else:
            out.append(float(value))
    return out


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else format(v, ".12g")


def promtool_values(entries: list) -> str:
    """Compact promtool series notation: `a+bxn` for integer runs with a constant step,
    `_xn` for gaps, `stale` for staleness markers, plain numbers otherwise."""
    parts: list[str] = []
    i, n = 0, len(entries)
    while i < n:
        v = entries[i]
        if v is None:
            j = i
            while j < n and entries[j] is None:
                j += 1
            parts.append("_" if j - i == 1 else f"_x{j - i}")
            i = j
            continue
        if v == STALE:
            parts.append("stale")
            i += 1
            continue
        j = i + 1
        if j < n and isinstance(entries[j], float):
            step = entries[j] - v
            exact = (v.is_integer() and step.is_integer()) or step == 0
            if exact:
                while j < n and isinstance(entries[j], float) and entries[j] - entries[j - 1] == step:
                    j += 1
        if j - i >= 3:
            sign = "+" if step >= 0 else "-"
            parts.append(f"{_num(v)}{sign}{_num(abs(step))}x{j - i - 1}")
            i = j
        else:
            parts.append(_num(v))
            i += 1
    return " ".join(parts)
