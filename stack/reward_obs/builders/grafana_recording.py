"""Grafana-managed recording rule groups, from Definitions.recording_rules, in the form Grafana
stores and returns: the one builder both deploy paths use (the Pulumi component's
RuleGroup resources and render's file-provisioning form), so they cannot drift apart.

- Grafana evaluates query A and writes the result as `record` to the Prometheus data
  source (which must accept remote write).
- The query model carries the fields Grafana fills in (intervalMs, maxDataPoints), as
  the alert rules do; a rule carries none of the fields Grafana clears on a recording
  rule (IGNORED_BY_RECORDING_RULES: sent anyway they come back empty, a perpetual diff,
  and the provider refuses them next to `record`).
- Never paused, unlike the alert rules before `rewardsLive`: a recording rule cannot
  page anyone, and the dashboard reads it.
- A group never shares a name with an alert rule group (a Grafana rule group is one
  object per folder and name: two resources would overwrite each other); the catalog
  refuses such a definition.
"""
from __future__ import annotations

import zlib

from reward_obs.builders import alerts as alert_builders
from reward_obs.builders.access import default_folder
from reward_obs.builders.recording import rule_groups
from reward_obs.catalog.config import StackConfig
from reward_obs.model.definitions import Definitions, RecordingRule
from reward_obs.model.names import PROMETHEUS_DATASOURCE_TYPE, kebab

# Fields Grafana clears on a recording rule (ngalert models.ClearRecordingRuleIgnoredFields).
IGNORED_BY_RECORDING_RULES = ("condition", "for", "keepFiringFor", "noDataState", "execErrState",
                              "notification_settings", "missing_series_evals_to_resolve")


def _rule(r: RecordingRule, config: StackConfig) -> dict:
    slug = kebab(r.record.replace(":", "-").replace("_", "-"))
    uid = f"rec-{slug[:27].strip('-')}-{zlib.crc32(r.record.encode()):08x}"  # <= 40 characters, unique per name
    datasource = config.prometheus_datasource_uid
    return {
        "uid": uid,
        "title": r.record,
        "record": {"metric": r.record, "from": "A", "targetDatasourceUid": datasource},
        "data": [{
            "refId": "A",
            "relativeTimeRange": {"from": 600, "to": 0},
            "datasourceUid": datasource,
            "model": {"refId": "A", "expr": r.expr, "instant": True, "range": False,
                      "datasource": {"type": PROMETHEUS_DATASOURCE_TYPE, "uid": datasource},
                      "intervalMs": alert_builders.INTERVAL_MS, "maxDataPoints": alert_builders.MAX_DATA_POINTS},
        }],
        "isPaused": False,
    }


def grafana_recording_groups(definitions: Definitions, config: StackConfig) -> list[dict]:
    """Recording rule groups in provisioning shape, as Grafana stores them."""
    return [{"orgId": config.org_id, "name": name, "folder": default_folder(definitions).title, "interval": interval,
             "rules": [_rule(r, config) for r in rules]}
            for name, interval, rules in rule_groups(definitions.recording_rules)]
