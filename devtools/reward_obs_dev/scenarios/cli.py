"""`reward-obs scenarios --out DIR`: every scenario through promtool, and the detection report."""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from reward_obs.builders import recording
from reward_obs.catalog.internal import internal_fields
from reward_obs.catalog.load import load
from reward_obs.model.durations import format_duration
from reward_obs.sinks.files import PROMETHEUS_RULE_FILE, dump_yaml, render_files
from reward_obs.tools import alert_reference
from reward_obs_dev.scenarios import load_scenarios, run, victoriametrics
from reward_obs_dev.scenarios.promtool_file import RECORDING_FILE
from reward_obs_dev.scenarios.runner import PromtoolMissing, read_rules


def cmd_scenarios(args) -> int:

    definitions, config = load(args)
    scenarios = load_scenarios(definitions, args.root)
    if args.only:
        unknown = sorted(set(args.only) - {s.name for s in scenarios})
        if unknown:
            print(f"reward-obs scenarios: no scenario named {', '.join(unknown)}", file=sys.stderr)
            return 2
        scenarios = [s for s in scenarios if s.name in args.only]
    out = Path(args.out)
    if args.rules:
        rule_file = Path(args.rules)
    else:
        rule_file = out / PROMETHEUS_RULE_FILE
        rule_file.parent.mkdir(parents=True, exist_ok=True)
        rule_file.write_text(render_files(definitions, config)[PROMETHEUS_RULE_FILE], encoding="utf-8")
        # promtool evaluates the recording rules the SLO alerts read, whichever evaluator
        # the stack names for production (runner loads this file next to the alerts).
        recorded = recording.prometheus_rule_file(definitions)
        if recorded is not None:
            (rule_file.parent / RECORDING_FILE).write_text(dump_yaml(recorded), encoding="utf-8")
    if (out / "promtool").exists():
        shutil.rmtree(out / "promtool")
    engine = args.engine
    try:
        if engine == "victoriametrics":
            suite = victoriametrics.run(scenarios, rule_file, definitions.contract, out, jobs=args.jobs, vm_args=tuple(args.vm_arg),
                                        internal=internal_fields(definitions))
        else:
            started = time.monotonic()
            suite = run(scenarios, rule_file, definitions.contract, out, jobs=args.jobs, plots=not args.no_plots,
                        measure_silent=not args.fast, headroom=not args.fast, write_report=engine == "prometheus",
                        internal=internal_fields(definitions))
            if engine == "both":
                suite = victoriametrics.side_by_side(suite, scenarios, rule_file, definitions.contract, out, time.monotonic() - started,
                                                     jobs=args.jobs, vm_args=tuple(args.vm_arg), plots=not args.no_plots,
                                                     internal=internal_fields(definitions))
    except (PromtoolMissing, FileNotFoundError) as exc:
        print(f"reward-obs scenarios: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # a scenario tests an alert the rule file does not have
        print(f"reward-obs scenarios: {exc}", file=sys.stderr)
        return 1
    evaluated = set(read_rules(rule_file))
    for r in suite.results:
        f = r.scenario.fault
        verdict = "pass" if r.passed else "FAIL"
        what = (f"{f.alert} fired {format_duration(r.latency * 60) if r.latency is not None else 'never'} after the fault"
                f" (bound {format_duration(f.within * 60)})") if f else f"{len(set(r.scenario.silent) & evaluated)} alerts silent"
        print(f"{verdict:4}  {r.scenario.name:<40} {what}")
        for problem in r.problems:
            print(f"      {problem}")
    for row in (suite.report or {}).get("engines", {}).get("scenarios", []):
        v = row["victoriametrics"]
        print(f"{'pass' if v['passed'] else 'FAIL':4}  {row['scenario']:<40} VictoriaMetrics: "
              + (f"{row['alert']} latency {format_duration(v['latency_min'] * 60) if v['latency_min'] is not None else 'never'}"
                 f" (Prometheus {format_duration(row['prometheus']['latency_min'] * 60) if row['prometheus']['latency_min'] is not None else 'never'})"
                 if row["alert"] else f"{len(v['false_firings'])} false firings"))
        for problem in v.get("problems", []):
            print(f"      {problem}")
    print(f"{len(suite.results) - sum(not r.passed for r in suite.results)} passed, {sum(not r.passed for r in suite.results)} failed; "
          f"report: {out / 'report.md'}, {out / 'report.json'}")
    if args.results and suite.report is not None:
        results = alert_reference.update_results(args.root, definitions, suite.report, args.results)
        print(f"results: {args.results} ({len(results['scenarios'])} scenarios); `reward-obs docs` regenerates {alert_reference.ALERTS_MD}")
    engines_passed = all(row["victoriametrics"]["passed"] for row in (suite.report or {}).get("engines", {}).get("scenarios", []))
    return 0 if suite.passed and engines_passed else 1


def register(sub) -> None:
    p = sub.add_parser("scenarios", help="run every alert scenario through promtool and write the detection report")
    p.add_argument("--out", type=Path, required=True,
                   help="directory for report.md, report.json, plots/, the rule file and the promtool files (e.g. build/scenarios)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these scenarios")
    p.add_argument("--rules", type=Path, help="an already rendered Prometheus rule file (default: render one into OUT)")
    p.add_argument("--jobs", type=int, default=None, help="promtool processes at a time (default: one per core)")
    p.add_argument("--no-plots", action="store_true", help="skip the charts")
    p.add_argument("--results", type=Path, metavar="FILE",
                   help=f"also merge this run's numbers into FILE ({alert_reference.RESULTS_FILE}: the scenarios run replace their entries)")
    p.add_argument("--fast", action="store_true",
                   help="verdicts only for silence scenarios: no near misses or headroom in the report (about half the time)")
    p.add_argument("--engine", choices=("prometheus", "victoriametrics", "both"), default="prometheus",
                   help="prometheus: promtool (default); victoriametrics: vmalert replay on a fresh victoria-metrics per scenario; "
                        "both: the two, side by side in the report (docs/engines.md)")
    p.add_argument("--vm-arg", action="append", default=[], metavar="FLAG",
                   help="a flag for victoria-metrics, e.g. --vm-arg=-search.minStalenessInterval=5m (repeatable)")
    p.set_defaults(handler=cmd_scenarios)
