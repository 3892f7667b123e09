"""The metrics contract: matches the backend's table, refuses identity labels, and every
query in the product is checked against it."""
from __future__ import annotations

import pytest
import yaml

from reward_obs.catalog.recording import with_recorded_series
from reward_obs.lang import promql
from reward_obs.model.contract import identity_label

from conftest import run_cli
from spec import IDENTITY_LABELS, PROVIDERS, REQUIRED_METRICS


def test_contract_has_every_backend_metric_with_its_type_and_labels(definitions):
    metrics = definitions.contract.metrics
    for name, (kind, labels) in REQUIRED_METRICS.items():
        assert name in metrics, f"{name} missing from contract/metrics.yaml"
        assert metrics[name].type == kind, name
        assert set(metrics[name].labels) == labels, name
        assert metrics[name].unit and metrics[name].help, name


def test_provider_label_lists_every_provider_type(definitions):
    assert set(definitions.contract.labels["provider"]["values"]) == PROVIDERS


def test_entry_fee_is_not_an_allowed_funding_source(definitions):
    assert "entry_fee" not in definitions.contract.labels["source"]["values"]


@pytest.mark.parametrize("label", IDENTITY_LABELS)
def test_identity_label_is_recognised(label):
    assert identity_label(label)


@pytest.mark.parametrize("label", ["provider", "pool_id", "campaign_id", "currency", "outcome", "error_code", "status", "le"])
def test_bounded_labels_are_allowed(label):
    assert not identity_label(label)


@pytest.mark.parametrize("label", ["user_id", "wallet_address", "correlation_id", "kyc_level"])
def test_contract_refuses_identity_label(repo_copy, label):
    path = repo_copy / "contract" / "metrics.yaml"
    data = yaml.safe_load(path.read_text())
    data["labels"][label] = {"help": "an identifier"}
    data["metrics"]["reward_payouts_total"]["labels"].append(label)
    path.write_text(yaml.safe_dump(data))
    result = run_cli("--root", str(repo_copy), "validate")
    assert result.returncode == 1
    assert f"contract/metrics.yaml:metrics.reward_payouts_total.labels: '{label}' identifies a person" in result.stderr



def test_contract_scrape_job_must_be_the_one_the_queries_select(repo_copy):
    # Every query selects job="rewards" (model/names.py); a contract naming another job
    # would scrape series no alert or panel reads.
    path = repo_copy / "contract" / "metrics.yaml"
    text = path.read_text()
    assert "\nscrape_job: rewards\n" in text
    path.write_text(text.replace("\nscrape_job: rewards\n", "\nscrape_job: reward-backend\n"))
    result = run_cli("--root", str(repo_copy), "validate")
    assert result.returncode == 1
    assert ("contract/metrics.yaml:scrape_job: 'reward-backend' differs from the job every query selects, 'rewards' "
            "(model/names.py SCRAPE_JOB)") in result.stderr, result.stderr

@pytest.mark.parametrize(
    "expr, message",
    [
        ("sum(reward_payout_totals)", "metric 'reward_payout_totals' is not in the metrics contract"),
        ('sum(reward_payouts_total{wallet="x"})', "reward_payouts_total has no label 'wallet'"),
        ('sum(reward_payouts_total{result="fail"})', "'fail' is not a value of result"),
        ('sum(reward_payout_webhooks_total{result=~"failed|paid"})', "'paid' is not a value of result"),
        ("sum by (user_id) (reward_payouts_pending)", "label 'user_id' in a grouping clause"),
        ("sum(rate(reward_payouts_total[5m]", "not valid PromQL"),
    ],
)
def test_catalog_check_rejects(definitions, expr, message):
    problems = promql.catalog_problems(expr, definitions.contract)
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize(
    "expr",
    [
        "histogram_quantile(0.9, sum by (le, provider) (rate(reward_payout_duration_seconds_bucket[5m])))",
        'sum(reward_payout_webhooks_total{result=~"invalid_signature|failed"})',
        'up{job="rewards"}',
        'reward_pool_funding_total{source!~"sponsor|treasury"}',
    ],
)
def test_catalog_check_accepts(definitions, expr):
    assert promql.catalog_problems(expr, definitions.contract) == []


def test_every_dashboard_and_alert_query_fits_the_contract(definitions, config):
    """The loader enforces this; here it is re-checked on the resolved queries."""
    from reward_obs.builders.alerts import resolved_alerts

    # Panels may read recorded series (themselves checked against the contract).
    with_recorded = with_recorded_series(definitions.contract, definitions.recording_rules)
    checked = 0
    for dashboard in definitions.dashboards:
        for panel in dashboard.panels:
            if panel.datasource != "prometheus":
                continue
            for query in panel.queries:
                assert promql.catalog_problems(promql.without_grafana_variables(query.expr), with_recorded) == [], panel.title
                checked += 1
    for alert in resolved_alerts(definitions, config):
        if not alert.rule.is_promql:
            continue
        # Alerts read raw metrics; the SLO burn-rate alerts also read their recorded ratios,
        # two pool alerts a forecast and a day's sum recorded every 5m, and two the pools'
        # recorded share of budget. RewardPoolExhausted, the page, is not among them.
        reads_recorded = alert.rule.slo or alert.name in ("RewardPoolEmptyingSoon", "RewardPoolFundingSourceOther", "RewardPoolLow")
        assert promql.catalog_problems(alert.condition_expr, with_recorded if reads_recorded else definitions.contract) == [], alert.name
        checked += 1
    assert checked >= 9 + 8


# ---------------------------------------------------------------- Season Points

SEASON_POINTS = ["SP", "SEASON_POINTS", "SEASONPOINTS"]  # the names the game uses for them


def test_season_points_are_refused_as_a_currency_in_any_letter_case(definitions):
    contract = definitions.contract
    for name in SEASON_POINTS:
        assert contract.refused("currency", name) and contract.refused("currency", name.lower()), name
    assert not contract.refused("currency", "TON") and not contract.refused("currency", "STARS_GIFT")
    problems = promql.catalog_problems('sum(reward_pool_budget{currency="SEASON_POINTS"})', contract)
    assert problems == ["reward_pool_budget{currency='SEASON_POINTS'}: 'SEASON_POINTS' is refused by the metrics contract as a currency"]


def test_the_season_points_alert_looks_for_exactly_the_refused_names_in_every_amount_metric(definitions):
    """One list, three places: the metrics contract, the event contract's currency pattern
    and the alert that catches the backend exporting one."""
    import json
    import re

    from conftest import ROOT

    refused = sorted(definitions.contract.labels["currency"]["refused"])
    assert refused == sorted(SEASON_POINTS)
    alert = definitions.alert("RewardSeasonPointsAsCurrency").resolved()
    tree = promql.parse(alert.expr)
    matchers = {s.metric: [m for m in s.matchers if m[0] == "currency"] for s in promql.selectors(tree)}
    amount_metrics = {n for n, m in definitions.contract.metrics.items()
                      if "currency" in m.labels and m.unit == "currency_units"}
    assert amount_metrics - set(matchers) <= {"reward_pool_remaining"}  # budget - reserved - paid: no new currency
    for metric, [(_label, op, value)] in matchers.items():
        assert op == "=~" and value.removeprefix("(?i)").split("|") == SEASON_POINTS, metric
    schema = json.loads((ROOT / "contract/reward_event.schema.json").read_text())
    pattern = schema["$defs"]["currency"]["pattern"] if "$defs" in schema and "currency" in schema["$defs"] else None
    text = json.dumps(schema)
    assert all(re.search(rf"\b{name}\b", text) for name in SEASON_POINTS)
    assert pattern is None or all(name in pattern for name in SEASON_POINTS)
