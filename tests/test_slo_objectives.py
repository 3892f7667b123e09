"""Objectives per stack and per provider (sloObjectives in Pulumi.<stack>.yaml,
catalog/objectives.py). Expected values are written by hand: the budget of an objective
is 1 - objective, a tier fires above factor x budget; Prometheus itself (promtool)
evaluates the rendered rules."""
from __future__ import annotations

import subprocess

import pytest
import yaml

from reward_obs.catalog import objectives
from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.checks.lint import check_runbook_numbers
from reward_obs.model.errors import DefinitionError
from reward_obs.sinks.files import PROMETHEUS_RECORDING_FILE, render_files

from conftest import STACK_FILE

OBJECTIVES = {"payout-success": {"target": 0.998, "providers": {"manual": 0.99}}}


def _stack(definitions, extra: dict):
    config = load_config(read_stack_file(STACK_FILE) | extra, "Pulumi.test.yaml", definitions)
    return objectives.apply(definitions, config), config


@pytest.mark.parametrize("value, message", [
    ({"payout-sucess": {"target": 0.99}}, "sloObjectives.payout-sucess: is not an SLO"),
    ({"payout-success": {"target": 1}}, "sloObjectives.payout-success.target: 1 is greater than or equal to the maximum of 1"),
    ({"payout-success": {"target": 0.5}}, "sloObjectives.payout-success.target: 0.5 is less than or equal to the minimum of 0.5"),
    ({"payout-success": {"providers": {"manual": 1.5}}}, "sloObjectives.payout-success.providers.manual: 1.5 is greater than or equal to the maximum of 1"),
    ({"payout-success": {"providers": {"paypal": 0.99}}}, "sloObjectives.payout-success.providers.paypal: is not a provider of the metrics contract"),
    ({"payout-success-fleet": {"providers": {"manual": 0.99}}},
     "sloObjectives.payout-success-fleet.providers: payout-success-fleet is evaluated over every provider together: set `target` instead"),
    ({"payout-success": {}}, "sloObjectives.payout-success: {} should be non-empty"),
], ids=["unknown slo", "target 1", "target 0.5", "provider target 1.5", "unknown provider", "per provider on a fleet slo", "empty"])
def test_a_wrong_objective_is_refused_by_key(definitions, value, message):
    with pytest.raises(DefinitionError) as err:
        load_config(read_stack_file(STACK_FILE) | {"sloObjectives": value}, "Pulumi.test.yaml", definitions)
    assert any(str(p).startswith(f"Pulumi.test.yaml:reward-observability:{message}") for p in err.value.problems), \
        "\n".join(map(str, err.value.problems))


def test_no_setting_changes_nothing(definitions):
    applied, _ = _stack(definitions, {})
    assert applied is definitions


def test_the_rules_follow_the_stack_objective(definitions):
    applied, _ = _stack(definitions, {"sloObjectives": OBJECTIVES})
    s = next(s for s in applied.slos if s.name == "payout-success")
    assert (s.objective, s.provider_objectives) == (0.998, (("manual", 0.99),))
    budget = next(r for r in applied.recording_rules if r.record == "provider:reward_slo_payout_success_budget:remaining30d")
    assert budget.expr == (
        '(1 - (sum_over_time(provider:reward_slo_payout_success_bad:rate1h{provider="manual"}[30d:1h])'
        ' / (sum_over_time(provider:reward_slo_payout_success_total:rate1h{provider="manual"}[30d:1h]) > 0)) / 0.01)'
        ' or (1 - (sum_over_time(provider:reward_slo_payout_success_bad:rate1h{provider!="manual"}[30d:1h])'
        ' / (sum_over_time(provider:reward_slo_payout_success_total:rate1h{provider!="manual"}[30d:1h]) > 0)) / 0.002)')
    page = applied.alert("RewardPayoutErrorBudgetBurn")
    assert page.expr.startswith(
        "(\n(\n"
        'label_replace(provider:reward_slo_payout_success_errors:ratio_rate1h{provider="manual"}, "long_window", "1h", "", "") / 0.01 > 14.4\n'
        "unless on (provider)\n"
        'provider:reward_slo_payout_success_errors:ratio_rate5m{provider="manual"} / 0.01 <= 14.4\n')
    assert 'ratio_rate1h{provider!="manual"}, "long_window", "1h", "", "") / 0.002 > 14.4' in page.expr
    assert "(objective 99.8% (manual: 99%) over 30d)" in page.description
    assert page.description.endswith("99.8% (manual: 99%) of the payouts that reach a final state through a provider are paid or "
                                      "fail for the player's own reason, over 30 days. A payout the platform failed is a player "
                                      "who won a reward and did not get it.")
    assert page.params["objective"] == 0.998  # the number the runbooks bind
    # The fleet SLO and the other SLOs keep their defaults.
    assert applied.alert("RewardFleetPayoutErrorBudgetBurn") == definitions.alert("RewardFleetPayoutErrorBudgetBurn")
    # The panel reading the SLO's recorded ratio: its green threshold and its text.
    panel = applied.dashboard("reward-operations").panel("payout_success")
    assert [t["value"] for t in panel.thresholds] == [None, 0.99, 0.998]
    assert "objective 99.8% (manual: 99%)" in panel.description


def test_the_grafana_runbook_copy_and_the_repository_copy(definitions):
    applied, config = _stack(definitions, {"sloObjectives": {"payout-success": {"target": 0.995}}, "runbookLinks": "grafana"})
    files = render_files(applied, config)
    runbooks = next(text for name, text in files.items() if name.endswith("reward-runbooks.json"))
    assert "SLO `payout-success`: 99.5% of a provider" in runbooks
    # The repository copy quotes the defaults: a stack that opens it is told so by the lint.
    applied, config = _stack(definitions, {"sloObjectives": {"payout-success": {"target": 0.995}}})

    class Ctx:
        pass
    ctx = Ctx()
    ctx.definitions, ctx.config = applied, config
    findings = check_runbook_numbers(ctx)
    assert any("RewardPayoutErrorBudgetBurn.objective 99.9% -> 99.5%" in f.message for f in findings), findings


def test_prometheus_pages_each_provider_against_its_own_objective(definitions, tmp_path):
    """ton_wallet and manual both fail 1 payout in 20 (5%). ton_wallet at 99.8% burns
    0.05 / 0.002 = 25x: both page tiers (14.4x, 6x) fire. manual at 99% burns
    0.05 / 0.01 = 5x: no page tier. Budget left: 1 - 25 = -24 and 1 - 5 = -4."""
    applied, config = _stack(definitions, {"sloObjectives": OBJECTIVES})
    files = render_files(applied, config)
    (tmp_path / "recording.yaml").write_text(files[PROMETHEUS_RECORDING_FILE])
    (tmp_path / "alerts.yaml").write_text(files["prometheus/reward-alerts.rules.yaml"])
    series = []
    for provider in ("ton_wallet", "manual"):
        labels = f'job="rewards", instance="a:9464", provider="{provider}"'
        series += [
            {"series": f'reward_payouts_total{{{labels}, result="paid"}}', "values": "0+1140x130"},
            {"series": f'reward_payouts_total{{{labels}, result="failed"}}', "values": "0+60x130"},
            {"series": f'reward_payout_failures_total{{{labels}, cause="timeout"}}', "values": "0+60x130"},
        ]
    test = {"rule_files": ["recording.yaml", "alerts.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [
            {"expr": 'count by (provider, long_window) (ALERTS{alertname="RewardPayoutErrorBudgetBurn", alertstate="firing"})',
             "eval_time": "2h",
             "exp_samples": [{"labels": '{provider="ton_wallet", long_window="1h"}', "value": 1},
                             {"labels": '{provider="ton_wallet", long_window="6h"}', "value": 1}]},
            {"expr": "round(provider:reward_slo_payout_success_budget:remaining30d, 0.000001)", "eval_time": "2h",
             "exp_samples": [{"labels": '{provider="ton_wallet"}', "value": -24},
                             {"labels": '{provider="manual"}', "value": -4}]},
        ]}]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run(["promtool", "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
