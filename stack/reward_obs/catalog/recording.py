"""Recording rules as data (recording_rules/*.yaml, schemas/recording_rule.schema.json).

Dashboard panels that would aggregate thousands of series at every step read a recorded
series instead (bench/README.md). Checked like alert queries: the expression
may use only contract metrics and labels, the recorded series keeps only contract
labels, the name follows level:metric:operations, and every panel query it `serves`
exists and reads the recorded series; `raw` is the same answer computed from the raw
metrics (the bench times both, the live test proves they agree). The loaded rules are
part of `Definitions` (recording_rules); builders/recording.py turns them into Prometheus rule
groups and builders/grafana_recording.py into Grafana-managed recording rules.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from reward_obs.catalog.files import validated
from reward_obs.lang import promql
from reward_obs.lang.dashboard_queries import dashboards_panel_queries
from reward_obs.model.contract import Metric, MetricsContract
from reward_obs.model.definitions import RecordingRule, Serves
from reward_obs.model.durations import canonical

RULE_DIR = "recording_rules"
SCHEMA = "recording_rule.schema.json"


def load(root: Path, problems) -> list[RecordingRule]:
    """Every recording rule under root/recording_rules, schema-checked (problems recorded)."""
    rules = []
    for path in sorted((Path(root) / RULE_DIR).glob("*.yaml")):
        data = validated(root, path, SCHEMA, problems)
        if data is None:
            continue
        file = str(path.relative_to(root))
        for r in data["rules"]:
            rules.append(RecordingRule(
                file=file, group=data["group"], interval=canonical(data["interval"]), record=r["record"],
                expr=" ".join(r["expr"].split()), labels=tuple(r["labels"]), why=" ".join(r["why"].split()),
                serves=tuple(Serves(s["panel"], " ".join(s["raw"].split())) for s in r.get("serves", ())),
            ))
    return rules


def with_recorded_series(contract: MetricsContract, rules: list[RecordingRule]) -> MetricsContract:
    """The contract plus every recorded series (no job/instance: a rule's output has none)."""
    recorded = {r.record: Metric(name=r.record, type="gauge", unit="", help=r.why, labels=r.labels, synthetic=True) for r in rules}
    return dataclasses.replace(contract, metrics={**contract.metrics, **recorded})


def check(rules: list[RecordingRule], contract: MetricsContract, series_contract: MetricsContract, dashboards,
          problems) -> None:
    """Contract and panel checks for loaded rules. `series_contract` is the contract with
    every recorded series: a rule may read another (the SLO ratios read the recorded rates)."""

    names: dict[str, str] = {}
    queries = {f"{q.dashboard}/{q.panel_key}[{q.ref}]": q for q in dashboards_panel_queries(dashboards)}
    for r in rules:
        where = f"rules[{r.record}]"
        if r.record in names:
            problems.add(r.file, where, f"duplicate recording rule (also in {names[r.record]})")
        names[r.record] = r.file
        if r.record in contract.metrics:
            problems.add(r.file, where, "records a name that is a contract metric")
        for message in promql.catalog_problems(r.expr, series_contract):
            problems.add(r.file, f"{where}.expr", message)
        for label in r.labels:
            if label not in contract.labels or label in ("job", "instance", "le"):
                problems.add(r.file, f"{where}.labels", f"{label!r} is not a label a recorded series can keep")
        try:
            kept = promql.output_labels(promql.parse(r.expr), series_contract)
        except ValueError:
            kept = None  # catalog_problems above already reports the parse error
        if kept is not None and set(kept) != set(r.labels):
            problems.add(r.file, f"{where}.labels", f"the expression keeps {sorted(kept)}, not {sorted(r.labels)}")
        for j, s in enumerate(r.serves):
            query = queries.get(s.panel)
            if query is None:
                problems.add(r.file, f"{where}.serves[{j}].panel", f"no PromQL panel query {s.panel}")
            elif r.record not in _metrics_read(query.expr):
                problems.add(r.file, f"{where}.serves[{j}].panel", f"{s.panel} does not read {r.record}")
            for message in promql.catalog_problems(promql.without_grafana_variables(s.raw), contract):
                problems.add(r.file, f"{where}.serves[{j}].raw", message)


def _metrics_read(expr: str) -> set[str]:
    try:
        return {sel.metric for sel in promql.selectors(promql.parse(promql.without_grafana_variables(expr)))
                if sel.metric is not None}
    except ValueError:
        return set()  # the dashboard check reports the parse error
