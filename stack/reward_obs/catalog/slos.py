"""Service level objectives: slos/*.yaml loaded onto the model (model/slo.py) and
expanded into the project's own RecordingRule and AlertRule definitions, so the
catalog hands builders one complete set and the existing builders turn them into the
Prometheus rule files and Grafana-managed rules alike (Sloth: spec -> model ->
generators). The burn tiers and the low-traffic rule are explained in model/slo.py."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from reward_obs.catalog import causes
from reward_obs.catalog.files import rel_path, validated
from reward_obs.lang import promql
from reward_obs.model.definitions import AlertRule, RecordingRule, Serves
from reward_obs.model.durations import parse_duration
from reward_obs.model.numbers import format_number
from reward_obs.model.slo import (
    ANNOTATION,
    BASE_WINDOWS,
    BUDGET_INTERVAL,
    DERIVED_FROM,
    PAGE_TIERS,
    PERIOD,
    PERIOD_STEP,
    RECORDING_INTERVAL,
    SCHEMA,
    SLO,
    SLO_DIR,
    TICKET_TIERS,
    WINDOW_LABEL,
    WINDOWS,
    Tier,
)

# ---------------------------------------------------------------- loading


def load(root: Path, contract, problems) -> list[SLO]:
    """Every SLO under root/slos, schema- and contract-checked (problems recorded)."""
    slos: list[SLO] = []
    names: dict[str, str] = {}
    for path in sorted((Path(root) / SLO_DIR).glob("*.yaml")):
        data = validated(root, path, SCHEMA, problems)
        if data is None:
            continue
        file = rel_path(root, path)
        s = _model(file, data)
        if path.stem != s.name:
            problems.add(file, "metadata.name", f"the file must be named {s.name}.yaml, after the SLO it defines")
        if s.name in names:
            problems.add(file, "metadata.name", f"duplicate SLO (also in {names[s.name]})")
        names[s.name] = file
        if contract is not None:
            s = _checked(dataclasses.replace(s, bad=causes.expand(s.bad, contract), total=causes.expand(s.total, contract)),
                         contract, problems)
        slos.append(s)
    return slos


def _model(file: str, data: dict) -> SLO:
    meta, spec = data["metadata"], data["spec"]
    notes = {k.removeprefix(ANNOTATION): v for k, v in meta["annotations"].items()}
    ratio = spec["indicator"]["spec"]["ratioMetric"]
    dashboard_uid, _, panel_key = notes["panel"].partition("/")
    return SLO(
        file=file, name=meta["name"], display_name=meta["displayName"], description=" ".join(spec["description"].split()),
        objective=float(spec["objectives"][0]["target"]),
        bad=" ".join(ratio["bad"]["metricSource"]["spec"]["query"].split()),
        total=" ".join(ratio["total"]["metricSource"]["spec"]["query"].split()),
        labels=(), alert_prefix=notes["alert-prefix"], runbook_file=notes["runbook"],
        dashboard_uid=dashboard_uid, panel_key=panel_key, min_bad_events=int(notes["min-bad-events"]),
        min_bad_events_ticket=int(notes["min-bad-events-ticket"]),
        inhibited_by=tuple(n.strip() for n in notes.get("inhibited-by", "").split(",") if n.strip()),
    )


def _checked(s: SLO, contract, problems) -> SLO:
    """The SLO with its labels computed from the queries' syntax trees; problems recorded."""
    base = "spec.indicator.spec.ratioMetric"
    kept = {}
    for which in ("bad", "total"):
        field = f"{base}.{which}.metricSource.spec.query"
        expr = s.query(which, "5m")
        messages = promql.catalog_problems(expr, contract)
        for message in messages:
            problems.add(s.file, field, message)
        if messages:
            continue
        tree = promql.parse(expr)
        if not any(sel.range_seconds for sel in promql.selectors(tree)):
            problems.add(s.file, field, "reads no range: put [$window] where the rate window goes")
        kept[which] = promql.output_labels(tree, contract)
        for label in sorted(kept[which] & {"job", "instance", "le"}):
            problems.add(s.file, field, f"keeps {label!r}: aggregate it away (sum by (...)), the SLO is per scaling label only")
    if len(kept) == 2 and kept["bad"] != kept["total"]:
        problems.add(s.file, f"{base}.bad", f"keeps {sorted(kept['bad'])} but total keeps {sorted(kept['total'])}: "
                                            "the ratio needs the same labels on both sides")
    labels = tuple(sorted(kept.get("total", ())))
    return dataclasses.replace(s, labels=labels)


# ---------------------------------------------------------------- generators


def recording_rules(slos, dashboards=()) -> list:
    """Rates and error ratio of every SLO over every burn window, and the error budget
    left over the 30-day period: one group per SLO every minute, and its budget in a group
    of its own every 5 minutes (model/slo.py).

    Only the 5m and 1h rates read the raw counters. Longer windows average the recorded
    rates at their own step (30m, 2h, 6h from the 5m rate every 5 minutes; 1d, 3d from the
    1h rate every hour): a 3-day window is 72 recorded points per series instead of
    thousands of raw samples per counter, every minute (GitLab's metrics catalog and Pyrra
    aggregate long windows from shorter recorded ones for the same reason). The mean of
    back-to-back rates is the rate over their union; the window lags by at most its step,
    which only the 6h page pair (5 minutes) and the ticket pairs (an hour) see.

    The period (occurrences over 30 days, the budgeting method the SLO names) is the sum
    of the recorded 1h bad rates at hourly steps over the sum of the 1h total rates: 720
    back-to-back hours, so the ratio of the sums is the ratio over 30 days, and an hour
    with no events adds nothing to either side (an average would weigh the two sides over
    different numbers of points). `dashboards`: the panel queries that read a generated
    series are named as the rule's `serves`, with the raw query they stand for (recorded
    names replaced by their expressions until only raw metrics are left)."""
    reads = _panel_reads(dashboards)
    out = []
    for s in slos:
        why = f"read by the burn-rate alerts ({s.page_alert}, {s.ticket_alert})"
        rules = [(s.rate_record(which, w), s.query(which, w), f"{which} events per second over {w}, {why}; longer windows "
                  f"{'and the 30-day budget ' if w == PERIOD_STEP else ''}add it up")
                 for w in BASE_WINDOWS for which in ("bad", "total")]
        for w in WINDOWS:
            rules.append((s.record(w), f"{_mean_rate(s, 'bad', w)} / ({_mean_rate(s, 'total', w)} > 0)",
                          f"share of bad events over {w}, {why}. Absent while there are no events."))
        rules.append((s.budget_record(), _budget_expr(s),
                      f"share of the error budget left over {PERIOD} (objective {objective_text(s)}), for the error budget panel."))
        exprs = {record: expr for record, expr, _ in rules}
        for record, expr, purpose in rules:
            budget = record == s.budget_record()
            out.append(RecordingRule(
                file=s.file, group=s.budget_group if budget else s.recording_group,
                interval=BUDGET_INTERVAL if budget else RECORDING_INTERVAL, record=record, expr=expr, labels=s.labels,
                why=f"{s.display_name}: {purpose}",
                serves=tuple(Serves(panel, _raw(query, exprs)) for panel, query in reads if _whole_name(record).search(query))))
    return out


def _period_sum(s: SLO, which: str, matcher: str = "") -> str:
    """The recorded 1h rate summed at hourly steps over the SLO period (proportional to the
    events counted in it: the factor 3600 cancels in the ratio)."""
    return f"sum_over_time({s.rate_record(which, PERIOD_STEP)}{matcher}[{PERIOD}:{PERIOD_STEP}])"


def _budget_expr(s: SLO) -> str:
    """Budget left = 1 - error ratio / error budget, each provider the stack sets apart
    over its own budget (model/slo.py SLO.arms)."""
    parts = [f"1 - ({_period_sum(s, 'bad', m)} / ({_period_sum(s, 'total', m)} > 0)) / {format_number(budget)}"
             for m, budget in s.arms()]
    return parts[0] if len(parts) == 1 else " or ".join(f"({p})" for p in parts)


def objective_text(s: SLO) -> str:
    """`99.9%`, or `99.9% (manual: 99%)` with the providers a stack sets apart."""
    text = f"{format_number(round(s.objective * 100, 9))}%"
    if s.provider_objectives:
        text += " (" + ", ".join(f"{p}: {format_number(round(o * 100, 9))}%" for p, o in s.provider_objectives) + ")"
    return text


def _mean_rate(s: SLO, which: str, window: str) -> str:
    """The rate over `window`: the mean of the recorded base rate at its own step."""
    if window in BASE_WINDOWS:
        return s.rate_record(which, window)
    base = DERIVED_FROM[window]
    return f"avg_over_time({s.rate_record(which, base)}[{window}:{base}])"


def _bad_events(s: SLO, window: str) -> str:
    """Bad events counted in the window, over the data it holds: a base rate times its
    window (`rate` divides by the whole window, however little of it has data), or the sum
    of the recorded base rates times their step. Never a mean rate times the window, which
    would count one early failure as many in a window that is mostly empty."""
    if window in BASE_WINDOWS:
        return f"{s.rate_record('bad', window)} * {parse_duration(window)}"
    base = DERIVED_FROM[window]
    return f"sum_over_time({s.rate_record('bad', base)}[{window}:{base}]) * {parse_duration(base)}"


def _raw(query: str, exprs: dict[str, str]) -> str:
    """The query with every recorded name replaced by its expression, until none is left."""
    while True:
        before = query
        for record, expr in exprs.items():
            query = _whole_name(record).sub(promql.parenthesized(expr), query)
        if query == before:
            return query


def _whole_name(record: str) -> re.Pattern:
    return re.compile(rf"(?<![A-Za-z0-9_:]){re.escape(record)}(?![A-Za-z0-9_:])")


def _panel_reads(dashboards) -> list[tuple[str, str]]:
    """(dashboard_uid/panel_key[REF], expr) of every PromQL panel query."""
    out = []
    for d in dashboards:
        for p in d.panels:
            if p.datasource != "prometheus":
                continue
            for i, q in enumerate(p.queries):
                out.append((f"{d.uid}/{p.key}[{chr(ord('A') + i)}]", q.expr))
    return out


def tier_expr(s: SLO, tier: Tier) -> str:
    """One tier's condition, valued at the long window's burn rate. A provider the stack
    gives its own objective is its own arm, over its own budget: the burn factors stay."""
    on = f"on ({', '.join(s.labels)})"
    factor = format_number(tier.factor)
    minimum = s.min_bad_events if tier.severity == "critical" else s.min_bad_events_ticket
    arms = []
    for matcher, budget in s.arms():
        b = format_number(budget)
        expr = (f'label_replace({s.record(tier.long)}{matcher}, "{WINDOW_LABEL}", "{tier.long}", "", "") / {b} > {factor}\n'
                f"unless {on}\n"
                f"{s.record(tier.short)}{matcher} / {b} <= {factor}")
        if minimum:
            expr += f"\nand {on}\n{_bad_events(s, tier.long)} >= {minimum}"
        arms.append(expr)
    return arms[0] if len(arms) == 1 else "\nor\n".join(f"(\n{a}\n)" for a in arms)


def alert_expr(s: SLO, tiers) -> str:
    return "\nor\n".join(f"(\n{tier_expr(s, t)}\n)" for t in tiers) + "\n"


def alert_rules(slos) -> list:
    """The page (critical) and ticket (warning) alert of every SLO."""
    out = []
    for s in slos:
        who = "{{ $labels.provider }}: " if "provider" in s.labels else ""
        objective = objective_text(s)
        for name, severity, tiers, pace in ((s.page_alert, "critical", PAGE_TIERS, "fast"),
                                            (s.ticket_alert, "warning", TICKET_TIERS, "steadily")):
            windows = " or ".join(f"{format_number(t.factor)}x over {t.long} and {t.short}" for t in tiers)
            out.append(AlertRule(
                file=s.file, name=name, group=s.alert_group, severity=severity,
                summary=f"{who}{s.display_name} is burning its error budget {pace}",
                description=(f"{who}the error budget of \"{s.display_name}\" (objective {objective} over {PERIOD}) "
                             f"is burning {{{{ $value | humanize }}}}x as fast as it lasts, over the last "
                             f"{{{{ $labels.{WINDOW_LABEL} }}}} and still now ({windows}). {s.description}"),
                runbook_file=s.runbook_file, runbook_anchor=name.lower(),
                dashboard_uid=s.dashboard_uid, panel_key=s.panel_key,
                expr=alert_expr(s, tiers).strip(), op=">", threshold=1, for_="0s", params=_runbook_params(s, tiers),
                labels={"slo": s.name}, no_data_state="OK", exec_err_state="Error", lint_exceptions={},
                slo=s.name, inhibited_by=s.inhibited_by,
            ))
    return out


def _runbook_params(s: SLO, tiers) -> dict:
    """The numbers a runbook quotes about the alert, so it can bind them
    (`99.9%<!--RewardPayoutErrorBudgetBurn.objective-->`, catalog/runbook_numbers.py); the
    expression reads none of them, they are already written into it."""
    fast, slow = tiers
    return {
        "objective": s.objective, "period": PERIOD,
        "min_bad_events": s.min_bad_events if fast.severity == "critical" else s.min_bad_events_ticket,
        "fast_factor": fast.factor, "fast_long_window": fast.long, "fast_short_window": fast.short,
        "slow_factor": slow.factor, "slow_long_window": slow.long, "slow_short_window": slow.short,
    }
