"""docs/alerts.md, the generated alert reference (tools/alert_reference.py): the committed
copy is what the definitions and docs/scenario-results.json generate, every alert has its
section, the numbers it prints are the definition's and promtool's, and the abuse alerts
print none of theirs."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import types
from pathlib import Path

import pytest
import yaml

from reward_obs.tools.alert_reference import (
    ALERTS_MD,
    CONFIDENTIAL,
    RESULTS_FILE,
    alerts_markdown,
    condition,
    dump_results,
    hidden_fields,
    load_results,
    public_text,
    results_from_report,
)

from conftest import ROOT, run_cli


def _section(text: str, name: str) -> str:
    """The `## name` section of docs/alerts.md, up to the next one."""
    start = text.index(f"\n## {name}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def _alert_names_from_files() -> list[str]:
    """Every alert name, read from the definition files themselves: alert_rules/ and, per
    SLO, its page (`<prefix>Burn`) and ticket (`<prefix>SlowBurn`) alert."""
    names = [yaml.safe_load(p.read_text())["name"] for p in sorted((ROOT / "alert_rules").glob("*.yaml"))]
    for path in sorted((ROOT / "slos").glob("*.yaml")):
        prefix = yaml.safe_load(path.read_text())["metadata"]["annotations"]["reward-obs/alert-prefix"]
        names += [f"{prefix}Burn", f"{prefix}SlowBurn"]
    return sorted(names)


# ---------------------------------------------------------------- the committed files


def test_committed_alert_reference_is_what_the_generator_writes(definitions):
    committed = (ROOT / ALERTS_MD).read_text(encoding="utf-8")
    assert committed == alerts_markdown(definitions, load_results(ROOT)), \
        f"{ALERTS_MD} is out of date: run `reward-obs docs`"


def test_committed_results_file_is_in_its_canonical_form():
    text = (ROOT / RESULTS_FILE).read_text(encoding="utf-8")
    assert text == dump_results(json.loads(text)), f"{RESULTS_FILE} was edited by hand: regenerate it"


@pytest.mark.parametrize("name", _alert_names_from_files())
def test_every_alert_has_an_index_row_and_a_section(name):
    text = (ROOT / ALERTS_MD).read_text(encoding="utf-8")
    assert f"\n| [{name}](#{name.lower()}) |" in text
    section = _section(text, name)
    assert "- Runbook: [" in section and "- Panel: " in section and "- Severity: " in section


def _alerts_with_internal_fields() -> list[str]:
    return sorted(p.stem for p in (ROOT / "alert_rules").glob("*.yaml")
                  if re.search(r"^internal:", p.read_text(encoding="utf-8"), re.M))


@pytest.mark.parametrize("name", _alerts_with_internal_fields())
def test_alert_with_internal_fields_prints_none_of_its_numbers(name, definitions):
    """Its threshold, `for` and every parameter, as the definition file writes them, appear
    nowhere in its row or section, and the results file holds none of its measurements."""
    data = yaml.safe_load((ROOT / "alert_rules" / f"{name}.yaml").read_text())
    numbers = {str(v) for v in (data.get("condition", {}).get("threshold"), data.get("for"), *data.get("params", {}).values())
               if v is not None}
    assert numbers, "the definition names no number to look for"
    text = (ROOT / ALERTS_MD).read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith(f"| [{name}]"))
    section = _section(text, name)
    for number in numbers:
        token = re.compile(rf"(?<![\w.]){re.escape(number)}(?![\w.])")
        assert not token.search(row), (number, row)
        assert not token.search(section), (number, section)
    assert CONFIDENTIAL in row and f"- Condition: {CONFIDENTIAL}" in section and f"- Detection: {CONFIDENTIAL}" in section
    assert "‹confidential›" in section or "$" not in data["description"]
    results = json.loads((ROOT / RESULTS_FILE).read_text())
    assert not [s for s in results["scenarios"] if s["alert"] == name]


# ---------------------------------------------------------------- what it prints

# Written by hand: two fault scenarios of RewardPoolLow (the later one against its bound is
# the worst, though its latency is shorter), one SLO scenario with a reset per burn window,
# a measurement of an abuse alert, and a silence scenario in which RewardPoolLow fired.
RESULTS = {"version": 1, "scenarios": [
    {"name": "low-a", "alert": "RewardPoolLow", "labels": {"pool_id": "p1"}, "passed": True,
     "latency_min": 12, "within_min": 15, "resets": [], "false_firings": []},
    {"name": "low-b", "alert": "RewardPoolLow", "labels": {"pool_id": "p2"}, "passed": True,
     "latency_min": 9, "within_min": 10, "resets": [], "false_firings": []},
    {"name": "burn-a", "alert": "RewardPayoutErrorBudgetBurn", "labels": {"provider": "gift_card"}, "passed": True,
     "latency_min": 2, "within_min": 15,
     "resets": [{"labels": {"long_window": "1h"}, "reset_min": 6}, {"labels": {"long_window": "6h"}, "reset_min": 31}],
     "false_firings": []},
    {"name": "burn-b", "alert": "RewardPayoutErrorBudgetBurn", "labels": {"provider": "ton_wallet"}, "passed": False,
     "latency_min": None, "within_min": 3, "resets": [{"labels": {"long_window": "1h"}, "reset_min": 4}],
     "false_firings": []},
    {"name": "abuse", "alert": "RewardClaimRejectionRateHigh", "labels": {"campaign_id": "c"}, "passed": True,
     "latency_min": 17, "within_min": 20, "resets": [], "false_firings": []},
    {"name": "quiet", "alert": None, "passed": True, "false_firings": ["RewardPoolLow", "RewardPoolLow"]},
]}


def test_alert_rows_and_sections_from_hand_written_results(definitions):
    text = alerts_markdown(definitions, RESULTS)
    assert ("| [RewardPoolLow](#rewardpoollow) | warning | Reward pool {pool_id} has {value} of its budget left "
            "| 9m (bound 10m, low-b) | — |") in text
    pool_low = _section(text, "RewardPoolLow")
    assert "- Condition: `< 0.1` for 10m\n" in pool_low
    assert "- Runbook: [reward-pool-recovery.md#rewardpoollow](../runbooks/reward-pool-recovery.md#rewardpoollow)" in pool_low
    assert "| low-a | RewardPoolLow{pool_id=p1} | 12m | 15m | — | pass |" in pool_low
    assert "False firings over the 6 scenarios: 2." in pool_low
    # A fault scenario that never fired is the worst, whatever the others measured; each burn
    # window's reset is its worst over the scenarios.
    assert ("| [RewardPayoutErrorBudgetBurn](#rewardpayouterrorbudgetburn) | critical | {provider}: Payouts succeed, "
            "per provider is burning its error budget fast | **never fired** (bound 3m, burn-b) | 1h: 6m, 6h: 31m |") in text
    burn = _section(text, "RewardPayoutErrorBudgetBurn")
    assert "| burn-b | RewardPayoutErrorBudgetBurn{provider=ton_wallet} | — | 3m | 1h: 4m | **FAIL** |" in burn
    assert "| burn-a | RewardPayoutErrorBudgetBurn{provider=gift_card} | 2m | 15m | 1h: 6m, 6h: 31m | pass |" in burn
    webhook = _section(text, "RewardPayoutWebhookFailing")
    assert "- Condition: `> 0.1` for 5m; min_deliveries 20, window 5m\n" in webhook
    assert "- Detection: not measured\n" in webhook
    assert "- Held back while firing: [RewardPayoutProviderOutage](#rewardpayoutprovideroutage)" in webhook
    # The abuse alert's measurement is in the input, and not in the output.
    abuse = _section(text, "RewardClaimRejectionRateHigh")
    assert "17m" not in abuse and "abuse |" not in abuse and f"- Detection: {CONFIDENTIAL}" in abuse


def test_an_alert_without_a_measurement_says_not_measured(definitions):
    text = alerts_markdown(definitions, {"version": 1, "scenarios": []})
    for alert in definitions.alerts:
        section = _section(text, alert.name)
        assert ("- Detection: not measured" in section) != bool(hidden_fields(alert)), alert.name
    assert "| [RewardPoolLow](#rewardpoollow) | warning | Reward pool {pool_id} has {value} of its budget left | not measured | — |" in text


def test_condition_leaves_out_the_fields_an_alert_declares_internal(definitions):
    webhook = definitions.alert("RewardPayoutWebhookFailing")
    assert condition(webhook) == "`> 0.1` for 5m; min_deliveries 20, window 5m"
    assert condition(webhook, frozenset({"params.min_deliveries"})) == \
        f"`> 0.1` for 5m; window 5m (other numbers {CONFIDENTIAL})"
    assert condition(webhook, frozenset({"threshold", "params"})) == f"for 5m (other numbers {CONFIDENTIAL})"
    assert condition(webhook, frozenset({"threshold", "for", "params"})) == CONFIDENTIAL
    # A definition that declares any field internal keeps every number out: its public ones
    # would narrow the private ones.
    declared = types.SimpleNamespace(name="RewardPoolLow", internal=("threshold",))
    assert hidden_fields(declared) == frozenset({"threshold", "for", "params"})
    # alert_rules/RewardClaimVolumeAbnormal.yaml declares internal: [threshold, params.min_claims].
    assert hidden_fields(definitions.alert("RewardClaimVolumeAbnormal")) == frozenset({"threshold", "for", "params"})
    assert hidden_fields(definitions.alert("RewardPoolLow")) == frozenset()


def test_one_internal_parameter_redacts_every_parameter_in_the_text(definitions):
    webhook = dataclasses.replace(definitions.alert("RewardPayoutWebhookFailing"),
                                  description="more than $min_deliveries deliveries in $window")
    text = alerts_markdown(dataclasses.replace(definitions, alerts=(webhook,)), {"version": 1, "scenarios": []})
    assert "more than 20 deliveries in 5m" in text
    hiding = dataclasses.replace(webhook, internal=("params.min_deliveries",))
    assert public_text(hiding, hiding.description, hidden_fields(hiding)) == "more than ‹confidential› deliveries in ‹confidential›"
    # The function itself redacts exactly what it is given.
    assert public_text(hiding, hiding.description, frozenset({"params.min_deliveries"})) == "more than ‹confidential› deliveries in 5m"


# ---------------------------------------------------------------- the results file


def _report_scenario(name, alert=None, labels=None, latency=None, within=None, resets=(), false=(), passed=True):
    """A scenario of report.json (tools/scenarios/report.py scenario_json), the fields read."""
    fault = None if alert is None else {
        "alert": alert, "labels": labels or {}, "latency_min": latency, "within_min": within, "first_firing_min": 99,
        "resets": [{"labels": lab, "reset_min": m} for lab, m in resets]}
    return {"name": name, "passed": passed, "fault": fault, "seconds": 3.2,
            "false_firings": [{"alert": a, "labels": {}} for a in false]}


def test_results_from_a_report_merge_into_the_previous_file(definitions):
    report = {"evaluation_interval": "1m", "seconds": 41.7, "scenarios": [
        _report_scenario("pool-low", "RewardPoolLow", {"pool_id": "summer-cup-ton"}, 10, 20),
        _report_scenario("slo-payout-total-failure", "RewardPayoutErrorBudgetBurn", {"provider": "ton_wallet"}, 0, 3,
                         resets=[({"long_window": "6h"}, 31), ({"long_window": "1h"}, 4)]),
        _report_scenario("claim-rejections-high", "RewardClaimRejectionRateHigh", {"campaign_id": "x"}, 17, 20),
        _report_scenario("healthy-week", false=["RewardPoolLow"], passed=False),
    ]}
    previous = {"version": 1, "scenarios": [
        {"name": "pool-low", "alert": "RewardPoolLow", "labels": {}, "passed": True, "latency_min": 1, "within_min": 2,
         "resets": [], "false_firings": []},  # replaced by this run
        {"name": "funding-entry-fee", "alert": None, "passed": True, "false_firings": []},  # kept: not run now
        {"name": "a-deleted-scenario", "alert": None, "passed": True, "false_firings": []},  # its file is gone
        {"name": "claim-rejections-high", "alert": "RewardClaimRejectionRateHigh", "labels": {}, "passed": True,
         "latency_min": 17, "within_min": 20, "resets": [], "false_firings": []},  # an abuse alert: dropped
    ]}
    assert results_from_report(report, definitions, previous) == {"version": 1, "evaluation_interval": "1m", "scenarios": [
        {"name": "funding-entry-fee", "alert": None, "passed": True, "false_firings": []},
        {"name": "healthy-week", "alert": None, "passed": False, "false_firings": ["RewardPoolLow"]},
        {"name": "pool-low", "alert": "RewardPoolLow", "labels": {"pool_id": "summer-cup-ton"}, "passed": True,
         "latency_min": 10, "within_min": 20, "resets": [], "false_firings": []},
        {"name": "slo-payout-total-failure", "alert": "RewardPayoutErrorBudgetBurn", "labels": {"provider": "ton_wallet"},
         "passed": True, "latency_min": 0, "within_min": 3, "false_firings": [],
         "resets": [{"labels": {"long_window": "1h"}, "reset_min": 4}, {"labels": {"long_window": "6h"}, "reset_min": 31}]},
    ]}


def test_dump_results_is_deterministic():
    a = {"version": 1, "scenarios": [{"name": "b", "alert": None, "passed": True, "false_firings": []},
                                     {"false_firings": [], "passed": True, "alert": None, "name": "a"}]}
    b = {"scenarios": list(reversed(a["scenarios"])), "version": 1}
    assert dump_results(a) == dump_results(b)
    assert dump_results(a).endswith("}\n") and dump_results(a).index('"a"') < dump_results(a).index('"b"')


# ---------------------------------------------------------------- the command


@pytest.fixture
def docs_repo(repo_copy) -> Path:
    """A repository copy with docs/ and scenarios/, as `reward-obs docs` reads them."""
    for name in ("docs", "scenarios"):
        shutil.copytree(ROOT / name, repo_copy / name)
    return repo_copy


def test_docs_check_passes_on_the_repository_and_fails_on_a_stale_copy(docs_repo):
    ok = run_cli("--root", str(docs_repo), "docs", "--check")
    assert ok.returncode == 0, ok.stderr
    md = docs_repo / ALERTS_MD
    md.write_text(md.read_text().replace("| critical |", "| warning |", 1))
    stale = run_cli("--root", str(docs_repo), "docs", "--check")
    assert stale.returncode == 1
    assert "docs/alerts.md:(file): is not what the definitions and docs/scenario-results.json generate" in stale.stderr
    fixed = run_cli("--root", str(docs_repo), "docs")
    assert fixed.returncode == 0 and md.read_text() == (ROOT / ALERTS_MD).read_text()


def test_a_bad_results_file_is_refused_with_its_field_and_nothing_is_written(docs_repo):
    results = docs_repo / RESULTS_FILE
    data = json.loads(results.read_text())
    fault = next(i for i, s in enumerate(data["scenarios"]) if s["alert"])
    data["scenarios"][fault]["latency_min"] = "7m"
    results.write_text(json.dumps(data))
    md = docs_repo / ALERTS_MD
    md.write_text("old\n")
    result = run_cli("--root", str(docs_repo), "docs")
    assert result.returncode == 1
    assert f"docs/scenario-results.json:scenarios[{fault}].latency_min: '7m' is not of type 'integer', 'null'" in result.stderr
    assert "Traceback" not in result.stderr and md.read_text() == "old\n"


def test_docs_from_report_updates_results_and_reference(docs_repo, tmp_path):
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"evaluation_interval": "1m", "scenarios": [
        _report_scenario("pool-low", "RewardPoolLow", {"pool_id": "summer-cup-ton"}, 11, 20)]}))
    result = run_cli("--root", str(docs_repo), "docs", "--from-report", str(report))
    assert result.returncode == 0, result.stderr
    pool_low = _section((docs_repo / ALERTS_MD).read_text(), "RewardPoolLow")
    assert "- Detection, worst: 11m (bound 20m, pool-low)" in pool_low
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"scenarios": [{"name": "pool-low"}]}))
    before = (docs_repo / RESULTS_FILE).read_text()
    refused = run_cli("--root", str(docs_repo), "docs", "--from-report", str(broken))
    assert refused.returncode == 1 and "not a report.json of `reward-obs scenarios`" in refused.stderr
    assert "Traceback" not in refused.stderr and (docs_repo / RESULTS_FILE).read_text() == before


@pytest.mark.promtool
def test_scenarios_results_option_writes_promtools_measurement(docs_repo, tmp_path):
    """`reward-obs scenarios --results` end to end on one short scenario: the entry is what
    promtool measured (forbidden funding fires at the first evaluation after the fault, with
    the fault's pool and source; the scenario asserts 3m), merged into the existing file."""
    results = docs_repo / RESULTS_FILE
    before = json.loads(results.read_text())["scenarios"]
    run = run_cli("--root", str(docs_repo), "scenarios", "--out", str(tmp_path / "sc"), "--only", "funding-entry-fee",
                  "--no-plots", "--jobs", "1", "--results", str(results))
    assert run.returncode == 0, run.stdout + run.stderr
    after = json.loads(results.read_text())["scenarios"]
    assert next(s for s in after if s["name"] == "funding-entry-fee") == {
        "name": "funding-entry-fee", "alert": "RewardPoolFundingSourceInvalid", "passed": True,
        "labels": {"pool_id": "summer-cup-ton", "source": "entry_fee"}, "latency_min": 0, "within_min": 3,
        "resets": [], "false_firings": []}
    assert {s["name"] for s in after} == {s["name"] for s in before} | {"funding-entry-fee"}
    assert results.read_text() == dump_results(json.loads(results.read_text()))
