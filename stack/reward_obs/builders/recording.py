"""Recording rules (Definitions.recording_rules) as Prometheus rule groups, and the raw
query each recorded panel query stands for."""
from __future__ import annotations

from reward_obs.model.definitions import Definitions, RecordingRule


def rule_groups(rules: tuple[RecordingRule, ...]) -> list[tuple[str, str, list[RecordingRule]]]:
    """(group name, interval, rules in file order) for every group, sorted by name and
    interval: the one grouping both the Prometheus and the Grafana form use."""
    groups: dict[tuple[str, str], list[RecordingRule]] = {}
    for r in rules:
        groups.setdefault((r.group, r.interval), []).append(r)
    return [(name, interval, members) for (name, interval), members in sorted(groups.items())]


def prometheus_groups(definitions: Definitions) -> list[dict]:
    """Recording rule groups in Prometheus rule-file shape."""
    return [{"name": name, "interval": interval, "rules": [{"record": r.record, "expr": r.expr} for r in rules]}
            for name, interval, rules in rule_groups(definitions.recording_rules)]


def prometheus_rule_file(definitions: Definitions) -> dict | None:
    groups = prometheus_groups(definitions)
    return {"groups": groups} if groups else None


def raw_queries(definitions: Definitions, dashboard_uid: str) -> dict[str, dict]:
    """The raw-metric equivalent of every query of one dashboard served by a recorded
    series: "panel_key[REF]" -> {raw, record} (the bench's "before", the live test's
    cross-check). Per dashboard, because two dashboards may have panels of the same key."""
    return {s.panel.split("/", 1)[1]: {"raw": s.raw, "record": r.record}
            for r in definitions.recording_rules for s in r.serves if s.panel.split("/", 1)[0] == dashboard_uid}
