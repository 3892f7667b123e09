"""The scale bench's history (devtools/reward_obs_dev/bench.py): a healthy world, and each
kind of series and recorded series given the history its readers need (bench/README.md,
"History: as long as what reads it"). No timing here: the bench measures that."""
from __future__ import annotations

import io

import pytest

from reward_obs.builders import recording
from reward_obs.catalog.load import load_stack
from reward_obs.lang.dashboard_queries import panel_queries
from reward_obs_dev import bench
from reward_obs_dev.simulator import Topology

from conftest import ROOT

END = 1_800_000_000  # a multiple of 300 s
NOW = END - 7200
DAY = 86400


@pytest.fixture(scope="module")
def world():
    definitions, _ = load_stack(ROOT)
    history = bench.History(definitions, Topology.scaled(20, 6), definitions.contract.scrape_job)
    groups = recording.prometheus_groups(definitions)
    plan = bench.history_plan(END, 7, 60, 30, 30, 30, 300, bench.long_history_metrics(definitions, groups))
    scaling = {c[0].split("{", 1)[0] for c in history.counters if c[5]} | {g[0].split("{", 1)[0] for g in history.gauges if g[4]}
    ranged = [q.expr for d in definitions.dashboards for q in panel_queries(definitions, d.uid) if not q.instant]
    stages = bench.recorded_backfill_plan(groups, plan, scaling, NOW, 7, ranged)
    return history, plan, stages


def _values(history, t):
    out = io.StringIO()
    history.write(out, t, t + 1, 60, origin=END - 30 * DAY)
    return {line.rsplit(" ", 2)[0]: float(line.rsplit(" ", 2)[1]) for line in out.getvalue().splitlines()}


def _pool(series: str) -> str:
    return series.split('pool_id="', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize("hours", [0, 5, 11, 17])
def test_every_pool_ledger_adds_up_through_the_day(world, hours):
    """budget - reserved - paid = remaining within RewardPoolLedgerMismatch's 0.01, at any
    hour of the daily wave: a bench world where the ledger alert fires for every pool
    would time alert bookkeeping, not the rules."""
    history, _, _ = world
    values = _values(history, END - hours * 3600)
    ledger: dict[str, dict[str, float]] = {}
    for series, v in values.items():
        name = series.split("{", 1)[0]
        if name in bench._LEDGER:
            ledger.setdefault(_pool(series), {})[name] = v
    assert len(ledger) == 20
    for pool, v in ledger.items():
        gap = v["reward_pool_budget"] - v["reward_pool_reserved"] - v["reward_pool_paid"] - v["reward_pool_remaining"]
        assert abs(gap) <= 0.01, (pool, gap)


def test_last_success_timestamps_keep_their_age(world):
    history, _, _ = world
    t = END - 3 * 3600
    stamps = {s: v for s, v in _values(history, t).items() if s.split("{", 1)[0].endswith("_timestamp_seconds")}
    assert stamps and all(t - 3600 <= v <= t for v in stamps.values())


def test_provider_series_get_30_days_and_per_pool_series_a_fine_day_and_a_coarse_week(world):
    _, plan, _ = world
    provider = [t for t in plan if not t.scaling]
    coarse = [t for t in plan if t.scaling and t.step == 300]
    fine = [t for t in plan if t.scaling and t.step == 60]
    assert [(t.start, t.end, t.step) for t in provider] == [(END - 30 * DAY, END, 30)]
    assert [(t.start, t.end) for t in fine] == [(END - 30 * 3600, END)]
    assert [(t.start, t.end) for t in coarse] == [(END - 7 * DAY, END - 30 * 3600)]
    # read at an instant by alerts only: never in the coarse week; the funding counter is
    # (recording_rules/reward-pools-trend.yaml sums it over a day every 5m)
    assert "reward_campaign_accrual_enabled" not in coarse[0].names
    assert "reward_pool_funding_total" in coarse[0].names
    assert {"reward_pool_remaining", "reward_allocations_total"} <= coarse[0].names


def _passes(stages):
    return {what: (start, end, [r for g in groups for r in g["rules"]], [g["interval"] for g in groups])
            for stage in stages for what, groups, start, end in stage}


def test_the_30_day_budgets_read_30_days_of_recorded_rate1h(world):
    _, _, stages = world
    start, end, rules, intervals = _passes(stages)["provider-level, read over more than the panels' range"]
    assert start == END - 30 * DAY and end == END - 300 and set(intervals) == {"1m"}
    records = {r["record"] for r in rules}
    assert records and all(r.endswith(":rate1h") for r in records)
    assert "provider:reward_slo_payout_success_bad:rate1h" in records


def test_rules_reading_recorded_series_come_after_what_they_read(world):
    _, _, stages = world
    first = {r["record"] for _, groups, _, _ in stages[0] for g in groups for r in g["rules"]}
    second = {r["record"] for _, groups, _, _ in stages[1] for g in groups for r in g["rules"]}
    assert "provider:reward_slo_payout_success_budget:remaining30d" in second
    assert "provider:reward_slo_payout_success_errors:ratio_rate1d" in second
    assert not first & second


def test_the_coarse_week_widens_5m_windows_to_two_samples(world):
    _, _, stages = world
    _, _, rules, intervals = _passes(stages)["per-pool, every 300s"]
    outcome = next(r for r in rules if r["record"] == "outcome:reward_allocations:rate5m")
    assert "[600s]" in outcome["expr"] and "[5m]" not in outcome["expr"] and set(intervals) == {"300s"}
    fine = next(r for r in _passes(stages)["per-pool, every 1m"][2] if r["record"] == "outcome:reward_allocations:rate5m")
    assert "[5m]" in fine["expr"]


def test_a_series_read_only_at_an_instant_gets_the_last_hour(world):
    _, _, stages = world
    start, _, rules, _ = _passes(stages)["per-pool, read only at an instant"]
    assert start == NOW - 3600
    assert "pool:reward_pool_remaining:ratio_of_budget" in {r["record"] for r in rules}


def _le(series: str) -> float:
    return float(series.split('le="', 1)[1].split('"', 1)[0])


@pytest.mark.parametrize("hours", [1, 7, 13, 19])
def test_histograms_stay_cumulative_through_the_day(world, hours):
    """A histogram's buckets never fall as `le` grows, and the largest is its _count, at any
    hour of the daily wave. Buckets waving out of step break that, and then the
    claim-to-paid SLO (count minus the le=600 bucket) reads a healthy world as slow: the
    bench's rule groups timed a burn alert firing in every scale."""
    history, _, _ = world
    values = _values(history, END - hours * 3600 - 1800)
    for base in ("reward_payout_duration_seconds",):
        series: dict[str, list[tuple[float, float]]] = {}
        counts: dict[str, float] = {}
        for name, v in values.items():
            labels = name.split("{", 1)[1]
            if name.startswith(base + "_bucket{"):
                key = ",".join(p for p in labels.split(",") if not p.startswith("le="))
                series.setdefault(key, []).append((_le(name), v))
            elif name.startswith(base + "_count{"):
                counts[labels] = v
        assert series
        for key, buckets in series.items():
            ordered = [v for _, v in sorted(buckets)]
            assert ordered == sorted(ordered), key
            assert ordered[-1] == counts[key], key  # le="+Inf" is the count


def test_interrupted_bench_stops_its_servers_and_says_so(tmp_path):
    """Ctrl-C during a run: no traceback, exit 130, the temporary TSDB removed and no
    Prometheus left running."""
    import signal
    import subprocess
    import sys
    import time

    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "reward_obs.cli", "bench", "--scales", "10", "--days", "2",
                             "--provider-days", "2", "--runs", "1", "--out", str(tmp_path / "out"), "--workdir", str(work)],
                            cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # interrupt once it is writing history
        line = proc.stderr.readline()
        lines.append(line)
        if "chunk" in line or not line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    err = "".join(lines) + err
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "reward-obs bench: interrupted before any scale was measured" in err
    assert list(work.iterdir()) == []
    assert str(work) not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
