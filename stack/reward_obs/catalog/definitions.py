"""Load every definition file, validate it against its JSON Schema and the others, and
return typed objects. Nothing downstream runs unless everything here is clean."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from reward_obs.catalog import access as access_catalog
from reward_obs.catalog import causes, definition_bounds, internal, recording, rule_limits
from reward_obs.catalog import slos as slo_catalog
from reward_obs.catalog.files import read_text, rel_path, validated
from reward_obs.catalog.runbooks import load_runbooks, panel_id_problems, runbook_problems
from reward_obs.lang import promql
from reward_obs.lang.dashboard_queries import label_values_query
from reward_obs.lang.logql import event_fields, logql_problems, vocabulary
from reward_obs.lang.markdown import anchors
from reward_obs.model.contract import MetricsContract, build_contract
from reward_obs.model.definitions import (
    PARAM,
    AlertRule,
    ContactPoint,
    Dashboard,
    Definitions,
    Panel,
    Query,
    RecordingRule,
    Route,
    Routing,
    Row,
    Runbook,
    Template,
)
from reward_obs.model.errors import ProblemCollector
from reward_obs.model.lookup import required
from reward_obs.model.names import SELECTORS, expand_selectors, rule_uid, selector_refs

REPO_ROOT = Path(__file__).resolve().parents[3]

# ---------------------------------------------------------------- loading


def load_definitions(root: Path = REPO_ROOT) -> Definitions:
    """Every definition under `root`, validated; raises DefinitionError listing all problems."""
    root = Path(root)
    problems = ProblemCollector()

    contract_file = root / "contract" / "metrics.yaml"
    contract_data = validated(root, contract_file, "metrics.schema.json", problems)
    contract = build_contract(contract_data, rel_path(root, contract_file), problems) if contract_data else None

    dashboards = []
    for path in sorted((root / "dashboards").glob("*.yaml")):
        data = validated(root, path, "dashboard.schema.json", problems)
        if data is not None:
            dashboards.append(_dashboard(rel_path(root, path), data))

    alerts = []
    for path in sorted((root / "alert_rules").glob("*.yaml")):
        data = validated(root, path, "alert_rule.schema.json", problems)
        if data is not None:
            alerts.append(_alert(rel_path(root, path), data))
    if contract is not None:  # $platform_causes, $player_causes: the contract's lists
        alerts = [dataclasses.replace(a, expr=causes.expand(a.expr, contract)) for a in alerts]
    slos = slo_catalog.load(root, contract, problems)
    alerts += slo_catalog.alert_rules(slos)

    routing_file = root / "notifications" / "routing.yaml"
    routing_data = validated(root, routing_file, "notifications.schema.json", problems)
    routing = _routing(root, rel_path(root, routing_file), routing_data, problems) if routing_data else None

    if not alerts and not any(p.file.startswith("alert_rules") for p in problems.problems):
        problems.add("alert_rules", "(directory)", "no alert rule definitions found")
    if not dashboards and not any(p.file.startswith("dashboards") for p in problems.problems):
        problems.add("dashboards", "(directory)", "no dashboard definitions found")

    recording_rules = recording.load(root, problems) + slo_catalog.recording_rules(slos, dashboards)
    runbooks = load_runbooks(root)
    access = access_catalog.load(root, alerts, dashboards, runbooks, problems)
    series_contract = None
    if contract is not None:
        # Panels may read recorded series (the fleet-wide panels do); alerts read raw
        # metrics, but for the SLO burn-rate alerts, which read the recorded error ratios.
        series_contract = recording.with_recorded_series(contract, recording_rules)
        _check_dashboards(root, dashboards, series_contract, problems)
        _check_alerts(root, alerts, dashboards, runbooks, series_contract, problems)
        _check_inhibition(alerts, series_contract, problems)
        recording.check(recording_rules, contract, series_contract, dashboards, problems)
    _check_rule_groups(alerts, recording_rules, problems)
    definition_bounds.check(dashboards, alerts, routing, slos, problems)
    rule_limits.problems_of(alerts, recording_rules, problems)
    if routing is not None:
        _check_routing(routing, problems)
    for file, where, message in panel_id_problems(runbooks):
        problems.add(file, where, message)
    if contract is None or routing is None:
        # Each failed to load with its reason recorded (schema: both are required objects);
        # the runbook checks below need a whole Definitions, so report what we have.
        problems.raise_if_any()
    definitions = Definitions(root, required(contract, "contract/metrics.yaml"), tuple(alerts), tuple(dashboards),
                              required(routing, "notifications/routing.yaml"), tuple(recording_rules), runbooks,
                              tuple(slos), series_contract, access)
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
                    queries=tuple(Query(expand_selectors(q["expr"].strip()), q.get("legend", "")) for q in p["queries"]),
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
    data, test_values = internal.unwrap_test_values(data)
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
        expr=expand_selectors(data["expr"].strip()),
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
        internal=tuple(data.get("internal", ())),
        test_values=test_values,
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
        text = read_text(root, path, problems)
        if text is not None:
            templates.append(Template(t["name"], text))
    contact_points = tuple(
        ContactPoint(cp["name"], cp["type"], dict(cp.get("secrets", {})), dict(cp.get("config", {})), dict(cp.get("settings", {})),
                     cp.get("send_resolved", True))
        for cp in data["contact_points"]
    )
    return Routing(file, tuple(templates), contact_points, _route(data["policy"]))


def _check_query(file: str, field: str, expr: str, contract: MetricsContract, problems: ProblemCollector) -> None:
    for message in promql.catalog_problems(expr, contract):
        problems.add(file, field, message)


def _check_selectors(file: str, field: str, expr: str, problems: ProblemCollector) -> None:
    """A %(name)s left after expansion names no selector of model/names.py."""
    for name in sorted(selector_refs(expr)):
        problems.add(file, field, f"%({name})s is not a known selector (known: {', '.join(sorted(SELECTORS))})")


def _check_dashboards(root: Path, dashboards: list[Dashboard], contract: MetricsContract, problems: ProblemCollector) -> None:

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
            metric, label = label_values_query(v["query"])
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
                    _check_selectors(d.file, f"{where}.queries[{q_index}].expr", q.expr, problems)
                    for used in re.findall(r"\$\{?([A-Za-z][A-Za-z0-9_]*)", q.expr):
                        if used not in variables:
                            problems.add(d.file, f"{where}.queries[{q_index}].expr", f"uses undefined variable ${used}")
                    field = f"{where}.queries[{q_index}].expr"
                    if p.datasource == "loki":
                        for message in logql_problems(q.expr, fields, vocab):
                            problems.add(d.file, field, message)
                    else:
                        _check_query(d.file, field, promql.without_grafana_variables(q.expr), contract, problems)


def _check_alerts(root: Path, alerts: list[AlertRule], dashboards: list[Dashboard], runbooks: tuple[Runbook, ...],
                  contract: MetricsContract, problems: ProblemCollector) -> None:
    by_uid = {d.uid: d for d in dashboards}
    names: dict[str, str] = {}

    uids: dict[str, str] = {}
    for a in alerts:
        _check_selectors(a.file, "expr", a.expr, problems)
        if Path(a.file).stem != a.name and not a.slo:
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

            for message in logql_problems(resolved.expr, event_fields(root), vocabulary(root)):
                problems.add(a.file, "expr", message)
        unused = set(a.params) - set(PARAM.findall("\n".join((a.expr, a.summary, a.description))))
        if a.slo:  # an SLO alert's params are the numbers its runbook quotes (catalog/slos.py)
            unused = set()
        for name in sorted(unused):
            problems.add(a.file, f"params.{name}", "is defined but never used")
        for where, message in internal.definition_problems(a):
            problems.add(a.file, where, message)
        runbook = next((r for r in runbooks if r.file == a.runbook_file), None)
        if runbook is None:
            problems.add(a.file, "runbook", f"runbooks/{a.runbook_file} does not exist")
        elif a.runbook_anchor not in anchors(runbook.text):
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


def _check_rule_groups(alerts: list[AlertRule], recording_rules: list[RecordingRule], problems: ProblemCollector) -> None:
    """A Grafana rule group is one object per folder and name: a recording rule group named
    like an alert rule group would overwrite it."""
    alert_groups = {a.group: a.file for a in alerts}
    for file, name in sorted({(r.file, r.group) for r in recording_rules if r.group in alert_groups}):
        problems.add(file, "group", f"{name!r} is also an alert rule group ({alert_groups[name]}); Grafana would keep only one of them")


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
    for route, where in routing.policy.walk():
        if route.contact_point not in names:
            problems.add(routing.file, f"{where}.contact_point", f"{route.contact_point!r} is not a defined contact point")
