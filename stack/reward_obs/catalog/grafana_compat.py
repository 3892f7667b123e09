"""The Grafana versions this stack supports, and what the render depends on that changed
between them. One table, read by the builders' sinks (render.py for file provisioning,
component.py for the Pulumi provider) and by the provisioning validator
(grafana_provisioning.py); each entry names the Grafana source it comes from.

The supported versions are the `grafanaVersion` enum of schemas/stack_config.schema.json
(read here, so the list lives in one place); the default is the oldest of them.

Sources (repository grafana/grafana unless said otherwise):
- pkg/services/provisioning/alerting/rules_types.go: AlertRuleGroupV1.MapToModel and
  AlertRuleV1.mapToModel, the file-provisioning mapper of alert and recording rules;
  RecordV1 is its `record` block.
- pkg/services/ngalert/provisioning/alert_rules.go: AlertRuleService.CreateAlertRule,
  UpdateAlertRule and calcDelta (the HTTP provisioning API, which the Terraform/Pulumi
  provider calls) derive a rule's dashboard and panel from the `__dashboardUid__` /
  `__panelId__` annotations (models.AlertRule.SetDashboardAndPanelFromAnnotations).
- grafana/terraform-provider-grafana internal/resources/grafana/resource_alerting_rule_group.go:
  the provider refuses `condition`, `for`, `no_data_state`, `exec_err_state` next to
  `record` ("conflicting fields") and has no dashboard/panel field of its own.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from reward_obs.catalog.definitions import REPO_ROOT


@lru_cache(maxsize=1)
def supported_versions() -> tuple[str, ...]:
    """Supported Grafana minor lines, oldest first (schemas/stack_config.schema.json)."""
    schema = json.loads((REPO_ROOT / "schemas" / "stack_config.schema.json").read_text(encoding="utf-8"))
    return tuple(schema["properties"]["grafanaVersion"]["enum"])


def oldest_supported() -> str:
    return supported_versions()[0]


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True)
class Change:
    """A behaviour of Grafana the render depends on, present from `since` (a minor line)."""

    since: str
    what: str
    source: str  # file and pull request in grafana/grafana (or the provider) that made the change

    def present_in(self, version: str) -> bool:
        return version_tuple(version) >= version_tuple(self.since)


# Every entry is a row of docs/grafana-compatibility.md.
RECORDING_RULE_WITHOUT_CONDITION = Change(
    "12.3", "file provisioning accepts a recording rule without `condition`",
    "pkg/services/provisioning/alerting/rules_types.go AlertRuleV1.mapToModel: before 12.3.0 "
    "\"no condition set\" for every rule; recording rules exempted by grafana/grafana#109410")
FILE_RECORD_TARGET_DATASOURCE = Change(
    "12.4", "file provisioning reads `record.targetDatasourceUid`",
    "pkg/services/provisioning/alerting/rules_types.go RecordV1.TargetDatasourceUID, added by "
    "grafana/grafana#115663; before 12.4.0 the key is ignored and [recording_rules] default_datasource_uid applies")
API_RECORD_TARGET_DATASOURCE = Change(
    "12.1", "the HTTP provisioning API (Pulumi path) stores `record.target_datasource_uid`",
    "pkg/services/ngalert/api/tooling/definitions Record.TargetDatasourceUID (grafana/grafana#101678), per-rule "
    "writes behind the grafanaManagedRecordingRulesDatasources toggle (#101778); 12.1 is the boundary the project's "
    "compatibility notes give for the API (not re-derived from a tag diff); before it the field is not sent")
DUPLICATE_FOLDER_TITLES = Change(
    "11.3", "two folders may share a title (a second `Rewards` is created instead of failing)",
    "grafana/grafana#90687; on 11.0-11.2 the second create fails and provisioning stops Grafana (#87889)")
WEBHOOK_CUSTOM_PAYLOAD = Change(
    "12.0", "a webhook contact point sends a templated body of its own (`payload.template`) instead of Grafana's payload",
    "grafana/alerting receivers/webhook/v1/config.go CustomPayload (schema field `payload`, \"New in 12.0\") and "
    "webhook.go Notify (`if wn.settings.Payload.Template != \"\"`); before 12.0 the key is unknown and ignored")

# noDataState / execErrState values every supported version accepts
# (pkg/services/ngalert/models/alert_rule.go NoDataStateFromString, ErrStateFromString). `KeepLast`
# was added to both later than these three; the version could not be pinned from the source read
# here, so the render does not use it and the validator refuses it.
NO_DATA_STATES = ("Alerting", "NoData", "OK")
# Threshold expression evaluator types every supported version evaluates (pkg/expr/threshold.go
# supportedThresholdFuncs). eq, ne, gte/ge, lte/le and the *_included ranges were added later
# (their spelling changed between versions too), in a version not pinned here: not used.
THRESHOLD_TYPES = ("gt", "lt", "within_range", "outside_range")
EXEC_ERR_STATES = ("Alerting", "Error", "OK")


def recording_condition_required(version: str) -> bool:
    """File provisioning needs `condition` on a recording rule (any version: harmless after)."""
    return not RECORDING_RULE_WITHOUT_CONDITION.present_in(version)


def file_reads_record_target(version: str) -> bool:
    return FILE_RECORD_TARGET_DATASOURCE.present_in(version)


def api_stores_record_target(version: str) -> bool:
    return API_RECORD_TARGET_DATASOURCE.present_in(version)


def webhook_custom_payload(version: str) -> bool:
    return WEBHOOK_CUSTOM_PAYLOAD.present_in(version)


def changes() -> list[Change]:
    return [RECORDING_RULE_WITHOUT_CONDITION, FILE_RECORD_TARGET_DATASOURCE, API_RECORD_TARGET_DATASOURCE,
            DUPLICATE_FOLDER_TITLES, WEBHOOK_CUSTOM_PAYLOAD]
