"""Every rendered dashboard against Grafana's published dashboard schema (the
grafana-foundation-sdk models, tests/dashboard_schema.py): zero findings on what we ship,
and a planted unknown key or bad value is caught at its path."""
from __future__ import annotations

import copy
import json

import pytest

from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.sinks.files import render_files

from conftest import ROOT
from dashboard_schema import dashboard_findings

EXAMPLE_STACKS = sorted(ROOT.glob("Pulumi.*.yaml"))


@pytest.fixture(scope="module")
def boards(definitions) -> dict[str, dict]:
    out = {}
    for stack in EXAMPLE_STACKS:
        config = load_config(read_stack_file(stack), str(stack), definitions)
        for path, text in render_files(definitions, config).items():
            if path.startswith("grafana/dashboards/"):
                out[f"{stack.name}:{path}"] = json.loads(text)
    return out


# Every dashboard the render ships, one directory per folder: operations and its runbooks
# (Rewards), the abuse view and its runbooks (Trust & Safety), the trace and its runbooks
# (Support).
SHIPPED = {"rewards/reward-operations.json", "rewards/reward-runbooks.json",
           "rewards-trust-safety/reward-trust-safety.json", "rewards-trust-safety/reward-runbooks-trust-safety.json",
           "rewards-support/reward-trace.json", "rewards-support/reward-runbooks-support.json"}


def test_every_shipped_dashboard_fits_grafanas_schema(boards):
    assert set(boards) == {f"{stack.name}:grafana/dashboards/{path}" for stack in EXAMPLE_STACKS for path in SHIPPED}
    findings = {name: dashboard_findings(board) for name, board in boards.items()}
    assert {name: f for name, f in findings.items() if f} == {}


def _operations(boards) -> dict:
    return copy.deepcopy(boards["Pulumi.selfhost.yaml:grafana/dashboards/rewards/reward-operations.json"])


def _first(board: dict, kind: str) -> int:
    return next(i for i, p in enumerate(board["panels"]) if p["type"] == kind)


@pytest.mark.parametrize("plant, expected", [
    # unknown keys
    (lambda b: b.update(refreshh="1m"), "$.refreshh: unknown key (not in the dashboard schema)"),
    (lambda b: b["panels"][_first(b, "stat")]["fieldConfig"]["defaults"].update(unitt="short"),
     "$.panels[{stat}].fieldConfig.defaults.unitt: unknown key (not in the dashboard schema)"),
    (lambda b: b["panels"][_first(b, "timeseries")]["targets"][0].update(legendFromat="{{currency}}"),
     "$.panels[{timeseries}].targets[0].legendFromat: unknown key (not in the dashboard schema)"),
    (lambda b: b["panels"][_first(b, "timeseries")]["options"]["legend"].update(placment="right"),
     "$.panels[{timeseries}].options.legend.placment: unknown key (not in the dashboard schema)"),
    # bad values
    (lambda b: b.update(graphTooltip=7), "$.graph_tooltip: 7 is not one of [0, 1, 2]"),
    (lambda b: b["panels"][_first(b, "stat")]["gridPos"].update(h="8"), "$.panels[{stat}].grid_pos.h: '8' is not an integer"),
    (lambda b: b["panels"][_first(b, "stat")].update(repeatDirection="x"),
     "$.panels[{stat}].repeat_direction: 'x' is not one of ['h', 'v']"),
    (lambda b: b["panels"][_first(b, "table")]["options"]["footer"].update(fields=""),
     "$.panels[{table}].options.footer.fields: str where the schema has a list"),
])
def test_a_planted_unknown_key_or_bad_value_is_caught(boards, plant, expected):
    board = _operations(boards)
    plant(board)
    expected = expected.format(**{kind: _first(board, kind) for kind in ("stat", "timeseries", "table")})
    assert expected in dashboard_findings(board), dashboard_findings(board)
