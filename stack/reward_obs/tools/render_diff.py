"""`reward-obs diff BASE_DIR HEAD_DIR`: what a change does to alerting, in words a
reviewer reads in a pull request, from two offline renders. Never prints a secret, nor
the value of an alert's internal field (catalog/internal.py): for those it says
"internal parameter changed", and shows the alert's query with its numbers masked."""
from __future__ import annotations

import difflib
import json
from pathlib import Path

import yaml

from reward_obs.catalog.definitions import load_definitions
from reward_obs.catalog.internal import internal_fields, mask_numbers
from reward_obs.sinks import files

RULES = files.RULES_FILE
CONTACT_POINTS = files.CONTACT_POINTS_FILE
POLICIES = files.POLICIES_FILE
TEMPLATES = files.TEMPLATES_FILE
DASHBOARDS = files.DASHBOARDS_DIR
# The recording rules live in exactly one of these, as the stack's recordingRules says.
PROMETHEUS_RECORDING = files.PROMETHEUS_RECORDING_FILE
GRAFANA_RECORDING = files.GRAFANA_RECORDING_FILE
# Contact point settings that hold credentials: their values are never printed.
SECRET_SETTINGS = {"bottoken", "url", "password", "token", "authorization_credentials", "basicAuthPassword", "apiKey", "secret"}
_OPS = {"gt": ">", "lt": "<", "gte": ">=", "lte": "<="}


def _yaml(root: Path, rel: str):
    path = root / rel
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None


def alerts(root: Path) -> dict[str, dict]:
    """Alert name -> the fields a reviewer cares about."""
    data = _yaml(root, RULES) or {"groups": []}
    out = {}
    for group in data["groups"]:
        for rule in group["rules"]:
            query, condition = rule["data"][0]["model"], rule["data"][-1]["model"]
            evaluator = condition.get("conditions", [{}])[0].get("evaluator", {})
            out[rule["title"]] = {
                "group": group["name"],
                "query": query.get("expr", ""),
                "threshold": f"{_OPS.get(evaluator.get('type'), evaluator.get('type'))} {evaluator.get('params', ['?'])[0]}",
                "for": rule.get("for"),
                "severity": rule.get("labels", {}).get("severity"),
                "labels": {k: v for k, v in rule.get("labels", {}).items() if k != "severity"},
                "runbook": rule.get("annotations", {}).get("runbook_url"),
                "summary": rule.get("annotations", {}).get("summary"),
                "no data": rule.get("noDataState"),
                "on error": rule.get("execErrState"),
                "paused": rule.get("isPaused"),
                "routing": rule.get("notification_settings", {}).get("receiver", "(policy tree)"),
            }
    return out


def panels(root: Path) -> dict[tuple[str, int], dict]:
    out = {}
    # One directory per folder (sinks/files.py): every dashboard below DASHBOARDS.
    for path in sorted((root / DASHBOARDS).rglob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board.get("panels", []):
            if panel.get("type") == "row":
                continue
            out[(board["uid"], panel["id"])] = {
                "title": panel.get("title"),
                "type": panel.get("type"),
                "queries": [t.get("expr", "") for t in panel.get("targets", [])],
                "unit": panel.get("fieldConfig", {}).get("defaults", {}).get("unit"),
                "thresholds": panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps"),
                "content": panel.get("options", {}).get("content"),
            }
    return out


def recorded_series(root: Path) -> dict[str, dict]:
    """Recorded series name -> its expression and which server evaluates it."""
    out = {}
    for group in (_yaml(root, PROMETHEUS_RECORDING) or {}).get("groups", []):
        for rule in group["rules"]:
            out[rule["record"]] = {"expr": rule["expr"], "evaluated by": "Prometheus"}
    for group in (_yaml(root, GRAFANA_RECORDING) or {}).get("groups", []):
        for rule in group["rules"]:
            out[rule["record"]["metric"]] = {"expr": rule["data"][0]["model"].get("expr", ""), "evaluated by": "Grafana"}
    return out


def contact_points(root: Path) -> dict[str, dict]:
    data = _yaml(root, CONTACT_POINTS) or {"contactPoints": []}
    return {cp["name"]: {"type": cp["receivers"][0]["type"], "settings": cp["receivers"][0].get("settings", {})}
            for cp in data["contactPoints"]}


def policy_lines(root: Path) -> list[str]:
    data = _yaml(root, POLICIES)
    if data is None:
        return ["(no policy tree: rules route themselves)"]

    def walk(node, depth):
        matchers = ", ".join(f"{label}{op}{v}" for label, op, v in node.get("object_matchers", [])) or "(root)"
        extras = ", ".join(f"{k}={node[k]}" for k in ("group_by", "group_wait", "group_interval", "repeat_interval", "continue") if k in node)
        yield f"{'  ' * depth}{matchers} -> {node['receiver']}" + (f" [{extras}]" if extras else "")
        for child in node.get("routes", []):
            yield from walk(child, depth + 1)

    return [line for policy in data["policies"] for line in walk(policy, 0)]


def _value(key: str, value) -> str:
    if key in SECRET_SETTINGS:
        return "(secret)"
    return json.dumps(value) if not isinstance(value, str) else value


def _query_diff(old: str, new: str) -> list[str]:
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
    body = [line for line in lines if not line.startswith(("---", "+++", "@@"))]
    return ["    ```diff", *[f"    {line}" for line in body], "    ```"]


def _masked(alert: dict, internal: tuple[str, ...]) -> dict:
    """An alert's reviewer fields with its internal values hidden: the threshold's or
    `for`'s value when internal, and every number of its query and summary when a param is."""
    out = dict(alert)
    if "threshold" in internal:
        out["threshold"] = alert["threshold"].split(" ")[0] + " (internal)"
    if "for" in internal:
        out["for"] = "(internal)"
    if any(f.startswith("params.") for f in internal):
        out["query"] = mask_numbers(alert["query"] or "", "duration" in internal)
        out["summary"] = mask_numbers(alert["summary"] or "", "duration" in internal)
    return out


def _alert_changed(name: str, old: dict, new: dict, keys: tuple[str, ...], internal: tuple[str, ...]) -> list[str]:
    if not internal:
        return _changed(name, old, new, keys, "query")
    mo, mn = _masked(old, internal), _masked(new, internal)
    lines = _changed(name, mo, mn, keys, "query")
    if any(old[k] != new[k] for k in (*keys, "query")) and all(mo[k] == mn[k] for k in (*keys, "query")):
        return [f"- **changed** `{name}`: internal parameter changed"]
    if lines and any(old[k] != new[k] and mo[k] == mn[k] for k in (*keys, "query")):
        lines[0] += "; internal parameter changed"
    return lines


def _changed(name: str, old: dict, new: dict, keys: tuple[str, ...], query_key: str) -> list[str]:
    """The "changed" line of one alert or recorded series (fields old → new, and whether
    the query changed) and the query's diff; nothing when it did not change."""
    changes = [f"{key} {_value(key, old[key])} → {_value(key, new[key])}" for key in keys if old[key] != new[key]]
    query_changed = old[query_key] != new[query_key]
    if query_changed:
        changes.append("query changed")
    if not changes:
        return []
    return [f"- **changed** `{name}`: " + "; ".join(changes),
            *(_query_diff(old[query_key], new[query_key]) if query_changed else [])]


def _compared(old: dict, new: dict, added, removed, changed) -> list[str]:
    """Lines for the keys only `new` has (added(key, item)), only `old` has
    (removed(key, item)) and both have (changed(key, old item, new item): a list), each sorted."""
    lines = [added(key, new[key]) for key in sorted(set(new) - set(old))]
    lines += [removed(key, old[key]) for key in sorted(set(old) - set(new))]
    for key in sorted(set(old) & set(new)):
        lines += changed(key, old[key], new[key])
    return lines


def _panel_changed(key, o: dict, n: dict) -> list[str]:
    changed = [f for f in ("title", "type", "queries", "unit", "thresholds", "content") if o[f] != n[f]]
    return [f"- **changed** panel {key[1]} \"{n['title']}\" on `{key[0]}`: {', '.join(changed)}"] if changed else []


def _contact_point_changed(name: str, old: dict, new: dict) -> list[str]:
    o, n = old["settings"], new["settings"]
    changes = [f"{k} {_value(k, o.get(k))} → {_value(k, n.get(k))}" for k in sorted(set(o) | set(n)) if o.get(k) != n.get(k)]
    if old["type"] != new["type"]:
        changes.insert(0, f"type {old['type']} → {new['type']}")
    return [f"- **changed** contact point `{name}`: " + "; ".join(changes)] if changes else []


def changed_slos(base: Path, head: Path) -> list[str]:
    """SLOs (the `slo` label of their generated alerts) whose burn-rate alerts were added,
    removed or changed: a new objective rewrites every threshold in their queries."""
    old, new = alerts(base), alerts(head)
    names = set()
    for name in set(old) | set(new):
        o, n = old.get(name), new.get(name)
        if o == n:
            continue
        names |= {a["labels"]["slo"] for a in (o, n) if a and a["labels"].get("slo")}
    return sorted(names)


# What the comment tells a reviewer to run (docs/slo-calibration.md); the workflow appends
# the report itself where it has a Prometheus to ask.
SLO_REPORT_COMMAND = "reward-obs slo report --prometheus URL --from now-28d --to now"


def _slo_section(names: list[str]) -> str:
    only = " ".join(f"--slo {n}" for n in names)
    return ("### SLOs\n"
            + "\n".join(f"- **objective or burn rules changed** `{n}`" for n in names)
            + "\n\nBefore merging, see what these rules would have raised on real traffic: on a checkout of this "
              "branch, against the stack's Prometheus (docs/slo-calibration.md),\n\n"
              f"    {SLO_REPORT_COMMAND} {only}\n\n"
              "and compare it with the same command on the base branch: pages and tickets per tier, the budget consumed "
              "and the objective the period met with margin, per provider.")


def diff(base: Path, head: Path, internal: dict[str, tuple[str, ...]] | None = None) -> str:
    """`internal`: alert name -> its internal fields, whose values are never printed."""
    sections: list[str] = []
    internal = internal or {}

    def added(name, a):
        a = _masked(a, internal.get(name, ()))
        return f"- **added** `{name}` ({a['severity']}, {a['threshold']}, for {a['for']}), runbook {a['runbook']}"

    lines = _compared(
        alerts(base), alerts(head),
        added,
        lambda name, a: f"- **removed** `{name}` ({a['severity']})",
        lambda name, o, n: _alert_changed(name, o, n, ("threshold", "for", "severity", "labels", "runbook", "summary",
                                                       "no data", "on error", "paused", "group", "routing"),
                                          internal.get(name, ())))
    if lines:
        sections.append("### Alerts\n" + "\n".join(lines))

    lines = _compared(
        panels(base), panels(head),
        lambda key, p: f"- **added** panel {key[1]} \"{p['title']}\" on `{key[0]}`",
        lambda key, p: f"- **removed** panel {key[1]} \"{p['title']}\" from `{key[0]}`",
        _panel_changed)
    if lines:
        sections.append("### Dashboard panels\n" + "\n".join(lines))

    lines = _compared(
        recorded_series(base), recorded_series(head),
        lambda name, r: f"- **added** `{name}` (evaluated by {r['evaluated by']})",
        lambda name, r: f"- **removed** `{name}`: a panel that reads it shows no data",
        lambda name, o, n: _changed(name, o, n, ("evaluated by",), "expr"))
    if lines:
        sections.append("### Recording rules\n" + "\n".join(lines))

    lines = _compared(
        contact_points(base), contact_points(head),
        lambda name, c: f"- **added** contact point `{name}` ({c['type']})",
        lambda name, c: f"- **removed** contact point `{name}`",
        _contact_point_changed)
    old_tree, new_tree = policy_lines(base), policy_lines(head)
    if old_tree != new_tree:
        lines.append("- **notification policy changed**:")
        lines += ["  ```diff", *[f"  {line}" for line in difflib.unified_diff(old_tree, new_tree, lineterm="", n=1)
                                 if not line.startswith(("---", "+++"))], "  ```"]
    if (_yaml(base, TEMPLATES) or {}) != (_yaml(head, TEMPLATES) or {}):
        lines.append("- **message template changed**")
    if lines:
        sections.append("### Routing and contact points\n" + "\n".join(lines))

    slos = changed_slos(base, head)
    if slos:
        sections.append(_slo_section(slos))

    if not sections:
        return "No change to alerts, recording rules, dashboards or routing."
    return "\n\n".join(sections)


def cmd_diff(args) -> int:
    for root in (args.base, args.head):
        if not (root / "grafana").is_dir():
            print(f"reward-obs diff: {root} is not a render (no grafana/ inside); run `reward-obs render --out {root}`")
            return 2
    if args.changed_slos:
        for name in changed_slos(args.base, args.head):
            print(name)
        return 0
    # Which alert fields are internal comes from the definitions (--root), not from the
    # renders: a render holds values, not which of them are private.
    print(diff(args.base, args.head, internal_fields(load_definitions(args.root))))
    return 0


def register(sub) -> None:
    parser = sub.add_parser("diff", help="semantic diff of two renders (alerts, panels, routing); never prints secrets")
    parser.add_argument("base", type=Path, help="render of the base revision")
    parser.add_argument("head", type=Path, help="render of the head revision")
    parser.add_argument("--changed-slos", action="store_true",
                        help="print only the names of the SLOs whose burn-rate alerts changed, one a line")
    parser.set_defaults(handler=cmd_diff)
