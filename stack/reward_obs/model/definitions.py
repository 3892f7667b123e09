"""The definitions as typed objects: alerts, dashboards, recording rules, runbooks,
notification routing, the metrics contract. No I/O; catalog/definitions.py reads and
validates the files into these."""
from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

from reward_obs.model.access import Access
from reward_obs.model.contract import MetricsContract
from reward_obs.model.durations import canonical
from reward_obs.model.numbers import format_number

# Template variables that Prometheus and Grafana themselves provide in annotations.
_TEMPLATE_VARIABLES = {"labels", "value", "externalLabels"}
PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


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
    slo: str = ""  # generated from slos/<slo>.yaml (catalog/slos.py), not written in alert_rules/
    # Fields ("threshold", "for", "params.NAME") whose production value is private; the
    # definition holds a TEST value for each (catalog/internal.py).
    internal: tuple[str, ...] = ()
    test_values: tuple[str, ...] = ()  # fields written as {test_value: N} in the file

    def internal_params(self) -> tuple[str, ...]:
        """Names of the params that are internal."""
        return tuple(f.partition(".")[2] for f in self.internal if f.startswith("params."))

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

    def walk(self, path: str = "policy"):
        """This policy and every one below it, depth first, with where each is."""
        yield self, path
        for i, child in enumerate(self.routes):
            yield from child.walk(f"{path}.routes[{i}]")


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
class Serves:
    panel: str  # dashboard_uid/panel_key[REF]: a panel query that reads the recorded series
    raw: str  # the same answer from raw metrics: what the panel would cost without the rule


@dataclass(frozen=True)
class RecordingRule:
    file: str
    group: str
    interval: str
    record: str
    expr: str
    labels: tuple[str, ...]
    why: str
    serves: tuple[Serves, ...]


@dataclass(frozen=True)
class Section:
    """A runbook's `## ` section."""
    file: str
    title: str
    anchor: str
    parts: dict[str, str]  # `### ` heading -> its text
    text: str = ""  # the whole section as Markdown, heading included


@dataclass(frozen=True)
class Runbook:
    file: str  # its name under runbooks/
    title: str  # the `# ` heading
    intro: str  # the text before the first `## ` section
    sections: tuple[Section, ...]
    text: str = ""  # the whole file


@dataclass(frozen=True)
class Definitions:
    root: Path
    contract: MetricsContract
    alerts: tuple[AlertRule, ...]
    dashboards: tuple[Dashboard, ...]
    routing: Routing
    recording_rules: tuple[RecordingRule, ...] = ()  # recording_rules/*.yaml and the SLOs' rules
    runbooks: tuple[Runbook, ...] = ()  # README.md first, then by file name
    slos: tuple = ()  # model.slo.SLO, from slos/*.yaml
    # Every recorded series (recording_rules/ and the SLOs' rules) added to the contract:
    # what an alert or a panel may read. None when the contract failed to load.
    series_contract: MetricsContract | None = None
    access: Access | None = None  # access/access.yaml: teams, folders by audience

    def dashboard(self, uid: str) -> Dashboard | None:
        return next((d for d in self.dashboards if d.uid == uid), None)

    def alert(self, name: str) -> AlertRule | None:
        return next((a for a in self.alerts if a.name == name), None)

    def runbook(self, file: str) -> Runbook | None:
        return next((r for r in self.runbooks if r.file == file), None)


def substitute(text: str, params: dict, keep: AbstractSet[str] = frozenset()) -> str:
    """Fill $name from params; any other $name that is not in `keep` is an error."""

    def repl(match: re.Match) -> str:
        name = match.group(1)
        if name in params:
            value = params[name]
            return format_number(value) if isinstance(value, (int, float)) else str(value)
        if name in keep:
            return match.group(0)
        raise KeyError(name)

    return PARAM.sub(repl, text)
