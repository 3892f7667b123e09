"""Routing definitions -> an Alertmanager configuration that routes the Prometheus form of
the reward alerts exactly as the Grafana notification policy routes the Grafana form.

The route tree is the one `notifications.policy_tree` builds for Grafana: same matchers,
grouping, timing and `continue`, and one Alertmanager receiver per contact point. Every
receiver is a webhook to a URL the caller gives: Alertmanager 0.25 (Debian's) cannot read
a webhook URL or a Telegram token from a file, so a config with the real endpoints would
hold secrets; this one is for running the rules against a real Alertmanager (the live
test, a local stack next to `reward-obs simulate`), never for holding credentials.
"""
from __future__ import annotations

from reward_obs.builders.inhibition import alertmanager_inhibit_rules, matcher_text
from reward_obs.builders.notifications import fold_policies, policy_tree
from reward_obs.model.definitions import Definitions

TIMING_KEYS = ("group_wait", "group_interval", "repeat_interval")


def route(tree: dict, timing: dict | None = None) -> dict:
    """The policy tree (neutral form) as an Alertmanager route tree."""
    return fold_policies(tree, lambda node, children, root: _route(node, children, timing, root))


def _route(node: dict, children: list[dict], timing: dict | None, root: bool) -> dict:
    out: dict = {"receiver": node["contact_point"]}
    if "matchers" in node:
        out["matchers"] = [matcher_text(*m) for m in node["matchers"]]
    if "group_by" in node:
        out["group_by"] = list(node["group_by"])
    for key in TIMING_KEYS:
        if timing and key in timing and (root or key in node):
            out[key] = timing[key]
        elif key in node:
            out[key] = node[key]
    if node.get("continue"):
        out["continue"] = True
    if children:
        out["routes"] = children
    return out


def alertmanager_config(definitions: Definitions, receiver_urls: dict[str, str], timing: dict | None = None) -> dict:
    """The Alertmanager configuration: the policy tree, and every contact point as a
    webhook receiver posting to `receiver_urls[name]`.

    `timing` replaces group_wait/group_interval/repeat_interval wherever the policy sets
    them (and on the root); a test uses it to see a notification in seconds, not 30s.
    """
    names = [cp.name for cp in definitions.routing.contact_points]
    missing = sorted(set(names) - set(receiver_urls))
    if missing:
        raise ValueError(f"no receiver URL for contact point(s): {', '.join(missing)}")
    receivers = []
    for cp in sorted(definitions.routing.contact_points, key=lambda c: c.name):
        webhook: dict = {"url": receiver_urls[cp.name], "send_resolved": cp.send_resolved}
        if "max_alerts" in cp.settings:
            webhook["max_alerts"] = cp.settings["max_alerts"]
        receivers.append({"name": cp.name, "webhook_configs": [webhook]})
    return {"route": route(policy_tree(definitions), timing), "receivers": receivers,
            "inhibit_rules": alertmanager_inhibit_rules(definitions)}
