"""Reading definition files: YAML parsed, checked against its JSON Schema, every problem
recorded as `file:field: what is wrong`."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from reward_obs.model.errors import ProblemCollector


def load_schema(root: Path, name: str) -> dict:
    return json.loads((root / "schemas" / name).read_text(encoding="utf-8"))


def rel_path(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def json_path(error: jsonschema.ValidationError) -> str:
    """Where in a document a schema error is: `rows[0].panels[2].unit`."""
    parts = []
    for part in error.absolute_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


def read_yaml(root: Path, path: Path, problems: ProblemCollector):
    """Parsed YAML, or None with the reason recorded (unreadable, invalid or empty)."""
    rel = rel_path(root, path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.add(rel, "(file)", f"cannot read: {exc.strerror}")
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        problems.add(rel, where, f"not valid YAML: {getattr(exc, 'problem', exc)}")
        return None
    if data is None:
        problems.add(rel, "(file)", "is empty")
    return data


def validated(root: Path, path: Path, schema_name: str, problems: ProblemCollector):
    """The file's data if it matches its schema, else None (problems recorded)."""
    data = read_yaml(root, path, problems)
    if data is None:
        return None
    validator = jsonschema.Draft202012Validator(load_schema(root, schema_name))
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    for error in errors:
        problems.add(rel_path(root, path), json_path(error), error.message)
    return None if errors else data
