"""The same rendered rule files on two engines: Prometheus (promtool) and VictoriaMetrics
(vmalert's replay mode on a real victoria-metrics), on a representative subset of the
scenarios: a healthy day, and one fault per alert family. The whole suite on both engines
is `make test-engines`; docs/engines.md explains every difference.

Each engine must fire the alert under test within the bound the issue set (copied in
tests/test_scenarios.py, not read from the scenario files), never before the fault, with
nothing silent firing; and the engines must agree to within ENGINE_TOLERANCE minutes.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest

from reward_obs.builders.recording import prometheus_rule_file as recording_file
from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.catalog.definitions import load_definitions
from reward_obs.sinks.files import PROMETHEUS_RULE_FILE, dump_yaml, render_files
from reward_obs_dev.scenarios import load_scenarios
from reward_obs_dev.scenarios import victoriametrics as vm
from reward_obs_dev.scenarios.promtool_file import RECORDING_FILE
from reward_obs_dev.scenarios.runner import run_suite

from conftest import ROOT
from spec import DETECTION_BOUNDS, SLO_TARGETS

pytestmark = [pytest.mark.live, pytest.mark.promtool, pytest.mark.xdist_group("engines"),
              pytest.mark.skipif(not (shutil.which("victoria-metrics") and shutil.which("vmalert")),
                                 reason="VictoriaMetrics is not installed: make tools (Debian package victoria-metrics)")]

# Family -> a fault scenario whose alert belongs to it.
FAMILIES = {
    "pools": "pool-exhausted-rejected-allocation",
    "payouts and providers": "provider-outage-all-calls-fail",
    "webhooks": "webhook-failing-invalid-signature",
    "claims": "claim-rejections-high",
    "ledger": "ledger-over-allocated",
    "SLO page": "slo-payout-total-failure",
}
# Measured on this subset: the engines agree to the minute (docs/engines.md). One minute
# of slack covers a rate window's edge sample, which VictoriaMetrics leaves out of the
# window and promtool's Prometheus 2.x keeps in.
ENGINE_TOLERANCE = 1
# docs/engines.md, "A series that vanishes without a staleness marker": VictoriaMetrics'
# default staleness interval follows the samples' spacing, Prometheus' lookback is 5m.
STALENESS = ("metrics-absent-series-vanish", "metrics-absent-target-gone")
PROMETHEUS_LOOKBACK = "-search.minStalenessInterval=5m"
HEARTBEAT = "RewardHeartbeat"
HEALTHY_DAY = 3  # the healthy week's Thursday: a provider deploy fails every call for a minute at 15:00


def healthy_day(week, day: int = HEALTHY_DAY):
    """One day of the healthy week, its events moved to the same time of day."""
    shift, length = day * 1440, 1440
    campaigns = tuple(replace(c, start=max(0, c.start - shift), end=None if c.end is None else c.end - shift)
                      for c in week.system.campaigns if c.start < shift + length and (c.end is None or c.end > shift))
    events = tuple(replace(e, at=e.at - shift, until=None if e.until is None else e.until - shift)
                   for e in week.events if shift <= e.at < shift + length)
    return replace(week, name="healthy-day", duration=length,
                   system=replace(week.system, day_factors=week.system.day_factors[day:day + 1], campaigns=campaigns),
                   events=events, text=week.text + f"\n# day {day} alone")


def bound(scenario) -> int:
    if scenario.name in SLO_TARGETS:
        return SLO_TARGETS[scenario.name][1]
    return DETECTION_BOUNDS[scenario.fault.alert]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> (Prometheus result, VictoriaMetrics result), each engine run once."""
    tmp = tmp_path_factory.mktemp("engines")
    definitions = load_definitions(ROOT)
    config = load_config(read_stack_file(ROOT / "Pulumi.selfhost.yaml"), "Pulumi.selfhost.yaml", definitions)
    rule_file = tmp / PROMETHEUS_RULE_FILE
    rule_file.parent.mkdir(parents=True)
    rule_file.write_text(render_files(definitions, config)[PROMETHEUS_RULE_FILE], encoding="utf-8")
    (rule_file.parent / RECORDING_FILE).write_text(dump_yaml(recording_file(definitions)), encoding="utf-8")
    by_name = {s.name: s for s in load_scenarios(definitions, ROOT)}
    subset = [by_name[name] for name in (*FAMILIES.values(), *STALENESS)] + [healthy_day(by_name["healthy-week"])]
    prom = run_suite(subset, rule_file, definitions.contract, tmp / "promtool", measure_silent=False, headroom=False)
    victoria = vm.run_suite(subset, rule_file, definitions.contract, tmp / "victoriametrics")
    staleness = [by_name[name] for name in STALENESS]
    prometheus_like = vm.run_suite(staleness, rule_file, definitions.contract, tmp / "victoriametrics-5m", vm_args=(PROMETHEUS_LOOKBACK,))
    runs = {p.scenario.name: (p, v) for p, v in zip(prom, victoria, strict=True)}
    runs.update({f"{v.scenario.name}{PROMETHEUS_LOOKBACK}": (runs[v.scenario.name][0], v) for v in prometheus_like})
    return runs


@pytest.mark.parametrize("name", [pytest.param(name, id=f"{family}-{name}") for family, name in FAMILIES.items()])
def test_fault_fires_within_its_bound_on_both_engines(runs, name):
    prom, victoria = runs[name]
    f = prom.scenario.fault
    for engine, r in (("Prometheus", prom), ("VictoriaMetrics", victoria)):
        assert r.passed, f"{engine}: {r.problems}"
        assert r.latency is not None and 0 <= r.latency <= bound(r.scenario), f"{engine}: {f.alert} latency {r.latency}"
    assert abs(victoria.first_firing - prom.first_firing) <= ENGINE_TOLERANCE, (
        f"{f.alert}: Prometheus first fired at minute {prom.first_firing}, VictoriaMetrics at {victoria.first_firing}")


def test_healthy_day_fires_nothing_on_both_engines(runs):
    prom, victoria = runs["healthy-day"]
    assert prom.passed, prom.problems
    assert victoria.passed, victoria.problems
    # Not a vacuous pass: the heartbeat (an alert that always fires) fired at every minute,
    # so vmalert evaluated the alert groups over the whole day, and nothing else fired.
    assert {x.alert for x in victoria.firings} == {HEARTBEAT}
    beat = next(x for x in victoria.firings if x.alert == HEARTBEAT)
    assert (beat.first, beat.minutes) == (0, 1441)


def test_healthy_day_keeps_the_week_s_events():
    """The cut is the day it claims: the deploy's events, moved to its own first day."""
    definitions = load_definitions(ROOT)
    week = {s.name: s for s in load_scenarios(definitions, ROOT)}["healthy-week"]
    day = healthy_day(week)
    assert day.duration == 1440
    assert [e.at for e in day.events] and all(15 * 60 <= e.at < 15 * 60 + 6 for e in day.events)
    assert day.system.day_factors == (1.02,)


def test_vanished_series_fires_earlier_on_victoriametrics_unless_its_staleness_is_5m(runs):
    """The documented difference, kept: a series that stops without a staleness marker is
    gone for VictoriaMetrics after about a scrape interval, for Prometheus after its 5m
    lookback; RewardMetricsAbsent (`up` absent for 4m) fires minutes earlier on the first.
    -search.minStalenessInterval=5m brings it back to Prometheus within ENGINE_TOLERANCE.
    With a staleness marker (the target's scrape fails) both engines see the end at once."""
    prom, default = runs["metrics-absent-series-vanish"]
    _, like = runs["metrics-absent-series-vanish" + PROMETHEUS_LOOKBACK]
    assert prom.passed and default.passed and like.passed
    assert prom.first_firing - default.first_firing >= 3, (prom.first_firing, default.first_firing)
    assert abs(prom.first_firing - like.first_firing) <= ENGINE_TOLERANCE, (prom.first_firing, like.first_firing)
    for name in ("metrics-absent-target-gone", "metrics-absent-target-gone" + PROMETHEUS_LOOKBACK):
        prom, victoria = runs[name]
        assert victoria.passed and abs(prom.first_firing - victoria.first_firing) <= ENGINE_TOLERANCE, (name, prom.first_firing,
                                                                                                        victoria.first_firing)


def test_cli_writes_both_engines_side_by_side(tmp_path):
    """`reward-obs scenarios --engine both`: one report, each engine's latency in its row
    (1 minute on both: RewardPoolExhausted has `for: 1m`, the rejection is at the fault)."""
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "reward_obs.cli", "scenarios", "--out", str(out), "--only",
                             "pool-exhausted-rejected-allocation", "--engine", "both", "--fast", "--no-plots"],
                            capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    row = json.loads((out / "report.json").read_text())["engines"]["scenarios"][0]
    assert (row["prometheus"]["latency_min"], row["victoriametrics"]["latency_min"], row["difference_min"]) == (1, 1, 0)
    assert re.search(r"^\| pool-exhausted-rejected-allocation \| RewardPoolExhausted\{.*\| 1m \| 1m \| 0 \|", (out / "report.md").read_text(), re.M)
