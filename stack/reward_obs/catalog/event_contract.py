"""The reward event envelope (contract/reward_event.schema.json) as a fast predicate, and
every supported version of it (contract/reward_event.versions.json).

`reward-obs trace` checks every line of an audit log against the schema. jsonschema
builds error objects lazily but still walks its keyword machinery for every instance,
which is far too slow for a million lines. So the schema file is *compiled* here into
plain closures for the keywords it uses, and jsonschema runs only on the lines the
fast predicate refuses, to produce its usual messages. The schema stays the single
source of truth:

* a keyword this compiler does not implement makes `compile_schema` raise, so nobody
  can add a rule to the schema that the fast path silently skips;
* each keyword follows jsonschema's own semantics (``pattern`` is ``re.search``,
  ``integer`` excludes booleans, ``const``/``enum`` never equate ``True`` and ``1``);
* tests/test_event_contract.py proves both agree on every example and on thousands of
  generated and mutated events.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from reward_obs.catalog.definitions import REPO_ROOT
from reward_obs.lang.secret_scan import SECRET_PATTERNS

SCHEMA_PATH = REPO_ROOT / "contract" / "reward_event.schema.json"
VERSIONS_PATH = REPO_ROOT / "contract" / "reward_event.versions.json"
STAGES = ("match_settlement", "reward_allocation", "claim", "payout", "admin_audit")

Check = Callable[[Any], bool]

# Keywords with no effect on validity.
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "examples", "default", "deprecated"})
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    # Draft 4 and later: 1.0 is an integer (jsonschema's draft4+ type checker agrees).
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}
MESSAGE_LIMIT = 200


class UnsupportedSchema(ValueError):
    """The schema uses a keyword the fast path does not implement."""


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


def _equal_check(expected: Any) -> Check:
    """jsonschema's `equal` for the scalar values a contract uses."""
    if isinstance(expected, str):
        return lambda v: isinstance(v, str) and v == expected
    if expected is None:
        return lambda v: v is None
    if isinstance(expected, bool):
        return lambda v: v is expected
    if isinstance(expected, (int, float)):
        return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v == expected
    raise UnsupportedSchema(f"const/enum value {expected!r}: only strings, numbers, booleans and null are supported")


def _all(checks: list[Check]) -> Check:
    checks = [c for c in checks if c is not _always]
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    checks_t = tuple(checks)

    def check(v: Any) -> bool:
        for c in checks_t:
            if not c(v):
                return False
        return True

    return check


_PY_TYPES: dict[str, type] = {"string": str, "null": type(None), "object": dict, "array": list, "boolean": bool}
_OBJECT_KEYWORDS = ("properties", "additionalProperties", "required", "dependentRequired")


def _type_check(names: list[str]) -> Check:
    if all(n in _PY_TYPES for n in names):
        py = tuple(_PY_TYPES[n] for n in names)
        return lambda v: isinstance(v, py)
    preds = tuple(_TYPES[n] for n in names)
    return lambda v: any(p(v) for p in preds)


def _scalar_checks(schema: dict) -> list[Check]:
    """type, const, enum and pattern, fused into one closure for the common leaf shapes
    (this is where a valid event spends most of its time)."""
    names = schema.get("type")
    if names is not None and not isinstance(names, list):
        names = [names]
    pattern = schema.get("pattern")
    search = re.compile(pattern).search if pattern is not None else None
    enum = schema.get("enum")
    const_given = "const" in schema

    if names == ["string"] and search and enum is None and not const_given:
        return [lambda v: isinstance(v, str) and search(v) is not None]
    if names == ["string"] and enum is not None and all(isinstance(e, str) for e in enum) and not search and not const_given:
        allowed = frozenset(enum)
        return [lambda v: isinstance(v, str) and v in allowed]
    if names is not None and "string" in names and search and enum is None and not const_given:
        other = _type_check([n for n in names if n != "string"])
        return [lambda v: search(v) is not None if isinstance(v, str) else other(v)]

    checks: list[Check] = []
    if names is not None:
        checks.append(_type_check(names))
    if const_given:
        checks.append(_equal_check(schema["const"]))
    if enum is not None:
        if all(isinstance(e, str) for e in enum):
            allowed_values = frozenset(enum)
            checks.append(lambda v: isinstance(v, str) and v in allowed_values)
        else:
            each = tuple(_equal_check(e) for e in enum)
            checks.append(lambda v: any(c(v) for c in each))
    if search is not None:
        checks.append(lambda v: not isinstance(v, str) or search(v) is not None)
    return checks


_PATTERN, _ENUM, _NULL_OR_PATTERN, _INT_CONST, _CALL = range(5)


def _leaf(schema: Any, compiled: Check) -> tuple:
    """How the properties loop checks one property inline, without a call: the envelope's
    leaves are strings with a pattern or an enum, a nullable id, and a version constant.
    Anything else is called (`_CALL`)."""
    if not isinstance(schema, dict) or not set(schema) - _ANNOTATIONS <= {"type", "pattern", "enum", "const"}:
        return (_CALL, compiled)
    names = schema.get("type")
    keys = set(schema) - _ANNOTATIONS
    if names == "string" and keys == {"type", "pattern"}:
        return (_PATTERN, re.compile(schema["pattern"]).search)
    if names == "string" and keys == {"type", "enum"} and all(isinstance(e, str) for e in schema["enum"]):
        return (_ENUM, frozenset(schema["enum"]))
    if names in (["string", "null"], ["null", "string"]) and keys == {"type", "pattern"}:
        return (_NULL_OR_PATTERN, re.compile(schema["pattern"]).search)
    if names == "integer" and keys == {"type", "const"} and type(schema["const"]) is int:
        return (_INT_CONST, schema["const"])
    return (_CALL, compiled)


def _object_check(schema: dict, where: str) -> Check | None:
    """The object keywords of one schema as a single closure over a dict (None if none)."""
    if not any(k in schema for k in _OBJECT_KEYWORDS):
        return None
    subs = schema.get("properties", {})
    props = {name: compile_schema(sub, f"{where}/properties/{name}") for name, sub in subs.items()}
    known = frozenset(props)
    props = {name: c for name, c in props.items() if c is not _always}
    leaves = {name: _leaf(subs[name], c) for name, c in props.items()}
    leaf = leaves.get
    extra = schema.get("additionalProperties", True)
    closed = extra is False
    extra_check = None if extra is True or extra is False else compile_schema(extra, f"{where}/additionalProperties")
    required = frozenset(schema.get("required", ()))
    deps = tuple((name, frozenset(needed)) for name, needed in schema.get("dependentRequired", {}).items())
    many = len(props) > 3
    few = tuple(props.items())

    def check(v: dict) -> bool:
        keys = v.keys()
        if closed and not keys <= known:
            return False
        if required and not keys >= required:
            return False
        if many:
            for name, value in v.items():
                spec = leaf(name)
                if spec is None:
                    continue
                code, arg = spec
                if code == _PATTERN:
                    if not isinstance(value, str) or arg(value) is None:
                        return False
                elif code == _ENUM:
                    if not isinstance(value, str) or value not in arg:
                        return False
                elif code == _NULL_OR_PATTERN:
                    if value is not None and (not isinstance(value, str) or arg(value) is None):
                        return False
                elif code == _INT_CONST:  # an integer equal to the constant: 1 or 1.0, never True
                    if value != arg or isinstance(value, bool) or not isinstance(value, (int, float)):
                        return False
                elif not arg(value):
                    return False
        else:
            for name, c in few:
                if name in v and not c(v[name]):
                    return False
        for name, needed in deps:
            if name in v and not keys >= needed:
                return False
        if extra_check is not None:
            for name, value in v.items():
                if name not in known and not extra_check(value):
                    return False
        return True

    return check


def compile_schema(schema: Any, where: str = "#") -> Check:
    """A predicate equal to `Draft202012Validator(schema).is_valid` for the supported keywords."""
    if schema is True:
        return _always
    if schema is False:
        return _never
    if not isinstance(schema, dict):
        raise UnsupportedSchema(f"{where}: a schema must be an object or a boolean")
    unknown = set(schema) - _ANNOTATIONS - {
        "type", "const", "enum", "pattern", "required", "properties", "additionalProperties",
        "dependentRequired", "allOf", "if", "then", "else",
    }
    if unknown:
        raise UnsupportedSchema(f"{where}: keyword(s) {', '.join(sorted(unknown))} not implemented by the fast validator; "
                                "add them to stack/reward_obs/catalog/event_contract.py with tests")
    object_only = schema.get("type") in ("object", ["object"])
    checks = _scalar_checks({k: schema[k] for k in ("const", "enum") if k in schema} if object_only else schema)
    obj = _object_check(schema, where)
    if object_only:
        checks.append((lambda v: isinstance(v, dict) and obj(v)) if obj else (lambda v: isinstance(v, dict)))
    elif obj is not None:
        checks.append(lambda v: not isinstance(v, dict) or obj(v))
    if "allOf" in schema:
        checks.append(_compile_all_of(schema["allOf"], where))
    if "if" in schema:
        cond = compile_schema(schema["if"], f"{where}/if")
        then = compile_schema(schema.get("then", True), f"{where}/then")
        else_ = compile_schema(schema.get("else", True), f"{where}/else")
        checks.append(lambda v: then(v) if cond(v) else else_(v))
    return _all(checks)


def _dispatch_key(sub: Any) -> tuple[str, str] | None:
    """(P, c) when `sub` is `{"if": {"required": [P], "properties": {P: {"const": c}}}, ...}`
    with a string c: the per-stage rules of the envelope."""
    if not isinstance(sub, dict) or not set(sub) <= {"if", "then", "else"} or "if" not in sub:
        return None
    cond = sub["if"]
    if not isinstance(cond, dict) or set(cond) != {"required", "properties"}:
        return None
    props = cond["properties"]
    if not isinstance(props, dict) or len(props) != 1:
        return None
    (name, prop), = props.items()
    if cond["required"] != [name] or not isinstance(prop, dict) or set(prop) != {"const"} or not isinstance(prop["const"], str):
        return None
    return name, prop["const"]


def _compile_all_of(subs: list, where: str) -> Check:
    """allOf; its if/then/else items that switch on one property's string value (the
    stage) become one dict lookup instead of one condition per item. Same result: for an
    object, the item whose constant equals the value takes its `then`, every other item
    its `else`; for a non-object every `if` holds (object keywords ignore non-objects)."""
    keyed = [(i, _dispatch_key(sub)) for i, sub in enumerate(subs)]
    names = {k[0] for _, k in keyed if k is not None}
    consts = [k[1] for _, k in keyed if k is not None]
    if len(names) != 1 or len(consts) < 2 or len(set(consts)) != len(consts):
        return _all([compile_schema(sub, f"{where}/allOf/{i}") for i, sub in enumerate(subs)])
    (name,) = names
    rest = _all([compile_schema(subs[i], f"{where}/allOf/{i}") for i, k in keyed if k is None])
    branches = [(k[1], compile_schema(subs[i].get("then", True), f"{where}/allOf/{i}/then"),
                 compile_schema(subs[i].get("else", True), f"{where}/allOf/{i}/else")) for i, k in keyed if k is not None]
    default = _all([else_ for _, _, else_ in branches])
    table = {c: _all([then] + [e for c2, _, e in branches if c2 != c]) for c, then, _ in branches}
    every_then = _all([then for _, then, _ in branches])

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return every_then(v) and rest(v)
        key = v.get(name)
        chosen = table.get(key, default) if isinstance(key, str) else default
        return chosen(v) and rest(v)

    def check_no_rest(v: Any) -> bool:
        if not isinstance(v, dict):
            return every_then(v)
        key = v.get(name)
        return (table.get(key, default) if isinstance(key, str) else default)(v)

    return check if rest is not _always else check_no_rest


def _redact(message: str) -> str:
    """jsonschema quotes the offending value; a credential pasted into a field must not
    travel on into a report or a ticket."""

    for pattern in SECRET_PATTERNS.values():
        message = pattern.sub("[redacted]", message)
    return message


class EventContract:
    """The envelope schema, with a fast `is_valid` and jsonschema's messages on demand."""

    def __init__(self, schema_path: Path = SCHEMA_PATH):
        self.schema_path = schema_path
        self.schema = json.loads(schema_path.read_text(encoding="utf-8"))
        self.is_valid: Check = compile_schema(self.schema)
        props = self.schema["properties"]
        self.correlation_re = re.compile(props["correlation_id"]["pattern"])
        self.timestamp_re = re.compile(props["timestamp"]["pattern"])

    @cached_property
    def validator(self):

        Draft202012Validator.check_schema(self.schema)
        return Draft202012Validator(self.schema)

    def errors(self, event: Any) -> list[str]:
        """jsonschema's messages for an event, `path: message`, each cut to a sane length
        and with credential-shaped values redacted (a pattern error quotes the value)."""
        out = []
        for error in sorted(self.validator.iter_errors(event), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
            path = "/".join(str(p) for p in error.absolute_path) or self._false_schema_property(event, error) or "(event)"
            message = _redact(error.message)
            message = message if len(message) <= MESSAGE_LIMIT else message[:MESSAGE_LIMIT] + "..."
            out.append(f"{path}: {message}")
        return out

    def _false_schema_property(self, event: Any, error) -> str | None:
        """jsonschema leaves the path empty when a property's schema is `false` (an
        admin-only field on another stage): name the property from the schema instead."""
        if error.validator is not None or not isinstance(event, dict):
            return None
        node: Any = self.schema
        for part in error.absolute_schema_path:
            node = node[part]
        if not isinstance(node, dict):
            return None
        names = [n for n, sub in node.items() if sub is False and n in event and repr(event[n]) in error.message]
        return names[0] if names else None


# ------------------------------------------------------------------ versions


def current_schema_version(versions_path: Path = VERSIONS_PATH) -> int:
    """The schema_version a new event carries (`current` in the versions map)."""
    return int(json.loads(versions_path.read_text(encoding="utf-8"))["current"])


class ContractVersionsError(ValueError):
    """The versions map, or a schema it names, is unusable: `file:field: problem`."""


@dataclass(frozen=True)
class Change:
    breaking: bool
    change: str


@dataclass(frozen=True)
class Version:
    number: int
    schema_file: str  # relative to contract/
    sha256: str
    examples: str  # relative to contract/
    changes: tuple[Change, ...]


_VERSIONS_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["current", "versions"],
    "properties": {
        "$comment": {"type": "string"},
        "current": {"type": "integer", "minimum": 1},
        "versions": {
            "type": "object", "minProperties": 1, "propertyNames": {"pattern": "^[1-9][0-9]{0,3}$"},
            "additionalProperties": {
                "type": "object", "additionalProperties": False, "required": ["schema", "sha256", "examples", "changes"],
                "properties": {
                    "schema": {"type": "string", "pattern": "^[a-z0-9_.]+\\.schema\\.json$"},
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "examples": {"type": "string", "pattern": "^examples/[a-z0-9_]+$"},
                    "changes": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "additionalProperties": False, "required": ["breaking", "change"],
                        "properties": {"breaking": {"type": "boolean"}, "change": {"type": "string", "minLength": 10}}}},
                },
            },
        },
    },
}
_NO_VERSION = object()


class VersionedEventContract:
    """Every supported version of the envelope. An event is valid when it is valid against
    the version its `schema_version` claims; `explain` says which version a bad event
    claims, what it fails there, and how it fares against the other versions (an older
    event and a broken one read differently)."""

    def __init__(self, versions_path: Path = VERSIONS_PATH):
        self.versions_path = versions_path
        where = versions_path.name
        try:
            data = json.loads(versions_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ContractVersionsError(f"{where}: cannot read: {exc.strerror}") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise ContractVersionsError(f"{where}: not JSON: {str(exc)[:120]}") from None
        errors = sorted(Draft202012Validator(_VERSIONS_SCHEMA).iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            e = errors[0]
            raise ContractVersionsError(f"{where}:{'.'.join(map(str, e.absolute_path)) or '(file)'}: {e.message[:200]}")
        self.versions: dict[int, Version] = {}
        self.contracts: dict[int, EventContract] = {}
        for key, spec in sorted(data["versions"].items(), key=lambda kv: int(kv[0])):
            number = int(key)
            schema_path = versions_path.parent / spec["schema"]
            try:
                contract = EventContract(schema_path)
            except OSError as exc:
                raise ContractVersionsError(f"{where}:versions.{key}.schema: cannot read {spec['schema']}: {exc.strerror}") from None
            except (ValueError, KeyError, TypeError) as exc:
                raise ContractVersionsError(f"{spec['schema']}: not a usable event schema: {str(exc)[:200]}") from None
            claimed = contract.schema.get("properties", {}).get("schema_version", {}).get("const")
            if claimed != number or type(claimed) is not int:
                raise ContractVersionsError(f"{spec['schema']}:properties.schema_version.const: is {claimed!r}, but {where} "
                                            f"lists this file as version {number}")
            self.versions[number] = Version(number, spec["schema"], spec["sha256"], spec["examples"],
                                            tuple(Change(c["breaking"], c["change"]) for c in spec["changes"]))
            self.contracts[number] = contract
        if data["current"] not in self.contracts:
            raise ContractVersionsError(f"{where}:current: {data['current']} is not one of the versions ({self.supported_text})")
        self.current_version: int = data["current"]
        self.current = self.contracts[self.current_version]
        props = self.current.schema["properties"]
        self.correlation_re = re.compile(props["correlation_id"]["pattern"])
        self.timestamp_re = re.compile(props["timestamp"]["pattern"])
        # version -> compiled check; a hot loop may index it directly (see trace.analyse)
        # Keyed by int, but looked up with whatever schema_version a line decoded to.
        self.by_version: dict[object, Check] = {n: c.is_valid for n, c in self.contracts.items()}
        get = self.by_version.get

        def is_valid(event: Any) -> bool:
            if type(event) is not dict:
                return False
            try:
                check = get(event.get("schema_version"))
            except TypeError:  # an unhashable schema_version (a list, an object)
                return False
            return check is not None and check(event)

        self.is_valid: Check = is_valid

    @property
    def supported(self) -> tuple[int, ...]:
        return tuple(self.contracts)

    @property
    def supported_text(self) -> str:
        return ", ".join(map(str, self.contracts))

    def sha256_of(self, number: int) -> str:
        return hashlib.sha256(self.contracts[number].schema_path.read_bytes()).hexdigest()

    def claimed(self, event: Any):
        """The supported version an event claims, `_NO_VERSION` when it has none, or the raw
        value when it names no supported version."""
        if not isinstance(event, dict) or "schema_version" not in event:
            return _NO_VERSION
        value = event["schema_version"]
        return next((number for number in self.contracts if _is_version(value, number)), value)

    def _known(self, claimed: Any) -> bool:
        return type(claimed) is int and claimed in self.contracts

    def version_key(self, event: Any) -> str:
        """How a line is counted: the version it claims, "unknown" or "none"."""
        claimed = self.claimed(event)
        if claimed is _NO_VERSION:
            return "none"
        return str(claimed) if self._known(claimed) else "unknown"

    def explain(self, event: Any, limit: int = 3) -> str:
        """Why an event is not valid, per version: the version it claims and what it fails
        there, then whether it would pass as each other version."""
        claimed = self.claimed(event)
        if claimed is _NO_VERSION:
            parts = [f"no schema_version (supported: {self.supported_text})"]
            parts += [self._against(event, number, limit) for number in self.contracts]
            return " | ".join(parts)
        if not self._known(claimed):
            shown = _redact(json.dumps(claimed, default=str))[:40]
            return f"schema_version {shown} is not a version of the event contract (supported: {self.supported_text})"
        errors = self.contracts[claimed].errors(event)[:limit]
        parts = [f"claims v{claimed}, fails v{claimed}: " + "; ".join(errors)]
        for number in self.contracts:
            if number != claimed:
                parts.append(self._against(event, number, 1, claimed))
        return " | ".join(parts)

    def _against(self, event: dict, number: int, limit: int, claimed: int | None = None) -> str:
        """The event as if it claimed `number`."""
        restamped = {**event, "schema_version": number}
        contract = self.contracts[number]
        if contract.is_valid(restamped):
            return f"as v{number}: valid" + (f" (a v{number} event labelled {claimed}?)" if claimed is not None else "")
        return f"as v{number}: " + "; ".join(contract.errors(restamped)[:limit])


def _is_version(value: Any, number: int) -> bool:
    """jsonschema's const for an integer: 1 and 1.0 are version 1, True is not."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value == number
