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

from reward_obs.model.names import LOG_STREAM_SELECTOR

EVENT_SCHEMA = "contract/reward_event.schema.json"
STREAM = LOG_STREAM_SELECTOR
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


class EventVocabulary:
    """What the event contract allows: field names, each enumerated field's values and
    the event types of each stage (an enum, or a pattern for open families such as
    admin_audit.pool_funded_<source>). Read from the schema file, never restated."""

    def __init__(self, schema: dict):
        props = schema.get("properties", {})
        self.fields = set(props)
        self.enums = {name: tuple(spec["enum"]) for name, spec in props.items() if "enum" in spec}
        self.stages = self.enums.get("stage", ())
        self.type_rules: dict[str, dict] = {}
        for rule in schema.get("allOf", ()):
            stage = rule.get("if", {}).get("properties", {}).get("stage", {}).get("const")
            spec = rule.get("then", {}).get("properties", {}).get("type")
            if stage and spec:
                self.type_rules[stage] = spec
        self.patterns = {name: spec["pattern"] for name, spec in props.items() if "pattern" in spec}

    def is_type(self, value: str) -> bool:
        stage = value.split(".", 1)[0]
        spec = self.type_rules.get(stage)
        if spec is None:
            return False
        if "enum" in spec:
            return value in spec["enum"]
        return re.search(spec.get("pattern", "$^"), value) is not None

    def types(self) -> list[str]:
        """Every enumerated type, and each pattern family as written in the schema."""
        out = []
        for stage, spec in self.type_rules.items():
            out += list(spec["enum"]) if "enum" in spec else [f"{stage}.<{spec['pattern']}>"]
        return out

    def value_problem(self, field: str, value: str) -> str | None:
        """Why `field="value"` can never match an event, or None."""
        if field == "type":
            return None if self.is_type(value) else f"type {value!r} is not an event type of {EVENT_SCHEMA}"
        if field in self.enums and value not in self.enums[field]:
            return f"{field} {value!r} is not one of {', '.join(self.enums[field])} ({EVENT_SCHEMA})"
        return None

    def known_word(self, word: str) -> bool:
        """A line filter's word is a value some event can carry: an enumerated value, an
        event type or the part of a type after its stage."""
        if any(word in values for values in self.enums.values()) or self.is_type(word):
            return True
        return any(self.is_type(f"{stage}.{word}") for stage in self.type_rules)


def vocabulary(root: Path) -> EventVocabulary | None:
    path = Path(root) / EVENT_SCHEMA
    if not path.is_file():
        return None
    return EventVocabulary(json.loads(path.read_text(encoding="utf-8")))


# `| field="value"`, `field!="value"`, `field=~"a|b"` after `| json`; placeholders such as
# "<campaign>" and Grafana variables are not checked.
_VALUE_FILTER = re.compile(r"(?:\||\b(?:and|or))\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|==|=)\s*\"([^\"]*)\"")
_LINE_FILTER = re.compile(r"(\|=|!=|\|~|!~)\s*\"([^\"]*)\"")


def value_problems(expr: str, vocab: EventVocabulary) -> list[str]:
    """Filters on stage, type and enumerated fields that no event of the contract can
    satisfy, and line filters on words no event carries (a filter that silently matches
    nothing, or matches for the wrong reason)."""
    problems = []
    head, sep, pipeline = expr.partition("| json")
    for field, op, value in _VALUE_FILTER.findall(pipeline if sep else ""):
        if "<" in value or "$" in value or not value:
            continue
        values = value.split("|") if op in ("=~", "!~") else [value]
        for v in values:
            if op in ("=~", "!~") and not re.fullmatch(r"[a-z0-9_.]+", v):
                continue  # a real regex: not checked value by value
            message = vocab.value_problem(field, v)
            if message:
                problems.append(message)
    for op, value in _LINE_FILTER.findall(head + (pipeline if sep else "")):
        words = value.split("|") if op in ("|~", "!~") else [value]
        for word in words:
            if "<" in word or "$" in word or not word:
                continue
            if not vocab.known_word(word):
                problems.append(f"line filter {word!r} is not a stage, event type or enumerated value of {EVENT_SCHEMA}")
    return problems


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


def logql_problems(expr: str, fields: set[str] | None, vocab: EventVocabulary | None = None) -> list[str]:
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
    if vocab is not None:
        problems += value_problems(expr, vocab)
    return problems
