"""Who sees what in Grafana: teams, and folders by audience with their grants. No I/O;
catalog/access.py reads access/access.yaml into these."""
from __future__ import annotations

from dataclasses import dataclass

# Grafana's folder permission levels, by name (DashboardAclUpdateItem.permission in
# Grafana's OpenAPI spec: 1 View, 2 Edit, 4 Admin).
PERMISSION_LEVELS = {"View": 1, "Edit": 2, "Admin": 4}


@dataclass(frozen=True)
class Team:
    key: str  # how access.yaml refers to it
    name: str  # the Grafana team name (unique in the organisation)
    purpose: str


@dataclass(frozen=True)
class Grant:
    team: str  # a Team.key
    permission: str  # View, Edit or Admin


@dataclass(frozen=True)
class Folder:
    uid: str
    title: str
    audience: str
    grants: tuple[Grant, ...]
    alerts: tuple[str, ...]  # alert names; the default folder holds every alert no folder lists
    dashboards: tuple[str, ...]  # dashboard uids; likewise
    runbooks: tuple[str, ...]  # runbook files shown in this folder's runbook dashboard
    runbook_dashboard: str  # uid of this folder's runbook dashboard
    default: bool = False


@dataclass(frozen=True)
class Access:
    file: str
    teams: tuple[Team, ...]
    folders: tuple[Folder, ...]
    # Resolved by the catalog: every alert, alert group and dashboard in exactly one folder.
    alert_folder: dict  # alert name -> folder uid
    group_folder: dict  # rule group name -> folder uid
    dashboard_folder: dict  # dashboard uid -> folder uid

    @property
    def default(self) -> Folder:
        return next(f for f in self.folders if f.default)

    def folder(self, uid: str) -> Folder:
        return next(f for f in self.folders if f.uid == uid)

    def team(self, key: str) -> Team:
        return next(t for t in self.teams if t.key == key)

    def folder_of_alert(self, name: str) -> Folder:
        return self.folder(self.alert_folder.get(name, self.default.uid))

    def folder_of_group(self, group: str) -> Folder:
        return self.folder(self.group_folder.get(group, self.default.uid))

    def folder_of_dashboard(self, uid: str) -> Folder:
        return self.folder(self.dashboard_folder.get(uid, self.default.uid))
