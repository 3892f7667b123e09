"""The alert reference, docs/alerts.md: every alert with its severity, what it watches, its
condition, runbook section, panel, and the detection and reset times promtool measured.

Generated from two inputs, never typed by hand, so no number in it is kept twice:
- the definitions (alert_rules/ and the alerts slos/ generates), at the repository's
  defaults (a stack's `alertOverrides` are not applied);
- docs/scenario-results.json, the stable subset of a scenario run's report.json that
  `reward-obs scenarios --out DIR --results docs/scenario-results.json` writes (format:
  schemas/scenario_results.schema.json). An alert none of whose fault scenarios is in it
  says "not measured".

`reward-obs docs` rewrites docs/alerts.md; `reward-obs docs --check` exits 1 when the
committed copy is not what the inputs generate (tests/test_alert_reference.py does the same).

Some numbers are internal: published, an abuse alert's threshold, window or minimum volume
tells a farmer how far under it to stay. `hidden_fields` names what an alert keeps out of
the public reference; `condition` prints only the rest, and the detection times of an alert
that hides anything are left out too (a latency bounds its `for`).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from reward_obs.catalog.definitions import load_definitions
from reward_obs.catalog.files import validated
from reward_obs.model.definitions import AlertRule, Definitions, substitute
from reward_obs.model.durations import format_duration
from reward_obs.model.errors import DefinitionError, Problem, ProblemCollector
from reward_obs.model.numbers import format_number

ALERTS_MD = "docs/alerts.md"
RESULTS_FILE = "docs/scenario-results.json"
RESULTS_SCHEMA = "scenario_results.schema.json"
RESULTS_VERSION = 1

CONFIDENTIAL = "confidential: see the restricted runbook in Grafana"
ALL_NUMBERS = frozenset({"threshold", "for", "params"})
_REDACTED = "‹confidential›"
# Template variables Prometheus and Grafana fill in at notification time: kept as written.
_TEMPLATE_VARIABLES = {"labels", "value", "externalLabels"}
_LABEL_TEMPLATE = re.compile(r"\{\{\s*\$labels\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_VALUE_TEMPLATE = re.compile(r"\{\{\s*\$value\b[^}]*\}\}")


def hidden_fields(alert: AlertRule) -> frozenset[str]:
    """What the public reference leaves out of this alert: `threshold`, `for` and `params`.
    An alert that declares any field internal keeps all of its numbers out: the public ones
    narrow the private ones (a `for` bounds how short a wave goes unseen, a minimum volume
    how small)."""
    return ALL_NUMBERS if getattr(alert, "internal", None) else frozenset()


def _param_hidden(name: str, hidden: frozenset[str]) -> bool:
    return "params" in hidden or f"params.{name}" in hidden


def condition(alert: AlertRule, hidden: frozenset[str] = frozenset()) -> str:
    """The alert's condition as published: `> 0.1 for 5m; window 5m, min_deliveries 20`,
    without the hidden fields; CONFIDENTIAL when it would say nothing else."""
    parts = []
    if "threshold" not in hidden:
        parts.append(f"`{alert.op} {format_number(alert.threshold)}`")
    if "for" not in hidden:
        parts.append(f"for {alert.for_}")
    head = " ".join(parts)
    params = [f"{k} {_value(v)}" for k, v in sorted(alert.params.items()) if not _param_hidden(k, hidden)]
    text = "; ".join(x for x in (head, ", ".join(params)) if x)
    if not hidden:
        return text
    return f"{text} (other numbers {CONFIDENTIAL})" if text else CONFIDENTIAL


def _value(v) -> str:
    return format_number(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def public_text(alert: AlertRule, text: str, hidden: frozenset[str]) -> str:
    """A summary or description with its $params filled in, hidden ones as ‹confidential›,
    and the notification-time values as {label} and {value}: the words a reader sees."""
    params = {k: (_REDACTED if _param_hidden(k, hidden) else v) for k, v in alert.params.items()}
    text = substitute(text, params, keep=_TEMPLATE_VARIABLES)
    text = _LABEL_TEMPLATE.sub(r"{\1}", text)
    text = _VALUE_TEMPLATE.sub("{value}", text)
    return " ".join(text.split())


# ---------------------------------------------------------------- the results file


def load_results(root: Path, path: Path | None = None) -> dict:
    """The results file (default docs/scenario-results.json), schema-checked (DefinitionError
    `file:field: problem`); an empty result set when the default file does not exist."""
    if path is None:
        path = Path(root) / RESULTS_FILE
        if not path.exists():
            return {"version": RESULTS_VERSION, "scenarios": []}
    problems = ProblemCollector()
    data = validated(Path(root), path, RESULTS_SCHEMA, problems)
    problems.raise_if_any()
    return data


def results_from_report(report: dict, definitions: Definitions, previous: dict | None = None) -> dict:
    """The results file from a scenario run's report.json (tools/scenarios/report.py), merged
    into `previous`: the scenarios of this run replace their earlier entries, the others stay
    unless their scenario file is gone. Fault scenarios of an alert that hides any number are
    left out: a public latency bounds its `for`."""
    hiding = {a.name for a in definitions.alerts if hidden_fields(a)}
    existing = {p.stem for p in (Path(definitions.root) / "scenarios").glob("*.yaml")}
    entries = {s["name"]: s for s in (previous or {}).get("scenarios", []) if s["name"] in existing}
    for s in report["scenarios"]:
        f = s["fault"]
        entries.pop(s["name"], None)
        if f is not None and f["alert"] in hiding:
            continue
        entry = {"name": s["name"], "alert": None if f is None else f["alert"], "passed": s["passed"],
                 "false_firings": sorted(x["alert"] for x in s["false_firings"])}
        if f is not None:
            entry.update(labels=dict(f["labels"]), latency_min=f["latency_min"], within_min=f["within_min"],
                         resets=sorted(({"labels": dict(r["labels"]), "reset_min": r["reset_min"]} for r in f["resets"]),
                                       key=lambda r: sorted(r["labels"].items())))
        entries[s["name"]] = entry
    return {"version": RESULTS_VERSION, "evaluation_interval": report.get("evaluation_interval", "1m"),
            "scenarios": sorted(entries.values(), key=lambda e: e["name"])}


def dump_results(results: dict) -> str:
    """Deterministic text: scenarios by name, keys sorted, one trailing newline."""
    results = {**results, "scenarios": sorted(results["scenarios"], key=lambda s: s["name"])}
    return json.dumps(results, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------- Markdown


def _t(minutes: int | None) -> str:
    return "—" if minutes is None else format_duration(int(minutes) * 60)


def _labels(labels: dict) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}" if labels else ""


def _reset_key(labels: dict) -> str:
    """A firing's name among the alert's firings: its burn window for an SLO alert."""
    return ",".join(str(v) for _, v in sorted(labels.items()))


def detection(alert: AlertRule, scenarios: list[dict]) -> dict:
    """The alert's fault scenarios; the worst of them (one that never fired, else the latest
    against its bound, then the latest); the worst reset per firing."""
    faults = sorted((s for s in scenarios if s.get("alert") == alert.name), key=lambda s: s["name"])
    never = [s for s in faults if s["latency_min"] is None]
    worst = never[0] if never else max(faults, default=None,
                                       key=lambda s: (s["latency_min"] - s["within_min"], s["latency_min"]))
    resets: dict[str, int] = {}
    for s in faults:
        for r in s["resets"]:
            key = _reset_key(r["labels"])
            resets[key] = max(resets.get(key, r["reset_min"]), r["reset_min"])
    return {"faults": faults, "worst": worst, "resets": resets}


def _worst_text(d: dict) -> str:
    if not d["faults"]:
        return "not measured"
    w = d["worst"]
    latency = "**never fired**" if w["latency_min"] is None else _t(w["latency_min"])
    return f"{latency} (bound {_t(w['within_min'])}, {w['name']})"


def _resets_text(resets: dict[str, int]) -> str:
    if not resets:
        return "—"
    return ", ".join(f"{k + ': ' if k else ''}{_t(m)}" for k, m in sorted(resets.items(), key=lambda kv: (kv[1], kv[0])))


def _panel(definitions: Definitions, alert: AlertRule) -> str:
    dashboard = definitions.dashboard(alert.dashboard_uid)
    panel = dashboard.panel(alert.panel_key) if dashboard else None
    if dashboard is None or panel is None:
        return f"`{alert.dashboard_uid}/{alert.panel_key}`"
    return f"{dashboard.title} → {panel.title} (`{alert.dashboard_uid}/{alert.panel_key}`, panel {panel.id})"


def _source(alert: AlertRule) -> str:
    if alert.slo:
        return f"generated from the SLO [{alert.file}](../{alert.file})"
    return f"[{alert.file}](../{alert.file})"


def _measurable(alert: AlertRule) -> bool:
    """Whether scenarios can measure it: promtool evaluates PromQL, and the heartbeat's
    firing is by design (its route is what the live test proves)."""
    return alert.is_promql and not alert.is_heartbeat


def _false_firings(name: str, scenarios: list[dict]) -> int:
    return sum(s["false_firings"].count(name) for s in scenarios)


def alerts_markdown(definitions: Definitions, results: dict) -> str:
    scenarios = results["scenarios"]
    alerts = sorted(definitions.alerts, key=lambda a: a.name)
    lines = [
        "# Alert reference",
        "",
        "<!-- Generated by `reward-obs docs` from the definitions and docs/scenario-results.json: do not edit. -->",
        "",
        "Every alert this stack provisions, at the repository's defaults (a stack's `alertOverrides` change them).",
        "Detection is promtool's measurement over the scenarios in `scenarios/`, one evaluation a minute:",
        "latency is from the fault's start to the first firing, the bound is what the scenario asserts, and the",
        "reset is how long after the fault ends each firing stopped (per burn window for the SLO alerts; — where",
        "the scenario's fault does not end).",
        f"The numbers come from [scenario-results.json](scenario-results.json) ({len(scenarios)} scenarios), written by",
        "`reward-obs scenarios --out DIR --results docs/scenario-results.json`; \"not measured\" means no fault scenario",
        "of the alert is in it. How the scenarios work: [testing.md](testing.md).",
        "",
        "| alert | severity | watches | detection, worst (bound, scenario) | reset |",
        "|---|---|---|---|---|",
    ]
    sections = []
    for alert in alerts:
        hidden = hidden_fields(alert)
        d = detection(alert, scenarios)
        summary = public_text(alert, alert.summary, hidden).replace("|", "\\|")
        worst = CONFIDENTIAL if hidden else _worst_text(d)
        resets = "—" if hidden else _resets_text(d["resets"])
        lines.append(f"| [{alert.name}](#{alert.name.lower()}) | {alert.severity} | {summary} | {worst} | {resets} |")

        runbook = f"{alert.runbook_file}#{alert.runbook_anchor}"
        section = [
            "",
            f"## {alert.name}",
            "",
            public_text(alert, alert.description, hidden),
            "",
            f"- Severity: {alert.severity}",
            f"- Summary: {public_text(alert, alert.summary, hidden)}",
            f"- Condition: {condition(alert, hidden)}"
            + ("" if alert.is_promql else " (LogQL on Loki: Grafana evaluates it, promtool cannot)"),
            f"- Runbook: [{runbook}](../runbooks/{runbook})",
            f"- Panel: {_panel(definitions, alert)}",
            f"- Defined in: {_source(alert)}",
        ]
        if alert.inhibited_by:
            section.append(f"- Held back while firing: {', '.join(f'[{n}](#{n.lower()})' for n in alert.inhibited_by)}"
                           " (same provider)")
        if hidden:
            section.append(f"- Detection: {CONFIDENTIAL}")
        elif not _measurable(alert):
            section.append("- Detection: not measured" + (": it fires at every evaluation by design" if alert.is_heartbeat
                                                          else ": promtool evaluates PromQL only"))
        elif not d["faults"]:
            section.append("- Detection: not measured")
        else:
            reset = f"; reset: {_resets_text(d['resets'])}" if d["resets"] else ""
            section += [f"- Detection, worst: {_worst_text(d)}{reset}", "",
                        "| fault scenario | firing | latency | bound | reset after the fault ends | result |",
                        "|---|---|---|---|---|---|"]
            for s in d["faults"]:
                reset = ", ".join(f"{_reset_key(r['labels']) + ': ' if r['labels'] else ''}{_t(r['reset_min'])}"
                                  for r in s["resets"]) or "—"
                section.append(f"| {s['name']} | {alert.name}{_labels(s['labels'])} | {_t(s['latency_min'])} | "
                               f"{_t(s['within_min'])} | {reset} | {'pass' if s['passed'] else '**FAIL**'} |")
        false = _false_firings(alert.name, scenarios)
        if scenarios and not hidden and _measurable(alert):
            section.append("")
            section.append(f"False firings over the {len(scenarios)} scenarios: {false}.")
        sections += section
    return "\n".join(lines + sections) + "\n"


# ---------------------------------------------------------------- command


def update_results(root: Path, definitions: Definitions, report: dict, results_path: Path, source: str = "report") -> dict:
    """Merge a report into the results file at results_path and write it; returns the results.
    A results file that does not pass its schema is refused, not overwritten."""
    previous = load_results(root, results_path) if results_path.exists() else None
    try:
        results = results_from_report(report, definitions, previous)
    except (KeyError, TypeError) as exc:
        raise DefinitionError([Problem(source, "scenarios", f"not a report.json of `reward-obs scenarios` ({exc!r} missing or wrong)")]) from None
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(dump_results(results), encoding="utf-8")
    return results


def _read_report(path: Path) -> dict:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DefinitionError([Problem(str(path), "(file)", f"cannot read: {exc.strerror}")]) from None
    except json.JSONDecodeError as exc:
        raise DefinitionError([Problem(str(path), f"line {exc.lineno}", f"not valid JSON: {exc.msg}")]) from None
    if not isinstance(report, dict) or not isinstance(report.get("scenarios"), list):
        raise DefinitionError([Problem(str(path), "scenarios", "missing: not a report.json of `reward-obs scenarios`")])
    return report


def cmd_docs(args) -> int:
    root = Path(args.root)
    definitions = load_definitions(root)
    results_path = args.results or root / RESULTS_FILE
    if args.from_report:
        if args.check:
            print("reward-obs docs: --from-report writes the results file; it cannot be combined with --check", file=sys.stderr)
            return 2
        update_results(root, definitions, _read_report(args.from_report), results_path, str(args.from_report))
    results = load_results(root, args.results)
    text = alerts_markdown(definitions, results)
    target = root / ALERTS_MD
    current = target.read_text(encoding="utf-8") if target.exists() else None
    if args.check:
        if current != text:
            print(f"{ALERTS_MD}:(file): is not what the definitions and {RESULTS_FILE} generate; run `reward-obs docs`",
                  file=sys.stderr)
            return 1
        print(f"{ALERTS_MD} is up to date ({len(definitions.alerts)} alerts)")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {ALERTS_MD}: {len(definitions.alerts)} alerts, {len(results['scenarios'])} scenarios measured")
    return 0


def register(sub) -> None:
    parser = sub.add_parser("docs", help=f"write {ALERTS_MD}, the alert reference, from the definitions and {RESULTS_FILE}")
    parser.add_argument("--check", action="store_true", help=f"write nothing; exit 1 when {ALERTS_MD} is out of date")
    parser.add_argument("--results", type=Path, help=f"the scenario results to read (default: ROOT/{RESULTS_FILE})")
    parser.add_argument("--from-report", type=Path, metavar="REPORT_JSON",
                        help="first merge the report.json of a `reward-obs scenarios --out DIR` run into the results file")
    parser.set_defaults(handler=cmd_docs)
