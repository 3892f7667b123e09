"""Realistic reward event logs for tests and the benchmark of `reward-obs trace`.

`generate` writes exactly N lines of NDJSON events that follow
contract/reward_event.schema.json, as the backend logs them: many rewards in flight at
once, their events interleaved in time. Each chain is one reward: match settled,
allocation (sometimes rejected), claim claimable and started, payout created, the
provider's webhook, payout paid, claim paid; some are held by trust & safety or need a
payout retry by rewards on-call (admin_audit events). Deterministic for a seed.

Faults on request, each counted in the returned stats so tests know what to expect:
every K-th chain broken (cycling through trace.BROKEN_KINDS; an admin change without a
reason is the one kind that is also a schema-invalid line), one event of every K-th
chain logged twice, two events of every K-th chain logged out of order. With
`chains=C` the events are spread over exactly C long chains (padded with repeated
webhook deliveries), so a test can grow events while the number of chains stays fixed.
"""
from __future__ import annotations

import heapq
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO

from reward_obs.catalog.event_contract import EventContract, current_schema_version
from reward_obs.tools.trace import BROKEN_KINDS
from reward_obs_dev import machine
from reward_obs_dev.traffic import DECISION_SHARE, PAYOUT_RESULT_SHARE, failure_cause

# kind -> what it means; the order is the order of the report.


START_MS = 1_763_636_400_000  # 2025-11-20T11:00:00Z
CHAIN_GAP_MS = 400  # a new reward every 0.4 s on average
# Chains that stop at an exhausted pool: not a healthy share (reward_obs_dev/traffic.py has none),
# the short chain the tracer must still take as complete.
SHORT_CHAIN_SHARE = 0.05
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# (campaign, pool, currency, provider)
CAMPAIGNS = (
    ("cmp_winter_cup", "pool_winter_ton", "TON", "ton_wallet"),
    ("cmp_weekly_arena", "pool_weekly_usdt", "USDT", "crypto_exchange"),
    ("cmp_sponsor_gg", "pool_sponsor_cards", "EUR", "gift_card"),
    ("cmp_launch_ladder", "pool_launch_fiat", "USD", "fiat_provider"),
)


def _b62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(out)


class _Ids:
    """Unique, random-looking, deterministic ids: an odd multiplier is a bijection mod 2**64."""

    def __init__(self, seed: int):
        self.salt = (seed * 0x9E3779B97F4A7C15) & (2**64 - 1)
        self.n = 0

    def next(self, prefix: str) -> str:
        self.n += 1
        return prefix + _b62(((self.n * 0xD1B54A32D192ED03) ^ self.salt) & (2**64 - 1), 11)


_STAMPS: dict[int, str] = {}


def stamp(ms: int) -> str:
    minute, rest = divmod(ms, 60_000)
    prefix = _STAMPS.get(minute)
    if prefix is None:
        if len(_STAMPS) > 10_000:
            _STAMPS.clear()
        prefix = _STAMPS[minute] = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60))
    return f"{prefix}{rest // 1000:02d}.{rest % 1000:03d}Z"


@dataclass
class GeneratedStats:
    lines: int = 0
    chains: int = 0
    broken: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BROKEN_KINDS, 0))
    duplicates: int = 0
    out_of_order: int = 0
    invalid_lines: int = 0
    middle_correlation_id: str = ""  # the chain of the line in the middle of the file

    @property
    def events(self) -> int:
        return self.lines - self.duplicates

    @property
    def broken_chains(self) -> int:
        return sum(self.broken.values())


class _ChainBuilder:
    def __init__(self, rng: random.Random, ids: _Ids):
        self.rng = rng
        self.ids = ids
        self.version = current_schema_version()

    def build(self, start_ms: int, *, happy: bool) -> list[tuple[int, dict]]:
        """(timestamp ms, event) of one reward, in time order. `happy`: no rejection or
        hold, every stage present (the base of a deliberately broken chain)."""
        rng = self.rng
        cid = self.ids.next("cor_")
        campaign, pool, currency, provider = rng.choice(CAMPAIGNS)
        amount = f"{rng.randint(5, 2500) / 10:.1f}"
        receipt = "RCP-" + "-".join(_b62(rng.getrandbits(24), 4).upper() for _ in range(3))
        events: list[tuple[int, dict]] = []
        t = start_ms
        cause = None

        def add(min_s: float, max_s: float, stage: str, kind: str, **fields) -> None:
            nonlocal t, cause
            t += int(rng.uniform(min_s, max_s) * 1000)
            event_id = self.ids.next("evt_")
            event = {"schema_version": self.version, "event_id": event_id, "correlation_id": cid, "causation_id": cause,
                     "stage": stage, "type": f"{stage}.{kind}", "timestamp": stamp(t), **fields}
            events.append((t, event))
            cause = event_id

        add(0, 0, "match_settlement", "settled", match_id=self.ids.next("m_"), campaign_id=campaign)
        if not happy and rng.random() < SHORT_CHAIN_SHARE:
            add(0.2, 3, "reward_allocation", "rejected_pool_exhausted", campaign_id=campaign, pool_id=pool)
            return events
        add(0.2, 3, "reward_allocation", "allocated", campaign_id=campaign, pool_id=pool, amount=amount, currency=currency)
        add(0.5, 5, "claim", "claimable", claim_status="claimable", campaign_id=campaign, receipt_reference=receipt)
        if not happy and rng.random() < DECISION_SHARE["held"]:
            add(60, 600, "admin_audit", "claim_held", admin_action="hold_claim", reason_code="abuse_review_decision",
                actor_role="trust_safety", campaign_id=campaign)
            if rng.random() < 0.5:
                add(600, 7200, "claim", "rejected", claim_status="rejected", campaign_id=campaign, receipt_reference=receipt)
                return events
            add(600, 7200, "admin_audit", "claim_released", admin_action="release_claim", reason_code="abuse_review_decision",
                actor_role="trust_safety", campaign_id=campaign)
        add(5, 900, "claim", "started", claim_status="claim_started", campaign_id=campaign, receipt_reference=receipt)
        payout = {"provider": provider, "amount": amount, "currency": currency}
        add(0.3, 3, "payout", "created", payout_result="pending", **payout)
        if not happy and rng.random() < PAYOUT_RESULT_SHARE["failed"]:
            add(1, 30, "payout", "failed", payout_result="failed", failure_cause=failure_cause(rng.random()), **payout)
            add(120, 1800, "admin_audit", "payout_retried", admin_action="retry_payout", reason_code="provider_retry",
                actor_role="rewards_oncall", provider=provider)
            add(0.3, 3, "payout", "created", payout_result="pending", **payout)
        reference = f"{provider.split('_')[0]}ref_{_b62(rng.getrandbits(48), 9)}"
        add(2, 90, "payout", "webhook_received", provider=provider, provider_reference=reference, payout_result="paid")
        add(0.05, 1, "payout", "paid", provider=provider, provider_reference=reference, payout_result="paid",
            amount=amount, currency=currency)
        add(0.05, 1, "claim", "paid", claim_status="paid", campaign_id=campaign, receipt_reference=receipt)
        return events

    def pad(self, last: tuple[int, dict], count: int, step_ms: int) -> Iterator[tuple[int, dict]]:
        """`count` more webhook deliveries for a chain (redeliveries are normal)."""
        t, base = last
        provider = base.get("provider", "ton_wallet")
        for _ in range(count):
            t += int(step_ms * self.rng.uniform(0.5, 1.5)) + 1
            yield t, {"schema_version": base["schema_version"], "event_id": self.ids.next("evt_"), "correlation_id": base["correlation_id"],
                      "causation_id": base["event_id"], "stage": "payout", "type": "payout.webhook_received",
                      "timestamp": stamp(t), "provider": provider, "payout_result": "paid"}


def _break(events: list[tuple[int, dict]], kind: str) -> list[tuple[int, dict]]:
    if kind == "payout_without_claim":
        return [e for e in events if e[1]["stage"] != "claim"]
    if kind == "claim_without_allocation":
        return [e for e in events if e[1]["stage"] != "reward_allocation"]
    if kind == "allocation_without_settled_match":
        return [e for e in events if e[1]["stage"] != "match_settlement"]
    if kind == "admin_change_without_reason":  # an admin acted and logged no reason
        i = next(i for i, e in enumerate(events) if e[1]["type"] == "claim.started")
        t, before = events[i]
        held = {"schema_version": before["schema_version"], "event_id": before["event_id"] + "h", "correlation_id": before["correlation_id"],
                "causation_id": before["event_id"], "stage": "admin_audit", "type": "admin_audit.claim_held",
                "timestamp": stamp(t + 1), "admin_action": "hold_claim", "actor_role": "support"}
        return events[: i + 1] + [(t + 1, held)] + events[i + 1:]
    raise ValueError(kind)


def generate(out: IO[str], events: int, *, seed: int = 1, broken_every: int = 0, duplicate_every: int = 0,
             out_of_order_every: int = 0, chains: int | None = None) -> GeneratedStats:
    """Write exactly `events` lines to `out`; see the module docstring."""
    if events < 0 or (chains is not None and chains < 1):
        raise ValueError("events must be >= 0 and chains >= 1")
    rng = random.Random(seed)
    builder = _ChainBuilder(rng, _Ids(seed))
    stats = GeneratedStats()
    kinds = tuple(BROKEN_KINDS)
    heap: list = []
    seq = 0
    planned = 0
    index = 0
    next_start = START_MS
    middle = events // 2 + 1

    def chain_lines(i: int, start: int) -> Iterator[tuple[int, dict]] | None:
        nonlocal planned
        if chains is not None:
            quota = events // chains + (1 if i < events % chains else 0)
            if quota == 0:
                return None
            base = builder.build(start, happy=True)  # padding is payout events: the chain must have paid
            planned += quota
            if quota <= len(base):
                return iter(base[:quota])
            step = max(1000, chains * CHAIN_GAP_MS // 4)
            return _chain_then(base, builder.pad(base[-1], quota - len(base), step))
        number = i + 1
        kind = kinds[(number // broken_every - 1) % len(kinds)] if broken_every and number % broken_every == 0 else None
        base = builder.build(start, happy=kind is not None)
        if kind:
            base = _break(base, kind)
        keyed = [(t, t, e) for t, e in base]  # (log order key, timestamp, event)
        dup = bool(duplicate_every) and number % duplicate_every == 0
        swap = bool(out_of_order_every) and number % out_of_order_every == 0 and len(keyed) >= 2
        dup_invalid = False
        if dup:
            j = rng.randrange(len(keyed))
            keyed.append((keyed[j][0] + 1, keyed[j][1], keyed[j][2]))
            dup_invalid = "reason_code" not in keyed[j][2] and keyed[j][2]["stage"] == "admin_audit"
        if swap:
            j = rng.randrange(len(base) - 1)
            t_next, ts_next, e_next = keyed[j + 1]
            keyed[j + 1] = (keyed[j][0] - 1, ts_next, e_next)
        if planned + len(keyed) > events:  # the last chain: a plain prefix, no faults
            keyed = [(t, t, e) for t, e in builder.build(start, happy=False)][: events - planned]
            kind, dup, swap, dup_invalid = None, False, False, False
        planned += len(keyed)
        if kind:
            stats.broken[kind] += 1
            stats.invalid_lines += (kind == "admin_change_without_reason") + dup_invalid
        stats.duplicates += dup
        stats.out_of_order += swap
        keyed.sort(key=lambda k: k[0])
        return ((k, e) for k, _, e in keyed)

    def more() -> bool:
        return index < chains if chains is not None else planned < events

    while heap or more():
        if more() and (not heap or heap[0][0] >= next_start):
            it = chain_lines(index, next_start)
            index += 1
            next_start += int(rng.expovariate(1 / CHAIN_GAP_MS)) + 1
            if it is not None:
                stats.chains += 1
                first = next(it, None)
                if first is not None:
                    seq += 1
                    heapq.heappush(heap, (first[0], seq, first[1], it))
            continue
        key, _, event, it = heapq.heappop(heap)
        out.write(json.dumps(event, separators=(",", ":")))
        out.write("\n")
        stats.lines += 1
        if stats.lines == middle:
            stats.middle_correlation_id = event["correlation_id"]
        following = next(it, None)
        if following is not None:
            seq += 1
            heapq.heappush(heap, (following[0], seq, following[1], it))
    return stats


def _chain_then(base: list, rest: Iterator) -> Iterator:
    yield from base
    yield from rest


def generate_file(path: Path, events: int, **options) -> GeneratedStats:
    with open(path, "w", encoding="utf-8", buffering=1 << 20) as out:
        return generate(out, events, **options)


# ------------------------------------------------------------------ commands


def _options(args) -> dict:
    return {"seed": args.seed, "broken_every": args.broken_every, "duplicate_every": args.duplicate_every,
            "out_of_order_every": args.out_of_order_every, "chains": args.chains}


def _summary(stats: GeneratedStats) -> str:
    broken = ", ".join(f"{k} {v}" for k, v in stats.broken.items() if v) or "none"
    return (f"{stats.lines:,} lines ({stats.events:,} events, {stats.duplicates:,} logged twice) in {stats.chains:,} chains; "
            f"broken: {broken}; out of order: {stats.out_of_order:,}; schema-invalid lines: {stats.invalid_lines:,}; "
            f"middle chain: {stats.middle_correlation_id}")


def cmd_generate(args) -> int:
    if args.events < 0:
        args.parser.error("--events must be >= 0")
    if str(args.out) == "-":
        stats = generate(sys.stdout, args.events, **_options(args))
        print(_summary(stats), file=sys.stderr)
    else:
        stats = generate_file(args.out, args.events, **_options(args))
        print(f"wrote {args.out}: {_summary(stats)}")
    return 0


@dataclass
class Measurement:
    wall_s: float
    cpu_s: float
    max_rss_mib: float
    returncode: int
    stdout: str
    stderr: str


# Runs the measured command and reports its resource use. A child's ru_maxrss starts at
# the RSS of the process that forked it (fork copies the page tables; exec keeps the high
# water mark), so measuring straight from a big parent (pytest, or the bench after it
# generated a file) would report the parent's size. This launcher is small when it forks.
_LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - started
with open(sys.argv[1], "w") as f:
    json.dump({"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_kib": usage.ru_maxrss,
               "returncode": os.waitstatus_to_exitcode(status)}, f)
"""


def measure_command(cmd: list[str], cwd: Path | None = None) -> Measurement:
    """Run a command; its own wall time, CPU time (user + system) and peak RSS, taken
    with os.wait4 in a small launcher process (see _LAUNCHER)."""
    with tempfile.TemporaryDirectory(prefix="reward-obs-measure-") as tmp:
        result = Path(tmp) / "usage.json"
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with open(out, "wb") as out_f, open(err, "wb") as err_f:
            subprocess.run([sys.executable, "-I", "-c", _LAUNCHER, str(result), *cmd], stdout=out_f, stderr=err_f,
                           cwd=cwd, check=True)
        usage = json.loads(result.read_text())
        return Measurement(usage["wall_s"], usage["cpu_s"], usage["max_rss_kib"] / 1024, usage["returncode"],
                           out.read_text(errors="replace"), err.read_text(errors="replace"))


def _jsonschema_reference(path: Path, sample: int = 5000) -> str:
    """What plain jsonschema validation per line would cost, from the file's first lines
    (CPU time, so a busy machine does not inflate it)."""


    contract = EventContract()
    with open(path, "rb") as f:
        events = [json.loads(line) for line in islice(f, sample)]
    validator, fast = contract.validator, contract.is_valid
    started = time.process_time()
    for event in events:
        validator.is_valid(event)
    slow = (time.process_time() - started) / len(events)
    started = time.process_time()
    for event in events:
        fast(event)
    quick = (time.process_time() - started) / len(events)
    return (f"validation alone, CPU per line over {len(events):,} lines: jsonschema {slow * 1e6:.0f} us "
            f"(~{slow * 1e6:.0f} s per million lines), compiled fast path {quick * 1e6:.1f} us")


def cmd_bench(args) -> int:
    events = args.events or 1_000_000
    options = _options(args)
    options["broken_every"] = args.broken_every or 1000
    options["duplicate_every"] = args.duplicate_every or 500
    options["out_of_order_every"] = args.out_of_order_every or 300
    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="reward-obs-trace-bench-")
        path = Path(tmp.name) / "events.ndjson"
    else:
        path = args.out
    try:
        started = time.perf_counter()
        stats = generate_file(path, events, **options)
        generated = time.perf_counter() - started
        size = path.stat().st_size / 1024 / 1024
        print(f"machine: {machine.summary()}")
        print(f"generated {path.name} in {generated:.1f} s ({size:.0f} MiB): {_summary(stats)}")
        base = [sys.executable, "-m", "reward_obs.cli", "trace", str(path)]
        runs = [("reward-obs trace FILE", base), (f"reward-obs trace FILE --id {stats.middle_correlation_id}",
                                                 base + ["--id", stats.middle_correlation_id])]
        print(f"{'command':<58} {'wall':>8} {'cpu':>8} {'peak RSS':>10}  exit")
        for label, cmd in runs:
            m = measure_command(cmd)
            print(f"{label:<58} {m.wall_s:>6.2f} s {m.cpu_s:>6.2f} s {m.max_rss_mib:>6.1f} MiB  {m.returncode}")
            if m.returncode not in (0, 1):
                print(m.stderr, file=sys.stderr)
                return 1
        print("(exit 1 is expected: the file holds deliberately broken chains and schema-invalid lines)")
        print(_jsonschema_reference(path))
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


def register(sub) -> None:
    for name, handler, help_text in (
            ("trace-generate", cmd_generate, "write realistic NDJSON reward event chains (for tests and benchmarks)"),
            ("trace-bench", cmd_bench, "time `reward-obs trace` on a generated file, with and without --id")):
        parser = sub.add_parser(name, help=help_text)
        parser.add_argument("--events", type=int, metavar="N", required=name == "trace-generate",
                            help="events to write (trace-bench default 1000000)")
        parser.add_argument("--out", type=Path, metavar="FILE", required=name == "trace-generate",
                            help="file to write ('-' for stdout); trace-bench: keep the file here")
        parser.add_argument("--chains", type=int, metavar="C", help="spread the events over exactly C chains (long chains)")
        parser.add_argument("--broken-every", type=int, default=0, metavar="K", help="break every K-th chain, cycling through the kinds")
        parser.add_argument("--duplicate-every", type=int, default=0, metavar="K", help="log one event of every K-th chain twice")
        parser.add_argument("--out-of-order-every", type=int, default=0, metavar="K", help="log two events of every K-th chain out of order")
        parser.add_argument("--seed", type=int, default=1)
        parser.set_defaults(handler=handler, parser=parser)
