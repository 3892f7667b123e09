"""The detection report: Markdown tables, JSON, and one chart per fault
scenario (key series, the alert's value against its threshold, pending and firing)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from reward_obs.model.durations import format_duration
from reward_obs_dev.scenarios.generator import Generated
from reward_obs_dev.scenarios.runner import Rule, ScenarioResult

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
PLOTS = "plots"
MAX_PLOT_SERIES = 8


def t(minutes: int | None) -> str:
    """A time or a duration in minutes as a Prometheus-style duration: 1d18h, 6m, 0s."""
    return "—" if minutes is None else format_duration(int(minutes) * 60)


def _labels(labels: dict) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}" if labels else ""


def _num(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


# ---------------------------------------------------------------- JSON


def scenario_json(r: ScenarioResult, plot: str | None, evaluated: set[str]) -> dict:
    s, f = r.scenario, r.scenario.fault
    return {
        "name": s.name,
        "file": s.file,
        "kind": s.kind,
        "description": s.description,
        "duration_min": s.duration,
        "passed": r.passed,
        "measured": "measure" in r.files,
        "headroom_measured": bool(r.peaks),
        "problems": r.problems,
        "fault": None if f is None else {
            "alert": f.alert, "labels": f.labels, "start_min": f.start, "within_min": f.within, "deadline_min": f.deadline,
            "first_pending_min": r.first_pending, "first_firing_min": r.first_firing, "latency_min": r.latency,
            "within_bound": r.latency is not None and 0 <= r.latency <= f.within,
            "end_min": f.end,
            "resets": [{"labels": labels, "reset_min": m} for labels, m in r.resets()],
            "reset_bounds": [{"labels": x.labels, "within_min": x.within} for x in f.resolves],
        },
        "silent": [a for a in s.silent if a in evaluated],
        "silent_not_evaluated": [a for a in s.silent if a not in evaluated],
        "may_fire": list(s.may_fire),
        "fired": [x.as_dict() for x in r.firings],
        "false_firings": [x.as_dict() for x in r.false_firings()],
        "documented_differences": [{**x.as_dict(), "reason": why} for x, why in r.differences],
        "allowed_firings": [x.as_dict() for x in r.allowed_firings()],
        "near_misses": [x.as_dict() for x in r.near_misses],
        "peaks": r.peaks,
        "timeline": r.timeline,
        "files": r.files,
        "plot": plot,
        "seconds": round(r.seconds, 2),
        "promtool_output": r.verify_output,
    }


def condition(rule: Rule, internal: tuple[str, ...] = ()) -> str:
    """`> 3 for 15m`, with an internal threshold or `for` (catalog/internal.py) not shown."""
    threshold = "(internal)" if "threshold" in internal else f"{rule.threshold:g}"
    return f"{rule.op} {threshold} for {'(internal)' if 'for' in internal else rule.for_}"


def alert_summary(results: list[ScenarioResult], rules: dict[str, Rule], healthy_week: str | None,
                  internal: dict | None = None) -> list[dict]:
    out = []
    internal = internal or {}
    for name, rule in sorted(rules.items()):
        faults = [r for r in results if r.scenario.fault and r.scenario.fault.alert == name]
        latencies = [(r.latency, r.scenario.fault.within, r.scenario.name) for r in faults if r.latency is not None]
        worst = max(latencies, default=None, key=lambda x: (x[0] - x[1], x[0]))
        resets = [(m, labels, r.scenario.name) for r in faults for labels, m in r.resets()]
        worst_reset = max(resets, default=None, key=lambda x: x[0])
        false = sum(1 for r in results for x in r.false_firings() if x.alert == name)
        week = next((r for r in results if r.scenario.name == healthy_week), None)
        week_info = None
        if week is not None and "measure" in week.files:
            fired = [x for x in week.firings if x.alert == name]
            near = [x for x in week.near_misses if x.alert == name]
            peaks = week.peaks.get(name)
            pick = min if rule.op == "<" else max
            week_info = {
                "headroom_measured": bool(week.peaks),
                "peak": pick((v for _, v in peaks), default=None) if peaks else None,
                "peak_labels": pick(peaks, key=lambda p: p[1])[0] if peaks else None,
                "pending_evaluations": sum(x.pending_minutes for x in fired + near),
                "firing_evaluations": sum(x.minutes for x in fired),
                "first_pending_min": min((x.first_pending for x in fired + near if x.first_pending is not None), default=None),
            }
        out.append({
            "alert": name,
            "condition": condition(rule, internal.get(name, ())),
            "fault_scenarios": [{"scenario": r.scenario.name, "latency_min": r.latency, "within_min": r.scenario.fault.within,
                                 "passed": r.passed} for r in faults],
            "worst_latency_min": worst[0] if worst else None,
            "worst_bound_min": worst[1] if worst else None,
            "worst_scenario": worst[2] if worst else None,
            "resets": [{"reset_min": m, "labels": labels, "scenario": name} for m, labels, name in resets],
            "worst_reset_min": worst_reset[0] if worst_reset else None,
            "all_within_bound": bool(faults) and all(r.passed and r.latency is not None and r.latency <= r.scenario.fault.within for r in faults),
            "false_firings": false,
            "healthy_week": week_info,
        })
    return out


def engines_json(results: list[ScenarioResult], other: list[ScenarioResult]) -> list[dict]:
    """Per scenario, the same claims on both engines: first firing of the alert under test
    (latency from the fault), verdict, and what fired that had to stay silent."""
    theirs = {r.scenario.name: r for r in other}
    out = []
    for r in results:
        v = theirs.get(r.scenario.name)
        if v is None:
            continue
        f = r.scenario.fault
        row = {"scenario": r.scenario.name, "alert": f.alert if f else None, "labels": f.labels if f else {},
               "within_min": f.within if f else None,
               "prometheus": {"first_firing_min": r.first_firing, "latency_min": r.latency, "passed": r.passed,
                              "false_firings": [x.as_dict() for x in r.false_firings()]},
               "victoriametrics": {"first_firing_min": v.first_firing, "latency_min": v.latency, "passed": v.passed,
                                   "false_firings": [x.as_dict() for x in v.false_firings()], "problems": v.problems,
                                   "documented_differences": [{**x.as_dict(), "reason": why} for x, why in v.differences]}}
        both = (r.first_firing, v.first_firing)
        row["difference_min"] = both[1] - both[0] if None not in both else None
        out.append(row)
    return out


def build(results: list[ScenarioResult], rules: dict[str, Rule], rule_file: Path, promtool: str, seconds: float,
          plots: dict[str, str], healthy_week: str | None = "healthy-week", engine: str = "promtool",
          engines: dict | None = None, internal: dict | None = None) -> dict:
    return {
        "rule_file": str(rule_file),
        "engine": engine,
        "promtool": promtool,
        "evaluation_interval": "1m",
        "seconds": round(seconds, 1),
        "passed": all(r.passed for r in results),
        "scenarios_total": len(results),
        "scenarios_failed": [r.scenario.name for r in results if not r.passed],
        "alerts": alert_summary(results, rules, healthy_week, internal),
        "scenarios": [scenario_json(r, plots.get(r.scenario.name), set(rules)) for r in results],
        **({"engines": engines} if engines else {}),
    }


# ---------------------------------------------------------------- Markdown


def _resets(fault: dict) -> str:
    """Each firing's reset, by the labels that tell them apart (a burn window): `1h: 6m, 6h: 29m`."""
    if fault["end_min"] is None:
        return "—"
    parts = [(",".join(str(v) for _, v in sorted(x["labels"].items())) + ": " if x["labels"] else "") + t(x["reset_min"])
             for x in fault["resets"]]
    return ", ".join(parts) or "never fired"


def _alert_resets(a: dict) -> str:
    """The worst reset per label set (burn window) over every fault scenario of the alert."""
    worst: dict[str, tuple[int, str]] = {}
    for x in a["resets"]:
        key = ",".join(str(v) for _, v in sorted(x["labels"].items()))
        if key not in worst or x["reset_min"] > worst[key][0]:
            worst[key] = (x["reset_min"], x["scenario"])
    if not worst:
        return "—"
    return ", ".join(f"{(k + ': ') if k else ''}{t(m)}" for k, (m, _) in sorted(worst.items(), key=lambda kv: kv[1][0]))


def markdown(report: dict) -> str:
    lines = ["# Alert detection report", ""]
    failed = report["scenarios_failed"]
    lines.append(
        f"{report['scenarios_total']} scenarios run through {ENGINE_TEXT.get(report.get('engine', 'promtool'), '')}"
        f" ({report['promtool']}) against "
        f"`{Path(report['rule_file']).name}`, evaluation every {report['evaluation_interval']}: "
        + ("**all passed**." if not failed else f"**{len(failed)} failed**: {', '.join(failed)}.")
        + f" Wall time {report['seconds']}s.")
    lines += ["", "Times are from the start of each scenario's run; latency is first firing minus fault start."]
    if report.get("engine", "promtool") == "promtool":
        lines += ["Each verdict is promtool's exit status on the scenario's assertions (no firing before the fault,",
                  "firing by the bound, first firing at the measured minute, silent alerts never firing); the minutes",
                  "come from a promtool run that prints `ALERTS` timestamps, and are asserted again in the verdict run.", ""]
    else:
        lines += ["The minutes are the raw `ALERTS` samples vmalert wrote; each verdict checks the scenario's claims on",
                  "them (no firing before the fault, firing by the bound, resets, silent alerts never firing);",
                  "docs/engines.md says how the replay runs and what differs from Prometheus.", ""]

    lines += ["## Detection latency", "",
              "| Scenario | Alert | Fault starts | First pending | First firing | Latency | Bound | Fault ends | Reset | False firings | Result |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in report["scenarios"]:
        f = s["fault"]
        if f is None:
            continue
        false = ", ".join(f"{x['alert']}{_labels(x['labels'])}" for x in s["false_firings"]) or "none"
        allowed = [f"{name} (allowed)" for name in sorted({x["alert"] for x in s["allowed_firings"]})]
        if allowed:
            false += "; also fired: " + ", ".join(allowed)
        lines.append(f"| {s['name']} | {f['alert']}{_labels(f['labels'])} | {t(f['start_min'])} | {t(f['first_pending_min'])} | "
                     f"{t(f['first_firing_min'])} | **{t(f['latency_min'])}** | {t(f['within_min'])} | {t(f['end_min'])} | "
                     f"{_resets(f)} | {false} | "
                     f"{'pass' if s['passed'] else '**FAIL**'} |")

    lines += ["", "## Every alert", "",
              "| Alert | Condition | Fault scenarios | Worst latency (bound) | Reset after the fault ends | False firings, all scenarios |",
              "|---|---|---|---|---|---|"]
    for a in report["alerts"]:
        worst = f"{t(a['worst_latency_min'])} ({t(a['worst_bound_min'])}, {a['worst_scenario']})" if a["worst_scenario"] else "**not measured**"
        lines.append(f"| {a['alert']} | {a['condition']} | {len(a['fault_scenarios'])} | {worst} | {_alert_resets(a)} | {a['false_firings']} |")

    lines += ["", "## Silence", "",
              "Scenarios in which the listed alerts must not fire at any evaluation. A near miss is an alert that was",
              "pending (condition true) but never held for its `for`.", "",
              "| Scenario | Alerts that must stay silent | False firings | Near misses (pending evaluations) | Result |",
              "|---|---|---|---|---|"]
    for s in report["scenarios"]:
        if s["fault"] is not None:
            continue
        false = ", ".join(f"{x['alert']}{_labels(x['labels'])} from {t(x['first_firing_min'])}" for x in s["false_firings"]) or "none"
        near = ", ".join(f"{x['alert']}{_labels(x['labels'])} {x['pending_evaluations']}" for x in s["near_misses"]) or "none"
        if not s["measured"]:
            near = "not measured (--fast)"
        lines.append(f"| {s['name']} | {len(s['silent'])} | {false} | {near} | {'pass' if s['passed'] else '**FAIL**'} |")

    week = [a for a in report["alerts"] if a["healthy_week"] is not None]
    if week:
        lines += ["", "## Healthy week headroom", "",
                  "How close each alert came to firing in the healthy week: the extreme value of its expression",
                  "(after its volume guard), and how many evaluations it was pending or firing. Comparisons with",
                  "yesterday spike in the first minutes of day 2, while yesterday's windows were still filling",
                  "(the same will happen the day after the metrics first appear in production).", "",
                  "| Alert | Condition | Extreme value in the week | Pending evaluations | Firing evaluations |",
                  "|---|---|---|---|---|"]
        for a in week:
            w = a["healthy_week"]
            where = _labels(w["peak_labels"]) if w["peak_labels"] else ""
            peak = f"{_num(w['peak'])} {where}".strip() if w["peak"] is not None else "empty (nothing matched)"
            if not w["headroom_measured"]:
                peak = "not measured"
            pending = str(w["pending_evaluations"]) + (f" (first at {t(w['first_pending_min'])})" if w["first_pending_min"] is not None else "")
            lines.append(f"| {a['alert']} | {a['condition']} | {peak} | {pending} | {w['firing_evaluations']} |")

    if report.get("engines"):
        lines += engines_markdown(report["engines"])

    bad = [s for s in report["scenarios"] if not s["passed"]]
    if bad:
        lines += ["", "## Failures", ""]
        for s in bad:
            lines.append(f"### {s['name']} ({s['file']})")
            lines += [f"- {p}" for p in s["problems"]]
            if s["promtool_output"]:
                lines += ["", "```", s["promtool_output"][:3000], "```"]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


ENGINE_TEXT = {"promtool": "`promtool test rules`", "victoriametrics": "`vmalert` replay on VictoriaMetrics"}


def engines_markdown(engines: dict) -> list[str]:
    rows = engines["scenarios"]
    lines = ["", "## Engines side by side", "",
             f"The same rule files on Prometheus ({engines['prometheus']}) and on {engines['victoriametrics']}"
             f" (`vmalert` replay{', ' + engines['vm_args'] if engines.get('vm_args') else ''}).",
             "Difference: VictoriaMetrics' first firing minus Prometheus'. docs/engines.md explains every difference.", "",
             "| Scenario | Alert | Bound | Prometheus latency | VictoriaMetrics latency | Difference | Silent alerts fired (VM) | Documented differences (VM) | Prometheus | VictoriaMetrics |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        p, v = row["prometheus"], row["victoriametrics"]
        false = ", ".join(f"{x['alert']}{_labels(x['labels'])} from {t(x['first_firing_min'])}" for x in v["false_firings"]) or "none"
        documented = ", ".join(f"{x['alert']}{_labels(x['labels'])} {t(x['first_firing_min'])}–{t(x['last_firing_min'])}"
                               for x in v.get("documented_differences", [])) or "none"
        diff = row["difference_min"]
        diff_text = "—" if diff is None else (f"{diff:+d}m" if diff else "0")
        lines.append(f"| {row['scenario']} | {(row['alert'] or 'silence') + _labels(row['labels'])} | {t(row['within_min'])} | "
                     f"{t(p['latency_min'])} | {t(v['latency_min'])} | {diff_text} | {false} | {documented} | "
                     f"{'pass' if p['passed'] else '**FAIL**'} | {'pass' if v['passed'] else '**FAIL**'} |")
    return lines


# ---------------------------------------------------------------- charts


def plot_lines(gen: Generated) -> list[tuple[str, np.ndarray]]:
    """(legend, per-minute points) for the chart: one line per entry of the scenario's plot
    list, else one per series selector its events use; each line sums the series it
    matches (per-minute increase for counters, value for gauges)."""
    s = gen.scenario
    selectors: list[tuple[str, dict]] = []
    if s.plot:
        selectors = [(p.metric, p.labels) for p in s.plot]
    else:
        for e in s.events:
            if e.metric is not None:
                selectors.append((e.metric, e.labels))
            elif e.action == "fund":
                selectors.append(("reward_pool_funding_total", {"pool_id": e.arg["pool"], "source": e.arg["source"]}))
            else:
                selectors.append(("up", {}))
    lines, seen = [], set()
    for metric, labels in selectors:
        key = (metric, tuple(sorted(labels.items())))
        series = gen.find(metric, labels)
        if key in seen or not series:
            continue
        seen.add(key)
        points = np.array([_series_points(x) for x in series])
        total = np.where(np.all(np.isnan(points), axis=0), np.nan, np.nansum(points, axis=0))
        suffix = " /min" if series[0].counter else ""
        lines.append((f"{'sum ' if len(series) > 1 else ''}{metric}{_labels(labels)}{suffix}", total))
    return lines[:MAX_PLOT_SERIES]


def _series_points(series) -> np.ndarray:
    values = np.array(series.values, dtype=float)
    mask = series.present.copy()
    for m in series.stale:
        if m < len(mask):
            mask[m] = False
    values[~mask] = np.nan
    if series.counter:
        inc = np.diff(values, prepend=np.nan)
        inc[inc < 0] = np.nan  # a counter reset
        return inc
    return values


def write_plot(result: ScenarioResult, gen: Generated, rule: Rule, path: Path, internal: tuple[str, ...] = ()) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s, f = result.scenario, result.scenario.fault
    minutes = [p["minute"] for p in result.timeline]
    if not minutes:
        return
    lo, hi = minutes[0], minutes[-1]
    x = np.arange(lo, hi + 1) - f.start
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, gridspec_kw={"height_ratios": [1, 1]})
    for legend, points in plot_lines(gen):
        top.plot(x, points[lo:hi + 1], drawstyle="steps-post", linewidth=1.2, label=legend)
    top.set_ylabel("input series")
    if top.get_legend_handles_labels()[0]:  # a scenario without `plot:` draws no input series
        top.legend(fontsize=7, loc="upper left")
    top.grid(alpha=0.3)

    by_labels: dict = {}
    for p in result.timeline:
        for labels, value in p["values"]:
            if all(labels.get(k) == v for k, v in f.labels.items()):
                by_labels.setdefault(tuple(sorted(labels.items())), {})[p["minute"]] = value
    for key, points in sorted(by_labels.items()):
        y = [points.get(m, np.nan) for m in range(lo, hi + 1)]
        bottom.plot(x, y, marker=".", markersize=3, linewidth=1.2, label=f"{f.alert} value {_labels(dict(key))}".strip())
    if "threshold" not in internal:  # an internal threshold is not drawn either
        bottom.axhline(rule.threshold, color="red", linestyle="--", linewidth=1, label=f"threshold {rule.op} {rule.threshold:g}")
    for state, color in (("pending", "orange"), ("firing", "red")):
        for a, b in _spans([p["minute"] for p in result.timeline if p["state"] == state]):
            for ax in (top, bottom):
                ax.axvspan(a - f.start - 0.5, b - f.start + 0.5, color=color, alpha=0.15 if state == "pending" else 0.25, linewidth=0)
    for ax in (top, bottom):
        ax.axvline(0, color="black", linewidth=1)
        ax.axvline(f.within, color="grey", linestyle=":", linewidth=1)
    bottom.set_xlabel(f"minutes since the fault started (dotted: deadline +{t(f.within)}; shaded: pending, firing)")
    bottom.set_ylabel("alert expression")
    bottom.legend(fontsize=7, loc="upper left")
    bottom.grid(alpha=0.3)
    latency = f"fired after {t(result.latency)}" if result.latency is not None else "DID NOT FIRE"
    fig.suptitle(f"{s.name}: {f.alert} {latency} (bound {t(f.within)}, for {'(internal)' if 'for' in internal else rule.for_})",
                 fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _spans(minutes: list[int]) -> list[tuple[int, int]]:
    spans = []
    for m in sorted(minutes):
        if spans and m == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], m)
        else:
            spans.append((m, m))
    return spans


def write(results: list[ScenarioResult], generated: dict[str, Generated], rules: dict[str, Rule], rule_file: Path,
          promtool: str, seconds: float, out: Path, plots: bool = True, engine: str = "promtool",
          engines: dict | None = None, internal: dict | None = None) -> dict:
    """Write report.md, report.json and plots/<scenario>.png under `out`; returns the report."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    if plots:
        for r in results:
            f = r.scenario.fault
            if f is None or f.alert not in rules or r.scenario.name not in generated:
                continue
            rel = f"{PLOTS}/{r.scenario.name}.png"
            write_plot(r, generated[r.scenario.name], rules[f.alert], out / rel, (internal or {}).get(f.alert, ()))
            if (out / rel).exists():
                written[r.scenario.name] = rel
    report = build(results, rules, rule_file, promtool, seconds, written, engine=engine, engines=engines, internal=internal)
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    (out / REPORT_MD).write_text(markdown(report), encoding="utf-8")
    return report
