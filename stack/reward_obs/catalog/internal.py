"""Internal alert fields: numbers whose production value is private (abuse thresholds).

An alert lists them under `internal:` (`threshold`, `for`, `params.NAME`) and writes each
one as `{test_value: N}`: the repository's number is a TEST value, different from
production's, so a reader of the public repository learns the rule's shape but not the
number to stay under. Production values come from a private source with the shape of
`alertOverrides` (`{AlertName: {threshold: N, for: D, params: {NAME: N}}}`):

* offline, `reward-obs --internal-params FILE` (load_file);
* under Pulumi, the secret stack config `internalParams`
  (`pulumi config set --secret --path 'internalParams.AlertName.threshold' N`).

A committed stack file may not set an internal field through `alertOverrides`
(stack_override_problems): that file is public. Errors about a private value never quote
it. docs/internal-thresholds.md says how operators use this.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from reward_obs.lang import promql
from reward_obs.lang.logql import event_fields, logql_problems
from reward_obs.model.definitions import AlertRule, Definitions
from reward_obs.model.durations import parse_duration
from reward_obs.model.errors import DefinitionError, Problem
from reward_obs.model.lookup import required

TEST_VALUE = "test_value"
SECRET_CONFIG_KEY = "internalParams"
# Where each internal field is written in an alert file.
_FILE_FIELD = {"threshold": "condition.threshold", "for": "for"}


def file_field(field: str) -> str:
    return _FILE_FIELD.get(field, field)


def unwrap_test_values(data: dict) -> tuple[dict, tuple[str, ...]]:
    """The alert file's data with every `{test_value: N}` replaced by N, and which fields
    were written that way (as internal field names)."""
    marked = []
    data = dict(data)

    def plain(value, field):
        if isinstance(value, dict) and TEST_VALUE in value:
            marked.append(field)
            return value[TEST_VALUE]
        return value

    if isinstance(data.get("condition"), dict):
        data["condition"] = {**data["condition"], "threshold": plain(data["condition"].get("threshold"), "threshold")}
    if "for" in data:
        data["for"] = plain(data["for"], "for")
    if isinstance(data.get("params"), dict):
        data["params"] = {k: plain(v, f"params.{k}") for k, v in data["params"].items()}
    return data, tuple(marked)


def definition_problems(rule: AlertRule) -> list[tuple[str, str]]:
    """(field, message) for an `internal` list that does not match the alert."""
    out = []
    for i, field in enumerate(rule.internal):
        if field.startswith("params.") and field.partition(".")[2] not in rule.params:
            out.append((f"internal[{i}]", f"{rule.name} has no parameter {field.partition('.')[2]!r} "
                                          f"(it has: {', '.join(sorted(rule.params)) or 'none'})"))
        elif field not in rule.test_values:
            out.append((file_field(field), "is internal: write it as {test_value: N} with a TEST value that is not "
                                           "production's, so no reader takes it for the real one"))
    for field in rule.test_values:
        if field not in rule.internal:
            out.append((file_field(field), "is a test_value but not listed under `internal`: list it, or write the number plainly"))
    return out


def internal_fields(definitions: Definitions) -> dict[str, tuple[str, ...]]:
    """Alert name -> its internal fields, for every alert that has any; "duration" is added
    when one of them is a duration (catalog users mask durations too, then)."""
    return {a.name: a.internal + (("duration",) if duration_internal(a) else ()) for a in definitions.alerts if a.internal}


def stack_override_problems(rule: AlertRule, override: dict, config_key: str) -> list[tuple[str, str]]:
    """(key under alertOverrides.NAME, message) for every internal field a committed stack
    file sets; `config_key`: the secret config key to use instead (namespaced)."""
    out: list[tuple[str, str]] = []
    for field in ("threshold", "for"):
        if field in override and field in rule.internal:
            out.append((field, _refused(rule.name, field, config_key)))
    for param in override.get("params", {}) or {}:
        if f"params.{param}" in rule.internal:
            out.append((f"params.{param}", _refused(rule.name, f"params.{param}", config_key)))
    return out


def _refused(name: str, field: str, config_key: str) -> str:
    return (f"is internal: its production value is private and this file is committed; set it with "
            f"`pulumi config set --secret --path '{config_key}.{name}.{field}' VALUE` "
            f"(or `reward-obs --internal-params FILE` offline)")


def merge(override: dict | None, private: dict | None) -> dict:
    """A stack's override of one alert with its private values laid over it."""
    override, private = override or {}, private or {}
    if not private:
        return override
    out = {**override, **{k: v for k, v in private.items() if k != "params"}}
    params = {**override.get("params", {}), **private.get("params", {})}
    if params:
        out["params"] = params
    return out


def _test_value(rule: AlertRule, field: str):
    if field == "threshold":
        return rule.threshold
    if field == "for":
        return rule.for_
    return rule.params[field.partition(".")[2]]


def _coerced(value, test_value):
    """A number given as text (how `pulumi config set --path` may store it) as a number,
    when the field's test value is a number."""
    if _number(test_value) and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value else number
    return value


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(values, source: str, definitions: Definitions) -> dict:
    """The private values, checked against the alerts' `internal` lists; DefinitionError
    naming `source:Alert.field` for every problem. Complete: every internal field of every
    alert needs a value, or production would silently run on the TEST value. No message
    quotes a value."""
    problems: list[Problem] = []

    def add(where: str, message: str) -> None:
        problems.append(Problem(source, where, message))

    if not isinstance(values, dict):
        add("(file)", "must be a mapping {AlertName: {threshold: N, params: {NAME: N}}}")
        raise DefinitionError(problems)
    fields = internal_fields(definitions)
    values = {str(k): (dict(v, params=dict(v["params"])) if isinstance(v, dict) and isinstance(v.get("params"), dict)
                       else dict(v) if isinstance(v, dict) else v) for k, v in values.items()}
    for name, entry in values.items():
        rule = definitions.alert(name)
        if rule is None:
            add(name, "is not a defined alert")
            continue
        if not isinstance(entry, dict):
            add(name, "must be a mapping with threshold, for and/or params")
            continue
        for key in entry:
            if key not in ("threshold", "for", "params"):
                add(f"{name}.{key}", "is not a field an alert overrides (threshold, for, params)")
        given = [f for f in ("threshold", "for") if f in entry]
        params = entry.get("params", {})
        if not isinstance(params, dict):
            add(f"{name}.params", "must be a mapping NAME: value")
            params = {}
        given += [f"params.{p}" for p in params]
        for field in given:
            if field not in rule.internal:
                add(f"{name}.{field}", f"is not internal in {rule.file} (internal: {', '.join(rule.internal) or 'none'}); "
                                       "a public number belongs in the definition or the stack's alertOverrides")
                continue
            value = entry[field] if field in entry else params[field.partition(".")[2]]
            value = _coerced(value, _test_value(rule, field))
            if field in entry:
                entry[field] = value
            else:
                params[field.partition(".")[2]] = value
            if field == "threshold" and not _number(value):
                add(f"{name}.{field}", "must be a number")
            elif field == "for":
                try:
                    parse_duration(value)
                except ValueError:
                    add(f"{name}.{field}", "must be a duration like 15m or 1h")
            elif field.startswith("params."):
                default = rule.params[field.partition(".")[2]]
                if _number(default) and not _number(value):
                    add(f"{name}.{field}", "must be a number, like its test value")
                elif isinstance(default, str) and not isinstance(value, str):
                    add(f"{name}.{field}", "must be text, like its test value")
            if field in rule.internal and value == _test_value(rule, field):
                add(f"{name}.{field}", "equals its TEST value, which the repository publishes: production's must differ")
        for field in rule.internal:
            if field not in given:
                add(f"{name}.{field}", "is internal and has no production value here")
    for name in sorted(set(fields) - {str(n) for n in values}):
        for field in fields[name]:
            add(f"{name}.{field}", "is internal and has no production value here")
    if problems:
        raise DefinitionError(problems)
    for name, entry in values.items():
        rule = required(definitions.alert(name), f"alert {name}")  # unknown names were refused above
        resolved = rule.resolved(entry)
        if rule.is_promql:
            bad = promql.catalog_problems(resolved.condition_expr, required(definitions.series_contract, "the metrics contract"))
        else:
            bad = logql_problems(resolved.expr, event_fields(definitions.root))
        if bad:  # the parser's message would quote the value
            add(name, "makes the rule's query invalid (details withheld: they would quote the private value)")
    if problems:
        raise DefinitionError(problems)
    return values


def load_file(path: Path, definitions: Definitions) -> dict:
    """`reward-obs --internal-params FILE`: the private values, validated."""
    source = str(path)
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DefinitionError([Problem(source, "(file)", f"cannot read internal parameters: {exc.strerror}")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise DefinitionError([Problem(source, where, "is not valid YAML")]) from None
    return validate(values or {}, source, definitions)


_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_DURATION = re.compile(r"(?<![\w.])(?:\d+[smhdwy])+\b")


def duration_internal(rule: AlertRule) -> bool:
    """True when one of the alert's internal fields is a duration (`for`, or a param such as a window)."""
    for field in rule.internal:
        value = _test_value(rule, field)
        try:
            parse_duration(value)
            return True
        except ValueError:
            continue
    return False


def mask_numbers(text: str, durations: bool = False) -> str:
    """`text` with every bare number replaced by `N` (and every duration by `D` when an
    internal field is a duration): how a public diff shows a query holding internal values."""
    text = _DURATION.sub("D", text) if durations else text
    return _NUMBER.sub("N", text)
