"""`reward-obs scenarios --out DIR`: every scenario through promtool, and the detection report."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from reward_obs.builders import recording
from reward_obs.catalog.internal import internal_fields
from reward_obs.catalog.load import load
from reward_obs.model.durations import format_duration
from reward_obs.sinks.files import PROMETHEUS_RULE_FILE, dump_yaml, render_files
from reward_obs.tools.scenarios import load_scenarios, run
from reward_obs.tools.scenarios.promtool_file import RECORDING_FILE
from reward_obs.tools.scenarios.runner import PromtoolMissing, read_rules


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
    try:
        suite = run(scenarios, rule_file, definitions.contract, out, jobs=args.jobs, plots=not args.no_plots,
                    measure_silent=not args.fast, headroom=not args.fast, internal=internal_fields(definitions))
    except PromtoolMissing as exc:
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
    print(f"{len(suite.results) - sum(not r.passed for r in suite.results)} passed, {sum(not r.passed for r in suite.results)} failed; "
          f"report: {out / 'report.md'}, {out / 'report.json'}")
    return 0 if suite.passed else 1


def register(sub) -> None:
    p = sub.add_parser("scenarios", help="run every alert scenario through promtool and write the detection report")
    p.add_argument("--out", type=Path, required=True,
                   help="directory for report.md, report.json, plots/, the rule file and the promtool files (e.g. build/scenarios)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these scenarios")
    p.add_argument("--rules", type=Path, help="an already rendered Prometheus rule file (default: render one into OUT)")
    p.add_argument("--jobs", type=int, default=2, help="promtool processes at a time (default 2)")
    p.add_argument("--no-plots", action="store_true", help="skip the charts")
    p.add_argument("--fast", action="store_true",
                   help="verdicts only for silence scenarios: no near misses or headroom in the report (about half the time)")
    p.set_defaults(handler=cmd_scenarios)
