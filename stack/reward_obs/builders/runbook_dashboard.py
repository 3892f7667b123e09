"""The runbooks as a Grafana dashboard of text panels, for operators of a self-hosted
Grafana who cannot reach the repository. One panel per `## ` section, so an alert's
runbook link can land on exactly the section written for it."""
from __future__ import annotations

import re

from reward_obs.builders.access import default_folder, folder_of_alert, folders
from reward_obs.catalog.operator_actions import ADMIN_URL_TOKEN
from reward_obs.catalog.runbook_numbers import render_for_stack
from reward_obs.model.definitions import Definitions
from reward_obs.model.names import section_panel_id

RUNBOOK_DASHBOARD_UID = "reward-runbooks"
RUNBOOK_DASHBOARD_TITLE = "Reward runbooks"
_LINK = re.compile(r"\]\((?P<file>[a-z0-9-]+\.md)?(?:#(?P<anchor>[a-z0-9-]+))?\)")


def _panels_by_address(definitions: Definitions) -> dict[tuple[str, str], int]:
    return {(r.file, anchor): section_panel_id(r.file, anchor)
            for r in definitions.runbooks for anchor in ("", *(s.anchor for s in r.sections))}


def _uid(folder) -> str:
    return folder.runbook_dashboard or RUNBOOK_DASHBOARD_UID


def _section_folders(definitions: Definitions, file: str, anchor: str) -> list:
    """The folders whose runbook dashboard shows a section. A section written for an
    alert shows only where that alert lives: the abuse sections stay with Trust & Safety."""
    owners = {folder_of_alert(definitions, a.name).uid for a in definitions.alerts
              if (a.runbook_file, a.runbook_anchor) == (file, anchor)}
    found = [f for f in folders(definitions) if definitions.access is None or file in f.runbooks]
    return [f for f in found if not owners or not anchor or f.uid in owners]


def runbook_dashboard_uid(definitions: Definitions, file: str, anchor: str) -> str:
    """The runbook dashboard an alert's or a runbook's link to a section opens: the
    default folder's if it shows the section, else the first that does."""
    shown = _section_folders(definitions, file, anchor)
    default = default_folder(definitions)
    return _uid(default if default in shown or not shown else shown[0])


def runbook_panel_url(definitions: Definitions, grafana_url: str, file: str, anchor: str) -> str:
    uid = runbook_dashboard_uid(definitions, file, anchor)
    return f"{grafana_url}/d/{uid}?viewPanel={section_panel_id(file, anchor)}"


def _relink(markdown: str, file: str, ids: dict[tuple[str, str], int], definitions: Definitions) -> str:
    """Links between runbooks point at files in the repository; in Grafana they must
    point at the panel that holds the target section."""

    def repl(match: re.Match) -> str:
        target = (match["file"] or file, match["anchor"] or "")
        if target not in ids:
            return match.group(0)
        return f"](/d/{runbook_dashboard_uid(definitions, *target)}?viewPanel={ids[target]})"

    return _LINK.sub(repl, markdown)


def _for_stack(markdown: str, definitions: Definitions, config) -> str:
    """The stack's copy of a runbook text: every number bound to an alert in the stack's
    value (after alertOverrides), the binding comments gone, and the operator actions'
    calls under the stack's admin URL."""
    # The restricted copy: alertOverrides and the private values of internal fields.
    overrides = {a.name: config.overrides(a.name) for a in definitions.alerts} if config is not None else {}
    text = render_for_stack(markdown, definitions, overrides)
    admin = getattr(config, "admin_base_url", "") if config is not None else ""
    return text.replace(ADMIN_URL_TOKEN, admin) if admin else text


def runbook_dashboards(definitions: Definitions, config=None) -> list[tuple[str, dict]]:
    """(folder uid, dashboard JSON): one runbook dashboard per folder of access.yaml."""
    return [(f.uid, runbook_dashboard_json(definitions, config, f)) for f in folders(definitions)]


def runbook_dashboard_json(definitions: Definitions, config=None, folder=None) -> dict:
    """`config`: the stack whose numbers and admin URL the panels show (None: the
    definitions' defaults, as in the repository copy). `folder`: whose runbooks (None:
    the default folder's)."""
    folder = folder or default_folder(definitions)
    ids = _panels_by_address(definitions)
    panels: list[dict] = []
    y = 0
    for index, runbook in enumerate(definitions.runbooks):
        if definitions.access is not None and runbook.file not in folder.runbooks:
            continue
        title, intro = runbook.title, runbook.intro
        panels.append({"id": 1000 + index, "type": "row", "title": title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        y += 1
        blocks = [("", title, intro)] + [(s.anchor, s.title, s.text) for s in runbook.sections]
        for anchor, heading, text in blocks:
            if folder.uid not in {f.uid for f in _section_folders(definitions, runbook.file, anchor)}:
                continue
            height = min(40, max(4, text.count("\n") + 3))
            panels.append({
                "id": ids[(runbook.file, anchor)],
                "type": "text",
                "title": heading if anchor else f"{title}: overview",
                "gridPos": {"h": height, "w": 24, "x": 0, "y": y},
                "options": {"mode": "markdown", "content": _relink(_for_stack(text, definitions, config), runbook.file, ids, definitions),
                            "code": {"language": "plaintext", "showLineNumbers": False, "showMiniMap": False}},
            })
            y += height
    default = folder.default or definitions.access is None
    return {
        "uid": _uid(folder),
        "title": RUNBOOK_DASHBOARD_TITLE if default else f"{RUNBOOK_DASHBOARD_TITLE} ({folder.audience})",
        "description": "On-call runbooks for the reward system, provisioned from runbooks/ in the repository.",
        "tags": ["rewards", "runbooks"],
        "timezone": "utc",
        "editable": False,
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def runbook_url(definitions: Definitions, config, file: str, anchor: str) -> str:
    """Where an alert's runbook link opens, per the stack's `runbookLinks`."""
    if config.runbook_links == "grafana":
        return runbook_panel_url(definitions, config.grafana_url, file, anchor)
    return config.repository_runbook_url(file, anchor)
