"""`reward-obs trace`: follow rewards through the backend's newline-delimited JSON audit
logs by their correlation_id, from the match that earned them to the payout provider's
answer and any admin action.

    reward-obs trace FILE --id cor_...   one chain as a timeline, with the time between
                                         stages and the stages it is missing
    reward-obs trace FILE                every broken chain, by kind, with sample ids;
                                         duplicate events, out-of-order timestamps and
                                         lines that break the event contract

(The generator of realistic logs and the benchmark are development commands:
`reward-obs trace-generate` and `reward-obs trace-bench`, from devtools/.)

FILE is read as a stream ('-' is stdin, '*.gz' is decompressed). Memory grows with the
number of distinct chains, never with the number of events: each chain keeps a stage
bitmask, its first and last timestamp, an event count and the hashes of its last
RECENT_EVENT_IDS event ids (for duplicates). Every line is checked against the version
of the event contract its schema_version claims (contract/reward_event.versions.json lists
them), through the compiled fast path of event_contract; jsonschema only explains the
lines that fail, per version: the version a line claims and what it fails there, and how
it fares against the other versions (so an older event reads differently from a broken one).

Exit code: 0 when every line is valid and no chain is broken (with --id: the chain was
found, is not broken and its lines are valid), 1 otherwise, 2 on usage errors.
"""
from __future__ import annotations

import argparse
import calendar
import gzip
import itertools
import json
import os
import sys
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from reward_obs.catalog.event_contract import STAGES, ContractVersionsError, VersionedEventContract

STAGE_BIT = {stage: 1 << i for i, stage in enumerate(STAGES)}
SETTLED = 1 << len(STAGES)  # a match_settlement.settled event, not just any settlement event
ADMIN_NO_REASON = 1 << (len(STAGES) + 1)  # an admin_audit event without a reason_code
SETTLEMENT, ALLOCATION, CLAIM, PAYOUT, ADMIN = (STAGE_BIT[s] for s in STAGES)

# Whole-chain questions about retries, which counting log lines cannot answer (a normal
# payout already logs several payout events): a chain carries each of these types at
# most once, so a second one means something retried it. A blocked duplicate payout
# attempt is reported at its first occurrence. kind -> what it means.
_ONCE_TYPES = ("claim.requested", "claim.started", "payout.paid")
ONCE_BIT = {t: 1 << (len(STAGES) + 2 + i) for i, t in enumerate(_ONCE_TYPES)}
AGAIN_SHIFT = len(_ONCE_TYPES)
BLOCKED = 1 << (len(STAGES) + 2 + 2 * len(_ONCE_TYPES))
RETRY_KINDS = {
    "claim_retried": "claim requested or started more than once (a client retry loop or a replayed job)",
    "payout_attempt_blocked": "second payout attempt blocked by the idempotency key (payout.duplicate_blocked)",
    "paid_twice": "paid more than once (two payout.paid events: ask the provider for both transfers)",
}


def once_bits(event_type, mask: int) -> int:
    """The bits an event of this type adds to a chain whose mask is `mask`."""
    once = ONCE_BIT.get(event_type)
    if once is not None:
        return once | (once << AGAIN_SHIFT) if mask & once else once
    return BLOCKED if event_type == "payout.duplicate_blocked" else 0


def retry_kinds(mask: int) -> list[str]:
    kinds = []
    if mask & ((ONCE_BIT["claim.requested"] | ONCE_BIT["claim.started"]) << AGAIN_SHIFT):
        kinds.append("claim_retried")
    if mask & BLOCKED:
        kinds.append("payout_attempt_blocked")
    if mask & (ONCE_BIT["payout.paid"] << AGAIN_SHIFT):
        kinds.append("paid_twice")
    return kinds


# Fields shown on a timeline row, in this order, after the envelope.
KEY_FIELDS = ("match_id", "campaign_id", "pool_id", "claim_status", "provider", "provider_reference", "payout_result",
              "amount", "admin_action", "reason_code", "actor_role")
RECENT_EVENT_IDS = 16  # per chain; a realistic chain has 5-12 events
MAX_ERRORS_PER_LINE = 3


def broken_kinds(mask: int) -> list[str]:
    kinds = []
    if mask & PAYOUT and not mask & CLAIM:
        kinds.append("payout_without_claim")
    if mask & CLAIM and not mask & ALLOCATION:
        kinds.append("claim_without_allocation")
    if mask & ALLOCATION and not mask & SETTLED:
        kinds.append("allocation_without_settled_match")
    if mask & ADMIN_NO_REASON:
        kinds.append("admin_change_without_reason")
    return kinds


_MINUTES: dict[str, int] = {}


def epoch(ts: str) -> float:
    """Seconds since the epoch of a timestamp that matched the contract's pattern
    (YYYY-MM-DDTHH:MM:SS[.fraction]Z). Minutes are cached: logs repeat them."""
    minute = ts[:16]
    base = _MINUTES.get(minute)
    if base is None:
        if len(_MINUTES) > 100_000:
            _MINUTES.clear()
        base = _MINUTES[minute] = calendar.timegm(
            (int(ts[0:4]), int(ts[5:7]), int(ts[8:10]), int(ts[11:13]), int(ts[14:16]), 0, 0, 0, 0))
    return base + float(ts[17:-1])


# typeshed omits scan_once, which JSONDecoder.__init__ sets (CPython Lib/json/decoder.py).
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def parse_json(raw: bytes) -> Any:
    """json.loads(raw), about a third faster for the common line: a UTF-8 object that
    starts at column 1. Anything else goes through json.loads (so its errors too)."""
    try:
        text = raw.decode()
        value, end = _scan(text, 0)
    except (StopIteration, UnicodeDecodeError, RecursionError):
        return json.loads(raw)
    if end != len(text) and text[end:].strip(" \t\n\r"):
        return json.loads(raw)
    return value


class _Chain:
    """All that is kept per correlation_id."""

    __slots__ = ("mask", "first", "last", "events", "recent")

    def __init__(self) -> None:
        self.mask = 0
        self.first: float | None = None
        self.last: float | None = None
        self.events = 0
        self.recent = array("q")


# The kinds of broken chain the checker reports (the generator plants each of them).
BROKEN_KINDS = {
    "payout_without_claim": "payout with no claim",
    "claim_without_allocation": "claim with no allocation",
    "allocation_without_settled_match": "allocation with no settled match",
    "admin_change_without_reason": "admin change (admin_audit) with no audit reason",
}

@dataclass
class BadLine:
    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


@dataclass
class Report:
    source: str
    lines: int = 0
    blank_lines: int = 0
    events: int = 0
    bad_lines: int = 0
    bad_samples: list[BadLine] = field(default_factory=list)
    missing_correlation_id: int = 0
    duplicates: int = 0
    duplicate_samples: list[str] = field(default_factory=list)
    out_of_order: int = 0
    out_of_order_samples: list[int] = field(default_factory=list)
    chains: int = 0
    chains_reaching_payout: int = 0
    broken: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BROKEN_KINDS, 0))
    broken_samples: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in BROKEN_KINDS})
    broken_chains: int = 0
    retries: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RETRY_KINDS, 0))
    retry_samples: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in RETRY_KINDS})
    payout_chain_seconds: dict[str, float] = field(default_factory=dict)  # first to last event, chains that reached payout
    events_by_version: dict[str, int] = field(default_factory=dict)  # valid events, by the schema_version they carry
    bad_lines_by_version: dict[str, int] = field(default_factory=dict)  # JSON objects that break the contract: "1", "unknown", "none"

    @property
    def ok(self) -> bool:
        return self.bad_lines == 0 and self.broken_chains == 0 and self.retries["paid_twice"] == 0

    def as_dict(self) -> dict:
        return {
            "source": self.source, "ok": self.ok, "lines": self.lines, "blank_lines": self.blank_lines,
            "events": self.events, "chains": self.chains, "chains_reaching_payout": self.chains_reaching_payout,
            "bad_lines": self.bad_lines, "bad_line_samples": [{"line": b.line, "problem": b.problem} for b in self.bad_samples],
            "missing_correlation_id": self.missing_correlation_id,
            "duplicates": self.duplicates, "duplicate_samples": self.duplicate_samples,
            "out_of_order": self.out_of_order, "out_of_order_lines": self.out_of_order_samples,
            "broken_chains": self.broken_chains, "broken": self.broken, "broken_samples": self.broken_samples,
            "retries": self.retries, "retry_samples": self.retry_samples,
            "payout_chain_seconds": self.payout_chain_seconds,
            "events_by_version": self.events_by_version, "bad_lines_by_version": self.bad_lines_by_version,
        }


class _Lines:
    """Shared per-line work of both modes: parse, validate, explain a bad line."""

    def __init__(self, contract: VersionedEventContract, report_bad, max_bad: int):
        self.contract = contract
        self.report_bad = report_bad
        self.max_bad = max_bad
        self.bad_by_version: dict[str, int] = {}

    def parse(self, number: int, raw: bytes) -> tuple[Any, bool] | None:
        """(event, valid) or None for a blank or non-JSON line (reported)."""
        try:
            event = parse_json(raw)
        except (ValueError, RecursionError) as exc:
            if not raw.strip():
                return None
            self.report_bad(number, f"not JSON ({str(exc)[:120]})")
            return None
        if self.contract.is_valid(event):
            return event, True
        if not isinstance(event, dict):
            self.report_bad(number, f"not a JSON object but {type(event).__name__}")
            return None
        key = self.contract.version_key(event)
        self.bad_by_version[key] = self.bad_by_version.get(key, 0) + 1
        self.report_bad(number, lambda: self.contract.explain(event, MAX_ERRORS_PER_LINE))
        return event, False


def _salvage(event: dict, contract: VersionedEventContract) -> tuple[str | None, str | None, float | None]:
    """From an event that breaks the contract, what can still place it in a chain:
    (correlation_id, stage, timestamp), each None when unusable."""
    cid = event.get("correlation_id")
    if not (isinstance(cid, str) and contract.correlation_re.search(cid)):
        cid = None
    stage = event.get("stage")
    if not (isinstance(stage, str) and stage in STAGE_BIT):
        stage = None
    ts = event.get("timestamp")
    ts = epoch(ts) if isinstance(ts, str) and contract.timestamp_re.search(ts) else None
    return cid, stage, ts


def analyse(lines: Iterable[bytes], contract: VersionedEventContract | None = None, *, source: str = "-",
            max_bad: int = 20, max_samples: int = 10) -> Report:
    """Every chain in a stream of NDJSON lines, in one pass and O(chains) memory."""
    contract = contract or VersionedEventContract()
    report = Report(source)
    chains: dict[str, _Chain] = {}

    def report_bad(number: int, problem) -> None:
        report.bad_lines += 1
        if len(report.bad_samples) < max_bad:
            report.bad_samples.append(BadLine(number, problem() if callable(problem) else problem))

    checker = _Lines(contract, report_bad, max_bad)
    loads, checks, stage_bit = parse_json, contract.by_version, STAGE_BIT
    number = events = out_of_order = 0
    new_chain = _Chain
    by_version: dict = {}  # valid events per schema_version (1 and 1.0 are one key)
    ts: float | None  # a salvaged line may have no usable timestamp
    for number, raw in enumerate(lines, start=1):
        # The hot path inline: a valid line costs one parse, one check and a few dict operations.
        try:
            event = loads(raw)
            # The check of the version the event claims: a missing or unknown version (or
            # an event that is not an object) raises, and the slow path below explains it.
            version = event["schema_version"]
            valid = checks[version](event)
        except (ValueError, RecursionError, TypeError, KeyError, IndexError):
            valid = False
            event = None
        if valid:
            by_version[version] = by_version.get(version, 0) + 1
            cid = event["correlation_id"]
            stage = event["stage"]
            ts = epoch(event["timestamp"])
            event_id = event["event_id"]
            bits = stage_bit[stage]
            if bits == SETTLEMENT and event["type"] == "match_settlement.settled":
                bits |= SETTLED
        else:
            parsed = checker.parse(number, raw)
            if parsed is None:
                if not raw.strip():
                    report.blank_lines += 1
                continue
            event = parsed[0]
            cid, stage, ts = _salvage(event, contract)
            if cid is None:
                report.missing_correlation_id += 1
                continue
            if stage is None:
                continue
            bits = stage_bit[stage]
            if stage == "match_settlement" and event.get("type") == "match_settlement.settled":
                bits |= SETTLED
            if stage == "admin_audit" and not event.get("reason_code"):
                bits |= ADMIN_NO_REASON
            event_id = event.get("event_id")
            if not isinstance(event_id, str):
                event_id = None
        chain = chains.get(cid)
        if chain is None:
            chain = chains[cid] = new_chain()
        if event_id is not None:
            h = hash(event_id)
            recent = chain.recent
            if h in recent:
                report.duplicates += 1
                if len(report.duplicate_samples) < max_samples:
                    report.duplicate_samples.append(f"line {number}: {event_id} ({cid})")
                continue
            if len(recent) < RECENT_EVENT_IDS:
                recent.append(h)
            else:
                recent[chain.events % RECENT_EVENT_IDS] = h
        chain.events += 1
        events += 1
        if event is not None and type(event) is dict:
            once = once_bits(event.get("type"), chain.mask)
            if once:
                bits |= once
        chain.mask |= bits
        if ts is not None:
            last = chain.last
            if last is None:
                chain.first = chain.last = ts
            elif ts >= last:
                chain.last = ts
            else:
                out_of_order += 1
                if len(report.out_of_order_samples) < max_samples:
                    report.out_of_order_samples.append(number)
                if chain.first is not None and ts < chain.first:  # set with last: never None here
                    chain.first = ts
    report.events = events
    report.out_of_order = out_of_order
    report.lines = number
    report.events_by_version = {str(int(v)): n for v, n in sorted(by_version.items())}
    report.bad_lines_by_version = dict(sorted(checker.bad_by_version.items()))

    report.chains = len(chains)
    spans = array("d")
    for cid, chain in chains.items():
        mask = chain.mask
        if mask & PAYOUT:
            report.chains_reaching_payout += 1
            if chain.first is not None and chain.last is not None:
                spans.append(chain.last - chain.first)
        for kind in retry_kinds(mask):
            report.retries[kind] += 1
            if len(report.retry_samples[kind]) < max_samples:
                report.retry_samples[kind].append(cid)
        kinds = broken_kinds(mask)
        if kinds:
            report.broken_chains += 1
            for kind in kinds:
                report.broken[kind] += 1
                if len(report.broken_samples[kind]) < max_samples:
                    report.broken_samples[kind].append(cid)
    chains.clear()  # before sorting: the sort reuses the chains' memory instead of adding to the peak
    if spans:
        ordered = sorted(spans)
        report.payout_chain_seconds = {q: round(ordered[min(len(ordered) - 1, int(len(ordered) * f))], 3)
                                       for q, f in (("p50", 0.5), ("p95", 0.95), ("max", 1.0))}
    return report


# ------------------------------------------------------------------ one chain


@dataclass
class TimelineEvent:
    line: int
    event: dict
    valid: bool
    ts: float | None


@dataclass
class ChainTrace:
    correlation_id: str
    source: str
    lines: int = 0
    inspected: int = 0  # lines that contain the id string and so were parsed
    events: list[TimelineEvent] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    out_of_order: int = 0
    bad_lines: int = 0
    bad_samples: list[BadLine] = field(default_factory=list)

    @property
    def mask(self) -> int:
        mask = 0
        for e in self.events:
            stage = e.event.get("stage")
            if stage in STAGE_BIT:
                mask |= STAGE_BIT[stage]
                if e.event.get("type") == "match_settlement.settled":
                    mask |= SETTLED
                if stage == "admin_audit" and not e.event.get("reason_code"):
                    mask |= ADMIN_NO_REASON
                mask |= once_bits(e.event.get("type"), mask)
        return mask

    @property
    def missing_stages(self) -> list[str]:
        mask = self.mask
        return [s for s in STAGES if not mask & STAGE_BIT[s]]

    @property
    def broken(self) -> list[str]:
        return broken_kinds(self.mask)

    @property
    def retries(self) -> list[str]:
        return retry_kinds(self.mask)

    @property
    def ok(self) -> bool:
        return bool(self.events) and not self.broken and self.bad_lines == 0 and "paid_twice" not in self.retries

    def stage_gaps(self) -> list[tuple[str, str, float]]:
        """(from stage, to stage, seconds) between the first events of consecutive stages
        of the reward path (admin_audit is out of band)."""
        firsts: dict[str, float] = {}
        for e in self.events:
            stage = e.event.get("stage")
            if e.ts is not None and stage in STAGE_BIT and stage not in firsts:
                firsts[stage] = e.ts
        present = [s for s in STAGES[:4] if s in firsts]
        return [(a, b, firsts[b] - firsts[a]) for a, b in itertools.pairwise(present)]

    def as_dict(self) -> dict:
        return {
            "correlation_id": self.correlation_id, "source": self.source, "ok": self.ok, "lines": self.lines,
            "inspected_lines": self.inspected, "found": bool(self.events),
            "events": [{"line": e.line, "valid": e.valid, **e.event} for e in self.events],
            "stage_gaps": [{"from": a, "to": b, "seconds": round(s, 3)} for a, b, s in self.stage_gaps()],
            "missing_stages": self.missing_stages, "broken": self.broken, "retries": self.retries,
            "duplicates": self.duplicates, "out_of_order": self.out_of_order,
            "bad_lines": self.bad_lines, "bad_line_samples": [{"line": b.line, "problem": b.problem} for b in self.bad_samples],
        }


def trace_chain(lines: Iterable[bytes], correlation_id: str, contract: VersionedEventContract | None = None, *,
                source: str = "-", max_bad: int = 20) -> ChainTrace:
    """The events of one chain, in time order. Lines that do not contain the id are not parsed."""
    contract = contract or VersionedEventContract()
    trace = ChainTrace(correlation_id, source)
    needle = correlation_id.encode()

    def report_bad(number: int, problem) -> None:
        trace.bad_lines += 1
        if len(trace.bad_samples) < max_bad:
            trace.bad_samples.append(BadLine(number, problem() if callable(problem) else problem))

    checker = _Lines(contract, report_bad, max_bad)
    seen: set[str] = set()
    latest: float | None = None
    number = 0
    for number, raw in enumerate(lines, start=1):
        if needle not in raw:
            continue
        trace.inspected += 1
        parsed = checker.parse(number, raw)
        if parsed is None:
            continue
        event, valid = parsed
        if event.get("correlation_id") != correlation_id:
            continue
        event_id = event.get("event_id")
        if isinstance(event_id, str):
            if event_id in seen:
                trace.duplicates.append(f"line {number}: {event_id}")
                continue
            seen.add(event_id)
        _, _, ts = _salvage(event, contract)
        if ts is not None:
            if latest is not None and ts < latest:
                trace.out_of_order += 1
            latest = ts if latest is None else max(latest, ts)
        trace.events.append(TimelineEvent(number, event, valid, ts))
    trace.lines = number
    trace.events.sort(key=lambda e: (e.ts is None, e.ts or 0.0, e.line))
    return trace


# ------------------------------------------------------------------ output


def _seconds(s: float) -> str:
    sign = "-" if s < 0 else ""
    s = abs(s)
    if s < 60:
        return f"{sign}{s:.1f} s"
    if s < 3600:
        return f"{sign}{int(s // 60)} min {s % 60:.0f} s"
    return f"{sign}{int(s // 3600)} h {int(s % 3600 // 60)} min"


def _key_fields(event: dict) -> str:
    parts = []
    for name in KEY_FIELDS:
        if name in event:
            value = event[name]
            if name == "amount":
                value = f"{value} {event.get('currency', '?')}"
            parts.append(f"{name}={value}")
    return " ".join(parts)


def format_chain(trace: ChainTrace) -> str:
    out = [f"reward-obs trace: {trace.correlation_id} in {trace.source} "
           f"({trace.lines:,} lines, {trace.inspected:,} contain the id)"]
    if not trace.events:
        out.append("  no event carries this correlation_id")
    else:
        first = next((e.ts for e in trace.events if e.ts is not None), None)
        last = max((e.ts for e in trace.events if e.ts is not None), default=None)
        span = f", {_seconds(last - first)} from first to last" if first is not None and last is not None else ""
        out.append(f"  {len(trace.events)} events{span}")
        stage_w = max(len(s) for s in STAGES)
        type_w = max(len(str(e.event.get("type", ""))) for e in trace.events)
        ts_w = max(len(str(e.event.get("timestamp", "?"))) for e in trace.events)
        previous = None
        for e in trace.events:
            delta = "" if e.ts is None or previous is None else f"+{_seconds(e.ts - previous)}"
            if e.ts is not None:
                previous = e.ts
            flag = "" if e.valid else "  [breaks the contract]"
            cause = e.event.get("causation_id")
            out.append(f"  {str(e.event.get('timestamp', '?')):<{ts_w}} {delta:>12}  {str(e.event.get('stage', '?')):<{stage_w}}  "
                       f"{str(e.event.get('type', '?')):<{type_w}}  {e.event.get('event_id', '?')}"
                       f"{' <- ' + cause if cause else ''}  {_key_fields(e.event)}  (line {e.line}){flag}")
        gaps = trace.stage_gaps()
        if gaps:
            out.append("  time between stages (first event of each):")
            for a, b, s in gaps:
                out.append(f"    {a} -> {b}: {_seconds(s)}{'  (earlier than the stage before it)' if s < 0 else ''}")
        payouts = [e.event for e in trace.events if e.event.get("stage") == "payout" and "payout_result" in e.event]
        if payouts:
            final = payouts[-1]
            ref = f", provider reference {final['provider_reference']}" if "provider_reference" in final else ""
            out.append(f"  payout: {final['payout_result']} via {final.get('provider', '?')}{ref}")
    missing = trace.missing_stages
    if missing:
        note = " (admin_audit appears only when someone acted by hand)" if "admin_audit" in missing else ""
        out.append(f"  missing stages: {', '.join(missing)}{note}")
    else:
        out.append("  missing stages: none")
    for kind in trace.broken:
        out.append(f"  BROKEN: {BROKEN_KINDS[kind]}")
    for kind in trace.retries:
        out.append(f"  {'NOT OK' if kind == 'paid_twice' else 'RETRIED'}: {RETRY_KINDS[kind]}")
    if trace.duplicates:
        out.append(f"  duplicate events (counted once): {len(trace.duplicates)}")
        out += [f"    {d}" for d in trace.duplicates[:10]]
    if trace.out_of_order:
        out.append(f"  out-of-order timestamps: {trace.out_of_order} (timeline ordered by timestamp)")
    out += _bad_lines(trace.bad_lines, trace.bad_samples, "of the lines that contain the id")
    return "\n".join(out)


def _bad_lines(count: int, samples: list[BadLine], scope: str = "") -> list[str]:
    if not count:
        return []
    out = [f"  lines that break the event contract{' ' + scope if scope else ''}: {count:,}"
           f"{f' (first {len(samples)})' if count > len(samples) else ''}"]
    out += [f"    {b}" for b in samples]
    return out


def format_report(report: Report) -> str:
    out = [f"reward-obs trace: {report.source}",
           f"  {report.lines:,} lines, {report.events:,} events in {report.chains:,} chains "
           f"({report.chains_reaching_payout:,} reached payout)"]
    if report.payout_chain_seconds:
        q = report.payout_chain_seconds
        out.append(f"  first to last event of chains that reached payout: p50 {_seconds(q['p50'])}, "
                   f"p95 {_seconds(q['p95'])}, max {_seconds(q['max'])}")
    if report.events_by_version:
        out.append("  events by schema_version: " + ", ".join(f"v{v} {n:,}" for v, n in report.events_by_version.items()))
    bad = _bad_lines(report.bad_lines, report.bad_samples)
    if bad and report.bad_lines_by_version:
        names = {"unknown": "an unknown version", "none": "no version"}
        bad.insert(1, "    by the version they claim: " + ", ".join(
            f"{names.get(v, 'v' + v)} {n:,}" for v, n in report.bad_lines_by_version.items()))
    out += bad
    if report.missing_correlation_id:
        out.append(f"  events without a usable correlation_id: {report.missing_correlation_id:,} (cannot be traced)")
    out.append(f"  duplicate events (same event_id, counted once): {report.duplicates:,}")
    out += [f"    {d}" for d in report.duplicate_samples]
    out.append(f"  out-of-order timestamps (earlier than their chain's latest): {report.out_of_order:,}"
               + (f"; lines {', '.join(map(str, report.out_of_order_samples))}" if report.out_of_order_samples else ""))
    out.append(f"  broken chains: {report.broken_chains:,}")
    for kind, label in BROKEN_KINDS.items():
        count = report.broken[kind]
        sample = report.broken_samples[kind]
        more = f", ... ({count - len(sample):,} more)" if count > len(sample) else ""
        out.append(f"    {label}: {count:,}" + (f"  {', '.join(sample)}{more}" if sample else ""))
    out.append("  retried chains (each type a chain should carry once):")
    for kind, label in RETRY_KINDS.items():
        count = report.retries[kind]
        sample = report.retry_samples[kind]
        more = f", ... ({count - len(sample):,} more)" if count > len(sample) else ""
        out.append(f"    {label}: {count:,}" + (f"  {', '.join(sample)}{more}" if sample else ""))
    out.append("  OK" if report.ok else "  NOT OK: broken chains, a claim paid twice or bad lines (trace one with --id cor_...)")
    return "\n".join(out)


# ------------------------------------------------------------------ command


def open_source(name: str) -> tuple[IO[bytes] | gzip.GzipFile, bool]:
    """A binary stream of the file, stdin for '-'; True when it must be closed."""
    if name == "-":
        return sys.stdin.buffer, False
    if name.endswith(".gz"):
        return gzip.open(name, "rb"), True
    return open(name, "rb", buffering=1 << 20), True


def cmd_trace(args) -> int:
    parser = args.trace_parser
    try:
        contract = VersionedEventContract()
    except ContractVersionsError as exc:
        print(f"reward-obs trace: {exc}", file=sys.stderr)
        return 1
    if args.correlation_id is not None:
        if not contract.correlation_re.search(args.correlation_id):
            parser.error(f"--id {args.correlation_id!r} is not a correlation_id (pattern {contract.correlation_re.pattern})")
    try:
        stream, close = open_source(args.source)
    except OSError as exc:
        print(f"reward-obs trace: cannot read {args.source}: {exc.strerror}", file=sys.stderr)
        return 2
    result: ChainTrace | Report
    try:
        if args.correlation_id is not None:
            result = trace_chain(stream, args.correlation_id, contract, source=args.source, max_bad=args.max_bad_lines)
            text = format_chain(result)
        else:
            result = analyse(stream, contract, source=args.source, max_bad=args.max_bad_lines, max_samples=args.max_samples)
            text = format_report(result)
    except (OSError, EOFError) as exc:
        print(f"reward-obs trace: reading {args.source} failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if close:
            stream.close()
    try:
        print(json.dumps(result.as_dict(), indent=2) if args.format == "json" else text)
        sys.stdout.flush()
    except BrokenPipeError:  # `reward-obs trace ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0 if result.ok else 1


def register(sub) -> None:
    parser = sub.add_parser(
        "trace", help="follow rewards by correlation_id through NDJSON event logs; report broken chains",
        description="\n\n".join(__doc__.split("\n\n")[:2]), formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit code: 0 all lines valid and no broken chain, 1 broken chains or bad lines "
               "(with --id: also when the chain is not found), 2 usage error.")
    parser.add_argument("source", metavar="FILE", help="NDJSON events ('-' for stdin, .gz is decompressed)")
    parser.add_argument("--id", dest="correlation_id", metavar="cor_...", help="print this chain as a timeline")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--max-samples", type=int, default=10, metavar="N", help="correlation ids listed per kind (default 10)")
    parser.add_argument("--max-bad-lines", type=int, default=20, metavar="N", help="bad lines listed (default 20; all are counted)")
    parser.set_defaults(handler=cmd_trace, trace_parser=parser)
