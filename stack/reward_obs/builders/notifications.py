"""Routing definitions -> contact points, notification policy tree and templates.

Secrets are never values here: a setting that needs one holds a `SecretRef` naming the
stack config key. The Pulumi component resolves it to a Pulumi secret; the offline
renderer writes a `$__env{...}` reference for Grafana to read at start-up.
"""
from __future__ import annotations

from dataclasses import dataclass

from reward_obs.catalog import grafana_compat
from reward_obs.catalog.config import StackConfig
from reward_obs.model.definitions import Definitions, Route
from reward_obs.model.durations import canonical

MESSAGE = '{{ template "reward.message" . }}'
# Email gets plain text: Grafana's email notifier prints each message line inside its own
# HTML template, so the Telegram HTML message would arrive as raw tags and double-escaped
# entities (notifications/templates/reward.tmpl, "reward.text").
TEXT_MESSAGE = '{{ template "reward.text" . }}'
TITLE = '{{ template "reward.title" . }}'


@dataclass(frozen=True)
class SecretRef:
    key: str  # stack config key, set with `pulumi config set --secret`


# Settings in neutral names -> Grafana provisioning keys (the API's `settings` object).
PROVISIONING_KEYS = {
    "webhook": {"url": "url", "http_method": "httpMethod", "max_alerts": "maxAlerts", "title": "title", "message": "message",
                "payload": "payload"},
    "telegram": {"bot_token": "bottoken", "chat_id": "chatid", "parse_mode": "parse_mode",
                 "disable_web_page_preview": "disable_web_page_preview", "message": "message"},
    "email": {"addresses": "addresses", "single_email": "singleEmail", "subject": "subject", "message": "message"},
}


def contact_points(definitions: Definitions, config: StackConfig) -> list[dict]:
    """Each contact point with one receiver, settings in neutral names."""
    out = []
    for cp in sorted(definitions.routing.contact_points, key=lambda c: c.name):
        settings: dict = dict(cp.settings)
        payload = settings.pop("payload_template", None)
        settings.update({setting: SecretRef(key) for setting, key in cp.secrets.items()})
        settings.update({setting: config.value(key) for setting, key in cp.config.items()})
        if payload and grafana_compat.webhook_custom_payload(config.grafana_version):
            # The body is this template alone; Grafana then ignores title and message
            # (grafana/alerting receivers/webhook/v1/webhook.go Notify).
            settings["payload"] = {"template": f'{{{{ template "{payload}" . }}}}'}
        else:
            settings["message"] = TEXT_MESSAGE if cp.type == "email" else MESSAGE
            if cp.type == "email":
                settings["subject"] = TITLE
            elif cp.type == "webhook":
                settings["title"] = TITLE
        out.append({"name": cp.name, "uid": cp.name, "type": cp.type, "settings": settings,
                    "disable_resolve_message": not cp.send_resolved})
    return out


def policy_tree(definitions: Definitions) -> dict:
    """The notification policy tree in neutral form (mirrors the definition)."""

    def build(route: Route) -> dict:
        node: dict = {"contact_point": route.contact_point}
        if route.matchers:
            node["matchers"] = [(label, "=", value) for label, value in sorted(route.matchers.items())]
        if route.group_by:
            node["group_by"] = list(route.group_by)
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if getattr(route, key):
                node[key] = canonical(getattr(route, key))
        if route.continue_:
            node["continue"] = True
        if route.routes:
            node["routes"] = [build(child) for child in route.routes]
        return node

    return build(definitions.routing.policy)


# Grafana's defaults for a policy that sets nothing.
POLICY_DEFAULTS = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}
_INHERITED = ("group_by", "group_wait", "group_interval", "repeat_interval")


def _settings(node: dict, inherited: dict) -> dict:
    """The grouping and timing a policy applies: its own, else its parent's."""
    return {key: node.get(key, inherited.get(key)) for key in _INHERITED}


def policies(tree: dict, inherited: dict | None = None, path: str = "policy"):
    """Every policy of the tree, depth first: (node, the settings it applies, where it is)."""
    settings = _settings(tree, inherited or {"group_by": [], **POLICY_DEFAULTS})
    yield tree, settings, path
    for i, child in enumerate(tree.get("routes", [])):
        yield from policies(child, settings, f"{path}.routes[{i}]")


def fold_policies(tree: dict, convert, root: bool = True):
    """convert(node, its converted children, is_root), bottom-up: the one recursion behind
    every output form of the policy tree (Alertmanager, Grafana files, Pulumi)."""
    return convert(tree, [fold_policies(child, convert, False) for child in tree.get("routes", [])], root)


def route_settings(tree: dict, labels: dict[str, str]) -> list[dict]:
    """The policies an alert with these labels ends at, with inherited settings, in
    Alertmanager/Grafana routing order (first match wins unless `continue`)."""

    def matches(node) -> bool:
        return all(labels.get(label) == value if op == "=" else labels.get(label) != value
                   for label, op, value in node.get("matchers", []))

    def walk(node, inherited: dict) -> list[dict]:
        settings = _settings(node, inherited)
        reached: list[dict] = []
        for child in node.get("routes", []):
            if matches(child):
                reached += walk(child, settings)
                if not child.get("continue"):
                    return reached
        return reached or [{"contact_point": node["contact_point"], **settings}]

    return walk(tree, {"group_by": [], **POLICY_DEFAULTS})


def rule_notification_settings(tree: dict, labels: dict[str, str]) -> dict:
    """Rule-level routing for a Grafana whose policy tree this stack leaves alone: the
    first policy the labels reach. (A rule names one contact point, so a `continue`
    copy to a second one is not made.)"""
    first = route_settings(tree, labels)[0]
    # Grafana requires simplified routing to group by alertname and grafana_folder.
    group_by = ["alertname", "grafana_folder"] + [g for g in first["group_by"] if g not in ("alertname", "grafana_folder")]
    return {"receiver": first["contact_point"], "group_by": group_by,
            **{key: first[key] for key in ("group_wait", "group_interval", "repeat_interval")}}


def templates(definitions: Definitions) -> list[dict]:
    return [{"name": t.name, "template": t.text} for t in sorted(definitions.routing.templates, key=lambda t: t.name)]


# Settings in neutral names -> argument names of the Pulumi Grafana provider's
# ContactPoint<Type>Args.
PULUMI_KEYS = {
    "webhook": {"url": "url", "http_method": "http_method", "max_alerts": "max_alerts", "title": "title", "message": "message",
                "payload": "payload"},
    "telegram": {"bot_token": "token", "chat_id": "chat_id", "parse_mode": "parse_mode",
                 "disable_web_page_preview": "disable_web_page_preview", "message": "message"},
    "email": {"addresses": "addresses", "single_email": "single_email", "subject": "subject", "message": "message"},
}


def full_payload_webhooks(definitions: Definitions, config: StackConfig) -> list[str]:
    """Contact points that ask for a fixed body the stack's Grafana cannot send (before
    12.0): they receive Grafana's whole webhook payload instead."""
    return sorted(cp.name for cp in definitions.routing.contact_points
                  if cp.settings.get("payload_template") and not grafana_compat.webhook_custom_payload(config.grafana_version))
