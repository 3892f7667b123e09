"""Dashboard panel queries as Grafana sends them to Prometheus: variables filled in and
`$__rate_interval`/`$__interval` computed the way Grafana computes them."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from reward_obs.model.definitions import Dashboard, Definitions
from reward_obs.model.durations import format_duration
from reward_obs.model.lookup import required

MAX_DATA_POINTS = 1100  # a full-width panel on a 1920px screen
# Grafana's interval rounding (roundInterval), in seconds: up to the bound, use the value.
_ROUND = ((0.015, 0.01), (0.035, 0.02), (0.075, 0.05), (0.15, 0.1), (0.35, 0.2), (0.75, 0.5), (1.5, 1), (3.5, 2),
          (7.5, 5), (12.5, 10), (17.5, 15), (25, 20), (45, 30), (90, 60), (210, 120), (450, 300), (750, 600),
          (1050, 900), (1500, 1200), (2700, 1800), (5400, 3600), (9000, 7200), (16200, 10800), (32400, 21600),
          (86400, 43200), (604800, 86400))


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel_id: int
    panel_key: str
    ref: str
    expr: str  # with Grafana variables
    instant: bool = False  # the panel asks for the latest value only (one evaluation)


def panel_queries(definitions: Definitions, dashboard_uid: str | None = None) -> list[PanelQuery]:
    """Every PromQL panel query (panels on another data source, such as logs, are left out)."""
    return dashboards_panel_queries(definitions.dashboards, dashboard_uid)


def dashboards_panel_queries(dashboards: Iterable[Dashboard], dashboard_uid: str | None = None) -> list[PanelQuery]:
    """panel_queries over dashboards not yet gathered into a Definitions (the catalog's checks)."""
    return [PanelQuery(d.uid, p.id, p.key, chr(ord("A") + i), q.expr, p.instant)
            for d in dashboards if dashboard_uid in (None, d.uid)
            for p in d.panels if getattr(p, "datasource", "prometheus") == "prometheus"
            for i, q in enumerate(p.queries)]


def round_interval(seconds: float) -> float:
    for bound, value in _ROUND:
        if seconds <= bound:
            return value
    return 604800


def grafana_interval(range_seconds: float, scrape_seconds: float, max_points: int = MAX_DATA_POINTS) -> int:
    """$__interval (the query step) for a time range: range / max points, rounded, and
    never below the data source's scrape interval."""
    return int(max(round_interval(range_seconds / max_points), scrape_seconds))


def rate_interval(interval_seconds: float, scrape_seconds: float) -> int:
    """$__rate_interval = max($__interval + scrape interval, 4 * scrape interval)."""
    return int(max(interval_seconds + scrape_seconds, 4 * scrape_seconds))


def label_values_query(query: str) -> tuple[str, str]:
    """(metric, label) of a Grafana `label_values(metric, label)` variable query."""
    metric, _, label = query[len("label_values("):-1].rpartition(",")
    return metric.strip(), label.strip()


def default_variables(definitions: Definitions, dashboard_uid: str, query) -> dict[str, str]:
    """The values Grafana gives a dashboard's variables on load: All (.*) for a multi-value
    variable, the first sorted value for a single-select one. `query(expr)` runs an
    instant PromQL query (a real Prometheus) and returns its result list."""
    values = {}
    for v in required(definitions.dashboard(dashboard_uid), f"dashboard {dashboard_uid!r}").variables:
        if "query" not in v:
            continue
        if v.get("include_all", True):
            values[v["name"]] = ".*"
            continue
        metric, label = label_values_query(v["query"])
        found = sorted(r["metric"].get(label, "") for r in query(f"group by ({label}) ({metric})"))
        if not found:
            raise RuntimeError(f"variable ${v['name']}: {v['query']} has no value in this Prometheus")
        values[v["name"]] = found[0]
    return values


def substitute(expr: str, interval_seconds: int, rate_interval_seconds: int, variables: dict[str, str] | None = None) -> str:
    """The query text Grafana sends: `$campaign`/`$provider` set to All (.*) unless given."""
    values = {"campaign": ".*", "provider": ".*", **(variables or {})}
    expr = expr.replace("$__rate_interval", format_duration(rate_interval_seconds))
    expr = expr.replace("$__interval", format_duration(interval_seconds))
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: values[m.group(1)], expr)
