"""`reward-obs backtest` against a real Prometheus holding generated history: a healthy
week would have fired nothing; a week with injected faults fires exactly those alerts."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from reward_obs.builders.alerts import resolved_alerts
from reward_obs.lang import promql
from reward_obs_dev.backtest import Firing, firings_from_samples
from reward_obs_dev.servers import Prometheus, backfill
from reward_obs_dev.simulator import Simulator, Topology

from conftest import run_cli
from helpers import write_openmetrics

# One backfilled Prometheus for the whole module: its tests stay on one worker.
pytestmark = [pytest.mark.live, pytest.mark.xdist_group("backtest")]

DAY = 86_400
STEP = 120  # two-minute samples: 4x fewer than a real scrape, enough for every alert window
TOPOLOGY = Topology(pools=2, campaigns=1, providers=3)
TARGET = {"job": "rewards", "instance": "simulator:9100"}
# (day of the faulty week, hour, minutes, fault scenario) -> the alert it must raise
FAULTS = [(2, 10, 40, "provider_outage"), (4, 15, 20, "duplicate_payout")]
# The 40-minute outage also leaves that provider's payouts pending past 30 minutes, so
# RewardPayoutsStuck fires as well (Alertmanager holds it back behind the outage).
EXPECTED = {"RewardPayoutProviderOutage", "RewardPayoutsStuck", "RewardDuplicatePayoutAttempt"}


def alert_metrics(definitions, config) -> set[str]:
    return {s.metric for a in resolved_alerts(definitions, config) if a.rule.is_promql
            for s in promql.selectors(promql.parse(a.expr))} - {"up"}


class _NoEOF:
    """Lets several simulator runs write one OpenMetrics file (each run ends with # EOF)."""

    def __init__(self, out):
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text.removesuffix("# EOF\n"))


def write_segment(sim: Simulator, out, start: int, end: int, only: set[str]) -> None:
    """Simulated series plus the `up` series a scrape adds, as OpenMetrics samples."""
    write_openmetrics(sim, _NoEOF(out), start, end - STEP, STEP, extra_labels=TARGET, only=only)
    out.write("".join(f'up{{instance="{TARGET["instance"]}",job="rewards"}} 1 {t}.000\n' for t in range(start, end, STEP)))


@pytest.fixture(scope="module")
def history(tmp_path_factory, definitions, config):
    """Two weeks on a real Prometheus: a healthy one, then one with the faults above."""
    work = tmp_path_factory.mktemp("backtest")
    end = (int(time.time()) // 3600 - 3) * 3600
    healthy_start, faulty_start = end - 14 * DAY, end - 7 * DAY
    only = alert_metrics(definitions, config)
    sim = Simulator(definitions.contract, TOPOLOGY, "healthy", seed=11, start=healthy_start)
    prom = Prometheus(work / "prom", {"global": {"scrape_interval": "1m"}})
    segments = [(healthy_start, faulty_start, "healthy")]
    cursor = faulty_start
    for day, hour, minutes, fault in FAULTS:
        begin = faulty_start + day * DAY + hour * 3600
        segments += [(cursor, begin, "healthy"), (begin, begin + minutes * 60, fault)]
        cursor = begin + minutes * 60
    segments.append((cursor, end, "healthy"))
    # One file per segment: on one combined file promtool took three times as long here.
    for index, (start, stop, scenario) in enumerate(segments):
        sim.set_scenario(scenario)
        path = work / f"segment-{index}.om"
        with open(path, "w", encoding="utf-8", buffering=1 << 22) as out:
            write_segment(sim, out, start, stop, only)
            out.write("# EOF\n")
        backfill(path, prom.data_dir)
        path.unlink()
    prom.start()
    try:
        yield prom, (healthy_start, faulty_start - STEP), (faulty_start, end - STEP), segments
    finally:
        prom.stop()
        shutil.rmtree(work, ignore_errors=True)


def run_backtest(prom, window, out: Path) -> str:
    result = run_cli("backtest", "--prometheus", prom.url, "--from", str(window[0]), "--to", str(window[1]), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return (out / "backtest.json").read_text()


def test_healthy_week_would_have_fired_nothing(history, tmp_path):
    import json

    prom, healthy, _, _ = history
    fired = {name: f for name, f in json.loads(run_backtest(prom, healthy, tmp_path)).items() if f}
    assert fired == {}
    assert (tmp_path / "backtest.png").stat().st_size > 0


def test_week_with_injected_faults_fires_exactly_those(history, tmp_path, definitions):
    import json

    prom, _, faulty, segments = history
    fired = {name: f for name, f in json.loads(run_backtest(prom, faulty, tmp_path)).items() if f}
    assert set(fired) == EXPECTED
    fault_windows = {scenario: (start, stop) for start, stop, scenario in segments if scenario != "healthy"}
    # alert, fault, detection bound in minutes (the duplicate alert waits 15m for a steady stream)
    targets = {scenario: Simulator(definitions.contract, TOPOLOGY, scenario).target(scenario)["provider"]
               for scenario in ("provider_outage", "duplicate_payout")}
    # Callers retry against the dead provider, so its blocked duplicates fire too, during the
    # outage (a consequence: Alertmanager holds it back, tests/test_live_stack.py).
    start, stop = fault_windows["provider_outage"]
    retries = [f for f in fired["RewardDuplicatePayoutAttempt"] if f["labels"]["provider"] == targets["provider_outage"]]
    assert len(retries) == 1 and start < retries[0]["start"] <= stop, retries
    # ... and so does the stuck-payout page, for that provider only, once its oldest payout
    # has waited 30 minutes and 5 more (the outage lasts 40).
    stuck = fired["RewardPayoutsStuck"]
    assert [f["labels"]["provider"] for f in stuck] == [targets["provider_outage"]], stuck
    assert start + 30 * 60 < stuck[0]["start"] <= stop, stuck[0]["start"] - start
    for name, scenario, bound in (("RewardPayoutProviderOutage", "provider_outage", 10),
                                  ("RewardDuplicatePayoutAttempt", "duplicate_payout", 20)):
        start, stop = fault_windows[scenario]
        mine = [f for f in fired[name] if f["labels"]["provider"] == targets[scenario]]
        assert len(mine) == 1 and len(fired[name]) <= 2, fired[name]
        [firing] = mine
        # Fires during the fault, within the alert's detection bound, and stops after it.
        assert start < firing["start"] <= start + bound * 60, (name, firing["start"] - start)
        assert firing["end"] <= stop + 15 * 60
    table = (tmp_path / "backtest.md").read_text()
    assert "| RewardPayoutProviderOutage | 1 |" in table and "| RewardPoolLow | 0 |" in table


def test_for_is_applied_like_the_rule_evaluator():
    t0 = 1_000_000.0
    minutes = lambda *ms: [t0 + 60 * m for m in ms]  # noqa: E731
    # Active 0..4 with for=3m: fires from minute 3 to 4.
    assert firings_from_samples("A", {}, minutes(0, 1, 2, 3, 4), 60, 180) == [Firing("A", (), t0 + 180, t0 + 240)]
    # Active 0..1, gap, 3..4: never active for 3m in a row.
    assert firings_from_samples("A", {}, minutes(0, 1, 3, 4), 60, 180) == []
    # for=0: every run fires at once, each run separately.
    assert len(firings_from_samples("A", {"provider": "x"}, minutes(0, 5), 60, 0)) == 2
