"""Grafana-managed recording rule groups in the form Grafana stores and returns.

`recording.grafana_recording_groups` builds them from recording_rules/*.yaml; this module
is the one place that turns its output into what both deploy paths send (the Pulumi
component's RuleGroup resources and render's file-provisioning form), so the two cannot
drift apart and neither drifts from what Grafana stores:
- a recording rule carries none of the fields Grafana clears on one (condition, for,
  noDataState, execErrState, ...): sent anyway they come back empty, a perpetual diff,
  and the Terraform provider under pulumiverse-grafana refuses them next to `record`.
- its group never shares a name with an alert rule group (a Grafana rule group is one
  object per folder and name: two resources would overwrite each other).
"""
from __future__ import annotations

import copy

from .. import recording
from ..config import StackConfig
from ..definitions import Definitions
from ..errors import DefinitionError, Problem
from . import alerts as alert_builders
from .ids import FOLDER_TITLE

# Fields Grafana clears on a recording rule (ngalert models.ClearRecordingRuleIgnoredFields).
IGNORED_BY_RECORDING_RULES = ("condition", "for", "keepFiringFor", "noDataState", "execErrState",
                              "notification_settings", "missing_series_evals_to_resolve")


def grafana_recording_groups(definitions: Definitions, config: StackConfig) -> list[dict]:
    """Recording rule groups in provisioning shape, as Grafana stores them."""
    alert_groups = {g["name"] for g in alert_builders.grafana_rule_groups(definitions, config)}
    groups = []
    for group in recording.grafana_recording_groups(definitions, config):
        if group["name"] in alert_groups:
            raise DefinitionError([Problem(recording.RULE_DIR, f"group {group['name']}",
                                           "is also an alert rule group; Grafana would keep only one of them")])
        rules = []
        for rule in group["rules"]:
            ignored = sorted(k for k in IGNORED_BY_RECORDING_RULES if k in rule)
            if ignored:
                raise ValueError(f"recording rule {rule['title']} carries {', '.join(ignored)}, which Grafana "
                                 "clears on a recording rule and the provider refuses next to `record`")
            rules.append(copy.deepcopy(rule))
        groups.append({"orgId": group["orgId"], "name": group["name"], "folder": FOLDER_TITLE,
                       "interval": group["interval"], "rules": rules})
    return groups
