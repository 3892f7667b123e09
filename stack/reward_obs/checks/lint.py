"""`reward-obs lint`: the alerting pitfalls no schema catches, checked on the typed
definitions and on what the builders produce, for Grafana and Prometheus at once.

Each finding reads `file:field: check-name: what is wrong and how to fix it`. An alert
may switch a check off only with a written reason (`lint_exceptions:` in its
definition); `lint` lists every such reason.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from html.parser import HTMLParser
from pathlib import Path

import promql_parser

from reward_obs.builders import alerts as alert_builders
from reward_obs.builders import notifications as notification_builders
from reward_obs.builders.notifications import policy_tree
from reward_obs.catalog.config import StackConfig
from reward_obs.catalog.runbook_numbers import overridden_numbers
from reward_obs.checks.grafana_provisioning import validate_files
from reward_obs.lang import promql
from reward_obs.model.definitions import Definitions, ResolvedAlert
from reward_obs.model.durations import format_duration, parse_duration

COUNTER_FUNCTIONS = {"rate", "irate", "increase", "resets"}
DEAD_MAN_FUNCTIONS = {"absent", "absent_over_time"}
TELEGRAM_LIMIT = 4096
TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "span", "tg-spoiler", "blockquote"}


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    field: str
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.field}: {self.check}: {self.message}"


@dataclass(frozen=True)
class Exception_:
    alert: str
    check: str
    reason: str


@dataclass
class LintReport:
    findings: list[Finding]
    exceptions: list[Exception_]
    notes: list[str]
    # What this stack's Grafana cannot do that the definitions ask for: not an error, not a
    # skipped check, said on every run so nobody takes it for done.
    limits: list[str] = dataclass_field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


# ---------------------------------------------------------------- per-alert checks
# Each takes (alert, tree, context) and yields (field, message).


@dataclass(frozen=True)
class Context:
    definitions: Definitions
    config: StackConfig

    @property
    def scrape_seconds(self) -> int:
        return parse_duration(self.config.scrape_interval)


def _walk(tree):
    yield tree
    for child in promql.children(tree):
        yield from _walk(child)
    if isinstance(tree, promql_parser.MatrixSelector):
        yield tree.vector_selector


def is_dead_man(alert: ResolvedAlert) -> bool:
    """The rule that watches the scrape itself: every series it reads is `up`, or every
    series it reads is inside absent()."""
    tree = promql.parse(alert.expr)
    if promql.watches_scrape(tree):
        return True
    absent_args = [s for n in _walk(tree) if isinstance(n, promql_parser.Call) and n.func.name in DEAD_MAN_FUNCTIONS
                   for s in promql.selectors(n)]
    return bool(absent_args) and len(absent_args) == len(promql.selectors(tree))


def check_comparison(alert, tree, ctx):
    top = tree
    while isinstance(top, promql_parser.ParenExpr):
        top = top.expr
    if not (isinstance(top, promql_parser.BinaryExpr) and str(top.op) in {">", "<", ">=", "<=", "==", "!="}
            and not (top.modifier is not None and top.modifier.return_bool)):
        yield "condition", "the alert expression does not end in a filtering comparison, so it fires on any value; add a threshold"
    for node in _walk(tree):
        if isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None and node.modifier.return_bool:
            yield "expr", "uses a `bool` comparison, which returns 0 instead of dropping the series, so the alert can fire on 0; use a filtering comparison"


def _counter_reads(tree, contract, inside: bool = False):
    """Selectors of counters that are not inside rate/irate/increase/resets."""
    if isinstance(tree, promql_parser.Call) and tree.func.name in COUNTER_FUNCTIONS:
        inside = True
    if isinstance(tree, promql_parser.VectorSelector):
        metric = contract.series_metric(tree.name or "")
        counter = metric is not None and (metric.type == "counter" or (metric.type == "histogram" and not (tree.name or "").endswith("_bucket")))
        if counter and not inside:
            yield tree.name
        return
    if isinstance(tree, promql_parser.MatrixSelector):
        yield from _counter_reads(tree.vector_selector, contract, inside)
        return
    for child in promql.children(tree):
        yield from _counter_reads(child, contract, inside)


def check_counter_rate(alert, tree, ctx):
    for name in sorted(set(_counter_reads(tree, ctx.definitions.contract))):
        yield "expr", (f"counter {name} is read raw; a restart resets it and a raw value never resolves. "
                       "Wrap it in rate()/increase(), or add lint_exceptions.counter-without-rate with the reason")


def check_range_window(alert, tree, ctx):
    minimum = 4 * ctx.scrape_seconds
    for node in _walk(tree):
        seconds = None
        if isinstance(node, promql_parser.MatrixSelector):
            seconds = node.range.total_seconds()
        elif isinstance(node, promql_parser.SubqueryExpr):
            seconds = node.range.total_seconds()
        if seconds is not None and seconds < minimum:
            yield "params", (f"range window {int(seconds)}s is under 4x the scrape interval ({ctx.config.scrape_interval}); "
                             f"rate() over fewer than 4 samples is noise. Use at least {minimum}s")


def _unwrap(node):
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    return node


def _is_threshold_filter(node) -> bool:
    """`x > 0`, `x >= 20`: a filtering comparison against a number."""
    node = _unwrap(node)
    return (isinstance(node, promql_parser.BinaryExpr) and str(node.op) in {">", ">=", "!="}
            and not (node.modifier is not None and node.modifier.return_bool)
            and isinstance(_unwrap(node.rhs), promql_parser.NumberLiteral))


def _reads_counter_rate(node) -> bool:
    return any(isinstance(n, promql_parser.Call) and n.func.name in ("rate", "irate", "increase") for n in _walk(node))


def check_ratio_guard(alert, tree, ctx):
    """Every ratio is guarded: its divisor filtered (> 0), or the ratio `and`-ed with a
    minimum-volume clause; a ratio of rates always needs the volume clause."""
    guarded: set[int] = set()

    def mark(node):
        node = _unwrap(node)
        if isinstance(node, promql_parser.BinaryExpr) and str(node.op) == "and" and _is_threshold_filter(node.rhs):
            for inner in _walk(node.lhs):
                if isinstance(inner, promql_parser.BinaryExpr) and str(inner.op) == "/":
                    guarded.add(_key(inner))
        for child in promql.children(node):
            mark(child)

    mark(tree)
    for node in _walk(tree):
        if not (isinstance(node, promql_parser.BinaryExpr) and str(node.op) == "/"):
            continue
        if promql._is_scalar(node.rhs):
            continue
        if _key(node) in guarded:
            continue
        if _reads_counter_rate(node):
            yield "expr", ("a ratio of rates has no minimum-volume clause, so 1 failure out of 2 fires it and 0/0 gives NaN; "
                           "add `and on (...) sum by (...) (increase(...[window])) >= $min_volume`")
        elif not _is_threshold_filter(node.rhs):
            yield "expr", "a ratio's divisor can be 0; filter it (`(divisor > 0)`) or add a volume clause"


def _key(node) -> str:
    return node.prettify()


def check_dead_man(alert, tree, ctx):
    if is_dead_man(alert):
        if parse_duration(alert.for_) < 2 * ctx.scrape_seconds:
            yield "for", (f"the dead-man rule's `for` ({alert.for_}) is under 2x the scrape interval "
                          f"({ctx.config.scrape_interval}); one slow scrape would page")
        return
    for node in _walk(tree):
        if isinstance(node, promql_parser.Call) and node.func.name in DEAD_MAN_FUNCTIONS | {"resets", "changes"}:
            yield "expr", f"{node.func.name}() fires on a target restart alone; only the dead-man rule may watch the scrape"
        if isinstance(node, promql_parser.VectorSelector) and node.name == "up":
            yield "expr", "reads `up`, so it fires on a target restart alone; only the dead-man rule may watch the scrape"


_LABEL_REF = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)|\.Labels\.([A-Za-z_][A-Za-z0-9_]*)")


def check_template_labels(alert, tree, ctx):
    available = promql.output_labels(tree, ctx.definitions.series_contract)
    texts = {"summary": alert.summary, "description": alert.description, **{f"labels.{k}": v for k, v in alert.rule.labels.items()}}
    for field, text in texts.items():
        for match in _LABEL_REF.finditer(text):
            label = match.group(1) or match.group(2)
            if label not in available:
                yield field, (f"uses $labels.{label}, but the expression's result has only "
                              f"{', '.join(sorted(available)) or 'no labels'}; keep it in the aggregation's by (...) or drop it")


def check_value_in_label(alert, tree, ctx):
    for key, value in alert.rule.labels.items():
        if "$value" in value or ".Value" in value:
            yield f"labels.{key}", "holds the alert's value; every new value becomes a new alert (flapping, lost history). Put it in an annotation"


def check_for_vs_interval(alert, tree, ctx):
    interval = parse_duration(alert_builders.EVALUATION_INTERVAL)
    seconds = parse_duration(alert.for_)
    if 0 < seconds < interval:
        yield "for", f"`for` {alert.for_} is shorter than the evaluation interval {alert_builders.EVALUATION_INTERVAL}; use 0s or at least the interval"


RATE_FUNCTIONS = {"rate", "irate", "increase"}


def _counter_windows(node) -> list[float]:
    """Range windows (seconds) of counters read through rate/irate/increase."""
    return [n.args[0].range.total_seconds() for n in _walk(node)
            if isinstance(n, promql_parser.Call) and n.func.name in RATE_FUNCTIONS
            and n.args and isinstance(n.args[0], promql_parser.MatrixSelector)]


def _is_multiwindow(tree) -> bool:
    """A multiwindow rule (SLO burn rate): an `and` of two conditions that read counters over
    different windows, e.g. 1h and 5m."""
    for node in _walk(tree):
        if isinstance(node, promql_parser.BinaryExpr) and str(node.op) == "and":
            left, right = set(_counter_windows(node.lhs)), set(_counter_windows(node.rhs))
            if left and right and left != right and not (left & right):
                return True
    return False


def check_for_window(alert, tree, ctx):
    """A count or rate over a window stays high for the whole window after a burst: with a
    `for` shorter than the window, a burst that is over in a minute still trips the rule
    once it is big enough. With `for` at least the window, the condition must still hold a
    whole window after it first held, so a burst that ends never fires.

    Not judged: a rule where any single event is the fault (`> 0` on a count, no ratio of rates:
    a rejected winner, a confirmed double payment), and a multiwindow burn-rate rule (its
    long window needs a sustained burn; the short window only ends the alert sooner)."""
    windows = _counter_windows(tree)
    if not windows or _is_multiwindow(tree):
        return
    divides = any(isinstance(n, promql_parser.BinaryExpr) and str(n.op) == "/" and _reads_counter_rate(n) for n in _walk(tree))
    if alert.rule.op == ">" and alert.threshold == 0 and not divides:
        return
    window = max(windows)
    if parse_duration(alert.for_) < window:
        yield "for", (f"`for` {alert.for_} is shorter than the window it counts over ({format_duration(int(window))}): "
                      "a burst that is over in a minute keeps the rule true for the whole window and trips it. "
                      f"Use `for: {format_duration(int(window))}` or longer, or add lint_exceptions.for-window with the reason")


def check_no_data_state(alert, tree, ctx):
    if alert.rule.no_data_state == "Alerting" and not (alert.rule.is_promql and is_dead_man(alert)):
        yield "no_data_state", ("maps no data to Alerting; a filtered query returns nothing on a healthy system, "
                                "so this pages every quiet night. Only the dead-man rule may do this")


# Checks that read the PromQL syntax tree; log-based (Loki) rules skip them.
PROMQL_CHECKS = {"alert-comparison", "counter-without-rate", "range-window", "ratio-guard", "dead-man", "template-label",
                 "for-window"}

ALERT_CHECKS = {
    "alert-comparison": check_comparison,
    "counter-without-rate": check_counter_rate,
    "range-window": check_range_window,
    "ratio-guard": check_ratio_guard,
    "dead-man": check_dead_man,
    "template-label": check_template_labels,
    "value-in-label": check_value_in_label,
    "for-interval": check_for_vs_interval,
    "for-window": check_for_window,
    "no-data-state": check_no_data_state,
}


# ---------------------------------------------------------------- whole-stack checks


def check_group_interval(ctx) -> list[Finding]:
    seconds = parse_duration(alert_builders.EVALUATION_INTERVAL)
    if seconds <= 0 or seconds % 10 or seconds > 300:
        return [Finding("stack/reward_obs/builders/alerts.py", "EVALUATION_INTERVAL", "group-interval",
                        "must be a non-zero multiple of 10s and at most 5m (Grafana's scheduler ticks every 10s)")]
    return []


def check_policy_intervals(ctx) -> list[Finding]:

    findings = []
    file = ctx.definitions.routing.file
    for _node, settings, path in notification_builders.policies(policy_tree(ctx.definitions)):
        group = parse_duration(settings["group_interval"])
        repeat = parse_duration(settings["repeat_interval"])
        if repeat < group:
            findings.append(Finding(file, path, "repeat-interval",
                                    f"repeat_interval {settings['repeat_interval']} is shorter than group_interval {settings['group_interval']}; "
                                    "notifications repeat only at group_interval ticks"))
    return findings


# Labels whose values grow with the reward system: a series per pool, a series per campaign.
# (Providers stop at the contract's six types.)
FLEET_LABELS = ("pool_id", "campaign_id")


def check_panel_scale(ctx) -> list[Finding]:
    """A range panel evaluates its query at every step (1,440 over 24h). One that reads a
    per-pool or per-campaign metric across every pool or campaign costs Prometheus time
    linear in the fleet at each step (bench/README.md: 150-450 ms per 24h panel
    at 1,000 pools, seconds over 7d), and draws one line per pool. Such a panel must read a
    recording rule that keeps few series, select one campaign or pool with `=`, or be an
    instant panel (one evaluation)."""

    contract = ctx.definitions.series_contract
    findings = []
    for d in ctx.definitions.dashboards:
        for r_index, row in enumerate(d.rows):
            for p_index, panel in enumerate(row.panels):
                if panel.datasource != "prometheus" or panel.instant:
                    continue
                for q_index, query in enumerate(panel.queries):
                    for sel in promql.selectors(promql.parse(promql.without_grafana_variables(query.expr))):
                        metric = contract.series_metric(sel.metric or "")
                        fleet = [label for label in FLEET_LABELS if metric is not None and label in metric.labels]
                        narrowed = any(label in fleet and op == "=" for label, op, _ in sel.matchers)
                        if fleet and not narrowed:
                            findings.append(Finding(
                                d.file, f"rows[{r_index}].panels[{p_index}].queries[{q_index}].expr", "panel-scale",
                                f"reads {sel.metric} for every {fleet[0].removesuffix('_id')} at every step of the range; "
                                "read a recording rule that keeps few series, select one with "
                                f'{fleet[-1]}="$variable", or make the panel instant'))
    return findings


def route(tree: dict, labels: dict[str, str]) -> list[str]:
    """Contact points an alert with these labels reaches (Alertmanager/Grafana semantics)."""
    return [r["contact_point"] for r in notification_builders.route_settings(tree, labels)]


def check_datasource_alerts_routed(ctx) -> list[Finding]:
    """Grafana raises DatasourceError/DatasourceNoData alerts with the rule's labels;
    they must reach the rewards team, not the catch-all."""

    tree = policy_tree(ctx.definitions)
    findings = []
    for alert in alert_builders.resolved_alerts(ctx.definitions, ctx.config):
        labels = alert_builders.labels(alert, ctx.config)
        for synthetic, state_field, state in (("DatasourceError", "exec_err_state", alert.rule.exec_err_state),
                                              ("DatasourceNoData", "no_data_state", alert.rule.no_data_state)):
            if state not in ("Error", "NoData"):
                continue
            reached = route(tree, {**labels, "alertname": synthetic})
            if reached == [tree["contact_point"]]:
                findings.append(Finding(alert.rule.file, state_field, "datasource-alert-routing",
                                        f"{synthetic} for this rule reaches only the catch-all {tree['contact_point']}; route team=rewards"))
    return findings


def check_runbook_numbers(ctx) -> list[Finding]:
    """The repository copy of the runbooks quotes the definitions' numbers; a stack whose
    alertOverrides change one must open the Grafana copy, which renders its own."""

    config = ctx.config
    if not (config.alert_overrides or config.slo_objectives) or config.runbook_links != "repository":
        return []
    findings = []
    for runbook in sorted(ctx.definitions.runbooks, key=lambda r: r.file):
        for change in overridden_numbers(ctx.definitions, runbook, config.alert_overrides):
            where, _, what = change.partition(": ")
            file, _, line = where.partition(" ")
            findings.append(Finding(file, line, "runbook-numbers",
                                    f"this stack's alertOverrides or sloObjectives change a number the runbook quotes ({what}), but its runbook "
                                    "links open the repository copy, which quotes the defaults; set runbookLinks: grafana "
                                    "(the Reward runbooks dashboard renders the stack's numbers)"))
    return findings


def check_grafana_files(files: dict[str, str], config: StackConfig) -> list[Finding]:
    """The rendered provisioning files as the stack's Grafana version reads them
    (grafana_provisioning.py: fields, required values, uids, `$` interpolation, folder and
    panel links, version-dependent rules)."""

    return [Finding(f.file, f.field, "grafana-provisioning", f.message)
            for f in validate_files(files, config.grafana_version)]


def telegram_sample(count: int) -> dict:
    """Alertmanager-shaped data for `count` firing alerts with the longest summaries allowed."""
    summary = ("Pool p-12 & campaign <c-7> " * 10)[:200]
    alerts = [{
        "status": "firing",
        "labels": {"alertname": "RewardPayoutProviderOutage", "severity": "critical", "provider": f"p{i}"},
        "annotations": {"summary": summary,
                        "runbook_url": "https://runbooks.reward-observability.invalid/elmental/reward-observability/blob/main/runbooks/payout-provider-retry.md#rewardpayoutprovideroutage",
                        "dashboard_url": f"https://grafana.reward-observability.invalid/d/reward-operations?viewPanel=14&i={i}"},
        "startsAt": "2026-11-26T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": f"{i:016x}",
    } for i in range(count)]
    return {"receiver": "rewards-telegram", "status": "firing", "alerts": alerts,
            "groupLabels": {"alertname": "RewardPayoutProviderOutage"}, "commonLabels": {"alertname": "RewardPayoutProviderOutage"},
            "commonAnnotations": {}, "externalURL": "http://alertmanager.invalid"}


def render_template(template_files: list[Path], name: str, data: dict) -> str:
    """Render a template with Alertmanager's own Go-template engine (amtool)."""

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.json"
        path.write_text(json.dumps(data))
        result = subprocess.run(
            ["amtool", "template", "render", *[f"--template.glob={p}" for p in template_files],
             f'--template.text={{{{ template "{name}" . }}}}', f"--template.data={path}"],
            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise ValueError(result.stderr.strip())
    return result.stdout


def html_problems(text: str) -> list[str]:

    class Parser(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.stack, self.errors = [], []

        def handle_starttag(self, tag, attrs):
            if tag not in TELEGRAM_TAGS:
                self.errors.append(f"<{tag}> is not a tag Telegram accepts")
            self.stack.append(tag)

        def handle_endtag(self, tag):
            if not self.stack or self.stack.pop() != tag:
                self.errors.append(f"</{tag}> closes nothing open")

    parser = Parser()
    parser.feed(text)
    parser.close()
    return parser.errors + [f"<{t}> is never closed" for t in parser.stack]


AMTOOL_MISSING = ("check telegram-message skipped: amtool is not on PATH, so the Telegram message for 50 alerts was "
                  "not rendered nor checked for length and HTML. Install it with `make tools` (Debian package "
                  "prometheus-alertmanager) or put amtool from an Alertmanager release on PATH")


def check_telegram_message(ctx) -> tuple[list[Finding], list[str]]:
    if shutil.which("amtool") is None:
        return [], [AMTOOL_MISSING]
    file = ctx.definitions.routing.file
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for t in ctx.definitions.routing.templates:
            path = Path(tmp) / f"{t.name}.tmpl"
            path.write_text(t.text)
            paths.append(path)
        try:
            text = render_template(paths, "reward.message", telegram_sample(50))
        except ValueError as exc:
            return [Finding(file, "templates", "telegram-message", f"the template does not render: {exc}")], []
    findings = []
    if len(text) >= TELEGRAM_LIMIT:
        findings.append(Finding(file, "templates", "telegram-message",
                                f"50 firing alerts render to {len(text)} characters; Telegram refuses over {TELEGRAM_LIMIT}. List fewer alerts in full"))
    for problem in html_problems(text):
        findings.append(Finding(file, "templates", "telegram-message", f"invalid Telegram HTML: {problem}"))
    return findings, []


# ---------------------------------------------------------------- entry points


def lint(definitions: Definitions, config: StackConfig, files: dict[str, str] | None = None) -> LintReport:
    ctx = Context(definitions, config)
    findings: list[Finding] = []
    exceptions: list[Exception_] = []
    for alert in alert_builders.resolved_alerts(definitions, config):
        tree = promql.parse(alert.condition_expr) if alert.rule.is_promql else None
        for check, function in ALERT_CHECKS.items():
            if tree is None and check in PROMQL_CHECKS:
                continue
            if check in alert.rule.lint_exceptions:
                exceptions.append(Exception_(alert.name, check, alert.rule.lint_exceptions[check]))
                continue
            for field, message in function(alert, tree, ctx):
                findings.append(Finding(alert.rule.file, field, check, message))
        for check in alert.rule.lint_exceptions:
            if check not in ALERT_CHECKS:
                findings.append(Finding(alert.rule.file, f"lint_exceptions.{check}", "lint-exception",
                                        f"no such check; known: {', '.join(ALERT_CHECKS)}"))
    findings += check_group_interval(ctx)
    findings += check_policy_intervals(ctx)
    findings += check_datasource_alerts_routed(ctx)
    findings += check_panel_scale(ctx)
    findings += check_runbook_numbers(ctx)
    if files is not None:
        findings += check_grafana_files(files, config)
    telegram, notes = check_telegram_message(ctx)
    findings += telegram
    limits = [f"contact point {name}: Grafana {config.grafana_version} cannot send the fixed body it asks for "
              "(payload_template, Grafana 12.0 and later), so the external service receives Grafana's whole webhook "
              "payload: its root URL, rule and silence links, labels (environment) and annotations. Upgrade Grafana, "
              "or accept that this service sees them (docs/notifications.md)"
              for name in notification_builders.full_payload_webhooks(definitions, config)]
    return LintReport(sorted(set(findings)), exceptions, notes, limits)


def warnings(report: LintReport) -> list[str]:
    """One line per check that did not run (a tool it needs is missing)."""
    return [f"WARNING: {note}" for note in report.notes] + [f"NOTE: {limit}" for limit in report.limits]


def format_report(report: LintReport) -> str:
    lines = [str(f) for f in report.findings]
    if report.exceptions:
        lines.append("Documented exceptions:")
        lines += [f"  {e.alert}: {e.check}: {e.reason}" for e in report.exceptions]
    lines += warnings(report)
    lines.append(f"{len(report.findings)} error(s), {len(report.exceptions)} documented exception(s)"
                 + (f", {len(report.notes)} check(s) skipped" if report.notes else ""))
    return "\n".join(lines)
