"""`reward-obs diff` on a pull request that changes an SLO's objective: the comment names the
SLO and says how to run `reward-obs slo report` on it; `--changed-slos` lists it for the
workflow that runs the report."""
from __future__ import annotations

import pytest

from conftest import run_cli, unbind_runbook_numbers
from helpers import edit_yaml as edit
from helpers import render_repo as render

# End to end through the CLI or Pulumi's mocks: seconds per test, outside the quick loop.
pytestmark = pytest.mark.slow


def test_a_changed_objective_asks_for_the_report(repo_copy, tmp_path):
    base = render(repo_copy, tmp_path / "base")
    edit(repo_copy / "slos/payout-success.yaml", lambda d: d["spec"]["objectives"][0].update(target=0.995))
    for alert in ("RewardPayoutErrorBudgetBurn", "RewardPayoutErrorBudgetSlowBurn"):  # the runbook quotes 99.9%
        unbind_runbook_numbers(repo_copy, alert)
    head = render(repo_copy, tmp_path / "head")
    result = run_cli("diff", str(base), str(head))
    assert result.returncode == 0, result.stderr
    section = result.stdout.split("### SLOs\n", 1)[1]
    assert section.startswith("- **objective or burn rules changed** `payout-success`\n\n")
    assert "    reward-obs slo report --prometheus URL --from now-28d --to now --slo payout-success\n" in section
    assert "payout-success-fleet" not in section  # its rules did not change
    changed = run_cli("diff", "--changed-slos", str(base), str(head))
    assert (changed.returncode, changed.stdout) == (0, "payout-success\n")


def test_no_slo_section_when_no_slo_rule_changes(repo_copy, tmp_path):
    base = render(repo_copy, tmp_path / "base")
    edit(repo_copy / "alert_rules/RewardPoolLow.yaml", lambda d: d.update({"for": "15m"}))
    unbind_runbook_numbers(repo_copy, "RewardPoolLow")
    head = render(repo_copy, tmp_path / "head")
    result = run_cli("diff", str(base), str(head))
    assert "RewardPoolLow" in result.stdout and "### SLOs" not in result.stdout
    changed = run_cli("diff", "--changed-slos", str(base), str(head))
    assert (changed.returncode, changed.stdout) == (0, "")
