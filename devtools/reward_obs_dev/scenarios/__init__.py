"""Alert scenarios: simulated reward-system series with injected faults, run through
`promtool test rules` against the rendered Prometheus rule file, and a detection report.

    model.py          scenarios/*.yaml -> typed, validated Scenario objects
    generator.py      the simulated reward system and the events applied to it
    promtool_file.py  promtool unit-test files (verify and measure)
    runner.py         runs promtool, reads what it printed, one result per scenario
    report.py         Markdown, JSON and charts
    cli.py            `reward-obs scenarios --out DIR`
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from reward_obs.model.contract import MetricsContract
from reward_obs_dev.scenarios import report as report_module
from reward_obs_dev.scenarios.loader import load_scenarios
from reward_obs_dev.scenarios.model import Scenario
from reward_obs_dev.scenarios.runner import ScenarioResult, generated, promtool_version, read_rules, run_suite

__all__ = ["Scenario", "ScenarioResult", "SuiteRun", "load_scenarios", "run"]


@dataclass
class SuiteRun:
    results: list[ScenarioResult]
    report: dict | None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def result(self, name: str) -> ScenarioResult:
        return next(r for r in self.results if r.scenario.name == name)


def run(scenarios: list[Scenario], rule_file: Path, contract: MetricsContract, out: Path, jobs: int | None = None,
        measure_silent: bool = True, headroom: bool = True, write_report: bool = True, plots: bool = True,
        measure_faults: bool = True, internal: dict[str, tuple[str, ...]] | None = None) -> SuiteRun:
    """Run `scenarios` against `rule_file`; promtool files go to out/promtool, the report to out.

    measure_silent / headroom / measure_faults: see runner.run_suite (all off: verdicts
    only, one promtool run a scenario). internal: alert name -> internal fields, whose
    values the report never shows."""
    out = Path(out)
    started = time.monotonic()
    results = run_suite(scenarios, rule_file, contract, out / "promtool", jobs=jobs, measure_silent=measure_silent,
                        headroom=headroom, measure_faults=measure_faults)
    seconds = time.monotonic() - started
    report = None
    if write_report:
        gens = {s.name: generated(s, contract)[0] for s in scenarios if s.fault is not None}
        report = report_module.write(results, gens, read_rules(rule_file), rule_file, promtool_version(), seconds, out, plots=plots,
                                     internal=internal)
    return SuiteRun(results, report)
