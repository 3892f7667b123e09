"""The operator actions table (runbooks/actions.yaml): load and check it against the event
contract, render it as runbooks/actions.md, and check that runbook steps link to it.

Each row is one admin action: how to invoke it (admin API path under the stack's
`adminBaseUrl`, and the console path), the role it needs, what it writes to admin_audit
and how to undo it. A runbook step that takes an action links to its row
(`[...](actions.md#<id>)`); validate refuses a link to an action that is not in the table,
and a Stop-the-bleeding or Recover step that names an admin action without a link.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from reward_obs.catalog.files import read_yaml, schema_problems
from reward_obs.lang.logql import vocabulary
from reward_obs.lang.markdown import github_slug, sections
from reward_obs.model.errors import ProblemCollector

ACTIONS_FILE = "runbooks/actions.yaml"
ACTIONS_MD = "actions.md"
# Stands for the stack's adminBaseUrl in the repository copy; the Reward runbooks
# dashboard replaces it with the stack's value.
ADMIN_URL_TOKEN = "$REWARD_ADMIN_URL"
SWITCH_PANEL = "/d/reward-operations?viewPanel=60"
_LINK = re.compile(r"\]\((?P<file>[a-z0-9-]+\.md)?#(?P<anchor>[a-z0-9-]+)\)")
# Parts of a runbook section whose steps act; a step there that names an admin action
# must link to its row.
ACTING_PARTS = ("Stop the bleeding", "Recover")
_NAMES_AN_ACTION = re.compile(
    r"\badmin action\b"
    # or opens (after an optional "Condition: " lead-in) with the verb of a switch or a fix
    r"|^(?:[-*]|\d+\.)\s+(?:[^:]{0,80}:\s+)?(?:pause|unpause|resume|hold|release|retry|top up|close|end|reopen|reject)\b",
    re.IGNORECASE)


@dataclass(frozen=True)
class Action:
    id: str
    title: str
    does: str
    scope: str
    method: str
    path: str
    console: str
    role: str
    admin_action: str
    event_type: str
    reason_code: str
    switch: str = ""
    requires: str = ""
    undo: str = ""
    undo_note: str = ""

    def call(self, base_url: str = ADMIN_URL_TOKEN) -> str:
        return f"{self.method} {base_url}{_slots(self.path)}"


def _slots(text: str) -> str:
    """{campaign_id} -> <campaign_id>: what the operator fills in."""
    return re.sub(r"{([a-z_]+)}", r"<\1>", text)


def load_actions(root: Path, problems: ProblemCollector, metric_names: set[str] | None = None) -> list[Action]:
    """The table, every row checked; problems are recorded, never raised here."""
    path = Path(root) / ACTIONS_FILE
    if not path.is_file():
        problems.add(ACTIONS_FILE, "(file)", "is missing: runbook steps link to its rows")
        return []
    data = read_yaml(Path(root), path, problems)
    if data is None:
        return []
    schema = json.loads((Path(root) / "schemas" / "operator_actions.schema.json").read_text(encoding="utf-8"))
    errors = schema_problems(schema, data)
    for where, message in errors:
        problems.add(ACTIONS_FILE, where, message)
    if errors:
        return []
    actions = [Action(**row) for row in data["actions"]]
    ids = [a.id for a in actions]
    vocab = vocabulary(root)
    event_schema = json.loads((Path(root) / "contract" / "reward_event.schema.json").read_text(encoding="utf-8"))
    admin_action_pattern = event_schema["properties"]["admin_action"].get("pattern", "")
    for i, a in enumerate(actions):
        where = f"actions[{i}]"
        if ids.count(a.id) > 1:
            problems.add(ACTIONS_FILE, f"{where}.id", f"duplicate action id {a.id!r}")
        if a.id != github_slug(a.title):
            problems.add(ACTIONS_FILE, f"{where}.id", f"must be {github_slug(a.title)!r}, the anchor of its heading {a.title!r} in {ACTIONS_MD}")
        for key in ("undo", "requires"):
            target = getattr(a, key)
            if target and target not in ids:
                problems.add(ACTIONS_FILE, f"{where}.{key}", f"{target!r} is not an action in this table")
        if vocab is not None:
            for key in ("reason_code", "role"):
                field = "actor_role" if key == "role" else key
                value = getattr(a, key)
                if value not in vocab.enums.get(field, ()):
                    problems.add(ACTIONS_FILE, f"{where}.{key}",
                                 f"{value!r} is not a {field} of contract/reward_event.schema.json ({', '.join(vocab.enums.get(field, ()))})")
            if not a.event_type.startswith("admin_audit.") or not vocab.is_type(re.sub(r"{([a-z_]+)}", r"\1", a.event_type)):
                problems.add(ACTIONS_FILE, f"{where}.event_type", f"{a.event_type!r} is not an admin_audit event type of contract/reward_event.schema.json")
        if admin_action_pattern and not re.search(admin_action_pattern, a.admin_action):
            problems.add(ACTIONS_FILE, f"{where}.admin_action", f"{a.admin_action!r} does not match the contract's admin_action pattern")
        if a.switch and metric_names is not None and a.switch not in metric_names:
            problems.add(ACTIONS_FILE, f"{where}.switch", f"{a.switch!r} is not in the metrics contract")
    return actions


def actions_markdown(actions: list[Action]) -> str:
    """runbooks/actions.md: the table, then one `## ` section per action (its anchor is the id)."""
    by_id = {a.id: a for a in actions}

    def link(action_id: str) -> str:
        return f"[{by_id[action_id].title}](#{action_id})" if action_id in by_id else action_id

    lines = [
        "# Operator actions",
        "",
        "Every admin action the runbooks ask for, generated from [actions.yaml](actions.yaml) by `reward-obs actions --write`: edit the YAML, never this file.",
        f"Each action is one call to the reward backend's admin API at `{ADMIN_URL_TOKEN}`, the stack's `adminBaseUrl` (in `Pulumi.<stack>.yaml`; the Reward runbooks dashboard in Grafana shows the calls with it filled in), made from the admin console while signed in with the role named; the console path reaches the same call.",
        'Every call sends `{"reason_code": "<reason_code>", "incident": "<incident reference>"}` and writes one `admin_audit` event with the action, the reason_code and the role, on the chain it changes. Never paste a session token or cookie into a ticket or chat.',
        f"Switches that pause or hold something show on [Operator switches]({SWITCH_PANEL}) (0 = paused or held).",
        "",
        "| action | acts on | role | admin_audit reason_code | undo |",
        "|---|---|---|---|---|",
    ]
    for a in actions:
        undo = link(a.undo) if a.undo else f"no single action: {link(a.id)}"
        lines.append(f"| {link(a.id)} | {a.scope} | `{a.role}` | `{a.reason_code}` | {undo} |")
    for a in actions:
        lines += [
            "",
            f"## {a.title}",
            "",
            a.does,
            "",
            f"- Call: `{a.call()}`",
            f"- Console: `{_slots(a.console)}`",
            f"- Role: `{a.role}`",
            f"- Writes: `{_slots(a.event_type)}` with admin_action `{a.admin_action}` and reason_code `{a.reason_code}`",
        ]
        if a.switch:
            lines.append(f"- Switch: `{a.switch}` ([Operator switches]({SWITCH_PANEL}))")
        if a.requires:
            lines.append(f"- First: {link(a.requires)}, on the same {a.scope}")
        lines.append(f"- Undo: {link(a.undo) if a.undo else a.undo_note}")
    return "\n".join(lines) + "\n"


def action_link_problems(root: Path, actions: list[Action]) -> list[tuple[str, str, str]]:
    """(file, field, message): links to unknown actions, acting steps without a link, and
    an actions.md that is not what the table renders."""

    problems = []
    ids = {a.id for a in actions}
    md = Path(root) / "runbooks" / ACTIONS_MD
    if actions:
        if not md.is_file() or md.read_text(encoding="utf-8") != actions_markdown(actions):
            problems.append((f"runbooks/{ACTIONS_MD}", "(file)", f"is not what {ACTIONS_FILE} renders; run `reward-obs actions --write`"))
    for path in sorted((Path(root) / "runbooks").glob("*.md")):
        if path.name == ACTIONS_MD:
            continue
        rel = f"runbooks/{path.name}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for match in _LINK.finditer(line):
                if match["file"] == ACTIONS_MD and match["anchor"] not in ids:
                    problems.append((rel, f"line {number}", f"links to action {match['anchor']!r}, which is not in {ACTIONS_FILE}"))
        for section in sections(path):
            for part in ACTING_PARTS:
                for step in _steps(section.parts.get(part, "")):
                    if _NAMES_AN_ACTION.search(step) and f"]({ACTIONS_MD}#" not in step:
                        problems.append((rel, f"#{section.anchor}/{part}",
                                         f"step names an admin action without linking its row in {ACTIONS_MD}: {step[:80]!r}"))
    return problems


def _steps(text: str) -> list[str]:
    """List items (with their continuation lines) and paragraphs of a part, code left out."""
    steps: list[str] = []
    current: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if re.match(r"^\s*(?:[-*]|\d+\.)\s", line) or not line.strip():
            if current:
                steps.append(" ".join(current))
            current = [line.strip()] if line.strip() else []
        else:
            current.append(line.strip())
    if current:
        steps.append(" ".join(current))
    return steps


def cmd_actions(args) -> int:
    # Not through `load`: validating the definitions refuses an out-of-date actions.md,
    # which is what --write repairs. `validate` checks the rest afterwards.
    problems = ProblemCollector()
    actions = load_actions(args.root, problems)
    problems.raise_if_any()
    text = actions_markdown(actions)
    if args.write:
        (Path(args.root) / "runbooks" / ACTIONS_MD).write_text(text, encoding="utf-8")
        print(f"wrote runbooks/{ACTIONS_MD}: {len(actions)} actions")
    else:
        print(text, end="")
    return 0


def register(sub) -> None:
    parser = sub.add_parser("actions", help="print the operator actions table as Markdown (--write: update runbooks/actions.md)")
    parser.add_argument("--write", action="store_true", help="write runbooks/actions.md")
    parser.set_defaults(handler=cmd_actions)
