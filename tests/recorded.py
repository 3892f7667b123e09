"""Seeing through recorded series in the tests: which raw metrics a panel query reads."""
from __future__ import annotations

import dataclasses

from reward_obs.lang import promql
from reward_obs.model.definitions import RecordingRule


def raw_selectors(expr: str, rules: tuple[RecordingRule, ...]) -> list[promql.Selector]:
    """The raw-metric selectors a query reads, seeing through recorded series: a selector
    of a recorded series stands for its rule's selectors, each with the query's matchers
    added (they match labels the rule keeps, so they narrow the same series)."""
    by_name = {r.record: r for r in rules}
    out = []
    for sel in promql.selectors(promql.parse(promql.without_grafana_variables(expr))):
        rule = by_name.get(sel.metric)
        if rule is None:
            out.append(sel)
            continue
        out += [dataclasses.replace(inner, matchers=tuple(dict.fromkeys(inner.matchers + sel.matchers)))
                for inner in raw_selectors(rule.expr, rules)]
    return out
