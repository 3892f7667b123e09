"""Reading definition files: UTF-8 text, strict YAML, checked against its JSON Schema,
every problem recorded as `file:field: what is wrong`.

What every definition and stack file is held to, whatever its schema says:
- UTF-8 (`not UTF-8 at byte N`), YAML without duplicate keys (PyYAML keeps the last one
  silently), without aliases that expand past a bound (an "alias bomb") or recursive ones;
- only the values JSON has (no YAML timestamps, sets or binary), finite numbers no larger
  than a JSON number keeps exactly, strings of bounded length without control or
  bidirectional formatting characters, and keys that are strings without surrounding space;
- JSON Schema `pattern` with its specified ECMA-262 meaning (see `ecma_regex`).
"""
from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import jsonschema
import yaml

from reward_obs.model.errors import ProblemCollector
from reward_obs.model.text import FORBIDDEN_CHARS, decode_utf8

# The largest shipped file expands to 1,424 YAML nodes at depth 10 (the operations
# dashboard, measured with `expansion`); the bounds leave a wide margin and still refuse an
# alias bomb before anything walks the expanded tree.
MAX_NODES = 50_000
MAX_DEPTH = 32
# Longest string a definition may hold. The longest shipped value has 451 characters; a
# Grafana annotation or panel description has no small limit of its own, so this bounds
# what a careless paste can put in every render.
MAX_STRING = 10_000
# Integers beyond 2^53 lose precision in JSON numbers (RFC 8259 section 6, I-JSON RFC 7493
# section 2.2), which is what Grafana and the Pulumi provider read them as (float64).
MAX_NUMBER = 2**53



def load_schema(root: Path, name: str) -> dict:
    return json.loads((root / "schemas" / name).read_text(encoding="utf-8"))


def rel_path(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def json_path(error: jsonschema.ValidationError) -> str:
    """Where in a document a schema error is: `rows[0].panels[2].unit`."""
    return format_path(error.absolute_path)


def format_path(parts) -> str:
    out = []
    for part in parts:
        out.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(out).lstrip(".") or "(top level)"


# ---------------------------------------------------------------- JSON Schema patterns


@functools.cache
def ecma_regex(pattern: str) -> re.Pattern:
    """A JSON Schema `pattern` compiled with its ECMA-262 meaning (JSON Schema 2020-12
    validation, section 6.3.3). jsonschema evaluates it with Python's `re.search`
    (jsonschema/_keywords.py, `pattern`), where `$` also matches before a final newline
    ("prod\\n" passes `^[a-z]+$`) and `\\d`/`\\w` take any Unicode digit or letter. ECMA-262's
    `$` without the m flag matches only at the end of the input, and its `\\d` is 0-9 and
    `\\w` is [A-Za-z0-9_] (ECMA-262, CharacterClassEscape); this translation keeps that."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            escape = pattern[i + 1]
            table = {"d": "0-9", "w": "A-Za-z0-9_"}
            if escape in table:
                out.append(table[escape] if in_class else f"[{table[escape]}]")
            elif escape.lower() in table and not in_class:
                out.append(f"[^{table[escape.lower()]}]")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return re.compile("".join(out))


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


# The validator every definition, stack file and operator-action table is checked with.
Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})


def schema_problems(schema: dict, data) -> list[tuple[str, str]]:
    """(field, message) for every schema error, in a stable order."""
    errors = sorted(Validator(schema).iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [(json_path(e), e.message) for e in errors]


# ---------------------------------------------------------------- strict YAML


# libyaml's parser when PyYAML was built with it (ten times faster than the pure-Python one;
# it also refuses nesting past 1000 levels itself), else the pure-Python SafeLoader.
if TYPE_CHECKING:  # the stubs' SafeLoader: CSafeLoader has the same composer/constructor API
    _Base = yaml.SafeLoader
else:
    _Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StrictLoader(_Base):
    """A safe loader that refuses duplicate keys and aliases expanding past MAX_NODES or
    MAX_DEPTH (checked on the composed node graph, before anything is constructed)."""

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        expansion(node)
        return self.construct_document(node)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {_short(key)} (YAML would silently keep the last one)", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def expansion(node) -> tuple[int, int]:
    """(nodes, depth) the document expands to with every alias followed; YAMLError past
    the bounds. Shared nodes are counted once per use but computed once (memo), so an
    alias bomb is measured without being expanded."""
    memo: dict[int, tuple[int, int]] = {}

    def size(n, depth: int) -> tuple[int, int]:
        if depth > MAX_DEPTH:
            raise yaml.YAMLError(f"nested deeper than {MAX_DEPTH} levels (or a recursive alias)")
        if id(n) in memo:
            return memo[id(n)]
        if isinstance(n, yaml.ScalarNode):
            children = []
        elif isinstance(n, yaml.SequenceNode):
            children = n.value
        else:
            children = [part for pair in n.value for part in pair]
        total, deepest = 1, 0
        for child in children:
            count, child_depth = size(child, depth + 1)
            total += count
            deepest = max(deepest, child_depth)
            if total > MAX_NODES:
                raise yaml.YAMLError(f"expands to more than {MAX_NODES} values (aliases included)")
        memo[id(n)] = (total, deepest + 1)
        return memo[id(n)]

    return size(node, 0)


def load_yaml(text: str):
    """Parsed YAML (StrictLoader); yaml.YAMLError on anything refused."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except RecursionError:
        raise yaml.YAMLError(f"nested deeper than {MAX_DEPTH} levels") from None


def yaml_error(exc: yaml.YAMLError) -> tuple[str, str]:
    """(where, message) of a YAML error, never echoing the document."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}" if mark else "(file)"
    return where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}"


# ---------------------------------------------------------------- values


def value_problems(data, path: tuple = ()) -> list[tuple[str, str]]:
    """(field, message) for every value JSON and the outputs cannot carry faithfully."""
    found: list[tuple[str, str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                found.append((format_path(path), f"key {_short(key)} is not a string: quote it"))
                continue
            if FORBIDDEN_CHARS.search(key) or key != key.strip():
                found.append((format_path(path + (key,)), "the key has a control character or surrounding whitespace"))
                continue
            found += value_problems(value, path + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += value_problems(value, path + (i,))
    elif isinstance(data, str):
        bad = FORBIDDEN_CHARS.search(data)
        if bad:
            found.append((format_path(path), f"contains the control or formatting character U+{ord(bad.group()):04X}"))
        if len(data) > MAX_STRING:
            found.append((format_path(path), f"is {len(data)} characters long; at most {MAX_STRING}"))
    elif isinstance(data, bool) or data is None:
        pass
    elif isinstance(data, (int, float)):
        if isinstance(data, float) and not math.isfinite(data):
            found.append((format_path(path), "is not a finite number"))
        elif abs(data) > MAX_NUMBER:
            found.append((format_path(path), f"is out of range (at most {MAX_NUMBER} in magnitude)"))
    else:  # YAML timestamps, !!binary, !!set: no JSON value; quote a date to make it text
        found.append((format_path(path), f"is a YAML {type(data).__name__}, not a JSON value: quote it"))
    return found


# ---------------------------------------------------------------- files


def read_text(root: Path, path: Path, problems: ProblemCollector) -> str | None:
    """A definition file's text, or None with the reason recorded (unreadable, not UTF-8)."""
    rel = rel_path(root, path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.add(rel, "(file)", f"cannot read: {exc.strerror}")
        return None
    try:
        return decode_utf8(data)
    except ValueError as exc:
        problems.add(rel, "(file)", str(exc))
        return None


def parse_yaml(rel: str, text: str, problems: ProblemCollector):
    """Strict YAML of one file's text, every value checked; None when refused."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        problems.add(rel, *yaml_error(exc))
        return None
    if data is None:
        problems.add(rel, "(file)", "is empty")
        return None
    found = value_problems(data)
    for where, message in found:
        problems.add(rel, where, message)
    return None if found else data


def read_yaml(root: Path, path: Path, problems: ProblemCollector):
    """Parsed YAML, or None with the reason recorded (unreadable, invalid or empty)."""
    text = read_text(root, path, problems)
    return None if text is None else parse_yaml(rel_path(root, path), text, problems)


def validated(root: Path, path: Path, schema_name: str, problems: ProblemCollector):
    """The file's data if it matches its schema, else None (problems recorded)."""
    data = read_yaml(root, path, problems)
    if data is None:
        return None
    found = schema_problems(load_schema(root, schema_name), data)
    for where, message in found:
        problems.add(rel_path(root, path), where, message)
    return None if found else data
