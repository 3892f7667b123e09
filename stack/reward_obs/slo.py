"""Service level objectives as data (slos/*.yaml, schemas/slo.schema.json, OpenSLO v1
shape) and the rules generated from them: error-ratio recording rules for every burn
window and multiwindow, multi-burn-rate alerts (Google SRE Workbook, "Alerting on SLOs").

One pipeline, small stages, as in Sloth (slok/sloth internal/prometheus: spec -> model
-> recording_rules / alert_rules): `load` maps the versioned file onto the `SLO` model
and checks it against the contract; `recording_rules` and `alert_rules` are pure
functions of the model. Their output is the project's own RecordingRule and AlertRule,
so the existing builders turn them into the Prometheus rule files and Grafana-managed
rules alike (builders/alerts.py, builders/grafana_recording.py, recording.py).

Burn tiers (SLO period 30 days):
    page   (critical): 14.4x over 1h and 5m, 6x over 6h and 30m
    ticket (warning):   3x over 1d and 2h,   1x over 3d and 6h

A tier fires when the long window burns faster than its factor, unless the short window
shows it has stopped (`long > f unless short <= f`): the same as Sloth's and Pyrra's
`long > f and short > f` while traffic flows, but a short window with no events (a
low-traffic provider between two payouts) is no evidence of recovery and does not reset
the alert. Each firing tier is its own alert instance, labelled `long_window`.

Low traffic, explicitly: no minimum-volume guard (it would silence a low-traffic
provider failing every payout). Instead a tier needs at least `min-bad-events` bad
events in its long window (`min-bad-events-ticket` for the ticket tiers): one failed
payout out of three in an hour is not a page, and a total failure still pages at any
volume once that many payouts have failed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import promql
from .durations import parse_duration

SLO_DIR = "slos"
SCHEMA = "slo.schema.json"
RECORDING_GROUP = "reward-slo-burn"
PERIOD_GROUP = "reward-slo-period"
RECORDING_INTERVAL = "1m"
PERIOD_INTERVAL = "5m"  # a 30-day average each minute would read 43,200 samples per series
ALERT_GROUP = "reward-slos"
PERIOD = "30d"
WINDOW_LABEL = "long_window"
ANNOTATION = "reward-obs/"


@dataclass(frozen=True)
class Tier:
    severity: str
    long: str
    short: str
    factor: float


PAGE_TIERS = (Tier("critical", "1h", "5m", 14.4), Tier("critical", "6h", "30m", 6))
TICKET_TIERS = (Tier("warning", "1d", "2h", 3), Tier("warning", "3d", "6h", 1))
TIERS = PAGE_TIERS + TICKET_TIERS
# Every window a tier reads, shortest first.
WINDOWS = tuple(sorted({w for t in TIERS for w in (t.long, t.short)}, key=parse_duration))
# Windows whose rate is read from the raw counters; each other window averages one of them.
BASE_WINDOWS = ("5m", "1h")
DERIVED_FROM = {"30m": "5m", "2h": "5m", "6h": "5m", "1d": "1h", "3d": "1h"}


@dataclass(frozen=True)
class SLO:
    file: str
    name: str
    display_name: str
    description: str
    objective: float
    bad: str  # PromQL with $window
    total: str
    labels: tuple[str, ...]  # what the SLO is evaluated per (the queries' output labels)
    alert_prefix: str
    runbook_file: str
    dashboard_uid: str
    panel_key: str
    min_bad_events: int  # page tiers
    min_bad_events_ticket: int = 0  # ticket tiers

    @property
    def budget(self) -> float:
        """The error budget as a ratio: 1 - objective, without float noise (0.001, not 0.0010000000000000009)."""
        return round(1 - self.objective, 10)

    @property
    def page_alert(self) -> str:
        return f"{self.alert_prefix}Burn"

    @property
    def ticket_alert(self) -> str:
        return f"{self.alert_prefix}SlowBurn"

    def record(self, window: str) -> str:
        """The recorded error ratio over `window`: level:metric:operations."""
        level = "_".join(self.labels) or "all"
        return f"{level}:reward_slo_{self.name.replace('-', '_')}_errors:ratio_rate{window}"

    def rate_record(self, which: str, window: str) -> str:
        """The recorded rate of bad or total events over a base window (5m, 1h)."""
        level = "_".join(self.labels) or "all"
        return f"{level}:reward_slo_{self.name.replace('-', '_')}_{which}:rate{window}"

    def budget_record(self) -> str:
        """The share of the error budget left over the SLO period (1 = untouched, < 0 = missed)."""
        level = "_".join(self.labels) or "all"
        return f"{level}:reward_slo_{self.name.replace('-', '_')}_budget:remaining{PERIOD}"

    def query(self, which: str, window: str) -> str:
        return (self.bad if which == "bad" else self.total).replace("$window", window)


# ---------------------------------------------------------------- loading


def load(root: Path, contract, problems) -> list[SLO]:
    """Every SLO under root/slos, schema- and contract-checked (problems recorded)."""
    from .definitions import _validated  # late import: definitions calls this module

    slos, names = [], {}
    for path in sorted((Path(root) / SLO_DIR).glob("*.yaml")):
        data = _validated(root, path, SCHEMA, problems)
        if data is None:
            continue
        file = str(path.relative_to(root))
        s = _model(file, data)
        if path.stem != s.name:
            problems.add(file, "metadata.name", f"the file must be named {s.name}.yaml, after the SLO it defines")
        if s.name in names:
            problems.add(file, "metadata.name", f"duplicate SLO (also in {names[s.name]})")
        names[s.name] = file
        if contract is not None:
            s = _checked(s, contract, problems)
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
    return SLO(**{**s.__dict__, "labels": labels})


# ---------------------------------------------------------------- generators


def _number(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def recording_rules(slos, dashboards=()) -> list:
    """Rates and error ratio of every SLO over every burn window, and the error budget
    left over the 30-day period.

    Only the 5m and 1h rates read the raw counters. Longer windows average the recorded
    rates at their own step (30m, 2h, 6h from the 5m rate every 5 minutes; 1d, 3d from the
    1h rate every hour): a 3-day window is 72 recorded points per series instead of
    thousands of raw samples per counter, every minute (GitLab's metrics catalog and Pyrra
    aggregate long windows from shorter recorded ones for the same reason). The mean of
    back-to-back rates is the rate over their union; the window lags by at most its step,
    which only the 6h page pair (5 minutes) and the ticket pairs (an hour) see.

    The period is computed from the raw counters (occurrences over 30 days, the budgeting
    method the SLO names), every 5 minutes. `dashboards`: the panel queries that read a
    generated series are named as the rule's `serves`, with the raw query they stand for
    (recorded names replaced by their expressions until only raw metrics are left)."""
    from .recording import RecordingRule, Serves

    reads = _panel_reads(dashboards)
    out = []
    for s in slos:
        why = f"read by the burn-rate alerts ({s.page_alert}, {s.ticket_alert})"
        rules = [(s.rate_record(which, w), s.query(which, w), RECORDING_GROUP, RECORDING_INTERVAL,
                  f"{which} events per second over {w}, {why}; longer windows average it")
                 for w in BASE_WINDOWS for which in ("bad", "total")]
        for w in WINDOWS:
            rules.append((s.record(w), f"{_mean_rate(s, 'bad', w)} / ({_mean_rate(s, 'total', w)} > 0)", RECORDING_GROUP, RECORDING_INTERVAL,
                          f"share of bad events over {w}, {why}. Absent while there are no events."))
        ratio = f"({s.query('bad', PERIOD)}) / ({s.query('total', PERIOD)} > 0)"
        rules.append((s.budget_record(), f"1 - {ratio} / {_number(s.budget)}", PERIOD_GROUP, PERIOD_INTERVAL,
                      f"share of the error budget left over {PERIOD} (objective {s.objective:g}), for the error budget panel."))
        exprs = {record: expr for record, expr, *_ in rules}
        for record, expr, group, interval, purpose in rules:
            out.append(RecordingRule(
                file=s.file, group=group, interval=interval, record=record, expr=expr, labels=s.labels,
                why=f"{s.display_name}: {purpose}",
                serves=tuple(Serves(panel, _raw(query, exprs)) for panel, query in reads if _whole_name(record).search(query))))
    return out


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
            query = _whole_name(record).sub(lambda _m, e=expr: f"({e})", query)
        if query == before:
            return query


def _whole_name(record: str):
    import re

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
    """One tier's condition, valued at the long window's burn rate."""
    on = f"on ({', '.join(s.labels)})"
    budget, factor = _number(s.budget), _number(tier.factor)
    expr = (f'label_replace({s.record(tier.long)}, "{WINDOW_LABEL}", "{tier.long}", "", "") / {budget} > {factor}\n'
            f"unless {on}\n"
            f"{s.record(tier.short)} / {budget} <= {factor}")
    minimum = s.min_bad_events if tier.severity == "critical" else s.min_bad_events_ticket
    if minimum:
        expr += f"\nand {on}\n{_bad_events(s, tier.long)} >= {minimum}"
    return expr


def alert_expr(s: SLO, tiers) -> str:
    return "\nor\n".join(f"(\n{tier_expr(s, t)}\n)" for t in tiers) + "\n"


def alert_rules(slos) -> list:
    """The page (critical) and ticket (warning) alert of every SLO."""
    from .definitions import AlertRule

    out = []
    for s in slos:
        who = "{{ $labels.provider }}: " if "provider" in s.labels else ""
        objective = f"{s.objective * 100:g}%"
        for name, severity, tiers, pace in ((s.page_alert, "critical", PAGE_TIERS, "fast"),
                                            (s.ticket_alert, "warning", TICKET_TIERS, "steadily")):
            windows = " or ".join(f"{_number(t.factor)}x over {t.long} and {t.short}" for t in tiers)
            out.append(AlertRule(
                file=s.file, name=name, group=ALERT_GROUP, severity=severity,
                summary=f"{who}{s.display_name} is burning its error budget {pace}",
                description=(f"{who}the error budget of \"{s.display_name}\" (objective {objective} over {PERIOD}) "
                             f"is burning {{{{ $value | humanize }}}}x as fast as it lasts, over the last "
                             f"{{{{ $labels.{WINDOW_LABEL} }}}} and still now ({windows}). {s.description}"),
                runbook_file=s.runbook_file, runbook_anchor=name.lower(),
                dashboard_uid=s.dashboard_uid, panel_key=s.panel_key,
                expr=alert_expr(s, tiers).strip(), op=">", threshold=1, for_="0s", params={},
                labels={"slo": s.name}, no_data_state="OK", exec_err_state="Error", lint_exceptions={},
                slo=s.name,
            ))
    return out
