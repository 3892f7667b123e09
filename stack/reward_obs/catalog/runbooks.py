"""Runbook sections and the checks every section must pass, plus `reward-obs runbooks`."""
from __future__ import annotations

import re
from pathlib import Path

from reward_obs.catalog.operator_actions import ACTIONS_MD, action_link_problems, load_actions
from reward_obs.catalog.runbook_numbers import number_problems
from reward_obs.lang import promql
from reward_obs.lang.logql import event_fields, logql_problems, vocabulary
from reward_obs.lang.markdown import anchors, parse_sections, parse_title_and_intro
from reward_obs.lang.secret_scan import secret_findings
from reward_obs.model.definitions import Runbook
from reward_obs.model.errors import ProblemCollector
from reward_obs.model.names import JOB_SELECTOR, LOG_STREAM_SELECTOR, section_panel_id
from reward_obs.model.text import read_utf8

# The shape every `## ` section follows, in this order.
SECTION_PARTS = ("Meaning", "Confirm", "Stop the bleeding", "Recover", "Verify", "Escalate", "Never")
PLACEHOLDER = re.compile(r"\b(TODO|TBD|FIXME|XXX)\b|lorem|fill in|<insert|\?\?\?", re.IGNORECASE)
# The scrape job and log stream selectors a runbook query writes out (GitHub shows the
# Markdown as it is, so runbooks spell them; they must be the ones in model/names.py).
_SELECTOR = re.compile(r'\bjob="[^"]*"|\{app="[^"]*"\}')
_FENCED = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)
_MD_LINK = re.compile(r"\]\(([a-z0-9-]+\.md)?(?:#([a-z0-9-]+))?\)")
_PANEL_LINK = re.compile(r"/d/([a-z0-9-]+)(?:\?viewPanel=(\d+))?")


def load_runbooks(root: Path) -> tuple[Runbook, ...]:
    """Every runbook under root/runbooks: README.md first, then by file name."""
    paths = sorted(sorted((Path(root) / "runbooks").glob("*.md")), key=lambda p: (p.name != "README.md", p.name))
    runbooks = []
    for path in paths:
        text = read_utf8(path, f"runbooks/{path.name}")
        title, intro = parse_title_and_intro(path.stem, text)
        runbooks.append(Runbook(path.name, title, intro, tuple(parse_sections(path.name, text)), text))
    return tuple(runbooks)


def panel_id_problems(runbooks: tuple[Runbook, ...]) -> list[tuple[str, str, str]]:
    """Two sections whose addresses hash to the same runbook-dashboard panel id."""
    seen: dict[int, str] = {}
    problems = []
    for runbook in runbooks:
        for anchor in ("", *(s.anchor for s in runbook.sections)):
            address = f"{runbook.file}#{anchor}"
            panel_id = section_panel_id(runbook.file, anchor)
            if panel_id in seen:
                problems.append((f"runbooks/{runbook.file}", f"#{anchor}", f"hashes to the same runbook panel id {panel_id} as "
                                 f"{seen[panel_id]}; rename one heading"))
            seen[panel_id] = address
    return problems


def runbook_problems(root: Path, definitions) -> list[tuple[str, str, str]]:
    """(file, field, message) for everything wrong in runbooks/."""

    collector = ProblemCollector()
    actions = load_actions(root, collector, set(definitions.contract.metrics))
    problems = [(p.file, p.field, p.message) for p in collector.problems]
    problems += action_link_problems(root, actions)
    fields, vocab = event_fields(root), vocabulary(root)
    for runbook in sorted(definitions.runbooks, key=lambda r: r.file):
        rel, text = f"runbooks/{runbook.file}", runbook.text
        for where, message in number_problems(definitions, runbook):
            problems.append((rel, where, message))
        for finding in secret_findings(text):
            problems.append((rel, finding.split(":")[0], finding.split(": ", 1)[1] + "; runbooks never hold secrets"))
        for number, line in enumerate(text.splitlines(), start=1):
            for selector in _SELECTOR.findall(line):
                if selector not in (JOB_SELECTOR, LOG_STREAM_SELECTOR):
                    problems.append((rel, f"line {number}", f"{selector} is not the stack's selector: use "
                                     f"{JOB_SELECTOR if selector.startswith('job') else LOG_STREAM_SELECTOR} (model/names.py)"))
            placeholder = PLACEHOLDER.search(line)
            if placeholder:
                problems.append((rel, f"line {number}", f"placeholder text: {placeholder.group(0)!r}"))
        for section in runbook.sections if runbook.file != ACTIONS_MD else ():  # the actions table has its own shape
            where = f"#{section.anchor}"
            if list(section.parts) != list(SECTION_PARTS):
                problems.append((rel, where, f"parts must be exactly {', '.join(SECTION_PARTS)} in order; found {', '.join(section.parts) or 'none'}"))
            for name, body in section.parts.items():
                if len(body.split()) < 5:
                    problems.append((rel, f"{where}/{name}", "is empty or too thin to act on"))
        for index, (lang, body) in enumerate(_FENCED.findall(text)):
            if lang == "promql":
                for message in promql.catalog_problems(body.strip(), definitions.contract):
                    problems.append((rel, f"promql block {index + 1}", message))
            elif lang == "logql":
                for message in logql_problems(body.strip(), fields, vocab):
                    problems.append((rel, f"logql block {index + 1}", message))
        for number, line in enumerate(text.splitlines(), start=1):
            for target, anchor in _MD_LINK.findall(line):
                linked = definitions.runbook(target or runbook.file)
                if linked is None:
                    problems.append((rel, f"line {number}", f"links to runbooks/{target}, which does not exist"))
                elif anchor and anchor not in anchors(linked.text):
                    problems.append((rel, f"line {number}", f"links to {target or runbook.file}#{anchor}, which has no such heading"))
        for uid, panel_id in _PANEL_LINK.findall(text):
            dashboard = definitions.dashboard(uid)
            if dashboard is None:
                problems.append((rel, f"/d/{uid}", "links to a dashboard uid that does not exist"))
            elif panel_id and int(panel_id) not in {p.id for p in dashboard.panels}:
                problems.append((rel, f"/d/{uid}?viewPanel={panel_id}", f"dashboard {uid} has no panel {panel_id}"))
    return problems


def alert_sections(definitions) -> list[tuple[str, str, str]]:
    """(alert, runbook file#anchor, section title) for every alert."""
    rows = []
    for alert in sorted(definitions.alerts, key=lambda a: a.name):
        runbook = definitions.runbook(alert.runbook_file)
        title = next((s.title for s in runbook.sections if s.anchor == alert.runbook_anchor), "(missing)") if runbook else "(missing)"
        rows.append((alert.name, f"{alert.runbook_file}#{alert.runbook_anchor}", title))
    return rows
