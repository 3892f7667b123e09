"""PromQL checks against the metrics contract, on the syntax tree (promql-parser)."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import promql_parser

from reward_obs.model.contract import MetricsContract

# Grafana variables are not PromQL. For parsing, each is replaced by a value of the
# same kind: interval macros by a duration, dashboard variables by a match-all regex.
_GRAFANA_INTERVALS = re.compile(r"\$(__rate_interval|__interval|__range)\b")
_GRAFANA_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def parenthesized(expr: str) -> Callable[[re.Match[str]], str]:
    """A re.sub replacement: `expr` in parentheses, taken literally (no backslash escapes)."""
    def replace(_m: re.Match[str]) -> str:
        return f"({expr})"
    return replace


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
            if op == "=" and contract.refused(label, value):
                problems.append(f"{sel.metric}{{{label}={value!r}}}: {value!r} is refused by the metrics contract as a {label}")
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


# ---------------------------------------------------------------- output labels

_COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}
_SET_OPS = {"and", "or", "unless"}
# Functions whose result has no labels, or labels unrelated to their argument.
_LABEL_FREE_FUNCTIONS = {"vector", "time", "scalar", "pi", "minute", "hour", "day_of_month", "day_of_week", "days_in_month", "month", "year"}


def output_labels(tree, contract: MetricsContract) -> set[str]:
    """Labels every series of the expression's result is guaranteed to carry.

    Follows Prometheus' result-metric rules: aggregations keep only their `by` labels,
    one-to-one arithmetic with `on(...)` keeps only the matching labels, filters and
    `and`/`unless` keep the left side's labels, `or` keeps what both sides share.
    """
    if isinstance(tree, promql_parser.MatrixSelector):
        return output_labels(tree.vector_selector, contract)
    if isinstance(tree, promql_parser.VectorSelector):
        return contract.series_labels(tree.name) if tree.name else set()
    if isinstance(tree, (promql_parser.NumberLiteral, promql_parser.StringLiteral)):
        return set()
    if isinstance(tree, (promql_parser.ParenExpr, promql_parser.UnaryExpr, promql_parser.SubqueryExpr)):
        return output_labels(tree.expr, contract)
    if isinstance(tree, promql_parser.Call):
        name = tree.func.name
        if name in _LABEL_FREE_FUNCTIONS:
            return set()
        if name == "absent" or name == "absent_over_time":
            return {label for s in selectors(tree) for label, op, _ in s.matchers if op == "="}
        vector_args = [a for a in tree.args if not isinstance(a, (promql_parser.NumberLiteral, promql_parser.StringLiteral))]
        call_labels = output_labels(vector_args[0], contract) if vector_args else set()
        if name == "histogram_quantile":
            call_labels.discard("le")
        if name == "label_replace":
            call_labels.add(str(tree.args[1]).strip('"'))
        return call_labels
    if isinstance(tree, promql_parser.AggregateExpr):
        inner = output_labels(tree.expr, contract)
        op = str(tree.op)
        if op in ("topk", "bottomk", "limitk", "limit_ratio"):
            return inner
        if tree.modifier is None:
            labels: set[str] = set()
        elif "Include" in str(tree.modifier.type) or "By" in str(tree.modifier.type):
            labels = set(tree.modifier.labels) & inner
        else:
            labels = inner - set(tree.modifier.labels)
        if op == "count_values" and tree.param is not None:
            labels.add(str(tree.param).strip('"'))
        return labels
    if isinstance(tree, promql_parser.BinaryExpr):
        op = str(tree.op)
        lhs, rhs = output_labels(tree.lhs, contract), output_labels(tree.rhs, contract)
        lhs_scalar = _is_scalar(tree.lhs)
        rhs_scalar = _is_scalar(tree.rhs)
        if lhs_scalar and rhs_scalar:
            return set()
        if rhs_scalar:
            return lhs
        if lhs_scalar:
            return rhs
        if op == "or":
            return lhs & rhs
        if op in _SET_OPS:
            return lhs
        modifier = tree.modifier
        filtering = op in _COMPARISONS and not (modifier is not None and modifier.return_bool)
        if filtering:
            return lhs
        matching = modifier.matching if modifier is not None else None
        card = str(modifier.card) if modifier is not None else "OneToOne"
        included = set(getattr(modifier, "group_labels", None) or ())  # group_left/right (labels...)
        if "ManyToOne" in card:
            return lhs | (included & rhs)
        if "OneToMany" in card:
            return rhs | (included & lhs)
        if matching is not None and ("Include" in str(matching.type) or "On" in str(matching.type)):
            return set(matching.labels) & lhs
        if matching is not None:
            return lhs - set(matching.labels)
        return lhs
    return set()


def _is_scalar(node) -> bool:
    if isinstance(node, promql_parser.NumberLiteral):
        return True
    if isinstance(node, (promql_parser.ParenExpr, promql_parser.UnaryExpr)):
        return _is_scalar(node.expr)
    if isinstance(node, promql_parser.Call):
        return node.func.name in ("scalar", "time", "pi")
    if isinstance(node, promql_parser.BinaryExpr):
        return _is_scalar(node.lhs) and _is_scalar(node.rhs)
    return False


def watches_scrape(tree) -> bool:
    """True for an expression that reads only `up`: the rule that watches the scrape itself."""
    metrics = {s.metric for s in selectors(tree)}
    return bool(metrics) and metrics <= {"up"}
