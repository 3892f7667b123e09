"""Check a dashboard JSON against Grafana's published dashboard schema, as the
grafana-foundation-sdk Python models (generated from Grafana's CUE kinds; the version is
pinned in pyproject.toml, 11.6 = the oldest Grafana this stack supports) express it.

Two passes, each reporting a JSON-ish path:
- unknown keys: the SDK's `from_json` reads exactly the schema's fields (for panels, the
  options and field config of the panel plugin, for targets the data source's query
  type), and `to_json` writes them back; an input key missing from the round trip is not
  in the schema.
- bad values: every value is checked against the type annotation of the model field it
  fills (str, int, float, bool, Literal, enum, list, nested model).
"""
from __future__ import annotations

import enum
import json
import types
import typing

from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

plugins.register_default_plugins()


def _roundtrip(model) -> object:
    return json.loads(json.dumps(model, cls=JSONEncoder))


def _dropped(before, after, path: str) -> list[str]:
    """Keys of `before` that the schema round trip did not keep."""
    out: list[str] = []
    if isinstance(before, dict) and isinstance(after, dict):
        for key, value in before.items():
            if key not in after:
                out.append(f"{path}.{key}: unknown key (not in the dashboard schema)")
            else:
                out += _dropped(value, after[key], f"{path}.{key}")
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            out += _dropped(b, a, f"{path}[{i}]")
    return out


def _is_model(hint) -> bool:
    return isinstance(hint, type) and hasattr(hint, "from_json") and hasattr(hint, "to_json")


def _hints(cls) -> dict:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # a forward reference the SDK cannot resolve: no annotations to check
        return {}


def _check(value, hint, path: str) -> list[str]:
    if hint is typing.Any or hint is object:
        return _check_model(value, type(value), path) if _is_model(type(value)) else []
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        arms = [a for a in args if a is not type(None)]
        exact = [a for a in arms if isinstance(a, type) and _is_model(a) and isinstance(value, a)]
        if exact:  # the arm the SDK built (a Panel, a RowPanel, ...): its findings, not a summary
            return _check(value, exact[0], path)
        results = [_check(value, a, path) for a in arms]
        return [] if any(r == [] for r in results) else (results[0] if len(results) == 1 else
                                                         [f"{path}: {value!r} fits none of {hint}"])
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {list(args)}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__} where the schema has a list"]
        return [f for i, v in enumerate(value) for f in _check(v, args[0] if args else typing.Any, f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__} where the schema has an object"]
        return [f for k, v in value.items() for f in _check(v, args[1] if len(args) > 1 else typing.Any, f"{path}.{k}")]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = [e.value for e in hint]
        raw = value.value if isinstance(value, enum.Enum) else value
        return [] if raw in allowed else [f"{path}: {raw!r} is not one of {allowed}"]
    if hint is bool:
        return [] if isinstance(value, bool) else [f"{path}: {value!r} is not a boolean"]
    if hint is int:
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{path}: {value!r} is not an integer"]
    if hint is float:
        return [] if isinstance(value, (int, float)) and not isinstance(value, bool) else [f"{path}: {value!r} is not a number"]
    if hint is str:
        return [] if isinstance(value, str) else [f"{path}: {value!r} is not a string"]
    if _is_model(hint):
        if isinstance(value, dict):  # kept raw by the parent's from_json: read it as the schema says
            try:
                model = hint.from_json(value)
            except Exception as exc:  # noqa: BLE001 - the schema refuses the value
                return [f"{path}: does not load as {hint.__name__}: {exc!r}"]
            return _dropped(value, _roundtrip(model), path) + _check_model(model, hint, path)
        if isinstance(value, hint):
            return _check_model(value, hint, path)
        if _is_model(type(value)):  # a variant (a data source's query type for a Dataquery)
            return _check_model(value, type(value), path)
        return [f"{path}: {type(value).__name__} where the schema has {hint.__name__}"]
    if _is_model(type(value)):
        return _check_model(value, type(value), path)
    return []


def _check_model(model, cls, path: str) -> list[str]:
    out: list[str] = []
    for attr, hint in _hints(cls).items():
        value = getattr(model, attr, None)
        if value is None:
            continue
        out += _check(value, hint, f"{path}.{attr}")
    return out


def dashboard_findings(board: dict) -> list[str]:
    """Every schema finding for one dashboard JSON (empty: it fits the schema)."""
    try:
        model = Dashboard.from_json(board)
    except Exception as exc:  # noqa: BLE001
        return [f"$: does not load as a dashboard: {exc!r}"]
    return sorted(set(_dropped(board, _roundtrip(model), "$") + _check_model(model, Dashboard, "$")))
