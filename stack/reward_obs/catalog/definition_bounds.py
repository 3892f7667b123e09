"""Bounds the definition schemas cannot express: durations Go can hold, threshold steps
in Grafana's order, panel ranges that are ranges, and SLO budgets the rules can divide by."""
from __future__ import annotations

import itertools

from reward_obs.catalog.stack_checks import duration_problem
from reward_obs.model.definitions import AlertRule, Dashboard, Routing
from reward_obs.model.durations import parse_duration
from reward_obs.model.errors import ProblemCollector
from reward_obs.model.slo import SLO

# SLO.budget rounds 1 - objective to 10 decimals (float noise); a budget that this moves
# by more than float noise is not the objective written (0.99999999999 rounds to a budget
# of 0, and the burn-rate rules divide by the budget).
_BUDGET_NOISE = 1e-12


def check(dashboards: list[Dashboard], alerts: list[AlertRule], routing: Routing | None, slos: list[SLO],
          problems: ProblemCollector) -> None:
    for d in dashboards:
        for r_index, row in enumerate(d.rows):
            for p_index, p in enumerate(row.panels):
                where = f"rows[{r_index}].panels[{p_index}]"
                values = [t["value"] for t in p.thresholds[1:]]
                if any(b <= a for a, b in itertools.pairwise(values)):
                    problems.add(d.file, f"{where}.thresholds",
                                 "steps after the base must ascend: Grafana sorts them, so another order colours values wrongly")
                if p.thresholds and p.thresholds[0]["value"] is not None and values and values[0] <= p.thresholds[0]["value"]:
                    problems.add(d.file, f"{where}.thresholds", "steps must ascend from the base step")
                if p.min is not None and p.max is not None and p.min >= p.max:
                    problems.add(d.file, f"{where}.max", f"must be greater than min ({p.min:g})")
    for a in alerts:
        if a.slo:
            continue
        message = duration_problem(a.for_)
        if message:
            problems.add(a.file, "for", message)
    if routing is not None:
        for route, where in routing.policy.walk():
            for key in ("group_wait", "group_interval", "repeat_interval"):
                value = getattr(route, key)
                message = value and duration_problem(value)
                if message:
                    problems.add(routing.file, f"{where}.{key}", message)
                elif value and key != "group_wait" and parse_duration(value) == 0:
                    # prometheus/alertmanager config/config.go, Route.UnmarshalYAML: "group_interval
                    # cannot be zero", "repeat_interval cannot be zero"; Grafana's policy tree is the same.
                    problems.add(routing.file, f"{where}.{key}", f"must be longer than 0s: Alertmanager refuses a zero {key}")
    for s in slos:
        exact = 1 - s.objective
        if s.budget <= 0 or abs(s.budget - exact) > _BUDGET_NOISE:
            problems.add(s.file, "spec.objectives[0].target",
                         f"leaves an error budget of {exact:.3g}, which rounds to {s.budget:g}: the burn-rate rules divide by "
                         "the budget; choose an objective with at most ten decimals of budget")
