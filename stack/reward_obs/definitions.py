"""Load every definition file, validate it against its JSON Schema and the others, and
return typed objects. Nothing downstream runs unless everything here is clean."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

from . import promql
from .contract import MetricsContract, build_contract
from .durations import canonical
from .errors import ProblemCollector
from .runbook_index import anchors

REPO_ROOT = Path(__file__).resolve().parents[2]

# Template variables that Prometheus and Grafana themselves provide in annotations.
_TEMPLATE_VARIABLES = {"labels", "value", "externalLabels"}
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


# The label that marks the always-firing heartbeat (routed to the external dead-man service).
HEARTBEAT_LABEL = "heartbeat"


@dataclass(frozen=True)
class AlertRule:
    file: str
    name: str
    group: str
    severity: str
    summary: str
    description: str
    runbook_file: str
    runbook_anchor: str
    dashboard_uid: str
    panel_key: str
    expr: str  # with $params
    op: str
    threshold: float
    for_: str
    params: dict
    labels: dict
    no_data_state: str
    exec_err_state: str
    lint_exceptions: dict
    datasource: str = "prometheus"  # or "loki": a log-based rule, evaluated by Grafana only
    inhibited_by: tuple[str, ...] = ()  # alerts whose firing holds this one's notifications back

    @property
    def is_promql(self) -> bool:
        return self.datasource == "prometheus"

    @property
    def is_heartbeat(self) -> bool:
        """The always-firing rule an external dead-man service listens for."""
        return self.labels.get(HEARTBEAT_LABEL) == "true"

    def resolved(self, override: dict | None = None) -> ResolvedAlert:
        """The rule with its parameters and per-stack overrides filled in."""
        override = override or {}
        params = {**self.params, **override.get("params", {})}
        return ResolvedAlert(
            rule=self,
            expr=substitute(self.expr, params),
            threshold=override.get("threshold", self.threshold),
            for_=canonical(override.get("for", self.for_)),
            summary=substitute(self.summary, params, keep=_TEMPLATE_VARIABLES),
            description=substitute(self.description, params, keep=_TEMPLATE_VARIABLES),
            params=params,
        )


@dataclass(frozen=True)
class ResolvedAlert:
    rule: AlertRule
    expr: str
    threshold: float
    for_: str
    summary: str
    description: str
    params: dict

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def condition_expr(self) -> str:
        """The whole alert as one PromQL expression: value expression and threshold."""
        return f"({self.expr.strip()}) {self.rule.op} {format_number(self.threshold)}"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    id: int
    key: str
    title: str
    type: str
    unit: str
    width: int
    height: int
    description: str
    queries: tuple[Query, ...]
    thresholds: tuple[dict, ...] = ()
    min: float | None = None
    max: float | None = None
    datasource: str = "prometheus"  # or "loki": the queries are LogQL over reward events
    no_value: str | None = None
    exemplars: bool = False
    field_links: dict = field(default_factory=dict)
    instant: bool = False
    transformations: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    file: str
    uid: str
    title: str
    folder: str
    description: str
    tags: tuple[str, ...]
    refresh: str
    time_from: str
    variables: tuple[dict, ...]
    rows: tuple[Row, ...]

    @property
    def panels(self) -> tuple[Panel, ...]:
        return tuple(p for row in self.rows for p in row.panels)

    def panel(self, key: str) -> Panel | None:
        return next((p for p in self.panels if p.key == key), None)


@dataclass(frozen=True)
class ContactPoint:
    name: str
    type: str
    secrets: dict  # setting -> stack secret config key
    config: dict  # setting -> stack config key
    settings: dict
    send_resolved: bool = True  # the heartbeat's dead-man service must not take a "resolved" as a ping


@dataclass(frozen=True)
class Route:
    contact_point: str
    matchers: dict = field(default_factory=dict)
    group_by: tuple[str, ...] = ()
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None
    continue_: bool = False
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True)
class Template:
    name: str
    text: str


@dataclass(frozen=True)
class Routing:
    file: str
    templates: tuple[Template, ...]
    contact_points: tuple[ContactPoint, ...]
    policy: Route


@dataclass(frozen=True)
class Definitions:
    root: Path
    contract: MetricsContract
    alerts: tuple[AlertRule, ...]
    dashboards: tuple[Dashboard, ...]
    routing: Routing

    def dashboard(self, uid: str) -> Dashboard | None:
        return next((d for d in self.dashboards if d.uid == uid), None)

    def alert(self, name: str) -> AlertRule | None:
        return next((a for a in self.alerts if a.name == name), None)


def format_number(value: float) -> str:
    """Shortest exact text of a threshold: 3, 0.1, 1e-06."""
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def substitute(text: str, params: dict, keep: set[str] = frozenset()) -> str:
    """Fill $name from params; any other $name that is not in `keep` is an error."""

    def repl(match: re.Match) -> str:
        name = match.group(1)
        if name in params:
            value = params[name]
            return format_number(value) if isinstance(value, (int, float)) else str(value)
        if name in keep:
            return match.group(0)
        raise KeyError(name)

    return _PARAM.sub(repl, text)


# ---------------------------------------------------------------- loading


def _schema(root: Path, name: str) -> dict:
    return json.loads((root / "schemas" / name).read_text(encoding="utf-8"))


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def json_path(error: jsonschema.ValidationError) -> str:
    """Where in a document a schema error is: `rows[0].panels[2].unit`."""
    parts = []
    for part in error.absolute_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


def _read_yaml(root: Path, path: Path, problems: ProblemCollector):
    """Parsed YAML, or None with the reason recorded (unreadable, invalid or empty)."""
    rel = _rel(root, path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.add(rel, "(file)", f"cannot read: {exc.strerror}")
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        problems.add(rel, where, f"not valid YAML: {getattr(exc, 'problem', exc)}")
        return None
    if data is None:
        problems.add(rel, "(file)", "is empty")
    return data


def _validated(root: Path, path: Path, schema_name: str, problems: ProblemCollector):
    """The file's data if it matches its schema, else None (problems recorded)."""
    data = _read_yaml(root, path, problems)
    if data is None:
        return None
    validator = jsonschema.Draft202012Validator(_schema(root, schema_name))
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    for error in errors:
        problems.add(_rel(root, path), json_path(error), error.message)
    return None if errors else data


def load_definitions(root: Path = REPO_ROOT) -> Definitions:
    """Every definition under `root`, validated; raises DefinitionError listing all problems."""
    root = Path(root)
    problems = ProblemCollector()

    contract_file = root / "contract" / "metrics.yaml"
    contract_data = _validated(root, contract_file, "metrics.schema.json", problems)
    contract = build_contract(contract_data, _rel(root, contract_file), problems) if contract_data else None

    dashboards = []
    for path in sorted((root / "dashboards").glob("*.yaml")):
        data = _validated(root, path, "dashboard.schema.json", problems)
        if data is not None:
            dashboards.append(_dashboard(_rel(root, path), data))

    alerts = []
    for path in sorted((root / "alert_rules").glob("*.yaml")):
        data = _validated(root, path, "alert_rule.schema.json", problems)
        if data is not None:
            alerts.append(_alert(_rel(root, path), data))

    routing_file = root / "notifications" / "routing.yaml"
    routing_data = _validated(root, routing_file, "notifications.schema.json", problems)
    routing = _routing(root, _rel(root, routing_file), routing_data, problems) if routing_data else None

    if not alerts and not any(p.file.startswith("alert_rules") for p in problems.problems):
        problems.add("alert_rules", "(directory)", "no alert rule definitions found")
    if not dashboards and not any(p.file.startswith("dashboards") for p in problems.problems):
        problems.add("dashboards", "(directory)", "no dashboard definitions found")

    from . import recording  # late import: recording reads definitions' loaders

    recording_rules = recording.load(root, problems)
    if contract is not None:
        # Panels may read recorded series (the fleet-wide panels do); alerts read raw metrics.
        _check_dashboards(root, dashboards, recording.with_recorded_series(contract, recording_rules), problems)
        _check_alerts(root, alerts, dashboards, contract, problems)
        _check_inhibition(alerts, contract, problems)
        recording.check(recording_rules, contract, dashboards, problems)
    if routing is not None:
        _check_routing(routing, problems)
    definitions = Definitions(root, contract, tuple(alerts), tuple(dashboards), routing)
    if contract is not None:
        from .runbooks import (
            runbook_problems,  # late import: runbooks reads Definitions
        )

        for file, where, message in runbook_problems(root, definitions):
            problems.add(file, where, message)
    problems.raise_if_any()
    return definitions


def _dashboard(file: str, data: dict) -> Dashboard:
    rows = tuple(
        Row(
            title=row["title"],
            panels=tuple(
                Panel(
                    id=p["id"],
                    key=p["key"],
                    title=p["title"],
                    type=p["type"],
                    unit=p["unit"],
                    width=p["width"],
                    height=p.get("height", 8),
                    description=p["description"],
                    queries=tuple(Query(q["expr"].strip(), q.get("legend", "")) for q in p["queries"]),
                    thresholds=tuple(p.get("thresholds", ())),
                    min=p.get("min"),
                    max=p.get("max"),
                    datasource=p.get("datasource", "prometheus"),
                    no_value=p.get("no_value"),
                    exemplars=p.get("exemplars", False),
                    field_links=dict(p.get("field_links", {})),
                    instant=p.get("instant", False),
                    transformations=tuple(p.get("transformations", ())),
                )
                for p in row["panels"]
            ),
        )
        for row in data["rows"]
    )
    return Dashboard(
        file=file,
        uid=data["uid"],
        title=data["title"],
        folder=data["folder"],
        description=data.get("description", ""),
        tags=tuple(data.get("tags", ())),
        refresh=data.get("refresh", "1m"),
        time_from=data.get("time_from", "now-6h"),
        variables=tuple(data.get("variables", ())),
        rows=rows,
    )


def _alert(file: str, data: dict) -> AlertRule:
    runbook_file, _, anchor = data["runbook"].partition("#")
    dashboard_uid, _, panel_key = data["panel"].partition("/")
    return AlertRule(
        file=file,
        name=data["name"],
        group=data["group"],
        severity=data["severity"],
        summary=data["summary"].strip(),
        description=" ".join(data["description"].split()),
        runbook_file=runbook_file,
        runbook_anchor=anchor,
        dashboard_uid=dashboard_uid,
        panel_key=panel_key,
        expr=data["expr"].strip(),
        op=data["condition"]["op"],
        threshold=data["condition"]["threshold"],
        for_=data["for"],
        params=dict(data.get("params", {})),
        labels=dict(data.get("labels", {})),
        no_data_state=data["no_data_state"],
        exec_err_state=data["exec_err_state"],
        lint_exceptions=dict(data.get("lint_exceptions", {})),
        datasource=data.get("datasource", "prometheus"),
        inhibited_by=tuple(data.get("inhibited_by", ())),
    )


def _route(data: dict) -> Route:
    return Route(
        contact_point=data["contact_point"],
        matchers=dict(data.get("matchers", {})),
        group_by=tuple(data.get("group_by", ())),
        group_wait=data.get("group_wait"),
        group_interval=data.get("group_interval"),
        repeat_interval=data.get("repeat_interval"),
        continue_=data.get("continue", False),
        routes=tuple(_route(r) for r in data.get("routes", ())),
    )


def _routing(root: Path, file: str, data: dict, problems: ProblemCollector) -> Routing:
    templates = []
    for i, t in enumerate(data["templates"]):
        path = root / "notifications" / t["file"]
        if not path.is_file():
            problems.add(file, f"templates[{i}].file", f"{t['file']} does not exist")
            continue
        templates.append(Template(t["name"], path.read_text(encoding="utf-8")))
    contact_points = tuple(
        ContactPoint(cp["name"], cp["type"], dict(cp.get("secrets", {})), dict(cp.get("config", {})), dict(cp.get("settings", {})),
                     cp.get("send_resolved", True))
        for cp in data["contact_points"]
    )
    return Routing(file, tuple(templates), contact_points, _route(data["policy"]))


def _check_query(file: str, field: str, expr: str, contract: MetricsContract, problems: ProblemCollector) -> None:
    for message in promql.catalog_problems(expr, contract):
        problems.add(file, field, message)


def _check_dashboards(root: Path, dashboards: list[Dashboard], contract: MetricsContract, problems: ProblemCollector) -> None:
    from .logql import event_fields, logql_problems, vocabulary

    fields, vocab = event_fields(root), vocabulary(root)
    seen_uids: dict[str, str] = {}
    for d in dashboards:
        if d.uid in seen_uids:
            problems.add(d.file, "uid", f"duplicate dashboard uid {d.uid!r} (also in {seen_uids[d.uid]})")
        seen_uids[d.uid] = d.file
        ids: set[int] = set()
        keys: set[str] = set()
        variables = {"datasource", "loki"} | {v["name"] for v in d.variables}
        for v_index, v in enumerate(d.variables):
            if "query" not in v:
                continue
            inner = v["query"][len("label_values(") : -1]
            metric, _, label = inner.rpartition(",")
            metric, label = metric.strip(), label.strip()
            if contract.series_metric(metric) is None or label not in contract.series_labels(metric):
                problems.add(d.file, f"variables[{v_index}].query", f"{metric!r} has no label {label!r} in the metrics contract")
        for r_index, row in enumerate(d.rows):
            for p_index, p in enumerate(row.panels):
                where = f"rows[{r_index}].panels[{p_index}]"
                if p.id in ids:
                    problems.add(d.file, f"{where}.id", f"duplicate panel id {p.id}")
                if p.key in keys:
                    problems.add(d.file, f"{where}.key", f"duplicate panel key {p.key!r}")
                ids.add(p.id)
                keys.add(p.key)
                for q_index, q in enumerate(p.queries):
                    for used in re.findall(r"\$\{?([A-Za-z][A-Za-z0-9_]*)", q.expr):
                        if used not in variables:
                            problems.add(d.file, f"{where}.queries[{q_index}].expr", f"uses undefined variable ${used}")
                    field = f"{where}.queries[{q_index}].expr"
                    if p.datasource == "loki":
                        for message in logql_problems(q.expr, fields, vocab):
                            problems.add(d.file, field, message)
                    else:
                        _check_query(d.file, field, promql.without_grafana_variables(q.expr), contract, problems)


def _check_alerts(root: Path, alerts: list[AlertRule], dashboards: list[Dashboard], contract: MetricsContract, problems: ProblemCollector) -> None:
    by_uid = {d.uid: d for d in dashboards}
    names: dict[str, str] = {}
    from .builders.ids import rule_uid  # late import: ids depends on nothing here

    uids: dict[str, str] = {}
    for a in alerts:
        if Path(a.file).stem != a.name:
            problems.add(a.file, "name", f"the file must be named {a.name}.yaml, after the alert it defines")
        if a.name in names:
            problems.add(a.file, "name", f"duplicate alert {a.name!r} (also in {names[a.name]})")
        names[a.name] = a.file
        uid = rule_uid(a.name)
        if uid in uids and uids[uid] != a.name:
            problems.add(a.file, "name", f"rule uid {uid!r} collides with {uids[uid]}")
        uids[uid] = a.name
        try:
            resolved = a.resolved()
        except KeyError as exc:
            problems.add(a.file, "params", f"${exc.args[0]} is used but not defined under params")
            continue
        except ValueError as exc:
            problems.add(a.file, "for", str(exc))
            continue
        if "$" in resolved.expr:
            problems.add(a.file, "expr", "has a $ left after parameter substitution")
        if a.is_promql:
            _check_query(a.file, "expr", resolved.expr, contract, problems)
            try:
                promql.parse(resolved.condition_expr)
            except ValueError as exc:
                problems.add(a.file, "condition", str(exc))
        else:
            from .logql import event_fields, logql_problems, vocabulary

            for message in logql_problems(resolved.expr, event_fields(root), vocabulary(root)):
                problems.add(a.file, "expr", message)
        unused = set(a.params) - set(_PARAM.findall("\n".join((a.expr, a.summary, a.description))))
        for name in sorted(unused):
            problems.add(a.file, f"params.{name}", "is defined but never used")
        runbook = root / "runbooks" / a.runbook_file
        if not runbook.is_file():
            problems.add(a.file, "runbook", f"runbooks/{a.runbook_file} does not exist")
        elif a.runbook_anchor not in anchors(runbook):
            problems.add(a.file, "runbook", f"runbooks/{a.runbook_file} has no heading with anchor #{a.runbook_anchor}")
        dashboard = by_uid.get(a.dashboard_uid)
        if dashboard is None:
            problems.add(a.file, "panel", f"no dashboard with uid {a.dashboard_uid!r}")
        elif dashboard.panel(a.panel_key) is None:
            problems.add(a.file, "panel", f"dashboard {a.dashboard_uid!r} has no panel with key {a.panel_key!r}")


def _check_inhibition(alerts: list[AlertRule], contract: MetricsContract, problems: ProblemCollector) -> None:
    """A source must exist and be a PromQL alert; the target must carry every label of the
    source's result, or one provider's outage would silence every provider's alerts."""
    by_name = {a.name: a for a in alerts}
    for a in alerts:
        for i, source_name in enumerate(a.inhibited_by):
            where = f"inhibited_by[{i}]"
            source = by_name.get(source_name)
            if source is None:
                problems.add(a.file, where, f"{source_name!r} is not a defined alert")
                continue
            if source_name == a.name:
                problems.add(a.file, where, "an alert cannot inhibit itself")
                continue
            if not (source.is_promql and a.is_promql):
                problems.add(a.file, where, "inhibition is between PromQL alerts (both Grafana and Alertmanager receive them)")
                continue
            try:
                source_labels = promql.output_labels(promql.parse(source.resolved().expr), contract)
                target_labels = promql.output_labels(promql.parse(a.resolved().expr), contract)
            except (KeyError, ValueError):
                continue  # reported by _check_alerts
            missing = sorted(source_labels - target_labels)
            if missing:
                problems.add(a.file, where, f"{source_name} fires per {', '.join(sorted(source_labels))}, but this alert has no "
                             f"{', '.join(missing)}: one {missing[0]}'s fault would silence this alert for all of them")


def _check_routing(routing: Routing, problems: ProblemCollector) -> None:
    names = [cp.name for cp in routing.contact_points]
    for name in {n for n in names if names.count(n) > 1}:
        problems.add(routing.file, "contact_points", f"duplicate contact point {name!r}")
    for t in routing.templates:
        if "$" in t.text:
            problems.add(routing.file, f"templates.{t.name}", "contains '$': Grafana's file provisioning would read it as an environment variable; use .Labels/.Annotations instead of $labels")
    template_names = [t.name for t in routing.templates]
    for name in {n for n in template_names if template_names.count(n) > 1}:
        problems.add(routing.file, "templates", f"duplicate template {name!r}")

    def walk(route: Route, where: str) -> None:
        if route.contact_point not in names:
            problems.add(routing.file, f"{where}.contact_point", f"{route.contact_point!r} is not a defined contact point")
        for i, child in enumerate(route.routes):
            walk(child, f"{where}.routes[{i}]")

    walk(routing.policy, "policy")
