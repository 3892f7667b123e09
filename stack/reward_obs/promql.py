"""PromQL checks against the metrics contract, on the syntax tree (promql-parser)."""
from __future__ import annotations

import re
from dataclasses import dataclass

import promql_parser

from .contract import MetricsContract

# Grafana variables are not PromQL. For parsing, each is replaced by a value of the
# same kind: interval macros by a duration, dashboard variables by a match-all regex.
_GRAFANA_INTERVALS = re.compile(r"\$(__rate_interval|__interval|__range)\b")
_GRAFANA_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def without_grafana_variables(expr: str) -> str:
    expr = _GRAFANA_INTERVALS.sub("5m", expr)
    return _GRAFANA_VARIABLE.sub(".*", expr)


@dataclass(frozen=True)
class Selector:
    metric: str | None
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value); op is = != =~ !~
    range_seconds: float | None


_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def parse(expr: str):
    """Parse PromQL; raises ValueError with the parser's message."""
    try:
        return promql_parser.parse(expr)
    except Exception as exc:  # the parser raises a bare ValueError/RuntimeError
        raise ValueError(f"not valid PromQL: {exc}") from None


def _op_name(op) -> str:
    name = str(op)
    for key, sym in _OPS.items():
        if name.startswith(key) or name.endswith("." + key):
            return sym
    raise ValueError(f"unknown matcher op {name}")


def children(node) -> list:
    """Direct sub-expressions of a syntax-tree node."""
    if isinstance(node, promql_parser.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, promql_parser.AggregateExpr):
        return [c for c in (node.param, node.expr) if c is not None]
    if isinstance(node, promql_parser.Call):
        return list(node.args)
    if isinstance(node, (promql_parser.ParenExpr, promql_parser.UnaryExpr, promql_parser.SubqueryExpr)):
        return [node.expr]
    return []


def selectors(tree) -> list[Selector]:
    """Every series selector in the expression, with its range if it has one."""
    if isinstance(tree, promql_parser.MatrixSelector):
        return [_selector(tree.vector_selector, tree.range.total_seconds())]
    if isinstance(tree, promql_parser.VectorSelector):
        return [_selector(tree, None)]
    return [s for child in children(tree) for s in selectors(child)]


def _selector(vs, range_seconds) -> Selector:
    matchers = []
    for m in vs.matchers.matchers:
        if m.name == "__name__":
            continue
        matchers.append((m.name, _op_name(m.op), m.value))
    return Selector(vs.name, tuple(matchers), range_seconds)


def grouping_labels(tree) -> set[str]:
    """Labels named in by/without, on/ignoring and group_left/group_right clauses."""
    labels: set[str] = set()
    if isinstance(tree, promql_parser.AggregateExpr) and tree.modifier is not None:
        labels.update(tree.modifier.labels)
    if isinstance(tree, promql_parser.BinaryExpr) and tree.modifier is not None:
        if tree.modifier.matching is not None:
            labels.update(tree.modifier.matching.labels)
        labels.update(getattr(tree.modifier.card, "labels", None) or ())
    for child in children(tree):
        labels |= grouping_labels(child)
    return labels


def catalog_problems(expr: str, contract: MetricsContract) -> list[str]:
    """Why this expression does not fit the contract; empty when it does."""
    try:
        tree = parse(expr)
    except ValueError as exc:
        return [str(exc)]
    problems: list[str] = []
    for sel in selectors(tree):
        if sel.metric is None:
            problems.append("selector without a metric name")
            continue
        metric = contract.series_metric(sel.metric)
        if metric is None:
            problems.append(f"metric {sel.metric!r} is not in the metrics contract")
            continue
        allowed = contract.series_labels(sel.metric)
        for label, op, value in sel.matchers:
            if label not in allowed:
                problems.append(f"{sel.metric} has no label {label!r} (allowed: {', '.join(sorted(allowed))})")
                continue
            values = contract.label_values(sel.metric, label)
            if values is None or op not in ("=", "=~") or value == ".*":
                continue
            wanted = [value] if op == "=" else _simple_alternatives(value)
            for v in wanted or []:
                if v not in values:
                    problems.append(
                        f"{sel.metric}{{{label}{op}{value!r}}}: {v!r} is not a value of {label} "
                        f"(one of: {', '.join(values)})"
                    )
    known = contract.all_labels() | {"le"}
    for label in sorted(grouping_labels(tree) - known):
        problems.append(f"label {label!r} in a grouping clause is not in the metrics contract")
    return problems


def _simple_alternatives(regex: str) -> list[str] | None:
    """`a|b|c` -> [a, b, c]; None for anything with regex syntax beyond alternation."""
    if re.fullmatch(r"[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*", regex):
        return regex.split("|")
    return None
