"""Where each Grafana object lives, and the folder permissions, from access/access.yaml.

A folder's permission is authoritative: its grants replace every other entry, the
default Viewer:View and Editor:Edit included. Grafana's folder permission API says so:
POST /api/folders/{folder_uid}/permissions "will remove existing permissions if they're
not included in the request" (grafana/grafana pkg/api/folder_permission.go,
UpdateFolderPermissions; updateDashboardAccessControl removes every old entry not in the
request), and the provider's FolderPermission resource manages the whole list."""
from __future__ import annotations

from reward_obs.model.access import PERMISSION_LEVELS, Access, Folder
from reward_obs.model.definitions import Definitions
from reward_obs.model.names import FOLDER_TITLE, FOLDER_UID

# Where an admin runs the calls from: GRAFANA_URL and a service account token with the
# organisation's Admin role in GRAFANA_TOKEN (never a file, never this repository).
API_FOLDERS = "/api/folders"
API_TEAMS = "/api/teams"
API_TEAM_SEARCH = "/api/teams/search"


def folders(definitions: Definitions) -> list[Folder]:
    if definitions.access is None:
        return [Folder(FOLDER_UID, FOLDER_TITLE, "everyone", (), (), (), (), "", True)]
    return list(definitions.access.folders)


def default_folder(definitions: Definitions) -> Folder:
    return next(f for f in folders(definitions) if f.default)


def folder_of_group(definitions: Definitions, group: str) -> Folder:
    access = definitions.access
    return access.folder_of_group(group) if access else default_folder(definitions)


def folder_of_alert(definitions: Definitions, name: str) -> Folder:
    access = definitions.access
    return access.folder_of_alert(name) if access else default_folder(definitions)


def folder_of_dashboard(definitions: Definitions, uid: str) -> Folder:
    access = definitions.access
    return access.folder_of_dashboard(uid) if access else default_folder(definitions)


def permission_items(access: Access, folder: Folder, team_ids: dict[str, int]) -> list[dict]:
    """The body items of POST /api/folders/{folder_uid}/permissions: one
    {teamId, permission} per grant, nothing for a basic role or a user. `team_ids`: Grafana
    team name -> id."""
    return [{"teamId": team_ids[access.team(g.team).name], "permission": PERMISSION_LEVELS[g.permission]}
            for g in folder.grants]


def access_plan(access: Access, org_id: int) -> dict:
    """The calls an admin makes once on a file-provisioned Grafana (file provisioning
    cannot set a permission or create a team), as data: `reward-obs access apply` runs
    them, docs/access.md shows them as curl. Folders are found by title, because the
    rule provisioner creates them by title with a random uid."""
    return {
        "orgId": org_id,
        "teams": [{"name": t.name} for t in access.teams],
        "folders": [
            {"title": f.title, "audience": f.audience,
             "grants": [{"team": access.team(g.team).name, "permission": g.permission} for g in f.grants]}
            for f in access.folders
        ],
    }
