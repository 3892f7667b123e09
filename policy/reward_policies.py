"""The reward stack's policies as plain functions over resource properties, so they
can be unit-tested without the Pulumi engine. `__main__.py` wraps them in a PolicyPack.

Properties arrive as the engine sends them: camelCase input names, secrets unwrapped in
validations and wrapped in `pulumi_policy.Secret` in remediations.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi_policy import Secret

RULE_GROUP = "grafana:alerting/ruleGroup:RuleGroup"
CONTACT_POINT = "grafana:alerting/contactPoint:ContactPoint"
DASHBOARD = "grafana:oss/dashboard:Dashboard"
NOTIFICATION_POLICY = "grafana:alerting/notificationPolicy:NotificationPolicy"

REQUIRED_ANNOTATIONS = ("runbook_url", "summary")
REQUIRED_LABELS = ("severity", "team")
# Contact point integration -> its credential settings.
CREDENTIALS = {"telegrams": ("token",), "webhooks": ("url", "authorizationCredentials", "basicAuthPassword"),
               "emails": (), "slacks": ("token", "url")}
PROD_ENVIRONMENTS = ("prod", "production")

Report = Callable[[str], None]


def is_recording_rule(rule: dict) -> bool:
    """A Grafana-managed recording rule (`record` set): it writes a series and never
    fires, so it has no annotations, severity or route (Grafana clears them)."""
    return bool(rule.get("record"))


def rule_metadata(props: dict, report: Report) -> None:
    """Every alert rule has runbook_url and summary annotations and severity and team labels."""
    for rule in props.get("rules") or []:
        if is_recording_rule(rule):
            continue
        name = rule.get("name", "?")
        annotations = rule.get("annotations") or {}
        labels = rule.get("labels") or {}
        missing = [f"annotation {a}" for a in REQUIRED_ANNOTATIONS if not str(annotations.get(a, "")).strip()]
        missing += [f"label {label}" for label in REQUIRED_LABELS if not str(labels.get(label, "")).strip()]
        if missing:
            report(f"alert rule {name} has no {', '.join(missing)}")


def dashboard_in_folder(props: dict, report: Report) -> None:
    """Every dashboard lives in a folder (never in General, where anyone can edit it)."""
    if not props.get("folder"):
        report("dashboard is not in a folder; set `folder` to the Rewards folder uid")


def plain_credentials(props: dict, is_secret: Callable[[Any], bool]) -> list[str]:
    """Credential settings of a contact point that are not Pulumi secrets."""
    found = []
    for integration, keys in CREDENTIALS.items():
        receivers = props.get(integration)
        if receivers is None or is_secret(receivers):
            continue
        for index, receiver in enumerate(receivers):
            if is_secret(receiver):
                continue
            for key in keys:
                value = _get(receiver, key)
                if value not in (None, "") and not is_secret(value):
                    found.append(f"{integration}[{index}].{key}")
    return found


def _get(mapping, key):
    try:
        return mapping[key]
    except (KeyError, TypeError):
        return None


def unpaused_rules_without_route(resources: list[tuple[str, dict]], report: Report) -> None:
    """In prod, no rule is left un-paused without a contact point: it must carry
    rule-level notification settings, or the stack must own a policy tree routing
    team=rewards."""
    tree_routes_team = any(
        any(m.get("label") == "team" and m.get("value") == "rewards" for p in (props.get("policies") or [])
            for m in (p.get("matchers") or []))
        for kind, props in resources if kind == NOTIFICATION_POLICY)
    for kind, props in resources:
        if kind != RULE_GROUP:
            continue
        for rule in props.get("rules") or []:
            labels = rule.get("labels") or {}
            if is_recording_rule(rule) or rule.get("isPaused") or labels.get("environment") not in PROD_ENVIRONMENTS:
                continue
            settings = rule.get("notificationSettings") or {}
            if settings.get("contactPoint"):
                continue
            if tree_routes_team and labels.get("team") == "rewards":
                continue
            report(f"alert rule {rule.get('name', '?')} is live in {labels.get('environment')} but reaches no contact point")


def secret_credentials_remediation(resource_type: str, props) -> dict | None:
    """Encrypt any contact point credential that arrives as a plain string.

    Python policy validations see secrets already unwrapped, so this runs as a
    remediation, where the engine still marks them (`Secret`). Returns the fixed
    properties, or None when there is nothing to fix.
    """
    if resource_type != CONTACT_POINT:
        return None
    try:
        raw = props["__target"]  # the engine's secrets-preserving proxy
    except (KeyError, TypeError):
        raw = props
    plain = plain_credentials(raw, lambda v: isinstance(v, Secret))
    if not plain:
        return None
    fixed = dict(raw)
    for integration in sorted({p.split("[")[0] for p in plain}):
        fixed[integration] = Secret(fixed[integration])
    return fixed
