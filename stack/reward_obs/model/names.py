"""Stable identifiers. They depend only on names, never on file or list order, so
reordering definitions changes no uid and a re-run of `pulumi up` changes nothing."""
from __future__ import annotations

import re

FOLDER_UID = "rewards"
FOLDER_TITLE = "Rewards"
PROMETHEUS_DATASOURCE_TYPE = "prometheus"
LOKI_DATASOURCE_TYPE = "loki"


def kebab(name: str) -> str:
    """RewardPoolLow -> reward-pool-low."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()


def rule_uid(alert_name: str) -> str:
    uid = kebab(alert_name)
    # Grafana caps uids at 40 characters; the definitions loader reports a collision.
    return uid[:40]


def resource_name(kind: str, name: str) -> str:
    """Pulumi logical name: stable, readable, unique per kind."""
    return f"{kind}-{kebab(name)}"
