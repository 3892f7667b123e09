"""`reward-obs`: validate and render the reward observability stack without Grafana or Pulumi."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.catalog.definitions import REPO_ROOT, load_definitions
from reward_obs.model.errors import DefinitionError, Problem
from reward_obs.sinks.files import render_files, summary, write_files

DEFAULT_STACK_FILE = "Pulumi.selfhost.yaml"


def load(args):
    definitions = load_definitions(args.root)
    stack_file = args.stack_config or (args.root / DEFAULT_STACK_FILE)
    try:
        values = read_stack_file(stack_file)
    except OSError as exc:
        raise DefinitionError([Problem(str(stack_file), "(file)", f"cannot read stack config: {exc.strerror}")]) from None
    config = load_config(values, str(stack_file), definitions)
    return definitions, config


def cmd_validate(args) -> int:
    from reward_obs.checks.lint import format_report, lint, warnings

    definitions, config = load(args)
    files = render_files(definitions, config)
    report = lint(definitions, config, files)
    if not report.ok:
        print(format_report(report), file=sys.stderr)
        return 1
    for line in warnings(report):
        print(line, file=sys.stderr)
    clean = f"lint clean except {len(report.notes)} skipped check(s), see the warning" if report.notes else "lint clean"
    print(f"OK: {len(definitions.alerts)} alerts, {len(definitions.dashboards)} dashboards, "
          f"{len(definitions.contract.metrics)} metrics; {len(files)} files would be rendered; {clean} "
          f"({len(report.exceptions)} documented exception(s))")
    return 0


def cmd_render(args) -> int:
    definitions, config = load(args)
    files = render_files(definitions, config)
    write_files(files, args.out)
    print(summary(definitions, config, files))
    return 0


def register(sub) -> None:
    validate = sub.add_parser("validate", help="check every definition and the stack config; write nothing")
    validate.set_defaults(handler=cmd_validate)
    render = sub.add_parser("render", help="write Grafana provisioning files, dashboards and a Prometheus rule file")
    render.add_argument("--out", type=Path, required=True, help="output directory (its grafana/ and prometheus/ are replaced)")
    render.set_defaults(handler=cmd_render)


# Each command module adds its own subcommand(s); a handler gets the parsed args and
# may call `load(args)` for validated definitions and stack config.
COMMAND_MODULES: list[str] = [
    "reward_obs.catalog.runbooks",
    "reward_obs.catalog.operator_actions",
    "reward_obs.checks.lint",
    "reward_obs.tools.render_diff",
    "reward_obs.tools.backtest",
    "reward_obs.tools.live_cli",
    "reward_obs.tools.scenarios.cli",
    "reward_obs.tools.trace",
]


def main(argv: list[str] | None = None) -> int:
    import importlib

    parser = argparse.ArgumentParser(prog="reward-obs", description=__doc__)
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository holding the definitions (default: this checkout)")
    parser.add_argument("--stack-config", type=Path, help=f"Pulumi stack file to read config from (default: ROOT/{DEFAULT_STACK_FILE})")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
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
