"""Dashboard definitions -> Grafana dashboard JSON.

The model is canonical: no `id` or `version` (Grafana assigns and bumps those, and a
provider that sends them shows a diff on every run), keys sorted when serialised, and
datasources referenced by uid through the `datasource` variable.
"""
from __future__ import annotations

from reward_obs.catalog.config import StackConfig
from reward_obs.model.definitions import Dashboard, Panel
from reward_obs.model.names import LOKI_DATASOURCE_TYPE, PROMETHEUS_DATASOURCE_TYPE

SCHEMA_VERSION = 39  # Grafana 11
GRID_WIDTH = 24
ROW_PANEL_ID_BASE = 1000  # row headers get ids far from the contract's panel ids

# Each query language reads through its own datasource variable.
_DATASOURCES = {
    "prometheus": {"type": PROMETHEUS_DATASOURCE_TYPE, "uid": "${datasource}"},
    "loki": {"type": LOKI_DATASOURCE_TYPE, "uid": "${loki}"},
}


def _field_config(panel: Panel) -> dict:
    steps = [{"color": t["color"], "value": t["value"]} for t in panel.thresholds] or [{"color": "green", "value": None}]
    defaults: dict = {"unit": panel.unit, "thresholds": {"mode": "absolute", "steps": steps}}
    if panel.thresholds:
        defaults["color"] = {"mode": "thresholds"}
    if panel.min is not None:
        defaults["min"] = panel.min
    if panel.max is not None:
        defaults["max"] = panel.max
    if panel.no_value is not None:
        defaults["noValue"] = panel.no_value
    overrides = [
        {"matcher": {"id": "byName", "options": name},
         "properties": [{"id": "links", "value": [{"title": link["title"], "url": link["url"], "targetBlank": False}]}]}
        for name, link in sorted(panel.field_links.items())
    ]
    return {"defaults": defaults, "overrides": overrides}


def _options(panel: Panel) -> dict:
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if panel.type == "stat":
        return {"reduceOptions": reduce, "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    if panel.type in ("bargauge", "gauge"):
        return {"reduceOptions": reduce, "orientation": "horizontal", "displayMode": "basic"}
    if panel.type == "logs":
        return {"showTime": True, "sortOrder": "Ascending", "wrapLogMessage": True, "enableLogDetails": True,
                "dedupStrategy": "none", "prettifyLogMessage": False}
    if panel.type == "table":
        return {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": []}}
    if panel.type == "timeseries":
        return {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True, "calcs": ["lastNotNull"]},
                "tooltip": {"mode": "multi", "sort": "desc"}}
    return {}


def _target(panel: Panel, index: int, query) -> dict:
    target = {
        "refId": chr(ord("A") + index),
        "datasource": dict(_DATASOURCES[panel.datasource]),
        "expr": query.expr,
        "legendFormat": query.legend,
    }
    if panel.datasource == "loki":
        target["queryType"] = "instant" if panel.instant else "range"
    else:
        target.update({"range": not panel.instant, "instant": panel.instant})
        if panel.exemplars:
            target["exemplar"] = True
    return target


def panel_json(panel: Panel, x: int, y: int) -> dict:
    out = {
        "id": panel.id,
        "type": panel.type,
        "title": panel.title,
        "description": panel.description,
        "datasource": dict(_DATASOURCES[panel.datasource]),
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": _field_config(panel),
        "options": _options(panel),
        "targets": [_target(panel, i, q) for i, q in enumerate(panel.queries)],
    }
    if panel.transformations:
        out["transformations"] = [{"id": t["id"], "options": t.get("options", {})} for t in panel.transformations]
    return out


def _layout(dashboard: Dashboard) -> list[dict]:
    """Row headers and panels packed left to right, wrapping at 24 columns."""
    out: list[dict] = []
    y = 0
    for index, row in enumerate(dashboard.rows):
        out.append({"id": ROW_PANEL_ID_BASE + index, "type": "row", "title": row.title, "collapsed": False,
                    "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y}, "panels": []})
        y += 1
        x, line_height = 0, 0
        for panel in row.panels:
            if x + panel.width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            out.append(panel_json(panel, x, y))
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return out


def _datasource_variable(name: str, label: str, kind: str, uid: str) -> dict:
    return {"name": name, "label": label, "type": "datasource", "query": kind,
            "current": {"text": uid, "value": uid}, "hide": 0, "refresh": 1, "regex": ""}


def _variables(dashboard: Dashboard, config: StackConfig) -> list[dict]:
    used = {p.datasource for p in dashboard.panels}
    variables = []
    if "prometheus" in used:
        variables.append(_datasource_variable("datasource", "Data source", PROMETHEUS_DATASOURCE_TYPE, config.prometheus_datasource_uid))
    if "loki" in used:
        variables.append(_datasource_variable("loki", "Logs", LOKI_DATASOURCE_TYPE, config.loki_datasource_uid))
    for v in dashboard.variables:
        if v.get("type") == "textbox":
            default = v.get("default", "")
            variables.append({"name": v["name"], "label": v["label"], "type": "textbox", "query": default,
                              "current": {"text": default, "value": default}, "hide": 0})
            continue
        variable = {
            "name": v["name"],
            "label": v["label"],
            "type": "query",
            "datasource": dict(_DATASOURCES["prometheus"]),
            "query": {"query": v["query"], "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "current": {"text": "All", "value": "$__all"},
            "refresh": 2,
            "sort": 1,
            "hide": 0,
        }
        if not v.get("include_all", True):
            # Single value; empty `current` makes Grafana select the first (sorted) value on load.
            variable.update(includeAll=False, multi=False, current={})
            del variable["allValue"]
        variables.append(variable)
    return variables


def dashboard_json(dashboard: Dashboard, config: StackConfig) -> dict:
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": list(dashboard.tags),
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "refresh": dashboard.refresh,
        "time": {"from": dashboard.time_from, "to": "now"},
        "templating": {"list": _variables(dashboard, config)},
        "annotations": {"list": []},
        "links": [{"title": "Runbooks", "type": "link", "url": f"{config.runbook_base_url}/runbooks/README.md",
                   "targetBlank": True, "icon": "doc"}],
        "panels": _layout(dashboard),
    }
