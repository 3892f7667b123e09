"""`reward-obs access check|apply --grafana URL`: compare a Grafana's folder permissions
with access/access.yaml, or set them once on a file-provisioned Grafana (file
provisioning cannot set a permission or create a team).

The token comes from GRAFANA_TOKEN only (a service account with the org Admin role for
apply, any role that may read the folders' permissions for check); it is never printed.
Request and response fields follow Grafana's HTTP API (OpenAPI spec, public/api-merged.json:
CreateTeamCommand, UpdateDashboardAclCommand, DashboardAclInfoDTO; vendored in
tests/fixtures/grafana_http_api)."""
from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from reward_obs.builders.access import API_FOLDERS, API_TEAM_SEARCH, API_TEAMS, permission_items
from reward_obs.catalog.load import load
from reward_obs.model.access import PERMISSION_LEVELS, Access
from reward_obs.model.lookup import required

TOKEN_ENV = "GRAFANA_TOKEN"
# Looked up with the permission as Grafana's JSON gives it, which need not be a known int.
_NAMES: dict[object, str] = {level: name for name, level in PERMISSION_LEVELS.items()}
# (method, path, body or None) -> parsed JSON response
Call = Callable[[str, str, object], Any]  # (method, path, JSON body) -> decoded JSON


def permission_problems(access: Access, folder_list: list[dict], acl: Callable[[str], list[dict]]) -> list[str]:
    """What differs between Grafana and access.yaml. `folder_list`: GET /api/folders;
    `acl(uid)`: GET /api/folders/{uid}/permissions (DashboardAclInfoDTO items)."""
    problems = []
    by_title = {f.get("title"): f.get("uid") for f in folder_list}
    for folder in access.folders:
        uid = by_title.get(folder.title)
        if uid is None:
            problems.append(f"folder {folder.title!r}: not found in Grafana")
            continue
        want = {(access.team(g.team).name, g.permission) for g in folder.grants}
        got = set()
        for item in acl(uid):
            level = _NAMES.get(item.get("permission"), str(item.get("permission")))
            if item.get("role"):
                problems.append(f"folder {folder.title!r}: grants {level} to every {item['role']} of the organisation")
            elif item.get("userId"):
                problems.append(f"folder {folder.title!r}: grants {level} to user {item.get('userLogin') or item['userId']}")
            elif item.get("teamId"):
                got.add((item.get("team"), level))
        for team, level in sorted(got - want):
            problems.append(f"folder {folder.title!r}: team {team!r} has {level}, access.yaml does not grant it")
        for team, level in sorted(want - got):
            problems.append(f"folder {folder.title!r}: team {team!r} lacks {level}")
    return problems


def apply(access: Access, call: Call) -> list[str]:
    """Create the teams that are missing, then replace each folder's permissions with its
    grants (the POST is authoritative). Returns what it did, one line per call."""
    done = []
    team_ids = {}
    for team in access.teams:
        found = call("GET", f"{API_TEAM_SEARCH}?{urllib.parse.urlencode({'name': team.name})}", None)
        match = [t for t in found.get("teams", []) if t.get("name") == team.name]
        if match:
            team_ids[team.name] = match[0]["id"]
        else:
            team_ids[team.name] = call("POST", API_TEAMS, {"name": team.name})["teamId"]
            done.append(f"created team {team.name!r}")
    by_title = {f["title"]: f["uid"] for f in call("GET", API_FOLDERS, None)}
    for folder in access.folders:
        uid = by_title.get(folder.title)
        if uid is None:
            uid = call("POST", API_FOLDERS, {"uid": folder.uid, "title": folder.title})["uid"]
            done.append(f"created folder {folder.title!r}")
        call("POST", f"{API_FOLDERS}/{uid}/permissions", {"items": permission_items(access, folder, team_ids)})
        done.append(f"set permissions of {folder.title!r}: " + ", ".join(f"{access.team(g.team).name} {g.permission}" for g in folder.grants))
    return done


def http(base: str, token: str) -> Call:
    def call(method: str, path: str, body: object) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(base.rstrip("/") + path, data=data, method=method,
                                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                                  "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    return call


def cmd_access(args) -> int:
    definitions, _config = load(args)
    access = required(definitions.access, "access/access.yaml")  # the catalog refuses a stack without it
    token = os.environ.get(TOKEN_ENV)
    if not token:
        print(f"reward-obs access: set {TOKEN_ENV} to a Grafana service account token", file=sys.stderr)
        return 1
    call = http(args.grafana, token)
    try:
        if args.action == "apply":
            for line in apply(access, call):
                print(line)
            return 0
        problems = permission_problems(access, call("GET", API_FOLDERS, None),
                                       lambda uid: call("GET", f"{API_FOLDERS}/{uid}/permissions", None))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"reward-obs access: {args.grafana}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    for line in problems:
        print(line)
    if not problems:
        print(f"OK: {len(access.folders)} folders carry exactly the grants of {access.file}")
    return 1 if problems else 0


def register(sub) -> None:
    parser = sub.add_parser("access", help="check (or apply once) the folder permissions of access/access.yaml on a Grafana")
    parser.add_argument("action", choices=("check", "apply"))
    parser.add_argument("--grafana", required=True, help=f"Grafana base URL; the token is read from ${TOKEN_ENV}")
    parser.set_defaults(handler=cmd_access)
