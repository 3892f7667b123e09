"""The Pulumi side: one ComponentResource owning every Grafana object of the stack.

Resource arguments come from the same builders as the offline render; this module
only converts those models into the provider's argument types.
"""
from __future__ import annotations

import json

import pulumi
import pulumiverse_grafana as grafana

from reward_obs.builders import access as access_builders
from reward_obs.builders import alerts as alert_builders
from reward_obs.builders import dashboards as dashboard_builders
from reward_obs.builders import grafana_recording
from reward_obs.builders import inhibition as inhibition_builders
from reward_obs.builders import notifications as notification_builders
from reward_obs.builders.runbook_dashboard import runbook_dashboards
from reward_obs.catalog import grafana_compat
from reward_obs.catalog.config import StackConfig
from reward_obs.model.access import Access
from reward_obs.model.definitions import Definitions
from reward_obs.model.durations import parse_duration
from reward_obs.model.lookup import required
from reward_obs.model.names import resource_name
from reward_obs.sinks.files import dump_json

_CONTACT_POINT_ARGS = {
    "webhook": ("webhooks", grafana.alerting.ContactPointWebhookArgs),
    "telegram": ("telegrams", grafana.alerting.ContactPointTelegramArgs),
    "email": ("emails", grafana.alerting.ContactPointEmailArgs),
}


def _datas(data: list[dict]) -> list[grafana.alerting.RuleGroupRuleDataArgs]:
    return [
        grafana.alerting.RuleGroupRuleDataArgs(
            ref_id=d["refId"],
            datasource_uid=d["datasourceUid"],
            model=json.dumps(d["model"], sort_keys=True),
            relative_time_range=grafana.alerting.RuleGroupRuleDataRelativeTimeRangeArgs(
                from_=d["relativeTimeRange"]["from"], to=d["relativeTimeRange"]["to"]),
        )
        for d in data
    ]


def rule_args(rule: dict) -> grafana.alerting.RuleGroupRuleArgs:
    """A provisioning-shaped rule as provider arguments (model JSON with sorted keys).

    The provider has no dashboard or panel field: the rule's panel link travels in the
    `__dashboardUid__`/`__panelId__` annotations, from which the provisioning API sets the
    rule's dashboard and panel (pkg/services/ngalert/provisioning/alert_rules.go: calcDelta,
    CreateAlertRule, UpdateAlertRule call AlertRule.SetDashboardAndPanelFromAnnotations).
    The file render writes the `dashboardUid`/`panelId` fields as well."""
    return grafana.alerting.RuleGroupRuleArgs(
        uid=rule["uid"],
        name=rule["title"],
        condition=rule["condition"],
        datas=_datas(rule["data"]),
        for_=rule["for"],
        no_data_state=rule["noDataState"],
        exec_err_state=rule["execErrState"],
        annotations=rule["annotations"],
        labels=rule["labels"],
        is_paused=rule["isPaused"],
        notification_settings=_notification_settings(rule.get("notification_settings")),
    )


def recording_rule_args(rule: dict, grafana_version: str | None = None) -> grafana.alerting.RuleGroupRuleArgs:
    """A provisioning-shaped Grafana-managed recording rule as provider arguments.

    Only uid, name, data, record, isPaused (and labels, if any): no condition, for,
    no_data_state, exec_err_state, annotations or notification settings. Grafana clears
    those on a recording rule, and the provider refuses them next to `record`
    (terraform-provider-grafana resource_alerting_rule_group.go: `conflicting fields
    "record" and "condition"`), so sending them fails or diffs forever. The API needs no
    condition on a recording rule (unlike file provisioning before 12.3, see render.py).
    `target_datasource_uid` is sent only to a Grafana that stores it (12.1,
    grafana_compat.API_RECORD_TARGET_DATASOURCE); before, it would come back empty (a
    perpetual diff) and `[recording_rules] default_datasource_uid` applies.
    """
    ignored = sorted(k for k in grafana_recording.IGNORED_BY_RECORDING_RULES if k in rule)
    if ignored:
        raise ValueError(f"recording rule {rule['title']}: {', '.join(ignored)} cannot go with `record`")
    record = rule["record"]
    version = grafana_version or grafana_compat.oldest_supported()
    target = record["targetDatasourceUid"] if grafana_compat.api_stores_record_target(version) else None
    return grafana.alerting.RuleGroupRuleArgs(
        uid=rule["uid"],
        name=rule["title"],
        datas=_datas(rule["data"]),
        record=grafana.alerting.RuleGroupRuleRecordArgs(
            metric=record["metric"], from_=record["from"], target_datasource_uid=target),
        labels=rule.get("labels") or None,
        is_paused=rule["isPaused"],
    )


def _notification_settings(settings: dict | None):
    if settings is None:
        return None
    return grafana.alerting.RuleGroupRuleNotificationSettingsArgs(
        contact_point=settings["receiver"], group_bies=settings["group_by"], group_wait=settings["group_wait"],
        group_interval=settings["group_interval"], repeat_interval=settings["repeat_interval"])


def contact_point_args(cp: dict, secrets: dict[str, pulumi.Input[str]]) -> dict:
    """Keyword arguments for grafana.alerting.ContactPoint."""
    keys = notification_builders.PULUMI_KEYS[cp["type"]]
    settings = {}
    for name, value in cp["settings"].items():
        if isinstance(value, notification_builders.SecretRef):
            value = pulumi.Output.secret(secrets[value.key])
        settings[keys[name]] = value
    if cp.get("disable_resolve_message"):
        settings["disable_resolve_message"] = True
    field, args_type = _CONTACT_POINT_ARGS[cp["type"]]
    return {"name": cp["name"], field: [args_type(**settings)]}


def policy_args(node: dict) -> dict:
    """Keyword arguments for a policy node (the root or a NotificationPolicyPolicyArgs)."""
    args: dict = {"contact_point": node["contact_point"]}
    if "group_by" in node:
        args["group_bies"] = node["group_by"]
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if key in node:
            args[key] = node[key]
    return args


def policy(node: dict, children: list, root: bool):
    """The root's nested policies, or a NotificationPolicyPolicyArgs (for fold_policies)."""
    if root:
        return children
    return grafana.alerting.NotificationPolicyPolicyArgs(
        **policy_args(node),
        matchers=[grafana.alerting.NotificationPolicyPolicyMatcherArgs(label=label, match=op, value=v) for label, op, v in node.get("matchers", [])],
        continue_=node.get("continue", False),
        policies=children or None,
    )


def _access(access: Access | None, folders: dict, org_id: str, child: pulumi.ResourceOptions) -> tuple[dict, dict]:
    """Teams and one authoritative FolderPermission per folder: the grants of access.yaml
    and nothing else, so the organisation's Viewer and Editor roles lose the folder.

    Members are managed in Grafana (UI, or SSO team sync), never in the repository: the
    Team sets none and ignores drift in them, as the provider's users do when membership
    lives elsewhere (grafana/terraform-provider-grafana#619)."""
    if access is None:
        return {}, {}
    teams = {
        t.key: grafana.oss.Team(resource_name("team", t.key), name=t.name, org_id=org_id,
                                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(ignore_changes=["members", "admins"])))
        for t in access.teams
    }
    permissions = {
        f.uid: grafana.oss.FolderPermission(
            resource_name("folder-permission", f.uid), folder_uid=folders[f.uid].uid, org_id=org_id,
            permissions=[grafana.oss.FolderPermissionPermissionArgs(team_id=teams[g.team].id, permission=g.permission)
                         for g in f.grants],
            opts=child)
        for f in access.folders
    }
    return teams, permissions


def _rules(group: dict, definitions: Definitions, private: bool):
    """A rule group's rules; a secret when they carry a private value of an internal field."""
    rules = [rule_args(r) for r in group["rules"]]
    if private and any(required(definitions.alert(r["title"]), f"alert {r['title']}").internal for r in group["rules"]):
        return pulumi.Output.secret(rules)
    return rules


class RewardObservability(pulumi.ComponentResource):
    """Folder, dashboards, message templates, contact points, policy, rule groups and,
    when Grafana evaluates them, the recording rule groups."""

    def __init__(self, name: str, definitions: Definitions, config: StackConfig,
                 secrets: dict[str, pulumi.Input[str]], opts: pulumi.ResourceOptions | None = None):
        super().__init__("reward-observability:index:RewardObservability", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        org_id = str(config.org_id)

        self.folders = {
            f.uid: grafana.oss.Folder(resource_name("folder", f.uid), uid=f.uid, title=f.title, org_id=org_id, opts=child)
            for f in access_builders.folders(definitions)
        }
        self.folder = self.folders[access_builders.default_folder(definitions).uid]
        self.teams, self.folder_permissions = _access(definitions.access, self.folders, org_id, child)
        self.dashboards = {
            d.uid: grafana.oss.Dashboard(resource_name("dashboard", d.uid),
                                         folder=self.folders[access_builders.folder_of_dashboard(definitions, d.uid).uid].uid,
                                         org_id=org_id, overwrite=True,
                                         config_json=dump_json(dashboard_builders.dashboard_json(d, config)), opts=child)
            for d in definitions.dashboards
        }
        # With private values of internal fields, whatever carries them is a Pulumi secret:
        # encrypted in the state, "[secret]" in `pulumi preview`.
        private = bool(config.internal_params)
        for folder_uid, board in runbook_dashboards(definitions, config):
            board_json = dump_json(board)
            self.dashboards[board["uid"]] = grafana.oss.Dashboard(
                resource_name("dashboard", board["uid"]), folder=self.folders[folder_uid].uid, org_id=org_id, overwrite=True,
                config_json=pulumi.Output.secret(board_json) if private else board_json, opts=child)
        self.templates = [
            grafana.alerting.MessageTemplate(resource_name("template", t["name"].replace(".", "-")), name=t["name"],
                                             template=t["template"], org_id=org_id, opts=child)
            for t in notification_builders.templates(definitions)
        ]
        self.contact_points = {
            cp["name"]: grafana.alerting.ContactPoint(resource_name("contact-point", cp["name"]), org_id=org_id,
                                                      opts=pulumi.ResourceOptions(parent=self, depends_on=self.templates),
                                                      **contact_point_args(cp, secrets))
            for cp in notification_builders.contact_points(definitions, config)
        }
        tree = notification_builders.policy_tree(definitions)
        # Grafana has one policy tree per organisation: only an "owned" stack manages it.
        self.policy = grafana.alerting.NotificationPolicy(
            resource_name("policy", "rewards"), org_id=org_id, **policy_args(tree),
            policies=notification_builders.fold_policies(tree, policy),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.contact_points.values()))) if config.owns_policy_tree else None
        routing = [self.policy] if self.policy else list(self.contact_points.values())
        self.rule_groups = {
            g["name"]: grafana.alerting.RuleGroup(
                resource_name("rule-group", g["name"]), name=g["name"],
                folder_uid=self.folders[access_builders.folder_of_group(definitions, g["name"]).uid].uid, org_id=org_id,
                interval_seconds=parse_duration(g["interval"]), rules=_rules(g, definitions, private),
                opts=pulumi.ResourceOptions(parent=self, depends_on=routing))
            for g in alert_builders.grafana_rule_groups(definitions, config)
        }
        # recordingRules: grafana. Grafana evaluates the recording rules and writes the
        # series to the Prometheus data source; with "prometheus", Prometheus loads the
        # rendered rule file and nothing is created here (one evaluator, never two).
        self.recording_rule_groups = {
            g["name"]: grafana.alerting.RuleGroup(
                resource_name("recording-rule-group", g["name"]), name=g["name"], folder_uid=self.folder.uid,
                org_id=org_id, interval_seconds=parse_duration(g["interval"]),
                rules=[recording_rule_args(r, config.grafana_version) for r in g["rules"]], opts=child)
            for g in grafana_recording.grafana_recording_groups(definitions, config)
        } if config.grafana_records else {}
        # Inhibition in Grafana: only Grafana 13+ with the alertingMultiplePolicies toggle
        # applies it (docs/slos.md, "Inhibition"), so only on request.
        self.inhibition_rules = {
            r["name"]: grafana.alerting.v1beta1.NotificationsInhibitionRule(
                resource_name("inhibition-rule", r["name"].lower()),
                metadata=grafana.alerting.v1beta1.NotificationsInhibitionRuleMetadataArgs(uid=r["name"].lower()),
                spec=grafana.alerting.v1beta1.NotificationsInhibitionRuleSpecArgs(
                    source_matchers=[grafana.alerting.v1beta1.NotificationsInhibitionRuleSpecSourceMatcherArgs(**m)
                                     for m in r["source_matchers"]],
                    target_matchers=[grafana.alerting.v1beta1.NotificationsInhibitionRuleSpecTargetMatcherArgs(**m)
                                     for m in r["target_matchers"]],
                    equals=r["equal"]),
                opts=child)
            for r in inhibition_builders.grafana_inhibition_rules(definitions)
        } if config.grafana_inhibition_rules else {}
        self.folder_uid = self.folder.uid
        self.dashboard_urls = {uid: f"{config.grafana_url}/d/{uid}" for uid in self.dashboards}
        self.alert_names = sorted(a.name for a in definitions.alerts)
        self.register_outputs({"folder_uid": self.folder_uid, "dashboard_urls": self.dashboard_urls,
                               "alert_names": self.alert_names})
