"""The Pulumi policy pack: each rule called on passing and failing resources, run on
the resources the real program registers, and the pack served to a gRPC client the
way `pulumi preview --policy-pack policy` talks to it."""
from __future__ import annotations

import subprocess
import sys

import pytest
from pulumi_policy import Secret
from pulumi_policy.deserialize import deserialize_properties

from reward_obs.catalog.config import read_stack_file

from conftest import ROOT
from helpers import SECRET_SIG, SECRETS
from pulumi_harness import run_program

sys.path.insert(0, str(ROOT / "policy"))
import reward_policies as rp  # noqa: E402


def violations(check, props) -> list[str]:
    found: list[str] = []
    check(props, found.append)
    return found


GOOD_RULE = {"name": "RewardPoolLow", "annotations": {"runbook_url": "https://r/x.md#a", "summary": "low"},
             "labels": {"severity": "warning", "team": "rewards", "environment": "prod"}, "isPaused": False,
             "notificationSettings": {"contactPoint": "rewards-telegram"}}


# A Grafana-managed recording rule as the engine sends it: no annotations, severity or route.
RECORDING_RULE = {"name": "currency:reward_pool_remaining:sum", "isPaused": False, "labels": {"environment": "prod"},
                  "record": {"metric": "currency:reward_pool_remaining:sum", "from": "A", "targetDatasourceUid": "prometheus"}}


def test_rule_metadata_passes_a_complete_rule():
    assert violations(rp.rule_metadata, {"rules": [GOOD_RULE]}) == []


@pytest.mark.parametrize("part, key", [("annotations", "runbook_url"), ("annotations", "summary"), ("labels", "severity"), ("labels", "team")])
def test_rule_metadata_fails_without(part, key):
    rule = {**GOOD_RULE, part: {k: v for k, v in GOOD_RULE[part].items() if k != key}}
    [message] = violations(rp.rule_metadata, {"rules": [rule]})
    assert key in message and "RewardPoolLow" in message


def test_recording_rules_need_no_alert_metadata_or_route_but_alerts_next_to_them_do():
    assert violations(rp.rule_metadata, {"rules": [RECORDING_RULE]}) == []
    found: list[str] = []
    rp.unpaused_rules_without_route([(rp.RULE_GROUP, {"rules": [RECORDING_RULE]})], found.append)
    assert found == []
    bare_alert = {k: v for k, v in RECORDING_RULE.items() if k != "record"}
    assert violations(rp.rule_metadata, {"rules": [RECORDING_RULE, bare_alert]}) != []
    rp.unpaused_rules_without_route([(rp.RULE_GROUP, {"rules": [RECORDING_RULE, bare_alert]})], found.append)
    assert len(found) == 1


def test_dashboard_must_be_in_a_folder():
    assert violations(rp.dashboard_in_folder, {"folder": "rewards", "configJson": "{}"}) == []
    assert violations(rp.dashboard_in_folder, {"configJson": "{}"}) != []


def _engine_props(props: dict) -> dict:
    """Properties as a remediation receives them from the engine (secrets marked)."""
    return deserialize_properties(props, True)


def test_secret_credentials_are_left_alone():
    props = _engine_props({"name": "rewards-telegram", "telegrams": {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270",
                                                                     "value": [{"token": "t", "chatId": "1"}]}})
    assert rp.secret_credentials_remediation(rp.CONTACT_POINT, props) is None


def test_plain_credential_is_encrypted():
    props = _engine_props({"name": "rewards-oncall-webhook", "webhooks": [{"url": "https://paging.invalid/x", "httpMethod": "POST"}]})
    fixed = rp.secret_credentials_remediation(rp.CONTACT_POINT, props)
    assert isinstance(fixed["webhooks"], Secret)
    assert fixed["webhooks"].value[0]["url"] == "https://paging.invalid/x"


def test_email_contact_point_has_no_credential():
    props = _engine_props({"name": "rewards-email", "emails": [{"addresses": ["a@b.example"]}]})
    assert rp.secret_credentials_remediation(rp.CONTACT_POINT, props) is None


def test_prod_rule_live_without_a_route_fails():
    rule = {**GOOD_RULE, "notificationSettings": None}
    found: list[str] = []
    rp.unpaused_rules_without_route([(rp.RULE_GROUP, {"rules": [rule]})], found.append)
    assert found == ["alert rule RewardPoolLow is live in prod but reaches no contact point"]


@pytest.mark.parametrize("resources", [
    [(rp.RULE_GROUP, {"rules": [GOOD_RULE]})],  # rule-level route
    [(rp.RULE_GROUP, {"rules": [{**GOOD_RULE, "notificationSettings": None, "isPaused": True}]})],  # paused
    [(rp.RULE_GROUP, {"rules": [{**GOOD_RULE, "notificationSettings": None}]}),
     (rp.NOTIFICATION_POLICY, {"policies": [{"matchers": [{"label": "team", "match": "=", "value": "rewards"}]}]})],  # owned tree
    [(rp.RULE_GROUP, {"rules": [{**GOOD_RULE, "notificationSettings": None, "labels": {**GOOD_RULE["labels"], "environment": "selfhost"}}]})],
])
def test_prod_rule_with_a_route_or_paused_passes(resources):
    found: list[str] = []
    rp.unpaused_rules_without_route(resources, found.append)
    assert found == []


@pytest.mark.parametrize("stack", ["Pulumi.selfhost.yaml", "Pulumi.prod.yaml"])
def test_the_programs_resources_pass_every_policy(stack):
    values = read_stack_file(ROOT / stack) | {"rewardsLive": True}
    result = run_program(values, SECRETS, stack=stack.split(".")[1])
    assert result["error"] is None
    resources = [(r["type"], r["inputs"]) for r in result["resources"]]
    recording = [rule for kind, props in resources if kind == rp.RULE_GROUP for rule in props["rules"] if rp.is_recording_rule(rule)]
    assert bool(recording) is (values["recordingRules"] == "grafana")  # prod provisions them: the policies see them
    found: list[str] = []
    for kind, props in resources:
        if kind == rp.RULE_GROUP:
            rp.rule_metadata(props, found.append)
        if kind == rp.DASHBOARD:
            rp.dashboard_in_folder(props, found.append)
        assert rp.secret_credentials_remediation(kind, _engine_props(props)) is None
    rp.unpaused_rules_without_route(resources, found.append)
    assert found == []


@pytest.fixture(scope="module")
def analyzer():
    """The policy pack, started as the Pulumi engine starts it: it prints a port and serves gRPC."""
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    proc = subprocess.Popen([sys.executable, str(ROOT / "policy/__main__.py")], cwd=ROOT / "policy",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = int(proc.stdout.readline().decode().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_pack_declares_its_policies(analyzer):
    from google.protobuf import empty_pb2

    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=20)
    assert {p.name for p in info.policies} == {"alert-rule-metadata", "dashboard-in-folder",
                                               "contact-point-credentials-secret", "prod-rules-routed"}


def test_pack_reports_a_rule_without_runbook(analyzer):
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import analyzer_pb2

    props = struct_pb2.Struct()
    props.update({"rules": [{**GOOD_RULE, "annotations": {"summary": "x"}}]})
    request = analyzer_pb2.AnalyzeRequest(type=rp.RULE_GROUP, properties=props,
                                          urn="urn:pulumi:prod::reward-observability::grafana:alerting/ruleGroup:RuleGroup::g", name="g")
    response = analyzer.Analyze(request, timeout=20)
    assert [(d.policyName, "runbook_url" in d.message) for d in response.diagnostics] == [("alert-rule-metadata", True)]
