"""The access model (access/access.yaml): teams, folders by audience, authoritative
folder permissions with no grant to the org's basic roles, on both deploy paths.

Oracles: literal expected grants read from the access file's intent (on-call edits
Rewards, only Trust & Safety sees its folder, support views the trace), Grafana's
OpenAPI spec (vendored excerpt in tests/fixtures/grafana_http_api, with its commit), and
GET responses shaped by that spec."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from reward_obs.builders.access import permission_items
from reward_obs.catalog.config import read_stack_file
from reward_obs.tools.access import apply, permission_problems

from conftest import ROOT, run_cli
from helpers import SECRETS
from pulumi_harness import run_program
from spec import TRUST_SAFETY_ALERTS

SPEC = json.loads((ROOT / "tests/fixtures/grafana_http_api/openapi-excerpt.json").read_text())["definitions"]
RESPONSES = json.loads((ROOT / "tests/fixtures/grafana_http_api/openapi-excerpt.json").read_text())["responses"]
RECORDED = ROOT / "tests/fixtures/grafana_http_api"
ABUSE_ALERTS = tuple(sorted(TRUST_SAFETY_ALERTS))
ABUSE_PANELS = ("abuse_holds", "claim_rejection_ratio", "campaign_claim_rejection_ratio", "held_claims", "oldest_held_claim",
                "campaign_held_claims", "held_claim_events")
# folder uid -> {team name: permission}: what access.yaml must say, written out by hand.
EXPECTED_GRANTS = {
    "rewards": {"Rewards on-call": "Edit", "Rewards trust and safety": "View"},
    "rewards-trust-safety": {"Rewards trust and safety": "Edit"},
    "rewards-support": {"Rewards support": "View", "Rewards on-call": "View", "Rewards trust and safety": "View"},
}
ABUSE_PANEL_TITLES = {"Abuse holds", "Held claims", "Oldest held claim", "Campaigns with the highest claim rejection ratio",
                      "Claim rejection ratio in $campaign", "Held claims in $campaign", "Held claims, by correlation ID"}
TEAMS = {"team-oncall": "Rewards on-call", "team-trust-safety": "Rewards trust and safety", "team-support": "Rewards support"}


@pytest.fixture(scope="module", params=["Pulumi.selfhost.yaml", "Pulumi.prod.yaml"])
def program(request):
    result = run_program(read_stack_file(ROOT / request.param), SECRETS, stack=request.param.split(".")[1])
    assert result["error"] is None, result["error"]
    return result


def _of(program, suffix: str) -> list[dict]:
    return [r for r in program["resources"] if r["type"].endswith(suffix)]


@pytest.mark.slow
def test_pulumi_folders_each_exist_once(program):
    folders = [(r["inputs"]["uid"], r["inputs"]["title"]) for r in _of(program, "oss/folder:Folder")]
    assert sorted(folders) == [("rewards", "Rewards"), ("rewards-support", "Rewards — Support"),
                               ("rewards-trust-safety", "Rewards — Trust & Safety")]


def test_pulumi_teams_have_no_members_from_the_repository(program):
    teams = {r["name"]: r["inputs"] for r in _of(program, "oss/team:Team")}
    assert {name: inputs["name"] for name, inputs in teams.items()} == TEAMS
    assert not any("members" in i or "admins" in i for i in teams.values())


def test_pulumi_folder_permissions_grant_teams_only(program):
    team_ids = {f"{name}-id": title for name, title in TEAMS.items()}  # the mock's id of each Team
    got = {}
    for r in _of(program, "oss/folderPermission:FolderPermission"):
        items = r["inputs"]["permissions"]
        assert not any(i.get("role") or i.get("userId") for i in items), r["name"]
        got[r["inputs"]["folderUid"]] = {team_ids[i["teamId"]]: i["permission"] for i in items}
    assert got == EXPECTED_GRANTS


def test_pulumi_abuse_rules_and_panels_live_only_in_the_trust_and_safety_folder(program):
    in_folder = set()
    for group in _of(program, ":RuleGroup"):
        names = {rule["name"] for rule in group["inputs"]["rules"]}
        if names & set(ABUSE_ALERTS):
            assert group["inputs"]["folderUid"] == "rewards-trust-safety" and names <= set(ABUSE_ALERTS), group["name"]
            in_folder |= names
        else:
            assert group["inputs"]["folderUid"] != "rewards-trust-safety", group["name"]
    assert in_folder == set(ABUSE_ALERTS)
    # Alert names are public (the repository lists them); what stays with Trust & Safety is
    # the abuse panels and the runbook sections written for the abuse alerts.
    abuse_sections = {"RewardClaimRejectionRateHigh", "RewardClaimVolumeAbnormal", "RewardClaimVolumeNewCampaign",
                      "RewardClaimsHeldPastTarget"}
    for board in _of(program, "oss/dashboard:Dashboard"):
        panels = json.loads(board["inputs"]["configJson"])["panels"]
        if board["inputs"]["folder"] == "rewards-trust-safety":
            continue
        assert not {p.get("title") for p in panels} & ABUSE_PANEL_TITLES, board["name"]
        assert not {p.get("title") for p in panels if p.get("type") == "text"} & abuse_sections, board["name"]


def test_support_folder_holds_the_trace_and_dispute_runbook_only(program):
    boards = {json.loads(b["inputs"]["configJson"])["uid"]: b["inputs"]["folder"] for b in _of(program, "oss/dashboard:Dashboard")}
    assert sorted(uid for uid, folder in boards.items() if folder == "rewards-support") == ["reward-runbooks-support", "reward-trace"]
    support = next(json.loads(b["inputs"]["configJson"]) for b in _of(program, "oss/dashboard:Dashboard")
                   if b["inputs"]["folder"] == "rewards-support" and "runbooks" in b["name"])
    assert "Claim anomalies" not in json.dumps(support)


# ------------------------------------------------------------- file provisioning path

def test_file_render_puts_each_folder_once_by_title(out):
    providers = yaml.safe_load((out / "grafana/provisioning/dashboards/rewards.yaml").read_text())["providers"]
    assert sorted((p["folder"], p["options"]["path"]) for p in providers) == [
        ("Rewards", "/etc/grafana/dashboards/rewards/rewards"),
        ("Rewards — Support", "/etc/grafana/dashboards/rewards/rewards-support"),
        ("Rewards — Trust & Safety", "/etc/grafana/dashboards/rewards/rewards-trust-safety")]
    assert not any("folderUid" in p for p in providers)
    groups = yaml.safe_load((out / "grafana/provisioning/alerting/rules.yaml").read_text())["groups"]
    abuse = [g for g in groups if g["folder"] == "Rewards — Trust & Safety"]
    # two groups cut by what they read (bench/README.md), both in the restricted folder
    assert sorted(g["name"] for g in abuse) == ["reward-claims-abuse", "reward-claims-volume"]
    assert sorted(r["title"] for g in abuse for r in g["rules"]) == sorted(ABUSE_ALERTS)


def test_access_plan_team_bodies_are_grafana_create_team_commands(out):
    plan = json.loads((out / "grafana/access/access-plan.json").read_text())
    allowed = set(SPEC["CreateTeamCommand"]["properties"])
    for body in plan["teams"]:
        assert set(body) <= allowed and body["name"]


def test_permission_bodies_are_grafana_acl_commands_with_team_items_only(definitions):
    access = definitions.access
    item_fields = set(SPEC["DashboardAclUpdateItem"]["properties"])
    levels = set(SPEC["DashboardAclUpdateItem"]["properties"]["permission"]["enum"])
    ids = {t.name: 10 + i for i, t in enumerate(access.teams)}
    for folder in access.folders:
        body = {"items": permission_items(access, folder, ids)}
        assert set(body) == set(SPEC["UpdateDashboardAclCommand"]["properties"])
        for item in body["items"]:
            assert set(item) <= item_fields and set(item) == {"teamId", "permission"}
            assert item["permission"] in levels
    trust = access.folder("rewards-trust-safety")
    assert permission_items(access, trust, ids) == [{"teamId": 11, "permission": 2}]


def test_apply_replaces_every_folder_permission(definitions):
    """Against recorded responses shaped by the spec: existing teams are found, missing
    ones created, and each folder gets one POST with exactly its grants."""
    calls = []
    folders = [{"uid": "a1", "title": "Rewards"}, {"uid": "b2", "title": "Rewards — Trust & Safety"},
               {"uid": "c3", "title": "Rewards — Support"}]

    # Shaped as Grafana answers (SearchTeamQueryResult with TeamDTO items; createTeamResponse).
    found = {"totalCount": 1, "page": 1, "perPage": 1000, "teams": [
        {"id": 7, "orgId": 1, "name": "Rewards on-call", "email": "", "avatarUrl": "/avatar/0", "memberCount": 2, "permission": 0}]}
    none = {"totalCount": 0, "page": 1, "perPage": 1000, "teams": []}
    assert set(found) == set(SPEC["SearchTeamQueryResult"]["properties"])
    assert set(found["teams"][0]) == set(SPEC["TeamDTO"]["properties"])
    assert set(RESPONSES["createTeamResponse"]["schema"]["properties"]) == {"message", "teamId"}  # the POST's answer below

    def call(method, path, body):
        calls.append((method, path, body))
        if path.startswith("/api/teams/search"):
            return found if "on-call" in path else none
        if (method, path) == ("POST", "/api/teams"):
            return {"message": "Team created", "teamId": 8 if body["name"] == "Rewards trust and safety" else 9}
        if (method, path) == ("GET", "/api/folders"):
            return folders
        return {"message": "Folder permissions updated"}

    apply(definitions.access, call)
    posts = {path: body for method, path, body in calls if method == "POST" and path.endswith("/permissions")}
    assert posts == {
        "/api/folders/a1/permissions": {"items": [{"teamId": 7, "permission": 2}, {"teamId": 8, "permission": 1}]},
        "/api/folders/b2/permissions": {"items": [{"teamId": 8, "permission": 2}]},
        "/api/folders/c3/permissions": {"items": [{"teamId": 9, "permission": 1}, {"teamId": 7, "permission": 1},
                                                  {"teamId": 8, "permission": 1}]},
    }


def test_check_reports_grafana_default_basic_role_grants(definitions):
    """A folder as Grafana creates it (Editor:Edit, Viewer:View; recorded GET shape) fails."""
    default = json.loads((RECORDED / "folder-permissions-default.json").read_text())
    folders = [{"uid": "a1", "title": "Rewards"}, {"uid": "b2", "title": "Rewards — Trust & Safety"},
               {"uid": "c3", "title": "Rewards — Support"}]
    for item in default:
        assert set(item) <= set(SPEC["DashboardAclInfoDTO"]["properties"])

    def good(uid):
        access = definitions.access
        folder = access.folder({"a1": "rewards", "b2": "rewards-trust-safety", "c3": "rewards-support"}[uid])
        return [{"teamId": 1, "team": access.team(g.team).name, "permission": {"View": 1, "Edit": 2, "Admin": 4}[g.permission],
                 "permissionName": g.permission, "isFolder": True} for g in folder.grants]

    assert permission_problems(definitions.access, folders, good) == []
    problems = permission_problems(definitions.access, folders, lambda uid: default if uid == "b2" else good(uid))
    assert problems == [
        "folder 'Rewards — Trust & Safety': grants Edit to every Editor of the organisation",
        "folder 'Rewards — Trust & Safety': grants View to every Viewer of the organisation",
        "folder 'Rewards — Trust & Safety': team 'Rewards trust and safety' lacks Edit",
    ]


# ------------------------------------------------------------------- bad definitions

def _validate(root: Path):
    return run_cli("--root", str(root), "--stack-config", str(root / "Pulumi.selfhost.yaml"), "validate")


def test_a_basic_role_grant_is_refused(repo_copy):
    path = repo_copy / "access/access.yaml"
    path.write_text(path.read_text().replace("      - {team: trust-safety, permission: Edit}\n",
                                             "      - {role: Viewer, permission: View}\n", 1))
    result = _validate(repo_copy)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "access/access.yaml:folders[1].grants[0]" in result.stderr


def test_an_abuse_alert_left_in_a_shared_group_is_refused(repo_copy):
    path = repo_copy / "alert_rules/RewardClaimVolumeAbnormal.yaml"
    path.write_text(path.read_text().replace("group: reward-claims-volume", "group: reward-claims"))
    result = _validate(repo_copy)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "group 'reward-claims' already holds alerts of folder" in result.stderr
    assert "a Grafana rule group lives in one folder" in result.stderr


def test_an_abuse_alert_linking_to_the_operations_dashboard_is_refused(repo_copy):
    path = repo_copy / "alert_rules/RewardClaimsHeldPastTarget.yaml"
    path.write_text(path.read_text().replace("panel: reward-trust-safety/oldest_held_claim", "panel: reward-operations/claim_volume"))
    result = _validate(repo_copy)
    assert result.returncode == 1
    assert "alert_rules/RewardClaimsHeldPastTarget.yaml:panel: RewardClaimsHeldPastTarget is in folder 'rewards-trust-safety'" in result.stderr
