"""`reward-obs`: validate and render the reward observability stack without Grafana or Pulumi.

The thin top layer: parses arguments and wires commands to the layers below."""
from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points, version
from pathlib import Path

from reward_obs.builders.runbook_dashboard import runbook_url
from reward_obs.catalog import operator_actions
from reward_obs.catalog.definitions import REPO_ROOT
from reward_obs.catalog.load import DEFAULT_STACK_FILE, load
from reward_obs.catalog.operator_actions import ACTIONS_MD
from reward_obs.catalog.runbooks import alert_sections
from reward_obs.checks.lint import format_report, lint, warnings
from reward_obs.model.errors import DefinitionError
from reward_obs.sinks.files import render_files, summary, write_files
from reward_obs.tools import access as access_cli
from reward_obs.tools import alert_reference, alertmanager_cli, check_exporter, render_diff, slo_report, trace

__all__ = ["load", "main"]


def checked_render(args):
    """(definitions, config, files, report) when every check passes, else None with the
    findings printed: `validate` and `render` run the same checks, so render never writes
    what validate refuses."""
    definitions, config = load(args)
    files = render_files(definitions, config)
    report = lint(definitions, config, files)
    if not report.ok:
        print(f"reward-obs {args.command}: the checks failed; nothing was written", file=sys.stderr)
        print(format_report(report), file=sys.stderr)
        return None
    for line in warnings(report):
        print(line, file=sys.stderr)
    return definitions, config, files, report


def cmd_validate(args) -> int:
    checked = checked_render(args)
    if checked is None:
        return 1
    definitions, _config, files, report = checked
    clean = f"lint clean except {len(report.notes)} skipped check(s), see the warning" if report.notes else "lint clean"
    print(f"OK: {len(definitions.alerts)} alerts, {len(definitions.dashboards)} dashboards, "
          f"{len(definitions.contract.metrics)} metrics; {len(files)} files would be rendered; {clean} "
          f"({len(report.exceptions)} documented exception(s))")
    return 0


def cmd_render(args) -> int:
    checked = checked_render(args)
    if checked is None:
        return 1
    definitions, config, files, _report = checked
    write_files(files, args.out)
    print(summary(definitions, config, files))
    return 0


def register(sub) -> None:
    validate = sub.add_parser("validate", help="check every definition and the stack config; write nothing")
    validate.set_defaults(handler=cmd_validate)
    render = sub.add_parser("render", help="write Grafana provisioning files, dashboards and a Prometheus rule file")
    render.add_argument("--out", type=Path, required=True, help="output directory (its grafana/ and prometheus/ are replaced)")
    render.set_defaults(handler=cmd_render)


def cmd_runbooks(args) -> int:
    definitions, config = load(args)
    rows = alert_sections(definitions)
    width = max(len(r[0]) for r in rows)
    for name, target, title in rows:
        print(f"{name:<{width}}  {runbook_url(definitions, config, *target.split('#'))}  ({title})")
    procedures = [(s.file, s) for r in sorted(definitions.runbooks, key=lambda r: r.file) if r.file != ACTIONS_MD
                  for s in r.sections if (s.file, s.anchor) not in {(a.runbook_file, a.runbook_anchor) for a in definitions.alerts}]
    if procedures:
        print("Procedures (reached from the alert sections):")
        for file, s in procedures:
            print(f"  {s.title}: {runbook_url(definitions, config, file, s.anchor)}")
    return 0


def register_runbooks(sub) -> None:
    parser = sub.add_parser("runbooks", help="print which alert lands on which runbook section (after validating them)")
    parser.set_defaults(handler=cmd_runbooks)


def cmd_lint(args) -> int:
    definitions, config = load(args)
    report = lint(definitions, config, render_files(definitions, config))
    print(format_report(report))
    return 0 if report.ok else 1


def register_lint(sub) -> None:
    parser = sub.add_parser("lint", help="check the alerting pitfalls no schema catches (exits 1 on any error)")
    parser.set_defaults(handler=cmd_lint)


# The commands defined elsewhere: each module's register(sub) adds its subcommand(s); a
# handler gets the parsed args and calls catalog.load.load(args) for validated definitions
# and stack config. Order is the order of `reward-obs --help`.
REGISTER = (
    register_runbooks,
    operator_actions.register,
    alert_reference.register,
    register_lint,
    render_diff.register,
    alertmanager_cli.register,
    slo_report.register,
    trace.register,
    check_exporter.register,
    access_cli.register,
)
# Development commands (scenarios, simulate, bench, backtest, trace-generate, trace-bench)
# come from the reward-observability-dev distribution in devtools/, which registers them
# here; a deploy install has neither them nor their dependencies (numpy, matplotlib).
PLUGIN_GROUP = "reward_obs.commands"


def plugins() -> list:
    return [ep.load() for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reward-obs", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('reward-observability')}")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository holding the definitions (default: this checkout)")
    parser.add_argument("--stack-config", type=Path, help=f"Pulumi stack file to read config from (default: ROOT/{DEFAULT_STACK_FILE})")
    parser.add_argument("--internal-params", type=Path, metavar="FILE",
                        help="private production values of internal alert fields, {Alert: {threshold: N, params: {NAME: N}}} "
                             "(default: the definitions' TEST values; docs/internal-thresholds.md)")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    for add in (*REGISTER, *plugins()):
        add(sub)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except DefinitionError as exc:
        print(f"reward-obs {args.command}: {len(exc.problems)} problem(s); nothing was written", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
