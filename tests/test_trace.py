"""`reward-obs trace`: one chain as a timeline, broken chains by kind, duplicates,
out-of-order timestamps and bad lines by line number; streaming in memory that grows with
chains, not events. No timing is asserted anywhere (the benchmark measures that)."""
from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reward_obs.tools.trace import BROKEN_KINDS, analyse, trace_chain
from reward_obs_dev.trace_gen import generate, generate_file, measure_command

from conftest import ROOT, run_cli

COR = "cor_Chain0001full"


class Chain:
    """Events of one reward, built in order; timestamps are seconds after 18:00:00Z."""

    def __init__(self, correlation_id: str, prefix: str = "A"):
        self.cid = correlation_id
        self.prefix = prefix
        self.events: list[dict] = []

    def add(self, at: float, stage: str, kind: str, **fields) -> dict:
        minutes, seconds = divmod(at, 60)
        event = {"schema_version": 2, "event_id": f"evt_{self.prefix}{len(self.events):08d}", "correlation_id": self.cid,
                 "causation_id": self.events[-1]["event_id"] if self.events else None, "stage": stage,
                 "type": f"{stage}.{kind}", "timestamp": f"2025-11-20T18:{int(minutes):02d}:{seconds:06.3f}Z", **fields}
        if stage == "claim":  # the contract requires the receipt reference on every claim event
            event.setdefault("receipt_reference", "RCP-7K2M-Q9XD-4TWA")
        self.events.append(event)
        return event

    def full(self) -> Chain:
        self.add(0, "match_settlement", "settled", match_id="m_1", campaign_id="cmp_winter_cup")
        self.add(1.2, "reward_allocation", "allocated", campaign_id="cmp_winter_cup", pool_id="pool_winter_ton",
                 amount="12.5", currency="TON")
        self.add(4.0, "claim", "started", claim_status="claim_started")
        self.add(5.5, "payout", "created", provider="ton_wallet", payout_result="pending", amount="12.5", currency="TON")
        self.add(65.5, "admin_audit", "payout_retried", admin_action="retry_payout", reason_code="provider_retry",
                 actor_role="rewards_oncall")
        self.add(70.0, "payout", "paid", provider="ton_wallet", provider_reference="tonref_Q4m8Zp2Kx7", payout_result="paid")
        self.add(71.0, "claim", "paid", claim_status="paid")
        return self


def lines(*events) -> list[bytes]:
    return [(e if isinstance(e, str) else json.dumps(e)).encode() + b"\n" for e in events]


def write(tmp_path: Path, *events, name: str = "events.ndjson") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(lines(*events)))
    return path


# ------------------------------------------------------------------ one chain


def test_full_chain_timeline_in_time_order_with_stage_gaps(tmp_path):
    chain = Chain(COR).full()
    other = Chain("cor_SomeOtherChain1", "B").full()
    # Logged out of order and interleaved with another reward.
    events = [chain.events[1], other.events[0], chain.events[0]] + chain.events[2:] + other.events[1:]
    path = write(tmp_path, *events)
    result = run_cli("trace", str(path), "--id", COR)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "7 events" in out and "missing stages: none" in out
    rows = [line for line in out.splitlines() if "(line " in line]
    assert [json.loads(json.dumps(r.split()[0])) for r in rows] == [e["timestamp"] for e in chain.events]
    assert "match_settlement -> reward_allocation: 1.2 s" in out
    assert "reward_allocation -> claim: 2.8 s" in out
    assert "claim -> payout: 1.5 s" in out
    assert "payout: paid via ton_wallet, provider reference tonref_Q4m8Zp2Kx7" in out
    assert "reason_code=provider_retry" in out and "amount=12.5 TON" in out
    assert "out-of-order timestamps: 1" in out
    assert "cor_SomeOtherChain1" not in out


def test_chain_json_output_and_missing_stages(tmp_path):
    chain = Chain(COR)
    chain.add(0, "match_settlement", "settled", match_id="m_1")
    chain.add(2, "reward_allocation", "allocated", campaign_id="c1", pool_id="p1", amount="1", currency="TON")
    path = write(tmp_path, *chain.events)
    result = run_cli("trace", str(path), "--id", COR, "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["found"] and report["ok"]
    assert report["missing_stages"] == ["claim", "payout", "admin_audit"]
    assert report["broken"] == []
    assert report["stage_gaps"] == [{"from": "match_settlement", "to": "reward_allocation", "seconds": 2.0}]
    text = run_cli("trace", str(path), "--id", COR).stdout
    assert "missing stages: claim, payout, admin_audit" in text


def test_chain_not_found_exits_1(tmp_path):
    path = write(tmp_path, *Chain(COR).full().events)
    result = run_cli("trace", str(path), "--id", "cor_NotInTheFile1")
    assert result.returncode == 1
    assert "no event carries this correlation_id" in result.stdout


def test_id_mode_parses_only_lines_that_contain_the_id(tmp_path):
    chain = Chain(COR).full()
    path = write(tmp_path, "not json at all", chain.events[0], '{"broken": "line", "about": "' + COR + '"', *chain.events[1:])
    trace = trace_chain(iter(path.read_bytes().splitlines(keepends=True)), COR)
    assert trace.inspected == 8  # the 7 events and the broken line that names the id; line 1 is never parsed
    assert [b.line for b in trace.bad_samples] == [3]
    assert not trace.ok and len(trace.events) == 7
    assert run_cli("trace", str(path), "--id", COR).returncode == 1


def test_id_mode_counts_duplicates_once(tmp_path):
    chain = Chain(COR).full()
    path = write(tmp_path, *chain.events, chain.events[3])
    out = run_cli("trace", str(path), "--id", COR).stdout
    assert "7 events" in out and "duplicate events (counted once): 1" in out
    assert f"line 8: {chain.events[3]['event_id']}" in out


def test_a_broken_chain_is_named_in_id_mode(tmp_path):
    chain = Chain(COR).full()
    path = write(tmp_path, *[e for e in chain.events if e["stage"] != "claim"])
    result = run_cli("trace", str(path), "--id", COR)
    assert result.returncode == 1
    assert "BROKEN: payout with no claim" in result.stdout
    assert "missing stages: claim" in result.stdout


# ------------------------------------------------------------------ whole file


def broken_file_events() -> tuple[list, dict]:
    """One chain of each broken kind, two healthy ones; expected kind per correlation id."""
    healthy = [Chain("cor_Healthy000001", "H").full(), Chain("cor_Healthy000002", "I").full()]
    no_claim = Chain("cor_NoClaim000001", "C").full()
    no_alloc = Chain("cor_NoAlloc000001", "D").full()
    no_match = Chain("cor_NoMatch000001", "E").full()
    voided = Chain("cor_Voided0000001", "F")
    voided.add(0, "match_settlement", "voided", match_id="m_9")
    voided.add(1, "reward_allocation", "allocated", campaign_id="c", pool_id="p")
    no_reason = Chain("cor_NoReason00001", "G").full()
    no_reason.add(80, "admin_audit", "claim_held", admin_action="hold_claim", actor_role="support")  # no reason_code
    events = [e for c in healthy for e in c.events]
    events += [e for e in no_claim.events if e["stage"] != "claim"]
    events += [e for e in no_alloc.events if e["stage"] != "reward_allocation"]
    events += [e for e in no_match.events if e["stage"] != "match_settlement"]
    events += voided.events + no_reason.events
    expected = {"payout_without_claim": ["cor_NoClaim000001"], "claim_without_allocation": ["cor_NoAlloc000001"],
                "allocation_without_settled_match": ["cor_NoMatch000001", "cor_Voided0000001"],
                "admin_change_without_reason": ["cor_NoReason00001"]}
    return events, expected


def test_every_broken_kind_is_counted_with_sample_ids():
    events, expected = broken_file_events()
    report = analyse(lines(*events))
    assert report.chains == 7
    assert report.broken == {kind: len(ids) for kind, ids in expected.items()}
    assert report.broken_samples == expected
    assert report.broken_chains == 5
    assert report.bad_lines == 1  # the admin change without a reason breaks the contract too
    assert "reason_code" in report.bad_samples[0].problem
    assert not report.ok


def test_broken_chains_exit_1_and_are_listed(tmp_path):
    events, expected = broken_file_events()
    result = run_cli("trace", str(write(tmp_path, *events)))
    assert result.returncode == 1
    for kind, label in BROKEN_KINDS.items():
        assert f"{label}: {len(expected[kind])}  {', '.join(expected[kind])}" in result.stdout


def test_healthy_file_exits_0(tmp_path):
    events = Chain(COR).full().events + Chain("cor_Second0000001", "B").full().events
    result = run_cli("trace", str(write(tmp_path, *events)))
    assert result.returncode == 0, result.stdout
    assert "14 events in 2 chains (2 reached payout)" in result.stdout
    assert "broken chains: 0" in result.stdout and "OK" in result.stdout
    assert "first to last event of chains that reached payout: p50 1 min 11 s, p95 1 min 11 s" in result.stdout
    assert analyse(lines(*events)).payout_chain_seconds == {"p50": 71.0, "p95": 71.0, "max": 71.0}


def test_sample_ids_are_bounded():
    events = []
    for i in range(30):
        chain = Chain(f"cor_NoClaim{i:06d}", f"P{i:02d}").full()
        events += [e for e in chain.events if e["stage"] != "claim"]
    report = analyse(lines(*events), max_samples=5)
    assert report.broken["payout_without_claim"] == 30
    assert report.broken_samples["payout_without_claim"] == [f"cor_NoClaim{i:06d}" for i in range(5)]


def test_duplicates_are_counted_once_and_reported():
    chain = Chain(COR).full()
    events = chain.events + [chain.events[0], chain.events[5]]
    report = analyse(lines(*events))
    assert report.events == 7 and report.duplicates == 2
    assert report.duplicate_samples == [f"line 8: {chain.events[0]['event_id']} ({COR})", f"line 9: {chain.events[5]['event_id']} ({COR})"]
    assert report.out_of_order == 0  # a duplicate is dropped before ordering is judged
    assert report.ok  # duplicates are normal (redelivery), not a broken chain


def test_out_of_order_timestamps_are_counted_not_fatal():
    chain = Chain(COR).full()
    e = chain.events
    report = analyse(lines(e[0], e[2], e[1], e[3], e[6], e[4], e[5]))
    assert report.out_of_order == 3  # e[1] after e[2]; e[4] and e[5] after e[6]
    assert report.out_of_order_samples == [3, 6, 7]
    assert report.broken_chains == 0 and report.ok


def test_bad_lines_are_reported_by_number_and_reading_goes_on(tmp_path):
    chain = Chain(COR).full()
    bad_schema = {**chain.events[3], "note": "paid by hand"}
    no_cor = {k: v for k, v in chain.events[4].items() if k != "correlation_id"}
    empty_cor = {**chain.events[5], "correlation_id": ""}
    content = lines(chain.events[0], "{not json", "[1, 2]", chain.events[1], "", chain.events[2], bad_schema,
                    no_cor, empty_cor, chain.events[6])
    report = analyse(content)
    assert report.lines == 10 and report.blank_lines == 1
    assert [(b.line, b.problem.split(": ")[0]) for b in report.bad_samples] == [
        (2, "not JSON (Expecting property name enclosed in double quotes"), (3, "not a JSON object but list"),
        (7, "claims v2, fails v2"), (8, "claims v2, fails v2"), (9, "claims v2, fails v2")]
    assert "not JSON" in report.bad_samples[0].problem
    assert "not a JSON object but list" in report.bad_samples[1].problem
    assert "'note' was unexpected" in report.bad_samples[2].problem
    assert "'correlation_id' is a required property" in report.bad_samples[3].problem
    assert report.bad_lines == 5 and report.missing_correlation_id == 2
    # The malformed payout still places its stage: no false "payout with no claim".
    assert report.events == 5 and report.broken_chains == 0
    path = write(tmp_path, *[c.decode().rstrip("\n") for c in content])
    result = run_cli("trace", str(path))
    assert result.returncode == 1
    assert "lines that break the event contract: 5" in result.stdout
    assert "line 2: not JSON" in result.stdout
    assert "events without a usable correlation_id: 2" in result.stdout


def test_bad_line_list_is_bounded_but_all_are_counted():
    report = analyse([b"nope\n"] * 50, max_bad=7)
    assert report.bad_lines == 50 and len(report.bad_samples) == 7


def test_reads_stdin_and_gzip(tmp_path):
    data = b"".join(lines(*Chain(COR).full().events))
    result = subprocess.run([sys.executable, "-m", "reward_obs.cli", "trace", "-", "--id", COR], input=data,
                            capture_output=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0 and b"7 events" in result.stdout
    gz = tmp_path / "events.ndjson.gz"
    gz.write_bytes(gzip.compress(data))
    assert run_cli("trace", str(gz)).returncode == 0


@pytest.mark.parametrize("args, message", [
    (["/no/such/file.ndjson"], "cannot read"),
    (["EVENTS", "--id", "not-a-correlation-id"], "is not a correlation_id"),
    (["EVENTS", "--events", "10"], "unrecognized arguments: --events"),
    (["EVENTS", "--format", "yaml"], "invalid choice"),
])
def test_usage_errors_exit_2(tmp_path, args, message):
    path = write(tmp_path, *Chain(COR).full().events)
    result = run_cli("trace", *[str(path) if a == "EVENTS" else a for a in args])
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr


# ------------------------------------------------------------------ generated logs, streaming


def test_generator_is_deterministic_and_exact(tmp_path):
    a, b, c = io.StringIO(), io.StringIO(), io.StringIO()
    stats = generate(a, 5000, seed=3, broken_every=10)
    generate(b, 5000, seed=3, broken_every=10)
    generate(c, 5000, seed=4, broken_every=10)
    assert a.getvalue() == b.getvalue() != c.getvalue()
    assert a.getvalue().count("\n") == stats.lines == 5000
    result = run_cli("trace-generate", "--events", "1234", "--out", str(tmp_path / "g.ndjson"), "--seed", "9")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "g.ndjson").read_text().count("\n") == 1234


def test_large_generated_file_through_the_streaming_cli(tmp_path):
    path = tmp_path / "large.ndjson"
    stats = generate_file(path, 200_000, seed=11, broken_every=97, duplicate_every=89, out_of_order_every=83)
    assert stats.lines == 200_000 and all(stats.broken.values()) and stats.duplicates and stats.out_of_order
    result = run_cli("trace", str(path), "--format", "json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["lines"] == 200_000
    assert report["chains"] == stats.chains
    assert report["events"] == stats.events
    assert report["broken"] == stats.broken
    assert report["broken_chains"] == stats.broken_chains
    assert report["duplicates"] == stats.duplicates
    assert report["out_of_order"] == stats.out_of_order
    assert report["bad_lines"] == stats.invalid_lines
    assert report["missing_correlation_id"] == 0
    assert all(len(ids) <= 10 for ids in report["broken_samples"].values())
    # And the chain in the middle of the file, by id.
    chain = json.loads(run_cli("trace", str(path), "--id", stats.middle_correlation_id, "--format", "json").stdout)
    assert chain["found"] and chain["events"][0]["stage"] == "match_settlement"
    times = [e["timestamp"] for e in chain["events"]]
    assert times == sorted(times)


def test_peak_rss_is_the_commands_own_not_its_parents():
    """A forked child starts at its parent's RSS; the measurement must not inherit it,
    or the test below would compare two copies of pytest's size."""
    ballast = bytearray(256 * 1024 * 1024)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touch every page
    m = measure_command([sys.executable, "-c", "pass"])
    assert m.returncode == 0 and m.max_rss_mib < 100, m
    del ballast


@pytest.mark.slow
def test_memory_grows_with_chains_not_with_events(tmp_path):
    """Same 2,000 chains, 4x the events: the peak RSS of the CLI must not follow the
    events. Keeping anything per event (say its id, ~100 bytes) would add >15 MiB."""
    peaks = {}
    for events in (50_000, 200_000):
        path = tmp_path / f"{events}.ndjson"
        stats = generate_file(path, events, seed=5, chains=2_000)
        assert stats.chains == 2_000 and stats.lines == events
        m = measure_command([sys.executable, "-m", "reward_obs.cli", "trace", str(path), "--format", "json"], cwd=ROOT)
        assert m.returncode == 0, m.stderr
        report = json.loads(m.stdout)
        assert report["chains"] == 2_000 and report["events"] == events and report["ok"]
        peaks[events] = m.max_rss_mib
    assert peaks[200_000] - peaks[50_000] < 5, peaks


def test_bench_command_runs_on_a_small_file():
    result = run_cli("trace-bench", "--events", "3000")
    assert result.returncode == 0, result.stderr
    assert "peak RSS" in result.stdout and "--id cor_" in result.stdout and "machine:" in result.stdout


def test_retries_are_whole_chain_answers_not_line_counts():
    """A normal chain logs several payout and claim events; only a second event of a type
    a chain carries once is a retry. Paid twice makes the report (and the exit code) fail."""
    normal = Chain("cor_Normal0000001", "N").full()
    normal.add(72, "payout", "webhook_received", provider="ton_wallet", payout_result="paid")  # redelivery: normal
    blocked = Chain("cor_Blocked000001", "B").full()
    blocked.add(75, "payout", "duplicate_blocked", provider="ton_wallet")
    retried = Chain("cor_Retried000001", "R").full()
    retried.add(80, "claim", "started", claim_status="claim_started")
    twice = Chain("cor_PaidTwice0001", "T").full()
    twice.add(90, "payout", "paid", provider="ton_wallet", provider_reference="tonref_Other0001", payout_result="paid")
    events = normal.events + blocked.events + retried.events + twice.events
    report = analyse(lines(*events))
    assert report.retries == {"claim_retried": 1, "payout_attempt_blocked": 1, "paid_twice": 1}
    assert report.retry_samples == {"claim_retried": ["cor_Retried000001"], "payout_attempt_blocked": ["cor_Blocked000001"],
                                    "paid_twice": ["cor_PaidTwice0001"]}
    assert report.broken_chains == 0 and report.bad_lines == 0 and not report.ok
    assert analyse(lines(*(normal.events + blocked.events + retried.events))).ok
    assert trace_chain(lines(*events), "cor_PaidTwice0001").retries == ["paid_twice"]
    assert not trace_chain(lines(*events), "cor_PaidTwice0001").ok
    assert trace_chain(lines(*events), "cor_Normal0000001").retries == []
