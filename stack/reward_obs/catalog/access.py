"""access/access.yaml: teams and folders by audience, validated against the alerts,
dashboards and runbooks they place. Every problem is `file:field: what is wrong`."""
from __future__ import annotations

from pathlib import Path

from reward_obs.catalog.files import rel_path, validated
from reward_obs.model.access import Access, Folder, Grant, Team
from reward_obs.model.definitions import AlertRule, Dashboard, Runbook
from reward_obs.model.errors import ProblemCollector

ACCESS_FILE = "access/access.yaml"


def load(root: Path, alerts: list[AlertRule], dashboards: list[Dashboard], runbooks: tuple[Runbook, ...],
         problems: ProblemCollector) -> Access | None:
    """None when the file is missing or wrong (problems recorded)."""
    path = Path(root) / ACCESS_FILE
    data = validated(root, path, "access.schema.json", problems)
    if data is None:
        return None
    file = rel_path(root, path)
    before = len(problems.problems)
    teams = tuple(Team(t["key"], t["name"], t["purpose"].strip()) for t in data["teams"])
    folders = tuple(
        Folder(uid=f["uid"], title=f["title"], audience=f["audience"],
               grants=tuple(Grant(g["team"], g["permission"]) for g in f["grants"]),
               alerts=tuple(f.get("alerts", ())), dashboards=tuple(f.get("dashboards", ())),
               runbooks=tuple(f["runbooks"]), runbook_dashboard=f["runbook_dashboard"], default=f.get("default", False))
        for f in data["folders"])

    _unique(file, "teams", "key", [t.key for t in teams], problems)
    _unique(file, "teams", "name", [t.name for t in teams], problems)
    _unique(file, "folders", "uid", [f.uid for f in folders], problems)
    # Grafana finds a file-provisioned folder by its title: two equal titles are one folder.
    _unique(file, "folders", "title", [f.title for f in folders], problems)
    _unique(file, "folders", "runbook_dashboard", [f.runbook_dashboard for f in folders], problems)
    defaults = [i for i, f in enumerate(folders) if f.default]
    if len(defaults) != 1:
        problems.add(file, "folders", f"exactly one folder must be `default: true` (it holds every alert and dashboard "
                                      f"no folder lists); found {len(defaults)}")

    team_keys = {t.key for t in teams}
    alert_names = {a.name for a in alerts}
    dashboard_uids = {d.uid for d in dashboards}
    runbook_files = {r.file for r in runbooks}
    alert_folder: dict[str, str] = {}
    dashboard_folder: dict[str, str] = {}
    for i, f in enumerate(folders):
        where = f"folders[{i}]"
        granted = [g.team for g in f.grants]
        for j, g in enumerate(f.grants):
            if g.team not in team_keys:
                problems.add(file, f"{where}.grants[{j}].team", f"{g.team!r} is not a team of this file ({', '.join(sorted(team_keys))})")
            elif granted.count(g.team) > 1 and granted.index(g.team) != j:
                problems.add(file, f"{where}.grants[{j}].team", f"{g.team!r} is granted twice: Grafana keeps one permission per team")
        if f.default and (f.alerts or f.dashboards):
            problems.add(file, where, "the default folder takes every alert and dashboard no other folder lists: list none here")
        if f.runbook_dashboard in dashboard_uids:
            problems.add(file, f"{where}.runbook_dashboard", f"{f.runbook_dashboard!r} is already a dashboard uid")
        _place(problems, file, f"{where}.alerts", f.alerts, f.uid, alert_names, alert_folder, "alert")
        _place(problems, file, f"{where}.dashboards", f.dashboards, f.uid, dashboard_uids, dashboard_folder, "dashboard")
        for j, name in enumerate(f.runbooks):
            if name not in runbook_files:
                problems.add(file, f"{where}.runbooks[{j}]", f"runbooks/{name} does not exist")
    shown = {name for f in folders for name in f.runbooks}
    for name in sorted(runbook_files - shown):
        problems.add(file, "folders", f"runbooks/{name} is in no folder's runbooks: no one could open it in Grafana")
    if len(problems.problems) > before or len(defaults) != 1:
        return None

    default = folders[defaults[0]].uid
    folder_of = {a.name: alert_folder.get(a.name, default) for a in alerts}
    board_of = {d.uid: dashboard_folder.get(d.uid, default) for d in dashboards}
    for d in dashboards:
        if d.folder != board_of[d.uid]:
            problems.add(d.file, "folder", f"is {d.folder!r}, but {file} puts dashboard {d.uid} in folder {board_of[d.uid]!r}")
    group_folder: dict[str, str] = {}
    by_uid = {f.uid: f for f in folders}
    for a in alerts:
        home = folder_of[a.name]
        first = group_folder.setdefault(a.group, home)
        if first != home:
            problems.add(a.file, "group", f"group {a.group!r} already holds alerts of folder {first!r}, and {a.name} is in "
                                          f"{home!r} ({file}): a Grafana rule group lives in one folder; give it its own group")
        if a.dashboard_uid in board_of and board_of[a.dashboard_uid] != home:
            problems.add(a.file, "panel", f"{a.name} is in folder {home!r} ({file}) but links to dashboard {a.dashboard_uid!r} "
                                          f"in folder {board_of[a.dashboard_uid]!r}: link a panel its readers can open")
        if a.runbook_file not in by_uid[home].runbooks:
            problems.add(a.file, "runbook", f"{a.name} is in folder {home!r} but runbooks/{a.runbook_file} is not among its "
                                            f"runbooks ({file}): the link would open nothing")
    return Access(file, teams, folders, alert_folder, group_folder, dashboard_folder)


def _unique(file: str, section: str, key: str, values: list[str], problems: ProblemCollector) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            problems.add(file, f"{section}[{i}].{key}", f"duplicate {key} {value!r}")
        seen.add(value)


def _place(problems: ProblemCollector, file: str, field: str, names: tuple[str, ...] | list[str], folder: str,
           defined: set[str], placed: dict[str, str], kind: str) -> None:
    """Puts each listed alert or dashboard in `folder`: it must exist and live in one folder only."""
    for j, name in enumerate(names):
        if name not in defined:
            problems.add(file, f"{field}[{j}]", f"{name!r} is not a defined {kind}" + (" uid" if kind == "dashboard" else ""))
        elif name in placed:
            problems.add(file, f"{field}[{j}]", f"{name} is already in folder {placed[name]!r}: a {kind} lives in one folder")
        else:
            placed[name] = folder
