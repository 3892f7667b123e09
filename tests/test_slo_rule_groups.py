"""Every rule group fits a scalable ruler: at most 20 rules a group and 70 groups in all
(Grafana Mimir's defaults, -ruler.max-rules-per-rule-group and
-ruler.max-rule-groups-per-tenant: grafana/mimir pkg/util/validation/limits.go), counted
on the rendered files and on the Grafana groups both deploy paths send, and refused at
load time with a file:field message."""
from __future__ import annotations

import pytest
import yaml

from reward_obs.builders.grafana_recording import grafana_recording_groups
from reward_obs.catalog.definitions import load_definitions
from reward_obs.model.errors import DefinitionError

MAX_RULES_PER_GROUP = 20  # Mimir's default, literally: not read from the code under test
MAX_GROUPS = 70


def _groups(out, definitions, config) -> dict[str, list[dict]]:
    """Every group a deployment creates, by where it lives."""
    read = lambda path: yaml.safe_load((out / path).read_text())["groups"]  # noqa: E731
    return {
        "prometheus alerts": read("prometheus/reward-alerts.rules.yaml"),
        "prometheus recording": read("prometheus/reward-recording.rules.yaml"),
        "grafana alerts": read("grafana/provisioning/alerting/rules.yaml"),
        "grafana recording": grafana_recording_groups(definitions, config),
    }


def test_every_rendered_group_holds_at_most_20_rules(out, definitions, config):
    for where, groups in _groups(out, definitions, config).items():
        assert groups, where
        for g in groups:
            assert len(g["rules"]) <= MAX_RULES_PER_GROUP, (where, g["name"], len(g["rules"]))


def test_a_deployment_creates_at_most_70_groups(out, definitions, config):
    groups = _groups(out, definitions, config)
    # Prometheus loads both of its files; Grafana-managed recording rules replace the
    # Prometheus recording file (recordingRules: grafana), so count the larger of each.
    prometheus = len(groups["prometheus alerts"]) + len(groups["prometheus recording"])
    grafana = len(groups["grafana alerts"]) + len(groups["grafana recording"])
    assert max(prometheus, grafana) <= MAX_GROUPS


def test_each_slo_has_its_own_groups(out):
    """One recording group and one alert group per SLO (Sloth and Pyrra do the same)."""
    recording = {g["name"] for g in yaml.safe_load((out / "prometheus/reward-recording.rules.yaml").read_text())["groups"]}
    alerting = {g["name"] for g in yaml.safe_load((out / "prometheus/reward-alerts.rules.yaml").read_text())["groups"]}
    for slo in ("payout-success", "payout-success-fleet", "payout-creation", "webhook-processing", "claim-to-paid-latency"):
        assert f"reward-slo-{slo}" in recording and f"reward-slo-{slo}-alerts" in alerting


def test_no_slo_rule_reads_a_raw_30_day_range(out):
    """The 30-day budget sums recorded 1h rates: no rule reads raw counters over [30d]."""
    for g in yaml.safe_load((out / "prometheus/reward-recording.rules.yaml").read_text())["groups"]:
        for r in g["rules"]:
            if "[30d" in r["expr"]:
                assert r["expr"].count("[30d:1h]") == r["expr"].count("[30d") == 2, r
                assert "rate(" not in r["expr"], r


def test_a_group_over_20_rules_is_refused(repo_copy):
    path = repo_copy / "recording_rules" / "reward-dashboard.yaml"
    data = yaml.safe_load(path.read_text())
    template = next(r for r in data["rules"] if r["record"] == "all:reward_claim_requests:rate5m")
    extra = [{"record": f"all:reward_claim_requests_copy{i}:rate5m", "expr": template["expr"], "labels": [],
              "why": "a copy of the claim volume rule, to overfill the group"}
             for i in range(MAX_RULES_PER_GROUP + 1 - len(data["rules"]))]
    data["rules"] += extra
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(DefinitionError) as err:
        load_definitions(repo_copy)
    assert ("recording_rules/reward-dashboard.yaml:group: recording rule group 'reward-recorded' holds 21 rules; a Mimir "
            "or Grafana Cloud ruler refuses more than 20 (-ruler.max-rules-per-rule-group): split it"
            in [str(p) for p in err.value.problems]), "\n".join(map(str, err.value.problems))
