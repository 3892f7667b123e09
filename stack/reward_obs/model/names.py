"""Every name and selector the stack is built around, in one place (kubernetes-mixin's
`_config`): the scrape job, the log stream, the team, the folder, the datasource types.
Definition files write a selector as `%(job_selector)s` / `%(log_selector)s`; the catalog
expands them on load, so every query reads them from here.

Identifiers depend only on names, never on file or list order, so reordering definitions
changes no uid and a re-run of `pulumi up` changes nothing. The datasource uids and the
other per-stack values are stack config (schemas/stack_config.schema.json, with defaults)."""
from __future__ import annotations

import re
import zlib

# The Prometheus scrape job of the reward backend, and the Loki stream of its reward events.
SCRAPE_JOB = "rewards"
JOB_SELECTOR = f'job="{SCRAPE_JOB}"'
LOG_STREAM_SELECTOR = '{app="reward-backend"}'
# The team label every reward alert carries; notification routing matches on it.
TEAM = "rewards"

# What a definition file may write as %(name)s in a query.
SELECTORS = {
    "job_selector": JOB_SELECTOR,
    "log_selector": LOG_STREAM_SELECTOR,
}
_SELECTOR_REF = re.compile(r"%\((\w+)\)s")

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


def selector_refs(text: str) -> set[str]:
    """The %(name)s references in a query."""
    return set(_SELECTOR_REF.findall(text))


def expand_selectors(text: str) -> str:
    """A query with every %(name)s replaced by its selector; unknown names are left as they are
    (the catalog reports them)."""
    return _SELECTOR_REF.sub(lambda m: SELECTORS.get(m.group(1), m.group(0)), text)


def section_panel_id(file: str, anchor: str) -> int:
    """The runbook dashboard's panel id for a runbook section (anchor "" for the file's
    overview). Derived from the section's address, not its position: adding a section
    elsewhere never moves a link. (The catalog refuses a collision.)"""
    return 10_000 + zlib.crc32(f"{file}#{anchor}".encode()) % 90_000
