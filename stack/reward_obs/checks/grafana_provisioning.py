"""Check rendered Grafana provisioning files the way Grafana reads them, for one version.

Generic over what render writes: every YAML under grafana/provisioning/alerting/ is read
as one AlertingFileV1 (whatever it holds: rule groups, contact points, policies,
templates), every YAML under grafana/provisioning/dashboards/ as a dashboard provider
file, every JSON under grafana/dashboards/ as a dashboard. New rules, contact points or
templates are checked without changing this module.

Every check names the Grafana code it follows (repository grafana/grafana unless said;
paths as of the 12.x sources read, with the version where the behaviour changed from
grafana_compat). Grafana decodes these files with a non-strict YAML decoder, so an
unknown key is silently dropped: the field tables below list exactly the keys of the
structs that decode them, and a key outside them is a finding.

Environment-variable interpolation (pkg/services/provisioning/values/values.go,
interpolateValue: `$NAME`, `${NAME}`, `$__env{NAME}`, `$__file{PATH}`; `$$` is a literal
dollar) applies to every values.StringValue / StringMapValue / JSONValue field: group and
rule scalars, labels, contact-point settings, the policy tree. Not to annotations
(rules_types.go maps them raw, grafana/grafana#54975) nor query models (QueryV1.mapToModel
uses Model.Raw) nor message templates (definitions.MessageTemplate, plain strings).
"""
from __future__ import annotations

import json
import re

import yaml

from reward_obs.catalog import grafana_compat
from reward_obs.model.errors import Problem

ALERTING_DIR = "grafana/provisioning/alerting/"
DASHBOARD_PROVIDER_DIR = "grafana/provisioning/dashboards/"
DASHBOARD_DIR = "grafana/dashboards/"

# pkg/util/shortid_generator.go: MaxUIDLength, validUIDPattern (ValidateUID); applied to rule
# uids by AlertRuleService.CreateAlertRule / ReplaceRuleGroup (ngalert/provisioning/alert_rules.go).
UID_MAX = 40
UID_PATTERN = re.compile(r"^[a-zA-Z0-9\-_]*$")
# prometheus/common model.ParseDuration, used by rules_types.go for interval, for, and the
# notification-settings durations.
_DURATION = re.compile(r"^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$")
# Prometheus metric names (record.metric is written as one).
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
# A `$` that is not a mistake: `$$` (a literal dollar), `$__env{NAME}`, or `$__file{PATH}`,
# the file's content with surrounding whitespace trimmed (pkg/setting/expanders.go: the
# `env` and `file` expanders, the only two Grafana OSS registers; regex `\$(|__\w+){([^}]+)}`).
# The file is how systemd's LoadCredential= hands a secret over without an environment.
_ENV_OK = re.compile(r"\$\$|\$__env\{[A-Za-z_][A-Za-z0-9_]*\}|\$__file\{/[^}$]+\}")
# A relative path is read from Grafana's working directory, which differs between packages.
_FILE_RELATIVE = re.compile(r"\$__file\{(?!/)[^}]*\}")

# pkg/services/provisioning/alerting/types.go AlertingFileV1.
FILE_KEYS = {"apiVersion", "groups", "deleteRules", "contactPoints", "deleteContactPoints", "policies",
             "resetPolicies", "muteTimes", "deleteMuteTimes", "templates", "deleteTemplates"}
# rules_types.go AlertRuleGroupV1, AlertRuleV1, QueryV1, RecordV1, NotificationSettingsV1.
GROUP_KEYS = {"orgId", "name", "folder", "interval", "rules"}
RULE_KEYS = {"uid", "title", "condition", "data", "dasboardUid", "dashboardUid", "panelId", "noDataState",
             "execErrState", "for", "keepFiringFor", "missing_series_evals_to_resolve", "annotations", "labels",
             "isPaused", "notification_settings", "record"}
QUERY_KEYS = {"refId", "queryType", "relativeTimeRange", "datasourceUid", "model"}
RECORD_KEYS = {"metric", "from", "targetDatasourceUid"}
NOTIFICATION_SETTINGS_KEYS = {"receiver", "group_by", "group_wait", "group_interval", "repeat_interval",
                              "mute_time_intervals", "active_time_intervals"}
# contact_point_types.go ContactPointV1, ReceiverV1.
CONTACT_POINT_KEYS = {"orgId", "name", "receivers"}
RECEIVER_KEYS = {"uid", "type", "settings", "disableResolveMessage"}
# text_templates_types.go TemplateV1 (orgId + definitions.MessageTemplate inline).
TEMPLATE_KEYS = {"orgId", "name", "template"}
# notification_policy_types.go NotificiationPolicyV1: orgId + the Alertmanager route
# (grafana/alerting definition.Route) decoded from JSON.
ROUTE_KEYS = {"receiver", "group_by", "continue", "object_matchers", "matchers", "match", "match_re",
              "mute_time_intervals", "active_time_intervals", "group_wait", "group_interval", "repeat_interval",
              "routes"}
MATCHER_OPS = {"=", "!=", "=~", "!~"}
# The settings each notifier refuses to start without (grafana/alerting receivers/<type>/config.go,
# NewConfig), and telegram's parse_mode (receivers/telegram/config.go SupportedParseMode, case-insensitive).
REQUIRED_SETTINGS = {"telegram": ("bottoken", "chatid"), "email": ("addresses",), "webhook": ("url",)}
TELEGRAM_PARSE_MODES = {"markdown", "markdownv2", "html", "none"}
# pkg/services/provisioning/dashboards/types.go configV1 (a provider of the dashboard file).
PROVIDER_KEYS = {"name", "type", "orgId", "folder", "folderUid", "options", "disableDeletion",
                 "updateIntervalSeconds", "allowUiUpdates"}
# Base evaluation interval ([unified_alerting] min_interval default 10s): a group interval must be a
# positive multiple of it (models.ValidateRuleGroupInterval, called by AlertRuleService.UpdateRuleGroup).
BASE_INTERVAL_SECONDS = 10


# A finding is a Problem: file, field, what is wrong (`file:field: message`).
Finding = Problem


def duration_seconds(text) -> float | None:
    """model.ParseDuration: None when Grafana would refuse it."""
    if not isinstance(text, str) or text == "":
        return None
    if text == "0":
        return 0.0
    m = _DURATION.match(text)
    if not m:
        return None
    units = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
    return sum(int(m.group(2 * i + 2)) * u for i, u in enumerate(units) if m.group(2 * i + 2))


def bare_dollars(value) -> list[str]:
    """Strings holding a `$` Grafana's provisioning would read as an environment variable."""
    if isinstance(value, dict):
        return [d for v in value.values() for d in bare_dollars(v)]
    if isinstance(value, list):
        return [d for v in value for d in bare_dollars(v)]
    if isinstance(value, str) and "$" in _ENV_OK.sub("", value):
        return [value]
    return []


class _Checker:
    def __init__(self, version: str):
        self.version = version
        self.findings: list[Finding] = []
        self.messages: list[tuple[str, str, str, dict]] = []  # (file, field, receiver type, settings)

    def add(self, file: str, field: str, message: str) -> None:
        self.findings.append(Finding(file, field, message))

    def keys(self, file: str, field: str, obj, allowed: set[str], struct: str) -> None:
        if not isinstance(obj, dict):
            self.add(file, field, f"must be a mapping ({struct})")
            return
        for key in sorted(set(obj) - allowed):
            self.add(file, f"{field}.{key}" if field else key,
                     f"unknown key: {struct} has no such field, so Grafana silently ignores it")

    def uid(self, file: str, field: str, value) -> None:
        if not isinstance(value, str) or not value.strip():
            self.add(file, field, "is required (no UID set)")
        elif len(value) > UID_MAX:
            self.add(file, field, f"{value!r} is {len(value)} characters; Grafana refuses uids over {UID_MAX} (util.ValidateUID)")
        elif not UID_PATTERN.match(value):
            self.add(file, field, f"{value!r}: only letters, digits, '-' and '_' are allowed (util.ValidateUID)")

    def interpolated(self, file: str, field: str, value) -> None:
        for text in bare_dollars(value):
            if _FILE_RELATIVE.search(text):
                self.add(file, field, f"{text!r}: $__file{{}} needs an absolute path (Grafana reads a relative one "
                                      "from its working directory, which differs between packages)")
                continue
            self.add(file, field, f"{text!r} has a '$' Grafana reads as an environment variable "
                                  "(values.go interpolateValue); write '$$' for a literal dollar")


def _load(checker: _Checker, path: str, text: str):
    try:
        return yaml.safe_load(text) if not path.endswith(".json") else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        checker.add(path, "(file)", f"does not parse: {exc}")
        return None


def validate_files(files: dict[str, str], version: str) -> list[Finding]:
    """Every finding in a render's Grafana files, as Grafana `version` would read them."""
    if version not in grafana_compat.supported_versions():
        raise ValueError(f"unsupported Grafana version {version!r}")
    c = _Checker(version)
    alerting = {p: _load(c, p, t) for p, t in files.items() if p.startswith(ALERTING_DIR) and p.endswith((".yaml", ".yml", ".json"))}
    providers = {p: _load(c, p, t) for p, t in files.items() if p.startswith(DASHBOARD_PROVIDER_DIR) and p.endswith((".yaml", ".yml"))}
    dashboards = {p: _load(c, p, t) for p, t in files.items() if p.startswith(DASHBOARD_DIR) and p.endswith(".json")}

    receivers: set[str] = set()
    for path, data in alerting.items():
        if data is None:
            continue
        c.keys(path, "", data, FILE_KEYS, "AlertingFileV1 (provisioning/alerting/types.go)")
        if data.get("apiVersion") != 1:
            c.add(path, "apiVersion", f"must be 1 for the V1 file format, got {data.get('apiVersion')!r}")
        for i, cp in enumerate(data.get("contactPoints") or []):
            name = cp.get("name") if isinstance(cp, dict) else None
            receivers.add(_contact_point(c, path, f"contactPoints[{name or i}]", cp))
    _email_messages(c)
    dashboard_panels = {d.get("uid"): {p.get("id") for p in _all_panels(d)} for d in dashboards.values() if isinstance(d, dict)}
    rule_folders: set[str] = set()
    uids: dict[str, str] = {}
    for path, data in alerting.items():
        if data is None:
            continue
        for i, group in enumerate(data.get("groups") or []):
            rule_folders.add(_group(c, path, f"groups[{i}]", group, receivers, dashboard_panels, uids))
        for i, policy in enumerate(data.get("policies") or []):
            _route(c, path, f"policies[{i}]", policy, receivers, root=True)
        for i, template in enumerate(data.get("templates") or []):
            c.keys(path, f"templates[{i}]", template, TEMPLATE_KEYS, "TemplateV1 (text_templates_types.go)")
            for key in ("name", "template"):
                if not (template or {}).get(key):
                    c.add(path, f"templates[{i}].{key}", "is required")
    for path, data in providers.items():
        if data is not None:
            _providers(c, path, data, rule_folders - {""})
    for path, board in dashboards.items():
        if isinstance(board, dict):
            _dashboard(c, path, board)
    return sorted(set(c.findings))


def _contact_point(c: _Checker, path: str, field: str, cp) -> str:
    """contact_point_types.go ContactPointV1.MapToModel / ReceiverV1.mapToModel; the name."""
    c.keys(path, field, cp, CONTACT_POINT_KEYS, "ContactPointV1 (contact_point_types.go)")
    cp = cp if isinstance(cp, dict) else {}
    name = str(cp.get("name") or "").strip()
    if not name:
        c.add(path, f"{field}.name", "is required (no name is set)")
    for j, receiver in enumerate(cp.get("receivers") or []):
        rf = f"{field}.receivers[{j}]"
        c.keys(path, rf, receiver, RECEIVER_KEYS, "ReceiverV1 (contact_point_types.go)")
        receiver = receiver if isinstance(receiver, dict) else {}
        c.uid(path, f"{rf}.uid", receiver.get("uid"))
        kind = str(receiver.get("type") or "").strip()
        if not kind:
            c.add(path, f"{rf}.type", "is required (no type is set)")
        settings = receiver.get("settings")
        if not settings:
            c.add(path, f"{rf}.settings", "is required (no settings are set)")
            continue
        c.interpolated(path, f"{rf}.settings", settings)
        for key in REQUIRED_SETTINGS.get(kind, ()):
            if not settings.get(key):
                c.add(path, f"{rf}.settings.{key}", f"is required: the {kind} notifier refuses to start without it "
                                                    f"(grafana/alerting receivers/{kind}/config.go NewConfig)")
        if kind == "telegram" and "parse_mode" in settings and str(settings["parse_mode"]).lower() not in TELEGRAM_PARSE_MODES:
            c.add(path, f"{rf}.settings.parse_mode", "unknown parse_mode, must be Markdown, MarkdownV2, HTML or None")
        c.messages.append((path, f"{rf}.settings.message", kind, settings))
    return name


def _email_messages(c: _Checker) -> None:
    """Grafana's email notifier renders `message` into its own HTML email template, which
    escapes it (grafana/alerting receivers/email): a message written as Telegram HTML
    (`parse_mode: HTML`) reaches the recipient as raw tags and double-escaped entities."""
    html = {str(s.get("message")) for _, _, kind, s in c.messages
            if kind == "telegram" and str(s.get("parse_mode", "HTML")).lower() == "html" and s.get("message")}
    for path, field, kind, settings in c.messages:
        if kind == "email" and settings.get("message") and str(settings["message"]) in html:
            c.add(path, field, "is the Telegram HTML message; the email notifier wraps the message in its own HTML "
                               "template, so send email a plain-text message")


def _group(c: _Checker, path: str, field: str, group, receivers: set[str], dashboard_panels: dict, uids: dict) -> str:
    """rules_types.go AlertRuleGroupV1.MapToModel; the folder title."""
    c.keys(path, field, group, GROUP_KEYS, "AlertRuleGroupV1 (rules_types.go)")
    group = group if isinstance(group, dict) else {}
    if not str(group.get("name") or "").strip():
        c.add(path, f"{field}.name", "is required (rule group has no name set)")
    folder = str(group.get("folder") or "")
    if not folder.strip():
        c.add(path, f"{field}.folder", "is required (rule group has no folder set)")
    interval = duration_seconds(group.get("interval"))
    if interval is None:
        c.add(path, f"{field}.interval", f"{group.get('interval')!r} is not a duration Grafana parses (model.ParseDuration)")
    elif interval <= 0 or interval % BASE_INTERVAL_SECONDS:
        c.add(path, f"{field}.interval", f"must be a positive multiple of the {BASE_INTERVAL_SECONDS}s base interval "
                                         "(models.ValidateRuleGroupInterval)")
    c.interpolated(path, f"{field}.name", group.get("name"))
    c.interpolated(path, f"{field}.folder", folder)
    for i, rule in enumerate(group.get("rules") or []):
        _rule(c, path, f"{field}.rules[{i}]", rule, receivers, dashboard_panels, uids)
    return folder


def _rule(c: _Checker, path: str, field: str, rule, receivers: set[str], dashboard_panels: dict, uids: dict) -> None:
    """rules_types.go AlertRuleV1.mapToModel, plus what the rule service checks on save."""
    c.keys(path, field, rule, RULE_KEYS, "AlertRuleV1 (rules_types.go)")
    rule = rule if isinstance(rule, dict) else {}
    title = rule.get("title")
    if not title:
        c.add(path, f"{field}.title", "is required (rule has no title set)")
    field = f"{field}[{title}]" if title else field
    c.uid(path, f"{field}.uid", rule.get("uid"))
    if rule.get("uid") in uids:
        c.add(path, f"{field}.uid", f"{rule['uid']!r} is also the uid of a rule in {uids[rule['uid']]}: the second overwrites the first")
    uids.setdefault(rule.get("uid"), path)
    data = rule.get("data") or []
    if not data:
        c.add(path, f"{field}.data", "is required (no data set)")
    refs = []
    for j, query in enumerate(data):
        qf = f"{field}.data[{j}]"
        c.keys(path, qf, query, QUERY_KEYS, "QueryV1 (rules_types.go)")
        query = query if isinstance(query, dict) else {}
        if not query.get("refId"):
            c.add(path, f"{qf}.refId", "is required")
        elif query["refId"] in refs:
            c.add(path, f"{qf}.refId", f"{query['refId']!r} is used twice")
        refs.append(query.get("refId"))
        if not query.get("datasourceUid"):
            c.add(path, f"{qf}.datasourceUid", "is required")
        if not isinstance(query.get("model"), dict):
            c.add(path, f"{qf}.model", "is required (the query model)")
    for j, query in enumerate(data):
        if isinstance(query, dict) and isinstance(query.get("model"), dict) and query["model"].get("type") == "threshold":
            _threshold(c, path, f"{field}.data[{j}].model", query["model"], refs)
    record = rule.get("record")
    condition = rule.get("condition")
    if record is not None:
        _record(c, path, f"{field}.record", record, refs)
    if not condition:
        if record is None:
            c.add(path, f"{field}.condition", "is required (rule failed to parse: no condition set)")
        elif grafana_compat.recording_condition_required(c.version):
            c.add(path, f"{field}.condition", f"is required on a recording rule before Grafana 12.3 (this stack: "
                                              f"{c.version}): AlertRuleV1.mapToModel fails with \"no condition set\" "
                                              "and Grafana does not start (grafana/grafana#109410)")
    elif condition not in refs:
        c.add(path, f"{field}.condition", f"{condition!r} names no query of the rule (refIds: {', '.join(map(str, refs))})")
    if "for" in rule and duration_seconds(str(rule["for"])) is None:
        c.add(path, f"{field}.for", f"{rule['for']!r} is not a duration Grafana parses (model.ParseDuration)")
    for key, allowed in (("noDataState", grafana_compat.NO_DATA_STATES), ("execErrState", grafana_compat.EXEC_ERR_STATES)):
        if key in rule and str(rule[key]).strip() not in allowed:
            c.add(path, f"{field}.{key}", f"{rule[key]!r} is not one of {', '.join(allowed)} (every supported version: "
                                          "models.NoDataStateFromString / ErrStateFromString)")
    labels = rule.get("labels") or {}
    c.interpolated(path, f"{field}.labels", labels)
    c.interpolated(path, f"{field}.uid", rule.get("uid"))
    c.interpolated(path, f"{field}.title", title)
    _panel_link(c, path, field, rule, record is not None, dashboard_panels)
    settings = rule.get("notification_settings")
    if settings is not None:
        _notification_settings(c, path, f"{field}.notification_settings", settings, receivers)


def _threshold(c: _Checker, path: str, field: str, model: dict, refs: list) -> None:
    """A server-side threshold expression (pkg/expr/threshold.go NewThresholdCommand)."""
    if model.get("expression") not in refs:
        c.add(path, f"{field}.expression", f"{model.get('expression')!r} names no query of the rule")
    for k, condition in enumerate(model.get("conditions") or [{}]):
        evaluator = (condition or {}).get("evaluator") or {}
        kind, params = evaluator.get("type"), evaluator.get("params") or []
        if kind not in grafana_compat.THRESHOLD_TYPES:
            c.add(path, f"{field}.conditions[{k}].evaluator.type",
                  f"{kind!r} is not one of {', '.join(grafana_compat.THRESHOLD_TYPES)} (evaluated by every supported version)")
        elif len(params) < (2 if "range" in kind else 1) or not all(
                isinstance(p, (int, float)) and not isinstance(p, bool) for p in params):
            c.add(path, f"{field}.conditions[{k}].evaluator.params", f"{params!r}: {kind} needs "
                                                                     f"{2 if 'range' in kind else 1} number(s)")


def _record(c: _Checker, path: str, field: str, record, refs: list) -> None:
    c.keys(path, field, record, RECORD_KEYS, "RecordV1 (rules_types.go)")
    record = record if isinstance(record, dict) else {}
    if not METRIC_NAME.match(str(record.get("metric") or "")):
        c.add(path, f"{field}.metric", f"{record.get('metric')!r} is not a valid metric name")
    if record.get("from") not in refs:
        c.add(path, f"{field}.from", f"{record.get('from')!r} names no query of the rule")
    if "targetDatasourceUid" in record and not grafana_compat.file_reads_record_target(c.version):
        c.add(path, f"{field}.targetDatasourceUid", f"Grafana {c.version} ignores it in a provisioning file (read from 12.4, "
                                                    "grafana/grafana#115663): the series go to [recording_rules] "
                                                    "default_datasource_uid; leave it out and set that")


def _panel_link(c: _Checker, path: str, field: str, rule: dict, recording: bool, dashboard_panels: dict) -> None:
    """The rule's dashboard and panel: fields read by AlertRuleV1.mapToModel, annotations by
    AlertRule.SetDashboardAndPanelFromAnnotations (which refuses one without the other)."""
    notes = rule.get("annotations") or {}
    a_uid, a_panel = notes.get("__dashboardUid__"), notes.get("__panelId__")
    if bool(a_uid) != bool(a_panel):
        c.add(path, f"{field}.annotations", "__dashboardUid__ and __panelId__ must be set together")
    if a_panel is not None and not re.fullmatch(r"[0-9]+", str(a_panel)):
        c.add(path, f"{field}.annotations.__panelId__", f"{a_panel!r} is not an integer panel id")
    f_uid, f_panel = rule.get("dashboardUid") or rule.get("dasboardUid"), rule.get("panelId")
    if a_uid and not f_uid:
        c.add(path, f"{field}.dashboardUid", "is missing: the panel link is only in the annotations; write the rule's "
                                             "dashboardUid and panelId fields, which file provisioning stores")
    if bool(f_uid) != (f_panel is not None):
        c.add(path, f"{field}.panelId", "dashboardUid and panelId must be set together")
    if f_uid and a_uid and (f_uid != a_uid or str(f_panel) != str(a_panel)):
        c.add(path, f"{field}.dashboardUid", f"fields ({f_uid}, {f_panel}) and annotations ({a_uid}, {a_panel}) disagree")
    if f_uid and dashboard_panels:
        if f_uid not in dashboard_panels:
            c.add(path, f"{field}.dashboardUid", f"{f_uid!r} is not a rendered dashboard")
        elif f_panel not in dashboard_panels[f_uid]:
            c.add(path, f"{field}.panelId", f"dashboard {f_uid} has no panel {f_panel}")


def _notification_settings(c: _Checker, path: str, field: str, settings, receivers: set[str]) -> None:
    c.keys(path, field, settings, NOTIFICATION_SETTINGS_KEYS, "NotificationSettingsV1 (rules_types.go)")
    settings = settings if isinstance(settings, dict) else {}
    receiver = settings.get("receiver")
    if not receiver:
        c.add(path, f"{field}.receiver", "must not be empty")
    elif receiver not in receivers:
        c.add(path, f"{field}.receiver", f"{receiver!r} is not a provisioned contact point (the rule service refuses it)")
    group_by = settings.get("group_by") or []
    if group_by and not {"alertname", "grafana_folder"} <= set(group_by):
        c.add(path, f"{field}.group_by", "must contain alertname and grafana_folder (models.NotificationSettings.Validate)")
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if key in settings and duration_seconds(settings[key]) is None:
            c.add(path, f"{field}.{key}", f"{settings[key]!r} is not a duration Grafana parses")
    c.interpolated(path, field, settings)


def _route(c: _Checker, path: str, field: str, route, receivers: set[str], root: bool) -> None:
    allowed = ROUTE_KEYS | ({"orgId"} if root else set())
    c.keys(path, field, route, allowed, "definition.Route (notification_policy_types.go)")
    route = route if isinstance(route, dict) else {}
    receiver = route.get("receiver")
    if root and not receiver:
        c.add(path, f"{field}.receiver", "is required on the root policy")
    if receiver and receiver not in receivers:
        c.add(path, f"{field}.receiver", f"{receiver!r} is not a provisioned contact point")
    if root and (route.get("object_matchers") or route.get("matchers")):
        c.add(path, f"{field}.object_matchers", "the root policy must not have matchers")
    for i, matcher in enumerate(route.get("object_matchers") or []):
        if not (isinstance(matcher, list) and len(matcher) == 3 and matcher[1] in MATCHER_OPS):
            c.add(path, f"{field}.object_matchers[{i}]", f"{matcher!r} is not [label, op, value] with op in {sorted(MATCHER_OPS)}")
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if key in route and duration_seconds(route[key]) is None:
            c.add(path, f"{field}.{key}", f"{route[key]!r} is not a duration Grafana parses")
    if root:
        c.interpolated(path, field, route)
    for i, child in enumerate(route.get("routes") or []):
        _route(c, path, f"{field}.routes[{i}]", child, receivers, root=False)


def _providers(c: _Checker, path: str, data: dict, rule_folders: set[str]) -> None:
    """pkg/services/provisioning/dashboards: config_reader.go reads configV1 providers;
    file_reader.go getOrCreateFolder looks the folder up by folderUid if set, else by title."""
    if data.get("apiVersion") != 1:
        c.add(path, "apiVersion", f"must be 1, got {data.get('apiVersion')!r}")
    for i, provider in enumerate(data.get("providers") or []):
        field = f"providers[{i}]"
        c.keys(path, field, provider, PROVIDER_KEYS, "configV1 provider (provisioning/dashboards/types.go)")
        provider = provider if isinstance(provider, dict) else {}
        if not provider.get("name"):
            c.add(path, f"{field}.name", "is required")
        if provider.get("type", "file") != "file":
            c.add(path, f"{field}.type", "this render ships dashboards as files: type must be file")
        if not (provider.get("options") or {}).get("path"):
            c.add(path, f"{field}.options.path", "is required")
        if provider.get("folderUid") and provider.get("folder") in rule_folders:
            c.add(path, f"{field}.folderUid", f"alerting creates folder {provider['folder']!r} by title with a random uid "
                                              "before dashboards are provisioned; looking it up by folderUid finds nothing "
                                              "and creates a second folder of that title (grafana/grafana#125079; before "
                                              "11.3 the create fails and Grafana stops, #87889). Name the folder by title only")
    # A folder of dashboards only is fine, but every folder holding rules needs a provider:
    # its rules link dashboards of their own folder (the readers who may see the rules may
    # open those), and with no provider for it those dashboards land elsewhere.
    providers = [p for p in data.get("providers") or [] if isinstance(p, dict)]
    served = {p.get("folder") for p in providers}
    for folder in sorted(rule_folders - served) if providers else ():
        c.add(path, "providers", f"no provider serves the rules' folder {folder!r}: rules and their dashboards would land apart")


def _all_panels(board: dict) -> list[dict]:
    out = []
    for panel in board.get("panels") or []:
        out.append(panel)
        out += panel.get("panels") or []  # collapsed rows hold their panels
    return out


def _dashboard(c: _Checker, path: str, board: dict) -> None:
    """Dashboard uid rules (util.ValidateUID on save) and unique panel ids."""
    c.uid(path, "uid", board.get("uid"))
    if not str(board.get("title") or "").strip():
        c.add(path, "title", "is required")
    ids = [p.get("id") for p in _all_panels(board)]
    for pid in sorted({i for i in ids if ids.count(i) > 1 and i is not None}):
        c.add(path, "panels", f"panel id {pid} is used twice")
