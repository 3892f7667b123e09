"""`reward-obs slo report`: what the SLOs would have said about stored history.

For each SLO (and each provider it is evaluated per) over a period of a real Prometheus'
history: the ratio attained, the share of the error budget the period's events consumed,
every page and ticket each burn-rate tier would have raised (start, end, tier, long
window), and an objective the period met with margin. docs/slo-calibration.md gives the
go-live procedure built on it.

Nothing here re-types an SLO's PromQL. The numbers come from the model and the generated
rules (model/slo.py, catalog/slos.py):
- the attained ratio reads the SLO's own `bad` and `total` queries (`SLO.query`) over the
  period, instant at its end;
- the pages and tickets are the generated page and ticket alerts (`SLO.page_alert`,
  `SLO.ticket_alert`, with the stack's overrides), evaluated at the rules' evaluation
  interval through the query_range API. Each tier is its own alert instance, told apart
  by its `long_window` label (model/slo.py `WINDOW_LABEL`), so one tier's firing is one
  run of evaluations at which that instance is returned.

Two ways to read the recorded series the alerts name:
- `inline` (default): each recorded name is replaced by the recording rule's expression,
  recursively, so only raw counters are read. It works on any Prometheus that holds the
  raw series, whether or not it ran the rules. A subquery `avg_over_time(rec[6h:5m])`
  becomes `avg_over_time((expr)[6h:5m])`: Prometheus evaluates the inner expression at
  the same epoch-aligned 5-minute steps at which the recorded series is read, so the value
  is the one the rule evaluation would have produced from samples recorded at those steps.
- `recorded` (`--recorded`): the alert expressions as written, for a Prometheus that has
  the generated recording rules' history (it ran them, or they were backfilled with
  `promtool tsdb create-blocks-from rules`). Much cheaper on long periods; a rule
  evaluated at an offset within its interval shifts a firing by less than a minute.
tests/test_slo_report.py proves the two give the same pages and tickets on one backfilled
week.

The suggested objective: the largest of OBJECTIVES whose error budget is at least MARGIN
(2) times the period's error ratio, the ratio taken at the upper end of its one-sided 95%
Poisson bound (Wilson-Hilferty: a handful of bad events says little about the true rate).
A world that fails at half its budget burns at 0.5x on average: half the slowest ticket
tier's threshold (1x over 3 days), so ordinary weeks stay quiet while an outage still
burns the 14.4x and 6x page tiers.
"""
from __future__ import annotations

import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from reward_obs.builders.alerts import EVALUATION_INTERVAL, resolved_alerts
from reward_obs.catalog.load import load
from reward_obs.lang import promql
from reward_obs.model.definitions import Definitions, ResolvedAlert
from reward_obs.model.durations import format_duration, parse_duration
from reward_obs.model.slo import PAGE_TIERS, SLO, TICKET_TIERS, WINDOW_LABEL, Tier
from reward_obs.tools.prometheus_history import MAX_POINTS, firings_from_samples, http_json

# Objectives an SLO is commonly set to, tightest first; the suggestion is one of them. The
# SLO schema's floor is 90% (schemas/slo.schema.json): below 95% the indicator, not the
# objective, usually needs a look.
OBJECTIVES = (0.9999, 0.9995, 0.999, 0.998, 0.995, 0.99, 0.985, 0.98, 0.975, 0.97, 0.96, 0.95)
MARGIN = 2.0
Z95 = 1.6448536269514722  # one-sided 95% quantile of the standard normal


@dataclass(frozen=True)
class Raised:
    """One tier's would-be firing: the first and the last evaluation at which it fires."""
    tier: str  # page | ticket
    severity: str
    long_window: str
    short_window: str
    factor: float
    start: int  # Unix seconds
    end: int
    peak_burn: float  # the alert's value (the long window's burn rate) at its highest

    @property
    def minutes(self) -> int:
        return (self.end - self.start) // 60 + 1


@dataclass
class Row:
    slo: str
    provider: str | None  # None: the SLO is evaluated fleet-wide
    objective: float
    attained: float | None  # None: no event in the period
    bad_events: float
    total_events: float
    budget_consumed: float | None  # error ratio / error budget: 1.0 spent exactly the budget
    suggested_objective: float | None
    pages: list[Raised] = field(default_factory=list)
    tickets: list[Raised] = field(default_factory=list)


class ReportError(Exception):
    """Prometheus could not be asked, or refused a query: a message for the operator."""


# ---------------------------------------------------------------- the arithmetic


def poisson_upper(k: float) -> float:
    """The one-sided 95% upper bound of a Poisson mean given k observed events
    (Wilson-Hilferty; 3.0 at k = 0, the rule of three)."""
    n = k + 1
    return n * (1 - 1 / (9 * n) + Z95 / (3 * math.sqrt(n))) ** 3


def suggested_objective(bad: float, total: float) -> float | None:
    """The largest common objective whose budget covers MARGIN times the error ratio's
    upper bound; None when even the loosest does not (or there were no events)."""
    if total <= 0:
        return None
    needed = MARGIN * poisson_upper(bad) / total
    return next((o for o in OBJECTIVES if round(1 - o, 10) >= needed), None)


def objective_of(slo: SLO, provider: str | None) -> float:
    """The objective the rules were generated with (one per SLO in the model)."""
    return slo.objective


# ---------------------------------------------------------------- the rules, as queries


def _whole_name(name: str) -> re.Pattern:
    return re.compile(rf"(?<![A-Za-z0-9_:]){re.escape(name)}(?![A-Za-z0-9_:])")


def inline(expr: str, recorded: dict[str, str]) -> str:
    """`expr` with every recorded series replaced by its rule's expression, until only raw
    series are left (the generated rules never match on a recorded name's labels)."""
    patterns = {name: _whole_name(name) for name in recorded}
    for _ in range(len(recorded) + 1):
        before = expr
        for name, pattern in patterns.items():
            expr = pattern.sub(promql.parenthesized(recorded[name]), expr)
        if expr == before:
            return expr
    raise ValueError("recording rules refer to each other in a cycle")


def slo_alerts(definitions: Definitions, config, slo: SLO) -> dict[str, tuple[ResolvedAlert, tuple[Tier, ...]]]:
    """tier kind -> (the generated alert, with the stack's overrides; its tiers)."""
    by_name = {a.name: a for a in resolved_alerts(definitions, config)}
    return {"page": (by_name[slo.page_alert], PAGE_TIERS), "ticket": (by_name[slo.ticket_alert], TICKET_TIERS)}


# ---------------------------------------------------------------- Prometheus


class Prometheus:
    """The two read endpoints the report needs, with errors an operator can act on."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    @property
    def shown(self) -> str:
        """The URL without credentials, for messages."""
        parts = urllib.parse.urlsplit(self.url)
        return urllib.parse.urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", "")) + (
            f" (port {parts.port})" if parts.port else "")

    def _get(self, path: str, params: dict) -> list[dict]:
        try:
            data = http_json(f"{self.url}/api/v1/{path}", params, timeout=300)
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("error", "")
            except (ValueError, OSError):
                detail = ""
            raise ReportError(f"Prometheus at {self.shown} refused a query ({exc.code}): {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ReportError(f"cannot ask Prometheus at {self.shown}: {getattr(exc, 'reason', exc)}") from None
        if data.get("status") != "success":
            raise ReportError(f"Prometheus at {self.shown} answered {data.get('status')}: {data.get('error', '')}")
        return data["data"]["result"]

    def query(self, expr: str, at: float) -> list[dict]:
        return self._get("query", {"query": expr, "time": f"{at:.3f}"})

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        """Every series over [start, end], in chunks under the API's point limit."""
        out: dict[tuple, dict] = {}
        span = step * (MAX_POINTS - 1)
        t = start
        while t <= end:
            chunk_end = min(end, t + span)
            for s in self._get("query_range", {"query": expr, "start": f"{t:.3f}", "end": f"{chunk_end:.3f}", "step": f"{step:g}"}):
                key = tuple(sorted(s["metric"].items()))
                out.setdefault(key, {"metric": s["metric"], "values": []})["values"].extend(s["values"])
            t = chunk_end + step
        return list(out.values())


# ---------------------------------------------------------------- the report


def _key(metric: dict, slo: SLO) -> tuple[str, ...]:
    return tuple(metric.get(label, "") for label in slo.labels)


def _provider(slo: SLO, key: tuple[str, ...]) -> str | None:
    return dict(zip(slo.labels, key, strict=True)).get("provider") or None


def period_events(prom: Prometheus, slo: SLO, start: float, end: float) -> dict[tuple, tuple[float, float]]:
    """(bad, total) events over (start, end] per evaluated label set, from the SLO's own
    queries: the mean rate over the period times its length."""
    window = format_duration(int(end - start))
    seconds = end - start
    counts: dict[tuple, list[float]] = {}
    for which, index in (("bad", 0), ("total", 1)):
        for s in prom.query(slo.query(which, window), end):
            counts.setdefault(_key(s["metric"], slo), [0.0, 0.0])[index] = float(s["value"][1]) * seconds
    return {k: (bad, total) for k, (bad, total) in counts.items()}


def raised(prom: Prometheus, alert: ResolvedAlert, tiers: tuple[Tier, ...], kind: str, slo: SLO,
           recorded: dict[str, str] | None, start: float, end: float) -> dict[tuple, list[Raised]]:
    """Label set -> every firing of the alert's tiers over [start, end]."""
    step = parse_duration(EVALUATION_INTERVAL)
    expr = alert.condition_expr if recorded is None else inline(alert.condition_expr, recorded)
    by_window = {t.long: t for t in tiers}
    out: dict[tuple, list[Raised]] = {}
    for series in prom.query_range(expr, start, end, step):
        metric = series["metric"]
        tier = by_window[metric[WINDOW_LABEL]]
        values = {float(t): float(v) for t, v in series["values"]}
        for f in firings_from_samples(alert.name, metric, list(values), step, parse_duration(alert.for_)):
            peak = max(v for t, v in values.items() if f.start <= t <= f.end)
            out.setdefault(_key(metric, slo), []).append(Raised(
                tier=kind, severity=alert.rule.severity, long_window=tier.long, short_window=tier.short,
                factor=tier.factor, start=int(f.start), end=int(f.end), peak_burn=round(peak, 6)))
    return out


def report(prom: Prometheus, definitions: Definitions, config, start: float, end: float,
           only: tuple[str, ...] = (), use_recorded: bool = False) -> list[Row]:
    """One row per SLO and evaluated label set (per provider, or one fleet row)."""
    recorded = None if use_recorded else {r.record: r.expr for r in definitions.recording_rules}
    rows = []
    for slo in sorted(definitions.slos, key=lambda s: s.name):
        if only and slo.name not in only:
            continue
        events = period_events(prom, slo, start, end)
        firings: dict[str, dict[tuple, list[Raised]]] = {
            kind: raised(prom, alert, tiers, kind, slo, recorded, start, end)
            for kind, (alert, tiers) in slo_alerts(definitions, config, slo).items()}
        keys = sorted(set(events) | {k for f in firings.values() for k in f}) or [tuple("" for _ in slo.labels)]
        for key in keys:
            bad, total = events.get(key, (0.0, 0.0))
            provider = _provider(slo, key)
            objective = objective_of(slo, provider)
            ratio = bad / total if total > 0 else None
            rows.append(Row(
                slo=slo.name, provider=provider, objective=objective,
                attained=None if ratio is None else round(1 - ratio, 9),
                bad_events=round(bad, 3), total_events=round(total, 3),
                budget_consumed=None if ratio is None else round(ratio / round(1 - objective, 10), 6),
                suggested_objective=suggested_objective(bad, total),
                pages=sorted(firings["page"].get(key, []), key=lambda r: (r.start, r.long_window)),
                tickets=sorted(firings["ticket"].get(key, []), key=lambda r: (r.start, r.long_window))))
    return rows


# ---------------------------------------------------------------- output


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _pct(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value * 100:.{digits}g}%"


def as_json(rows: list[Row], start: float, end: float, use_recorded: bool) -> str:
    def raised_json(r: Raised) -> dict:
        return {**asdict(r), "start_utc": _when(r.start), "end_utc": _when(r.end)}

    return json.dumps({
        "from": int(start), "to": int(end), "step": EVALUATION_INTERVAL,
        "method": "recorded" if use_recorded else "inline",
        "suggestion": {"margin": MARGIN, "confidence": 0.95, "objectives": list(OBJECTIVES)},
        "rows": [{**{k: v for k, v in asdict(row).items() if k not in ("pages", "tickets")},
                  "pages": [raised_json(r) for r in row.pages], "tickets": [raised_json(r) for r in row.tickets]}
                 for row in rows],
    }, indent=2, sort_keys=True) + "\n"


def as_text(rows: list[Row], start: float, end: float, use_recorded: bool) -> str:
    lines = [f"SLO report {_when(start)} to {_when(end)} UTC ({format_duration(int(end - start))}), "
             f"the generated rules evaluated every {EVALUATION_INTERVAL} "
             f"({'on the recorded series' if use_recorded else 'over the raw series'})", "",
             "| SLO | provider | objective | attained | budget consumed | pages | tickets | suggested objective |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        consumed = "-" if r.budget_consumed is None else f"{r.budget_consumed * 100:.0f}%"
        who = "(no events)" if r.attained is None and not r.provider else r.provider or "(fleet)"
        lines.append(f"| {r.slo} | {who} | {_pct(r.objective)} | {_pct(r.attained, 6)} | {consumed} | "
                     f"{len(r.pages)} | {len(r.tickets)} | {_pct(r.suggested_objective)} |")
    raised_lines = [f"- {r.slo} {r.provider or '(fleet)'}: {x.tier} {x.long_window} ({x.factor:g}x over {x.long_window} "
                    f"and {x.short_window}) {_when(x.start)} to {_when(x.end)} ({x.minutes} min), peak {x.peak_burn:.3g}x"
                    for r in rows for x in r.pages + r.tickets]
    if raised_lines:
        lines += ["", "Would have raised (first and last evaluation firing, UTC):", *raised_lines]
    lines += ["", f"Suggested objective: the tightest of {', '.join(f'{o * 100:g}%' for o in OBJECTIVES)} whose error budget "
                  f"is at least {MARGIN:g}x the period's error ratio (its 95% upper bound). docs/slo-calibration.md"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- command line


def parse_time(text: str, now: float) -> float:
    """RFC 3339, Unix seconds, `now` or `now-<duration>` (now-28d)."""
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("now-"):
        return now - parse_duration(text[4:])
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("give a time zone (Z or +00:00)")
    return parsed.timestamp()


def cmd_report(args) -> int:
    step = parse_duration(EVALUATION_INTERVAL)
    now = time.time()
    times = {}
    for flag, text in (("--from", args.start), ("--to", args.end)):
        try:
            times[flag] = parse_time(text, now) // step * step  # evaluations on whole steps: deterministic
        except (ValueError, KeyError) as exc:
            print(f"reward-obs slo report: {flag} {text!r}: not a time (RFC 3339, Unix seconds, now, now-28d): {exc}",
                  file=sys.stderr)
            return 1
    start, end = times["--from"], times["--to"]
    if end <= start:
        print("reward-obs slo report: --to must be after --from", file=sys.stderr)
        return 1
    definitions, config = load(args)
    unknown = sorted(set(args.slo) - {s.name for s in definitions.slos})
    if unknown:
        print(f"reward-obs slo report: --slo {', '.join(unknown)}: no such SLO under slos/ "
              f"(known: {', '.join(sorted(s.name for s in definitions.slos))})", file=sys.stderr)
        return 1
    try:
        rows = report(Prometheus(args.prometheus), definitions, config, start, end, tuple(args.slo), args.recorded)
    except ReportError as exc:
        print(f"reward-obs slo report: {exc}", file=sys.stderr)
        return 1
    print((as_json if args.format == "json" else as_text)(rows, start, end, args.recorded), end="")
    return 0


def register(sub) -> None:
    slo = sub.add_parser("slo", help="SLO tools: what the SLOs would have said about stored history")
    slo_sub = slo.add_subparsers(dest="slo_command", required=True)
    parser = slo_sub.add_parser("report", help="attained ratio, budget consumed, would-be pages and tickets and a "
                                               "suggested objective per SLO and provider, from a Prometheus' history")
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--from", dest="start", required=True, help="start: RFC 3339, Unix seconds or now-28d")
    parser.add_argument("--to", dest="end", required=True, help="end: RFC 3339, Unix seconds or now")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--slo", action="append", default=[], help="only this SLO (repeatable; default: all)")
    parser.add_argument("--recorded", action="store_true",
                        help="read the generated recorded series (the Prometheus ran or backfilled the SLO recording "
                             "rules) instead of evaluating their expressions over the raw series")
    parser.set_defaults(handler=cmd_report)
