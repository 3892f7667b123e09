"""The dashboards show every required signal, each in its own panel, on the dashboard of
its audience (claims on hold on trust and safety's, the rest on the operations
dashboard); the operations dashboard has units, thresholds, a datasource variable and a
stable uid."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reward_obs.lang import promql

from conftest import run_cli
from helpers import dashboard, distinct_assignment, panel_selectors, panels, reads, signal_panels
from spec import OPERATIONS_DASHBOARD_UID, SIGNAL_DASHBOARDS, TRUST_SAFETY_SIGNALS


def render(root: Path | None, out: Path) -> Path:
    args = ["--root", str(root), "--stack-config", str(root / "Pulumi.selfhost.yaml")] if root else []
    result = run_cli(*args, "render", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    return render(None, tmp_path_factory.mktemp("render"))


@pytest.fixture(scope="module")
def board(rendered) -> dict:
    return dashboard(rendered, OPERATIONS_DASHBOARD_UID)


def signal_boards(out: Path) -> dict[str, dict]:
    """Every dashboard a signal must be on, by uid."""
    return {uid: dashboard(out, uid) for uid in sorted(set(SIGNAL_DASHBOARDS.values()))}


def test_every_signal_has_a_panel(rendered):
    missing = [signal for signal, titles in signal_panels(signal_boards(rendered)).items() if not titles]
    assert missing == []


def test_claims_on_hold_are_not_on_the_operations_dashboard(board):
    """Hold counts are abuse review material: the operations dashboard, which more people
    read, shows none of them."""
    shown = [(signal, p["title"]) for p in panels(board) for signal in sorted(TRUST_SAFETY_SIGNALS) if reads(p, signal)]
    assert shown == []


def test_each_signal_has_its_own_panel(rendered):
    assert distinct_assignment(signal_panels(signal_boards(rendered))) is not None


def test_losing_a_signal_is_caught(repo_copy, tmp_path):
    """A panel that stops reading its signal (here: abuse holds shows manual reviews)."""
    path = repo_copy / "dashboards" / "reward-trust-safety.yaml"
    text = path.read_text()
    assert 'reason="abuse_review"' in text
    path.write_text(text.replace('reason="abuse_review"', 'reason="manual_review"'))
    boards = signal_boards(render(repo_copy, tmp_path / "out"))
    assert [s for s, titles in signal_panels(boards).items() if not titles] == ["abuse holds"]


def test_every_panel_has_a_unit_and_uses_a_datasource_variable(board):
    variable = {"prometheus": "${datasource}", "loki": "${loki}"}
    for panel in panels(board):
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        kind = panel["datasource"]["type"]
        assert panel["datasource"]["uid"] == variable[kind], panel["title"]
        assert all(t["datasource"] == panel["datasource"] for t in panel["targets"]), panel["title"]


def test_datasource_variable_is_defined(board):
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_pool_remaining_ratio_is_red_under_ten_percent(board):
    panel = next(p for p in panels(board) if p["fieldConfig"]["defaults"]["unit"] == "percentunit"
                 and any(s.metric == "reward_pool_budget" for s in panel_selectors(p)))
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[0] == {"color": "red", "value": None}
    assert steps[1]["value"] == 0.1, "red band must end where RewardPoolLow fires"


def test_dashboard_has_a_stable_uid_and_no_volatile_fields(board):
    assert board["uid"] == OPERATIONS_DASHBOARD_UID
    assert "id" not in board and "version" not in board


def test_panel_ids_and_positions_are_unique(board):
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for p in board["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps another panel"
                cells.add((x, y))


def test_amounts_are_never_summed_across_currencies(board):
    for panel in panels(board):
        for target in panel["targets"]:
            if target["datasource"]["type"] != "prometheus":
                continue
            tree = promql.parse(promql.without_grafana_variables(target["expr"]))
            amounts = [s for s in promql.selectors(tree) if s.metric.startswith("reward_pool_") and s.metric != "reward_pool_funding_total"]
            if amounts and panel["fieldConfig"]["defaults"]["unit"] != "percentunit":
                assert "currency" in promql.grouping_labels(tree), f"{panel['title']} sums amounts across currencies"


def test_dashboard_is_provisioned_into_the_rewards_folder(tmp_path):
    out = render(None, tmp_path)
    provider = yaml.safe_load((out / "grafana/provisioning/dashboards/rewards.yaml").read_text())["providers"][0]
    # By title only: the rules' provisioner creates "Rewards" first with a random uid, and a
    # provider with folderUid would create a second folder (tests/test_grafana_compat.py).
    assert provider["folder"] == "Rewards" and "folderUid" not in provider


def test_dashboard_never_presents_entry_fees_or_season_points_as_value(board):
    text = str(board).lower()
    assert "season point" not in text.replace("season points are progression, not money", "")
    for panel in panels(board):
        assert "entry_fee" not in str(panel["targets"]), panel["title"]
