"""Offline render: the same builders the Pulumi program uses, written as files that a
self-hosted Grafana provisions from and that promtool and Prometheus load."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import yaml

from reward_obs.build import alerts as alert_builders
from reward_obs.build import dashboards as dashboard_builders
from reward_obs.build import grafana_recording
from reward_obs.build import inhibition as inhibition_builders
from reward_obs.build import notifications as notification_builders
from reward_obs.build.runbook_dashboard import (
    RUNBOOK_DASHBOARD_UID,
    runbook_dashboard_json,
    runbook_url,
)
from reward_obs.catalog import grafana_compat
from reward_obs.catalog import recording as recording_rules
from reward_obs.catalog.config import StackConfig, secret_env_var
from reward_obs.model.definitions import Definitions
from reward_obs.model.names import FOLDER_TITLE

# Subtrees of the output directory this command owns and rewrites whole.
OWNED_DIRS = ("grafana", "prometheus")
PROMETHEUS_RULE_FILE = "prometheus/reward-alerts.rules.yaml"
PROMETHEUS_RECORDING_FILE = "prometheus/reward-recording.rules.yaml"
GRAFANA_RECORDING_FILE = "grafana/provisioning/alerting/recording-rules.yaml"
GRAFANA_INHIBITION_FILE = "grafana/inhibition-rules.json"
DASHBOARDS_PATH = "/etc/grafana/dashboards/rewards"


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str):
    # Multi-line PromQL and templates read best as literal blocks.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100000, default_flow_style=False)


def dump_json(data) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def escape_env(text: str) -> str:
    """Grafana's file provisioning reads `$NAME` in labels and settings as an environment
    variable; `$$` is its escape for a literal dollar."""
    return text.replace("$", "$$")


def _provisioning_rule(rule: dict) -> dict:
    if "labels" not in rule:  # recording rules may have none
        return rule
    return {**rule, "labels": {k: escape_env(v) for k, v in rule["labels"].items()}}


def _provisioning_recording_rule(rule: dict, config: StackConfig) -> dict:
    """A Grafana-managed recording rule in the form Grafana's file provisioning reads
    (pkg/services/provisioning/alerting/rules_types.go, AlertRuleV1.mapToModel):
    - `condition` names the `record.from` query: before 12.3.0 the mapper refuses any rule
      without one ("no condition set", grafana/grafana#109410 exempted recording rules),
      and Grafana's own recording-rule fixtures carry it; later versions accept it.
    - `record.targetDatasourceUid` only where the file mapper reads it (RecordV1, 12.4.0,
      grafana/grafana#115663): before that it is dropped and Grafana writes to
      `[recording_rules] default_datasource_uid`, which must then name the same data source.
    """
    record = dict(rule["record"])
    if not grafana_compat.file_reads_record_target(config.grafana_version):
        record.pop("targetDatasourceUid", None)
    out = {"uid": rule["uid"], "title": rule["title"], "condition": record["from"], "record": record}
    out.update((k, v) for k, v in rule.items() if k not in out)
    return _provisioning_rule(out)


def _provisioning_settings(cp: dict) -> dict:
    keys = notification_builders.PROVISIONING_KEYS[cp["type"]]
    settings = {}
    for name, value in cp["settings"].items():
        if isinstance(value, notification_builders.SecretRef):
            value = "$__env{%s}" % secret_env_var(value.key)
        elif isinstance(value, str):
            value = escape_env(value)
        elif isinstance(value, list):  # email addresses
            value = ";".join(escape_env(v) for v in value)
        settings[keys[name]] = value
    return dict(sorted(settings.items()))


def _provisioning_route(node: dict) -> dict:
    out: dict = {"receiver": node["contact_point"]}
    if "matchers" in node:
        out["object_matchers"] = [[label, op, escape_env(value)] for label, op, value in node["matchers"]]
    for key in ("group_by", "group_wait", "group_interval", "repeat_interval", "continue"):
        if key in node:
            out[key] = node[key]
    if "routes" in node:
        out["routes"] = [_provisioning_route(child) for child in node["routes"]]
    return out


def render_files(definitions: Definitions, config: StackConfig) -> dict[str, str]:
    """Relative path -> file text, for every rendered file. Pure: writes nothing."""
    files: dict[str, str] = {}
    for dashboard in definitions.dashboards:
        files[f"grafana/dashboards/{dashboard.uid}.json"] = dump_json(dashboard_builders.dashboard_json(dashboard, config))
    files[f"grafana/dashboards/{RUNBOOK_DASHBOARD_UID}.json"] = dump_json(runbook_dashboard_json(definitions, config))
    files["grafana/provisioning/dashboards/rewards.yaml"] = dump_yaml({
        "apiVersion": 1,
        "providers": [{
            "name": "rewards",
            "orgId": config.org_id,
            # The folder by title only, never `folderUid`: Grafana provisions alerting first
            # (pkg/services/provisioning/provisioning.go, RunInitProvisioners) and the rule
            # provisioner finds or creates the folder by title with a random uid
            # (alerting/rules_provisioner.go, getOrCreateFolderByTitle). The dashboard
            # provider looks a folder up by uid when `folderUid` is set, else by title
            # (dashboards/file_reader.go, getOrCreateFolder): by title it finds that same
            # folder, by uid it would create a second "Rewards" (grafana/grafana#125079).
            "folder": FOLDER_TITLE,
            "type": "file",
            "disableDeletion": True,
            "allowUiUpdates": False,
            "updateIntervalSeconds": 60,
            "options": {"path": DASHBOARDS_PATH, "foldersFromFilesStructure": False},
        }],
    })
    groups = alert_builders.grafana_rule_groups(definitions, config)
    files["grafana/provisioning/alerting/rules.yaml"] = dump_yaml({
        "apiVersion": 1,
        "groups": [{**g, "folder": FOLDER_TITLE, "rules": [_provisioning_rule(r) for r in g["rules"]]} for g in groups],
    })
    files["grafana/provisioning/alerting/contact-points.yaml"] = dump_yaml({
        "apiVersion": 1,
        "contactPoints": [
            {"orgId": config.org_id, "name": cp["name"],
             "receivers": [{"uid": cp["uid"], "type": cp["type"], "disableResolveMessage": cp["disable_resolve_message"],
                            "settings": _provisioning_settings(cp)}]}
            for cp in notification_builders.contact_points(definitions, config)
        ],
    })
    if config.owns_policy_tree:
        files["grafana/provisioning/alerting/policies.yaml"] = dump_yaml({
            "apiVersion": 1,
            "policies": [{"orgId": config.org_id, **_provisioning_route(notification_builders.policy_tree(definitions))}],
        })
    files["grafana/provisioning/alerting/templates.yaml"] = dump_yaml({
        "apiVersion": 1,
        "templates": [{"orgId": config.org_id, **t} for t in notification_builders.templates(definitions)],
    })
    if config.grafana_inhibition_rules:  # not file-provisionable: for Grafana 13+'s API (README, "Inhibition")
        files[GRAFANA_INHIBITION_FILE] = dump_json(inhibition_builders.grafana_inhibition_rules(definitions))
    files[PROMETHEUS_RULE_FILE] = dump_yaml(alert_builders.prometheus_rule_file(definitions, config))
    files.update(recording_files(definitions, config))
    return dict(sorted(files.items()))


def recording_files(definitions: Definitions, config: StackConfig) -> dict[str, str]:
    """The recording rules the dashboards read, for the one evaluator the stack names
    (`recordingRules`). Exactly one file, never both: Prometheus evaluating the rule file
    and Grafana writing the same series by remote write would put two writers on every
    recorded series (interleaved samples, out-of-order rejections), so in `grafana` mode
    the Prometheus rule file is not written, and in `prometheus` mode no Grafana
    recording rule is provisioned. Nothing when no recording rule is defined."""
    if config.grafana_records:
        groups = grafana_recording.grafana_recording_groups(definitions, config)
        if not groups:
            return {}
        # The same groups the Pulumi component registers, in Grafana's file-provisioning form.
        return {GRAFANA_RECORDING_FILE: dump_yaml({
            "apiVersion": 1,
            "groups": [{**g, "rules": [_provisioning_recording_rule(r, config) for r in g["rules"]]} for g in groups],
        })}
    recording = recording_rules.prometheus_rule_file(definitions)
    if recording is None:
        return {}
    # Load this file into Prometheus next to the alert file.
    return {PROMETHEUS_RECORDING_FILE: dump_yaml(recording)}


def write_files(files: dict[str, str], out: Path) -> None:
    """Replace the owned subtrees of `out` with `files`, all or nothing."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".render-", dir=out))
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        for owned in OWNED_DIRS:
            target = out / owned
            if target.exists():
                shutil.rmtree(target)
            if (staging / owned).exists():
                (staging / owned).rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def summary(definitions: Definitions, config: StackConfig, files: dict[str, str]) -> str:
    lines = [f"Rendered {len(files)} files for environment {config.environment!r}"
             f" (rules {'live' if config.rewards_live else 'paused: rewardsLive is false'}):"]
    lines += [f"  {rel}" for rel in files]
    if PROMETHEUS_RECORDING_FILE in files:
        lines.append(f"Recording rules: evaluated by Prometheus (recordingRules: prometheus); load {PROMETHEUS_RECORDING_FILE}")
    elif GRAFANA_RECORDING_FILE in files:
        lines.append("Recording rules: evaluated by Grafana (recordingRules: grafana), written to data source "
                     f"{config.prometheus_datasource_uid!r} by remote write; needs Grafana's recording rules enabled")
        if not grafana_compat.file_reads_record_target(config.grafana_version):
            lines.append(f"  Grafana {config.grafana_version} ignores a file-provisioned rule's target data source: set "
                         f"[recording_rules] default_datasource_uid = {config.prometheus_datasource_uid} in grafana.ini "
                         "(read with the grafanaManagedRecordingRulesDatasources feature toggle; without it the series "
                         "go to [recording_rules] url, which must be that data source's remote-write URL)")
    lines.append("Alerts:")
    for alert in alert_builders.resolved_alerts(definitions, config):
        url = runbook_url(definitions, config, alert.rule.runbook_file, alert.rule.runbook_anchor)
        lines.append(f"  {alert.name:<32} {alert.rule.severity:<8} {url}")
    return "\n".join(lines)
