"""The SLO generator (stack/reward_obs/catalog/slos.py, model/slo.py), Sloth style: each case is a small SLO and
the literal rules it must produce, written by hand from the SRE Workbook's tiers (14.4x
1h/5m and 6x 6h/30m page; 3x 1d/2h and 1x 3d/6h ticket). Nothing here calls the
generator to compute an expected value. Whether the rules detect and reset in time is
proven by promtool in tests/test_scenarios.py."""
from __future__ import annotations

import re

import pytest
import yaml

from reward_obs.builders.grafana_recording import grafana_recording_groups
from reward_obs.catalog import slos as slo_rules
from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.catalog.definitions import load_definitions
from reward_obs.model.definitions import Dashboard, Panel, Query, Row
from reward_obs.model.errors import DefinitionError
from reward_obs.model.slo import SLO

from conftest import ROOT, run_cli


def _slo(**kw) -> SLO:
    base = dict(file="slos/x.yaml", name="payout-success", display_name="Payouts succeed", description="d.",
                objective=0.999, bad='sum by (provider) (rate(reward_payouts_total{result="failed"}[$window]))',
                total='sum by (provider) (rate(reward_payouts_total[$window]))', labels=("provider",),
                alert_prefix="RewardX", runbook_file="payout-slos.md", dashboard_uid="reward-operations",
                panel_key="payout_success", min_bad_events=3, min_bad_events_ticket=10)
    return SLO(**{**base, **kw})


RECORDING_CASES = {
    "per provider": (_slo(), {
        # Raw counters are read at 5m and 1h only.
        "provider:reward_slo_payout_success_bad:rate5m": 'sum by (provider) (rate(reward_payouts_total{result="failed"}[5m]))',
        "provider:reward_slo_payout_success_total:rate1h": "sum by (provider) (rate(reward_payouts_total[1h]))",
        # Longer windows average a recorded rate at its own step.
        "provider:reward_slo_payout_success_errors:ratio_rate30m":
            "avg_over_time(provider:reward_slo_payout_success_bad:rate5m[30m:5m])"
            " / (avg_over_time(provider:reward_slo_payout_success_total:rate5m[30m:5m]) > 0)",
        "provider:reward_slo_payout_success_errors:ratio_rate3d":
            "avg_over_time(provider:reward_slo_payout_success_bad:rate1h[3d:1h])"
            " / (avg_over_time(provider:reward_slo_payout_success_total:rate1h[3d:1h]) > 0)",
        "provider:reward_slo_payout_success_errors:ratio_rate5m":
            "provider:reward_slo_payout_success_bad:rate5m / (provider:reward_slo_payout_success_total:rate5m > 0)",
        "provider:reward_slo_payout_success_errors:ratio_rate1h":
            "provider:reward_slo_payout_success_bad:rate1h / (provider:reward_slo_payout_success_total:rate1h > 0)",
        # The period sums the recorded 1h rates at hourly steps (720 points), never a raw [30d].
        "provider:reward_slo_payout_success_budget:remaining30d":
            "1 - (sum_over_time(provider:reward_slo_payout_success_bad:rate1h[30d:1h])"
            " / (sum_over_time(provider:reward_slo_payout_success_total:rate1h[30d:1h]) > 0)) / 0.001",
    }),
    "fleet-wide": (_slo(name="fleet", labels=(), bad="sum(rate(a_total[$window]))", total="sum(rate(b_total[$window]))"), {
        "all:reward_slo_fleet_total:rate1h": "sum(rate(b_total[1h]))",
        "all:reward_slo_fleet_errors:ratio_rate1h": "all:reward_slo_fleet_bad:rate1h / (all:reward_slo_fleet_total:rate1h > 0)",
    }),
    "bad as a difference": (
        _slo(name="lat", bad="sum(rate(c_count[$window])) - sum(rate(c_bucket{le=\"600\"}[$window]))",
             total="sum(rate(c_count[$window]))", labels=()), {
            "all:reward_slo_lat_bad:rate5m": 'sum(rate(c_count[5m])) - sum(rate(c_bucket{le="600"}[5m]))',
            "all:reward_slo_lat_budget:remaining30d":
                "1 - (sum_over_time(all:reward_slo_lat_bad:rate1h[30d:1h])"
                " / (sum_over_time(all:reward_slo_lat_total:rate1h[30d:1h]) > 0)) / 0.001",
        }),
}


@pytest.mark.parametrize("case", sorted(RECORDING_CASES))
def test_recording_rules(case):
    model, expected = RECORDING_CASES[case]
    rules = slo_rules.recording_rules([model])
    by_name = {r.record: r for r in rules}
    for record, expr in expected.items():
        assert by_name[record].expr == expr
        assert by_name[record].labels == model.labels
    # Bad and total rates over 5m and 1h, a ratio for each of the seven windows, and the period.
    level = "_".join(model.labels) or "all"
    slug = model.name.replace("-", "_")
    windows = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    assert sorted(by_name) == sorted([f"{level}:reward_slo_{slug}_{k}:rate{w}" for k in ("bad", "total") for w in ("5m", "1h")]
                                     + [f"{level}:reward_slo_{slug}_errors:ratio_rate{w}" for w in windows]
                                     + [f"{level}:reward_slo_{slug}_budget:remaining30d"])
    # A group evaluates its rules in order: every rule comes after the rules it reads.
    order = [r.record for r in rules]
    for i, r in enumerate(rules):
        for other in order[i + 1:]:
            assert other + "[" not in r.expr and other + " " not in r.expr + " ", (r.record, other)
    # One group per SLO, every minute, within a Mimir ruler's 20 rules a group; the 30-day
    # budget in a group of its own every 5 minutes (no alert reads it).
    assert {(r.group, r.interval) for r in rules} == {(f"reward-slo-{model.name}", "1m"), (f"reward-slo-{model.name}-budget", "5m")}
    assert [r.record for r in rules if r.group.endswith("-budget")] == [f"{level}:reward_slo_{slug}_budget:remaining30d"]
    assert len(rules) == 12


PAGE = """(
label_replace(provider:reward_slo_payout_success_errors:ratio_rate1h, "long_window", "1h", "", "") / 0.001 > 14.4
unless on (provider)
provider:reward_slo_payout_success_errors:ratio_rate5m / 0.001 <= 14.4
and on (provider)
provider:reward_slo_payout_success_bad:rate1h * 3600 >= 3
)
or
(
label_replace(provider:reward_slo_payout_success_errors:ratio_rate6h, "long_window", "6h", "", "") / 0.001 > 6
unless on (provider)
provider:reward_slo_payout_success_errors:ratio_rate30m / 0.001 <= 6
and on (provider)
sum_over_time(provider:reward_slo_payout_success_bad:rate5m[6h:5m]) * 300 >= 3
)"""

TICKET_FLEET_NO_MINIMUM = """(
label_replace(all:reward_slo_fleet_errors:ratio_rate1d, "long_window", "1d", "", "") / 0.005 > 3
unless on ()
all:reward_slo_fleet_errors:ratio_rate2h / 0.005 <= 3
)
or
(
label_replace(all:reward_slo_fleet_errors:ratio_rate3d, "long_window", "3d", "", "") / 0.005 > 1
unless on ()
all:reward_slo_fleet_errors:ratio_rate6h / 0.005 <= 1
)"""

TICKET_TEN = """(
label_replace(provider:reward_slo_payout_success_errors:ratio_rate1d, "long_window", "1d", "", "") / 0.001 > 3
unless on (provider)
provider:reward_slo_payout_success_errors:ratio_rate2h / 0.001 <= 3
and on (provider)
sum_over_time(provider:reward_slo_payout_success_bad:rate1h[1d:1h]) * 3600 >= 10
)
or
(
label_replace(provider:reward_slo_payout_success_errors:ratio_rate3d, "long_window", "3d", "", "") / 0.001 > 1
unless on (provider)
provider:reward_slo_payout_success_errors:ratio_rate6h / 0.001 <= 1
and on (provider)
sum_over_time(provider:reward_slo_payout_success_bad:rate1h[3d:1h]) * 3600 >= 10
)"""

ALERT_CASES = {
    "ticket, per provider, at least 10 failures": (_slo(), "RewardXSlowBurn", "warning", TICKET_TEN),
    "page, per provider, at least 3 failures": (_slo(), "RewardXBurn", "critical", PAGE),
    "ticket, fleet-wide, 99.5%, no minimum": (
        _slo(name="fleet", labels=(), objective=0.995, min_bad_events=0, min_bad_events_ticket=0, bad="sum(rate(a_total[$window]))",
             total="sum(rate(b_total[$window]))"), "RewardXSlowBurn", "warning", TICKET_FLEET_NO_MINIMUM),
}


@pytest.mark.parametrize("case", sorted(ALERT_CASES))
def test_alert_rules(case):
    model, name, severity, expr = ALERT_CASES[case]
    alerts = {a.name: a for a in slo_rules.alert_rules([model])}
    assert set(alerts) == {"RewardXBurn", "RewardXSlowBurn"}
    a = alerts[name]
    assert a.expr == expr
    assert (a.severity, a.op, a.threshold, a.for_, a.group) == (severity, ">", 1, "0s", f"reward-slo-{model.name}-alerts")
    assert a.labels == {"slo": model.name}
    assert (a.runbook_file, a.runbook_anchor) == ("payout-slos.md", name.lower())
    assert (a.no_data_state, a.exec_err_state) == ("OK", "Error")


def test_panels_reading_a_generated_series_are_served_with_the_raw_query():
    panel = Panel(id=1, key="success", title="t", type="stat", unit="u", width=4, height=8, description="d",
                  queries=(Query("1 - provider:reward_slo_payout_success_errors:ratio_rate5m", ""),
                           Query("provider:reward_slo_payout_success_errors:ratio_rate5m_other", "")))
    board = Dashboard(file="f", uid="ops", title="t", folder="f", description="", tags=(), refresh="1m",
                      time_from="now-6h", variables=(), rows=(Row("r", (panel,)),))
    rules = {r.record: r for r in slo_rules.recording_rules([_slo()], [board])}
    assert [(x.panel, x.raw) for x in rules["provider:reward_slo_payout_success_errors:ratio_rate5m"].serves] == [(
        "ops/success[A]",
        '1 - ((sum by (provider) (rate(reward_payouts_total{result="failed"}[5m]))) / ((sum by (provider) (rate(reward_payouts_total[5m]))) > 0))')]
    assert rules["provider:reward_slo_payout_success_errors:ratio_rate1h"].serves == ()


def test_budget_has_no_float_noise():
    assert _slo(objective=0.999).budget == 0.001
    assert _slo(objective=0.995).budget == 0.005


def test_both_sinks_carry_the_generated_rules(out):
    """The Prometheus rule files and the Grafana provisioning come from the same builders."""
    alerts = yaml.safe_load((out / "prometheus/reward-alerts.rules.yaml").read_text())
    prom = {r["alert"]: r for g in alerts["groups"] for r in g["rules"]}
    grafana = yaml.safe_load((out / "grafana/provisioning/alerting/rules.yaml").read_text())
    graf = {r["title"]: r for g in grafana["groups"] for r in g["rules"]}
    for name in ("RewardPayoutErrorBudgetBurn", "RewardWebhookErrorBudgetSlowBurn", "RewardPayoutCreateErrorBudgetBurn"):
        assert prom[name]["expr"].startswith("((\nlabel_replace(")
        assert prom[name]["expr"].endswith(")) > 1")
        assert graf[name]["data"][0]["model"]["expr"] + "" == prom[name]["expr"][1:-len(") > 1")]
        assert graf[name]["data"][1]["model"]["conditions"][0]["evaluator"] == {"type": "gt", "params": [1]}
    recording = yaml.safe_load((out / "prometheus/reward-recording.rules.yaml").read_text())
    recorded = {r["record"] for g in recording["groups"] for r in g["rules"]}
    assert "provider:reward_slo_payout_success_errors:ratio_rate5m" in recorded
    assert "all:reward_slo_payout_success_fleet_errors:ratio_rate3d" in recorded
    # Every recorded series an SLO alert reads is recorded.
    for name, rule in prom.items():
        for used in re.findall(r"[a-z_]+:reward_slo_[a-z_]+:ratio_rate\w+", rule["expr"]):
            assert used in recorded, (name, used)


def test_grafana_recording_rules_include_the_slo_ratios(definitions):
    config = load_config(read_stack_file(ROOT / "Pulumi.prod.yaml"), "Pulumi.prod.yaml", definitions)
    groups = {g["name"]: g for g in grafana_recording_groups(definitions, config)}
    assert groups["reward-slo-webhook-processing"]["interval"] == "1m"
    metrics = {r["record"]["metric"] for r in groups["reward-slo-webhook-processing"]["rules"]}
    assert "provider:reward_slo_webhook_processing_errors:ratio_rate30m" in metrics


BAD_FILES = {
    "schema: objective of 100%": (
        lambda d: d["spec"]["objectives"][0].update(target=1.0),
        "slos/payout-success.yaml:spec.objectives[0].target: 1.0 is greater than or equal to the maximum of 1"),
    "schema: a query without $window": (
        lambda d: d["spec"]["indicator"]["spec"]["ratioMetric"]["bad"]["metricSource"]["spec"].update(query="sum(reward_payouts_total)"),
        "slos/payout-success.yaml:spec.indicator.spec.ratioMetric.bad.metricSource.spec.query: 'sum(reward_payouts_total)' does not match"),
    "contract: unknown metric": (
        lambda d: d["spec"]["indicator"]["spec"]["ratioMetric"]["bad"]["metricSource"]["spec"].update(
            query="sum by (provider) (rate(reward_payouts_failed_total[$window]))"),
        "slos/payout-success.yaml:spec.indicator.spec.ratioMetric.bad.metricSource.spec.query: metric 'reward_payouts_failed_total' is not in the metrics contract"),
    "labels differ between bad and total": (
        lambda d: d["spec"]["indicator"]["spec"]["ratioMetric"]["total"]["metricSource"]["spec"].update(
            query="sum(rate(reward_payouts_total[$window]))"),
        "slos/payout-success.yaml:spec.indicator.spec.ratioMetric.bad: keeps ['provider'] but total keeps []"),
    "job kept": (
        lambda d: [d["spec"]["indicator"]["spec"]["ratioMetric"][k]["metricSource"]["spec"].update(
            query="sum by (provider, job) (rate(reward_payouts_total[$window]))") for k in ("bad", "total")],
        "slos/payout-success.yaml:spec.indicator.spec.ratioMetric.bad.metricSource.spec.query: keeps 'job'"),
    "missing runbook section": (
        lambda d: d["metadata"]["annotations"].update({"reward-obs/alert-prefix": "RewardNoSuchSection"}),
        "slos/payout-success.yaml:runbook: runbooks/payout-slos.md has no heading with anchor #rewardnosuchsectionburn"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_wrong_slo_is_reported_by_file_and_field(repo_copy, case):
    change, message = BAD_FILES[case]
    path = repo_copy / "slos" / "payout-success.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DefinitionError) as err:
        load_definitions(repo_copy)
    assert any(str(p).startswith(message) for p in err.value.problems), "\n".join(map(str, err.value.problems))


def test_a_wrong_slo_writes_nothing(repo_copy, tmp_path):
    path = repo_copy / "slos" / "webhook-processing.yaml"
    path.write_text(path.read_text().replace("target: 0.985", "target: 2"))
    result = run_cli("--root", str(repo_copy), "render", "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and "slos/webhook-processing.yaml:spec.objectives[0].target" in result.stderr
    assert not (tmp_path / "out" / "prometheus").exists()
