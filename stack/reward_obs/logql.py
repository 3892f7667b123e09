"""LogQL checks against the reward event contract.

There is no LogQL parser for Python, so this checks what matters to this product on
the query text: the query reads the reward backend's stream, parses events with
`| json`, and every event field it filters, groups, unwraps or prints is a field of
contract/reward_event.schema.json (a renamed field would silently match nothing).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

EVENT_SCHEMA = "contract/reward_event.schema.json"
STREAM = '{app="reward-backend"}'
# Labels Loki or the log shipper adds to every line, besides the event's own fields.
STREAM_LABELS = {"app", "env", "level", "__error__", "__error_details__", "__line__", "__stream_shard__"}

_AFTER_PIPE_FILTER = re.compile(r"\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|==|=|>=|<=|>|<)")
_TEMPLATE_FIELD = re.compile(r"\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)")
_UNWRAP = re.compile(r"\bunwrap\s+(?:duration\(|bytes\()?\s*([A-Za-z_][A-Za-z0-9_]*)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_KEEP_DROP = re.compile(r"\|\s*(?:keep|drop)\s+([A-Za-z0-9_,\s]+)")
_GRAFANA_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def event_fields(root: Path) -> set[str] | None:
    path = Path(root) / EVENT_SCHEMA
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    return set(schema.get("properties", {}))


def referenced_fields(expr: str) -> set[str]:
    """Event fields a LogQL query reads after `| json`."""
    _, _, pipeline = expr.partition("| json")
    text = _GRAFANA_VARIABLE.sub("x", pipeline)
    fields = set(_AFTER_PIPE_FILTER.findall(text)) | set(_TEMPLATE_FIELD.findall(text)) | set(_UNWRAP.findall(text))
    for group in _GROUPING.findall(expr):
        fields |= {g.strip() for g in group.split(",") if g.strip()}
    for group in _KEEP_DROP.findall(text):
        fields |= {g.strip() for g in group.split(",") if g.strip()}
    # `| json` and `| line_format` are stages, not fields.
    return fields - {"json", "line_format", "label_format", "logfmt", "unwrap", "keep", "drop"}


def _balanced(expr: str) -> bool:
    pairs, stack, quoted = {")": "(", "]": "[", "}": "{"}, [], False
    for i, ch in enumerate(expr):
        if ch == '"' and (i == 0 or expr[i - 1] != "\\"):
            quoted = not quoted
        elif quoted:
            continue
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack and not quoted


def logql_problems(expr: str, fields: set[str] | None) -> list[str]:
    if fields is None:
        return [f"{EVENT_SCHEMA} is missing: LogQL queries are checked against it"]
    problems = []
    if not _balanced(expr):
        problems.append("unbalanced brackets or quotes")
    if STREAM[:-1] not in expr:
        problems.append(f"does not read the reward event stream {STREAM}")
    refs = referenced_fields(expr)
    if refs and "| json" not in expr:
        problems.append("reads event fields without `| json`")
    for name in sorted(refs - fields - STREAM_LABELS):
        problems.append(f"event field {name!r} is not in {EVENT_SCHEMA}")
    return problems
