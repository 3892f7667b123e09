"""Internal alert fields (catalog/internal.py): a private production value reaches the
rules Grafana and Prometheus evaluate and the restricted Grafana runbook copy, and no
public output (diff, report, stdout/stderr of a command, the public runbooks and docs)
shows it. The definitions keep marked TEST values; a committed stack file cannot set one."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reward_obs.catalog.internal import internal_fields, mask_numbers
from reward_obs.catalog.runbook_numbers import BOUND, INTERNAL
from reward_obs.catalog.runbooks import load_runbooks

from conftest import ROOT, run_cli
from helpers import SECRETS, dashboard, grafana_rules, plain_text, prometheus_rules, stack_values

# Distinctive values, none of which the repository holds: any of these strings in a
# public output is a leak. 26316 s is 7.31 hours.
PRIVATE = {
    "RewardClaimVolumeAbnormal": {"threshold": 7.31, "params": {"min_claims": 7731}},
    "RewardClaimRejectionRateHigh": {"threshold": 0.2731, "params": {"min_decisions": 7732}},
    "RewardClaimsHeldPastTarget": {"threshold": 26316, "params": {"target": "7.31 hours"}},
    "RewardClaimVolumeNewCampaign": {"threshold": 17.31, "params": {"min_claims": 7733}},
}
LEAKS = ("7.31", "7731", "7732", "7733", "2731", "26316")
# What the repository declares internal, written out here, not read from the definitions.
EXPECTED_INTERNAL = {
    "RewardClaimVolumeAbnormal": ("threshold", "params.min_claims"),
    "RewardClaimRejectionRateHigh": ("threshold", "params.min_decisions"),
    "RewardClaimsHeldPastTarget": ("threshold", "params.target"),
    "RewardClaimVolumeNewCampaign": ("threshold", "params.min_claims"),
}
SHORT_SCENARIO = "pool-being-set-up"  # one hour, silent
# The evasion hints the repository used to publish.
BLIND_SPOTS = ("first day is not compared", "ends within the window never fires", "has no yesterday and is not compared")


def _leaks(text: str) -> list[str]:
    return [s for s in LEAKS if s in text]


@pytest.fixture(scope="module")
def private_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("private") / "internal-params.yaml"
    path.write_text(yaml.safe_dump(PRIVATE))
    return path


@pytest.fixture(scope="module")
def renders(tmp_path_factory, private_file):
    """A public render (TEST values) and a private one, with each command's output."""
    base = tmp_path_factory.mktemp("public")
    head = tmp_path_factory.mktemp("private-render")
    public = run_cli("render", "--out", str(base))
    assert public.returncode == 0, public.stderr
    private = run_cli("--internal-params", str(private_file), "render", "--out", str(head))
    assert private.returncode == 0, private.stderr
    return base, head, private


def test_the_repository_declares_the_abuse_thresholds_internal_with_marked_test_values(definitions):
    declared = {a.name: a.internal for a in definitions.alerts if a.internal}
    assert internal_fields(definitions) == EXPECTED_INTERNAL  # no internal field is a duration
    assert declared == EXPECTED_INTERNAL
    for name, fields in EXPECTED_INTERNAL.items():
        text = (ROOT / "alert_rules" / f"{name}.yaml").read_text()
        # every internal number is written as a test_value, in the file itself
        assert text.count("test_value") == len(fields), name


@pytest.mark.slow
@pytest.mark.parametrize("alert", sorted(PRIVATE))
def test_private_values_reach_grafana_and_prometheus_rules(renders, alert):
    _, head, _ = renders
    private = PRIVATE[alert]
    grafana = grafana_rules(head)[alert]
    evaluator = grafana["data"][-1]["model"]["conditions"][0]["evaluator"]
    assert evaluator["params"] == [private["threshold"]]
    prometheus = prometheus_rules(head)[alert]["expr"]
    assert prometheus.rstrip().endswith(f" {private['threshold']}")
    for value in private["params"].values():
        if isinstance(value, (int, float)):
            assert f">= {value}" in grafana["data"][0]["model"]["expr"] and f">= {value}" in prometheus


def test_the_public_render_keeps_the_test_values(renders):
    base, _, _ = renders
    rules = grafana_rules(base)
    assert rules["RewardClaimVolumeAbnormal"]["data"][-1]["model"]["conditions"][0]["evaluator"]["params"] == [3]
    assert not _leaks((base / "grafana/provisioning/alerting/rules.yaml").read_text())


def test_the_grafana_runbook_copy_shows_the_private_numbers(renders):
    _, head, _ = renders

    def text_of(uid: str) -> str:
        return "\n".join(p["options"]["content"] for p in dashboard(head, uid)["panels"] if p["type"] == "text")

    # The abuse sections are shown only in the Trust & Safety folder's runbook copy.
    content = text_of("reward-runbooks-trust-safety")
    for other in ("reward-runbooks", "reward-runbooks-support"):
        assert "7.31" not in text_of(other) and "7731" not in text_of(other), other
    assert "several times (over 7.31x) as many claims" in content
    assert "enough claims to matter (7731 or more)" in content
    assert "(over 27.31%) of claim decisions" in content
    assert "longer than the review target (26316 seconds)" in content
    assert "median established campaign (over 17.31x)" in content


def test_no_command_prints_a_private_value(renders, private_file, tmp_path):
    base, head, render = renders
    outputs = {"render": render.stdout + render.stderr}
    for command in (("validate",), ("runbooks",), ("lint",), ("diff", str(base), str(head))):
        result = run_cli("--internal-params", str(private_file), *command)
        assert result.returncode == 0, result.stderr
        outputs[command[0]] = result.stdout + result.stderr
    leaked = {name: _leaks(text) for name, text in outputs.items() if _leaks(text)}
    assert leaked == {}
    # the diff still says which alerts changed, without the values
    for alert in PRIVATE:
        assert f"- **changed** `{alert}`: internal parameter changed" in outputs["diff"]


def test_diff_shows_a_structural_change_of_an_internal_alert_with_its_numbers_masked(renders, repo_copy, private_file, tmp_path):
    base, _, _ = renders
    rule = repo_copy / "alert_rules/RewardClaimVolumeAbnormal.yaml"
    rule.write_text(rule.read_text().replace("rate(reward_claim_requests_total[$window]))\n  /", "irate(reward_claim_requests_total[$window]))\n  /"))
    head = tmp_path / "head"
    stack = str(repo_copy / "Pulumi.selfhost.yaml")
    result = run_cli("--root", str(repo_copy), "--stack-config", stack, "--internal-params", str(private_file), "render", "--out", str(head))
    assert result.returncode == 0, result.stderr
    result = run_cli("--root", str(repo_copy), "diff", str(base), str(head))
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if "`RewardClaimVolumeAbnormal`" in x)
    assert "query changed" in line and "internal parameter changed" in line
    # the window is public and stays readable; the numbers are masked
    assert "    -sum by (campaign_id) (rate(reward_claim_requests_total[15m]))" in result.stdout
    assert "    +sum by (campaign_id) (irate(reward_claim_requests_total[15m]))" in result.stdout
    assert not _leaks(result.stdout)


def test_public_runbooks_name_no_internal_number_and_no_blind_spot(definitions):
    internal = {a.name: a.internal for a in definitions.alerts}
    for path in sorted((ROOT / "runbooks").glob("*.md")) + sorted((ROOT / "docs").glob("*.md")):
        text = path.read_text()
        for b in BOUND.finditer(text):
            field = b["field"] if b["field"] in ("threshold", "for") else f"params.{b['field']}"
            assert field not in internal.get(b["alert"], ()), f"{path.name} quotes {b['alert']}.{b['field']}"
        for phrase in BLIND_SPOTS:
            assert phrase not in text, f"{path.name}: {phrase}"
    for alert in EXPECTED_INTERNAL:
        text = (ROOT / "alert_rules" / f"{alert}.yaml").read_text()
        for phrase in BLIND_SPOTS:
            assert phrase not in text, f"{alert}: {phrase}"


@pytest.mark.parametrize("alert", sorted(EXPECTED_INTERNAL))
def test_internal_alerts_bind_internal_fields_privately_and_the_rest_publicly(definitions, alert):
    """The public section still quotes and binds every number that is not internal (its
    window and `for`), and names every internal field so the Grafana copy can show it."""
    rule = definitions.alert(alert)
    runbook = next(r for r in load_runbooks(ROOT) if r.file == rule.runbook_file)
    section = next(s for s in runbook.sections if s.anchor == rule.runbook_anchor)
    meaning = section.parts["Meaning"]
    public = {b["field"] for b in BOUND.finditer(meaning) if b["alert"] == alert}
    private = {m["field"] for m in INTERNAL.finditer(meaning) if m["alert"] == alert}
    numeric = {"for", *(p for p, v in rule.params.items() if f"params.{p}" not in rule.internal)} - {"target"}
    assert public == numeric
    assert {f if f == "threshold" else f"params.{f}" for f in private} == {f for f in rule.internal if f != "params.target"}


BAD_PRIVATE = {
    "not a number": ({**PRIVATE, "RewardClaimVolumeAbnormal": {"threshold": "high", "params": {"min_claims": 7731}}},
                     "RewardClaimVolumeAbnormal.threshold: must be a number"),
    "public field": ({**PRIVATE, "RewardPoolLow": {"threshold": 0.31}},
                     "RewardPoolLow.threshold: is not internal in alert_rules/RewardPoolLow.yaml"),
    "missing": ({k: v for k, v in PRIVATE.items() if k != "RewardClaimRejectionRateHigh"},
                "RewardClaimRejectionRateHigh.params.min_decisions: is internal and has no production value here"),
    "test value": ({**PRIVATE, "RewardClaimVolumeAbnormal": {"threshold": 3, "params": {"min_claims": 7731}}},
                   "RewardClaimVolumeAbnormal.threshold: equals its TEST value"),
    "unknown alert": ({**PRIVATE, "RewardNoSuchAlert": {"threshold": 1}}, "RewardNoSuchAlert: is not a defined alert"),
}


@pytest.mark.parametrize("case", sorted(BAD_PRIVATE))
def test_a_bad_private_file_is_refused_by_file_and_field_and_nothing_is_written(case, tmp_path):
    values, message = BAD_PRIVATE[case]
    path = tmp_path / "private.yaml"
    path.write_text(yaml.safe_dump(values))
    out = tmp_path / "out"
    result = run_cli("--internal-params", str(path), "render", "--out", str(out))
    assert result.returncode == 1
    assert f"{path}:{message}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    assert not _leaks(result.stderr)


def test_a_committed_stack_file_cannot_set_an_internal_field(repo_copy):
    stack = repo_copy / "Pulumi.selfhost.yaml"
    stack.write_text(stack.read_text() + "  reward-observability:alertOverrides:\n    RewardClaimVolumeAbnormal:\n"
                                         "      threshold: 5\n      params: {window: 20m}\n")
    result = run_cli("--root", str(repo_copy), "--stack-config", str(stack), "validate")
    assert result.returncode == 1
    assert (f"{stack}:reward-observability:alertOverrides.RewardClaimVolumeAbnormal.threshold: is internal: its production "
            "value is private and this file is committed") in result.stderr
    # the public window is still overridable there
    assert "params.window" not in result.stderr


def test_an_internal_field_must_be_a_marked_test_value(repo_copy):
    rule = repo_copy / "alert_rules/RewardClaimVolumeAbnormal.yaml"
    rule.write_text(rule.read_text().replace("threshold: {test_value: 3}", "threshold: 3"))
    result = run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"), "validate")
    assert result.returncode == 1
    assert "alert_rules/RewardClaimVolumeAbnormal.yaml:condition.threshold: is internal: write it as {test_value: N}" in result.stderr


def test_a_public_runbook_cannot_quote_an_internal_number(repo_copy):
    path = repo_copy / "runbooks/claim-anomalies.md"
    text = path.read_text()
    old = "several times<!--internal RewardClaimVolumeAbnormal.threshold: (over {}x)-->"
    assert old in text
    path.write_text(text.replace(old, "over 3<!--RewardClaimVolumeAbnormal.threshold--> times"))
    result = run_cli("--root", str(repo_copy), "--stack-config", str(repo_copy / "Pulumi.selfhost.yaml"), "validate")
    assert result.returncode == 1
    assert "quotes RewardClaimVolumeAbnormal.threshold, which is internal" in result.stderr


def test_the_scenario_report_does_not_show_a_private_threshold(private_file, tmp_path):
    out = tmp_path / "sc"
    # The shortest scenario will do: the report's per-alert table lists every alert's condition.
    result = subprocess.run([sys.executable, "-m", "reward_obs.cli", "--internal-params", str(private_file), "scenarios",
                             "--out", str(out), "--only", SHORT_SCENARIO, "--no-plots", "--fast"],
                            capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert "Traceback" not in result.stderr
    report = (out / "report.md").read_text() + (out / "report.json").read_text()
    assert "| RewardClaimVolumeAbnormal | > (internal) for 15m |" in report
    assert not _leaks(report + result.stdout + result.stderr)
    # the rule file promtool evaluated is the private one (restricted output, not the report)
    assert "7.31" in (out / "prometheus/reward-alerts.rules.yaml").read_text()
    assert json.loads((out / "report.json").read_text())["alerts"]


@pytest.mark.parametrize("text, durations, masked", [
    ("sum(rate(x[15m] offset 1d)) >= 30", False, "sum(rate(x[15m] offset 1d)) >= N"),
    ("sum(rate(x[15m] offset 1d)) >= 30", True, "sum(rate(x[D] offset D)) >= N"),
    ("(a / b) > 0.2731 and c >= 1e3", False, "(a / b) > N and c >= 1e3"),
    ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[1h30m])))", True, "histogram_quantile(N, sum by (le) (rate(h_bucket[D])))"),
])
def test_mask_numbers(text, durations, masked):
    assert mask_numbers(text, durations) == masked


# ---------------------------------------------------------------- Pulumi


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker for a secret value


@pytest.fixture(scope="module")
def pulumi_private():
    from pulumi_harness import run_program

    # `pulumi config set --secret --path 'reward-observability:internalParams.X.threshold' N`
    # stores one secret object under internalParams; the program receives it as JSON.
    result = run_program(stack_values(), {**SECRETS, "internalParams": json.dumps(PRIVATE)})
    assert result["error"] is None, result["error"]
    return result


@pytest.mark.slow
def test_pulumi_registers_private_values_as_secrets_only(pulumi_private):
    groups = {r["inputs"]["name"]: r["inputs"] for r in pulumi_private["resources"] if r["type"].endswith(":RuleGroup")}
    claims = groups["reward-claims-volume"]["rules"]  # the claim-volume abuse alerts' group (access/access.yaml)
    assert claims[SECRET_SIG], "the rule group holding internal values must be a secret"
    rules = {r["name"]: r for r in claims["value"]}
    model = json.loads(rules["RewardClaimVolumeAbnormal"]["datas"][-1]["model"])
    assert model["conditions"][0]["evaluator"]["params"] == [7.31]
    assert ">= 7731" in json.loads(rules["RewardClaimVolumeAbnormal"]["datas"][0]["model"])["expr"]
    # groups without internal alerts stay plain (a readable preview)
    assert isinstance(groups["reward-pools"]["rules"], list) and isinstance(groups["reward-claims"]["rules"], list)
    boards = {r["inputs"].get("configJson") and json.loads(r["inputs"]["configJson"]["value"])["uid"]: r["inputs"]
              for r in pulumi_private["resources"] if r["type"].endswith(":Dashboard") and isinstance(r["inputs"]["configJson"], dict)}
    assert "(over 7.31x)" in boards["reward-runbooks-trust-safety"]["configJson"]["value"]
    plain = plain_text([r["inputs"] for r in pulumi_private["resources"]])
    assert not _leaks(plain + json.dumps(pulumi_private["outputs"]) + pulumi_private["stderr"])


def test_pulumi_refuses_private_values_set_without_secret():
    from pulumi_harness import run_program

    result = run_program({**stack_values(), "internalParams": PRIVATE}, SECRETS)
    assert "reward-observability:internalParams: must be a secret" in (result["error"] or "")
    assert not result["resources"] or all(r["type"].endswith("Stack") for r in result["resources"])
    assert not _leaks((result["error"] or "") + result["stderr"])
