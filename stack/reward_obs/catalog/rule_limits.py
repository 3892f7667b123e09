"""Rule groups a scalable ruler accepts: at most RULE_GROUP_LIMIT rules in a group and
RULE_GROUPS_LIMIT groups in all, alert and recording groups together (a Prometheus rule
file, Grafana-managed rules, or a Mimir / Grafana Cloud ruler loading either).

- 20 rules a group: Grafana Mimir's default `-ruler.max-rules-per-rule-group`.
- 70 groups in all: Mimir's default `-ruler.max-rule-groups-per-tenant`.
Both from grafana/mimir pkg/util/validation/limits.go (RegisterFlags:
`f.IntVar(&l.RulerMaxRulesPerRuleGroup, "ruler.max-rules-per-rule-group", 20, ...)`,
`f.IntVar(&l.RulerMaxRuleGroupsPerTenant, "ruler.max-rule-groups-per-tenant", 70, ...)`).
"""
from __future__ import annotations

from reward_obs.model.definitions import AlertRule, RecordingRule

RULE_GROUP_LIMIT = 20
RULE_GROUPS_LIMIT = 70


def group_sizes(alerts, recording_rules) -> dict[tuple[str, str], tuple[str, int]]:
    """(kind, group name) -> (the file that defines its first rule, rules in it). Grafana
    evaluates the Loki alerts too, so alert groups count every alert."""
    sizes: dict[tuple[str, str], tuple[str, int]] = {}
    rules: list[AlertRule | RecordingRule] = [*alerts, *recording_rules]
    for r in rules:
        key = ("alert" if isinstance(r, AlertRule) else "recording", r.group)
        file, count = sizes.get(key, (r.file, 0))
        sizes[key] = (file, count + 1)
    return sizes


def problems_of(alerts, recording_rules, problems) -> None:
    sizes = group_sizes(alerts, recording_rules)
    for (kind, name), (file, count) in sorted(sizes.items()):
        if count > RULE_GROUP_LIMIT:
            problems.add(file, "group", f"{kind} rule group {name!r} holds {count} rules; a Mimir or Grafana Cloud ruler "
                                        f"refuses more than {RULE_GROUP_LIMIT} (-ruler.max-rules-per-rule-group): split it")
    if len(sizes) > RULE_GROUPS_LIMIT:
        problems.add("(all rules)", "group", f"{len(sizes)} rule groups; a Mimir or Grafana Cloud ruler refuses more than "
                                             f"{RULE_GROUPS_LIMIT} (-ruler.max-rule-groups-per-tenant)")
