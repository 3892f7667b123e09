"""Drift-free Grafana models: what the builders emit is what Grafana stores back, and
nothing depends on the order definitions are read in, so `pulumi up` twice is a no-op."""
from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reward_obs.builders import alerts as alert_builders
from reward_obs.builders import dashboards as dashboard_builders
from reward_obs.builders import grafana_recording
from reward_obs.builders import notifications as notification_builders
from reward_obs.catalog.config import load_config, read_stack_file
from reward_obs.catalog.definitions import load_definitions
from reward_obs.sinks.component import recording_rule_args, rule_args

from conftest import ROOT
from go_durations import grafana_stores

GRAFANA_MODEL_DEFAULTS = {"intervalMs": 1000, "maxDataPoints": 43200}


def grafana_duration(text: str) -> str:
    """How Grafana prints a duration it parsed (prometheus/common model.Duration): the
    literal Go strings of tests/go_durations.py, never our own formatter."""
    return grafana_stores(text)


# What Grafana clears on a recording rule (ngalert ClearRecordingRuleIgnoredFields).
RECORDING_CLEARED = ("condition", "for", "keepFiringFor", "noDataState", "execErrState", "notification_settings",
                     "missing_series_evals_to_resolve")


def normalise_rule(rule: dict) -> dict:
    """What Grafana's provisioning API returns for a rule it was given."""
    out = copy.deepcopy(rule)
    if "record" in out:  # a recording rule: Grafana drops what only an alert uses
        for key in RECORDING_CLEARED:
            out.pop(key, None)
    else:
        out["for"] = grafana_duration(out["for"])
    for query in out["data"]:
        for key, value in GRAFANA_MODEL_DEFAULTS.items():
            query["model"].setdefault(key, value)
        query["model"]["refId"] = query["refId"]
        query["relativeTimeRange"] = {k: int(v) for k, v in query["relativeTimeRange"].items()}
    for key in ("annotations", "labels"):  # a recording rule may have neither
        if key in out:
            out[key] = dict(sorted(out[key].items()))
    return out


def normalise_dashboard(board: dict) -> dict:
    """What the Grafana provider compares: the stored JSON without id and version."""
    out = copy.deepcopy(board)
    out.pop("id", None)
    out.pop("version", None)
    return json.loads(json.dumps(out, sort_keys=True))


def normalise_policy(node: dict) -> dict:
    out = {k: grafana_duration(v) if k in ("group_wait", "group_interval", "repeat_interval") else v for k, v in node.items()}
    if "routes" in out:
        out["routes"] = [normalise_policy(child) for child in out["routes"]]
    return out


def test_rules_are_already_in_grafanas_stored_form(definitions, config):
    for group in alert_builders.grafana_rule_groups(definitions, config):
        assert grafana_duration(group["interval"]) == group["interval"]
        for rule in group["rules"]:
            assert normalise_rule(rule) == rule, rule["title"]


def test_normaliser_detects_a_non_canonical_rule(definitions, config):
    """The comparison above can fail: a rule written as 60s and without model defaults."""
    rule = copy.deepcopy(alert_builders.grafana_rule_groups(definitions, config)[0]["rules"][0])
    rule["for"] = "300s"
    del rule["data"][0]["model"]["intervalMs"]
    assert normalise_rule(rule) != rule


def test_recording_rules_are_already_in_grafanas_stored_form(definitions, config):
    groups = grafana_recording.grafana_recording_groups(definitions, config)
    assert groups
    for group in groups:
        assert grafana_duration(group["interval"]) == group["interval"]
        for rule in group["rules"]:
            assert normalise_rule(rule) == rule, rule["title"]


@pytest.mark.parametrize("spoil", [
    lambda r: r.update(condition="A"),  # the provider refuses it next to `record`; Grafana clears it
    lambda r: r.update({"for": "0s"}),
    lambda r: r["data"][0]["model"].pop("maxDataPoints"),  # Grafana fills it in
])
def test_normaliser_detects_a_non_canonical_recording_rule(definitions, config, spoil):
    rule = copy.deepcopy(grafana_recording.grafana_recording_groups(definitions, config)[0]["rules"][0])
    spoil(rule)
    assert normalise_rule(rule) != rule


@pytest.mark.parametrize("field", ["condition", "for", "noDataState", "execErrState"])
def test_recording_rule_args_refuse_what_grafana_clears(definitions, config, field):
    rule = copy.deepcopy(grafana_recording.grafana_recording_groups(definitions, config)[0]["rules"][0])
    rule[field] = "A"
    with pytest.raises(ValueError, match=field):
        recording_rule_args(rule)


def test_dashboards_are_already_in_grafanas_stored_form(definitions, config):
    for dashboard in definitions.dashboards:
        board = dashboard_builders.dashboard_json(dashboard, config)
        assert normalise_dashboard(board) == json.loads(json.dumps(board, sort_keys=True))


def test_policy_durations_are_canonical(definitions):
    tree = notification_builders.policy_tree(definitions)
    assert normalise_policy(tree) == tree


def pulumi_inputs(definitions, config) -> dict:
    """Everything the component hands to the provider, in comparable form."""
    groups = alert_builders.grafana_rule_groups(definitions, config)
    recording = grafana_recording.grafana_recording_groups(definitions, config)
    return {
        "rules": {r["uid"]: (g["name"], json.dumps([json.loads(d.model) for d in rule_args(r).datas], sort_keys=True))
                  for g in groups for r in g["rules"]},
        "groups": groups,
        "recording": {r["uid"]: (g["name"], r["record"], json.dumps([json.loads(d.model) for d in recording_rule_args(r).datas], sort_keys=True))
                      for g in recording for r in g["rules"]},
        "dashboards": {d.uid: json.dumps(dashboard_builders.dashboard_json(d, config), sort_keys=True) for d in definitions.dashboards},
        "contact_points": notification_builders.contact_points(definitions, config),
        "policy": notification_builders.policy_tree(definitions),
        "templates": notification_builders.templates(definitions),
    }


_VALUES = read_stack_file(ROOT / "Pulumi.selfhost.yaml")
# Alerts whose threshold a committed stack may override (an internal threshold comes only
# from the private source: catalog/internal.py).
_ALERT_NAMES = sorted(p.stem for p in (ROOT / "alert_rules").glob("*.yaml")
                      if "threshold" not in (yaml.safe_load(p.read_text()).get("internal") or ()))
_ALERT_COUNT = len(load_definitions(ROOT).alerts)  # alert_rules/ and the SLOs' alerts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    order=st.permutations(range(_ALERT_COUNT)),
    contact_order=st.permutations(range(len(yaml.safe_load((ROOT / "notifications/routing.yaml").read_text())["contact_points"]))),
    thresholds=st.dictionaries(st.sampled_from(_ALERT_NAMES), st.floats(min_value=0.01, max_value=50, allow_nan=False), max_size=3),
    live=st.booleans(),
)
def test_pulumi_inputs_depend_only_on_definitions_and_config(definitions, order, contact_order, thresholds, live):
    overrides = {name: {"threshold": round(value, 3)} for name, value in thresholds.items()}
    config = load_config(_VALUES | {"alertOverrides": overrides, "rewardsLive": live}, "stack", definitions)
    shuffled = dataclasses.replace(
        definitions,
        alerts=tuple(definitions.alerts[i] for i in order),
        routing=dataclasses.replace(definitions.routing,
                                    contact_points=tuple(definitions.routing.contact_points[i] for i in contact_order)),
    )
    first = pulumi_inputs(definitions, config)
    assert pulumi_inputs(shuffled, config) == first
    assert pulumi_inputs(definitions, config) == first
