"""Numbers a runbook quotes from an alert: bound to the alert definition, never retyped.

A runbook writes the number as a reader should see it, followed by an HTML comment naming
where it comes from (invisible on GitHub and stripped from the Grafana copy):

    More than 10%<!--RewardPayoutWebhookFailing.threshold--> of ... in 5 minutes<!--RewardPayoutWebhookFailing.window-->
    (20<!--RewardPayoutWebhookFailing.min_deliveries--> or more), for 5 minutes<!--RewardPayoutWebhookFailing.for-->

`threshold` and `for` are the rule's; any other name is one of its `params`. The unit
written decides the form: `%` is a ratio times 100, `minutes`/`hours`/`seconds` (or
`m`/`h`/`s`) a duration, a bare number the value itself.

* `validate` refuses a bound number that disagrees with the definition, a binding to an
  alert or field that does not exist, and an unbound number in the Meaning of an alert's
  own section (that part states the rule; numbers in backticks and 0 are exempt).
* For a stack whose `alertOverrides` change a bound number, the Grafana copy of the
  runbooks (Reward runbooks dashboard) renders the stack's value; the stack config is
  refused if its runbook links open the repository copy, which quotes the defaults.

An internal field (catalog/internal.py: a private abuse threshold) is never quoted in the
repository copy. The runbook names it in a comment only, with the text the Grafana copy
shows in its place (`{}` is the value, written in the unit that follows it):

    Claims run at several times<!--internal RewardClaimVolumeAbnormal.threshold: (over {}x)--> yesterday's

The repository copy reads "several times yesterday's"; the Grafana copy, rendered with the
stack's private values, reads "several times (over 7x) yesterday's". `validate` refuses a
public binding of an internal field and an internal binding of a public one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from reward_obs.model.durations import parse_duration
from reward_obs.model.numbers import format_number

_UNIT_WORDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_UNIT_LETTERS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
BOUND = re.compile(
    r"(?P<num>\d+(?:\.\d+)?)(?P<unit>%|\s(?:second|minute|hour|day)s?|[smhd])?"
    r"<!--\s*(?P<alert>[A-Z][A-Za-z0-9]+)\.(?P<field>[a-z_]+)\s*-->")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
INTERNAL = re.compile(r"<!--internal\s+(?P<alert>[A-Z][A-Za-z0-9]+)\.(?P<field>[a-z_]+)\s*:\s*(?P<text>[^<>]*?\{\}[^<>]*?)\s*-->")
_VALUE = re.compile(r"\{\}(?P<unit>%|\s(?:second|minute|hour|day)s?\b|[smhd]\b)?")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


@dataclass(frozen=True)
class Bound:
    line: int
    text: str  # as written, without the comment
    alert: str
    field: str


def bound_numbers(markdown: str) -> list[Bound]:
    out = []
    for number, line in enumerate(markdown.splitlines(), start=1):
        for m in BOUND.finditer(line):
            out.append(Bound(number, m.group("num") + (m.group("unit") or ""), m.group("alert"), m.group("field")))
    return out


def definition_value(rule, field: str, override: dict | None = None):
    """The rule's value for `field` (threshold, for or a param) after a stack override;
    KeyError when the rule has no such field."""
    resolved = rule.resolved(override)
    if field == "threshold":
        return resolved.threshold
    if field == "for":
        return resolved.for_
    return resolved.params[field]


def _seconds(value) -> int:
    return parse_duration(value) if isinstance(value, str) else int(value)


def render_value(written: str, value) -> str:
    """`value` in the form `written` uses: '10%' and 0.15 -> '15%'; '5 minutes' and '4m' -> '4 minutes'."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(%|\s(?:second|minute|hour|day)s?|[smhd])?", written)
    if m is None:  # callers pass text BOUND or _VALUE matched, so this is a caller's bug
        raise ValueError(f"{written!r} is not a number with an optional unit")
    unit = m.group(2) or ""
    if unit == "%":
        return f"{format_number(round(float(value) * 100, 9))}%"
    if unit.strip().rstrip("s") in _UNIT_WORDS:
        seconds = _seconds(value)
        word = unit.strip().rstrip("s")
        size = _UNIT_WORDS[word]
        if seconds % size:  # 90s written in minutes: say it in the largest unit that divides it
            word = next(w for w, n in sorted(_UNIT_WORDS.items(), key=lambda kv: -kv[1]) if seconds % n == 0)
            size = _UNIT_WORDS[word]
        count = seconds // size
        return f"{count} {word}{'' if count == 1 else 's'}"
    if unit in _UNIT_LETTERS:
        seconds = _seconds(value)
        letter = next(u for u, n in sorted(_UNIT_LETTERS.items(), key=lambda kv: -kv[1]) if seconds % n == 0) \
            if seconds % _UNIT_LETTERS[unit] else unit
        return f"{seconds // _UNIT_LETTERS[letter]}{letter}"
    return format_number(float(value))


def internal_name(field: str) -> str:
    """A bound field ('threshold', 'for', a param name) as `internal:` lists it."""
    return field if field in ("threshold", "for") else f"params.{field}"


def _problem(definitions, b: Bound, overrides: dict) -> tuple[str | None, str | None]:
    """(expected text, problem) of one bound number."""
    rule = definitions.alert(b.alert)
    if rule is None:
        return None, f"binds {b.text!r} to {b.alert}, which is not a defined alert"
    if internal_name(b.field) in rule.internal:
        return None, (f"quotes {b.alert}.{b.field}, which is internal: the public runbook never quotes it; write "
                      f"<!--internal {b.alert}.{b.field}: ({{}})--> and only the Grafana copy shows the number")
    try:
        value = definition_value(rule, b.field, overrides.get(b.alert))
    except KeyError:
        fields = ", ".join(["threshold", "for", *sorted(rule.params)])
        return None, f"binds {b.text!r} to {b.alert}.{b.field}, but {b.alert} has no {b.field!r} (it has: {fields})"
    try:
        expected = render_value(b.text, value)
    except ValueError as exc:  # a broken definition value: say so, never a traceback
        return None, f"quotes {b.text!r} for {b.alert}.{b.field}, whose value {value!r} cannot be quoted: {exc}"
    if expected != b.text:
        return expected, f"quotes {b.text} for {b.alert}.{b.field}, but the alert uses {expected}"
    return expected, None


def number_problems(definitions, runbook, overrides: dict | None = None) -> list[tuple[str, str]]:
    """(field, message) for every bound number in one runbook that disagrees with the
    definitions (after `overrides`), and every unbound number in an alert's Meaning."""

    problems = []
    for b in bound_numbers(runbook.text):
        _, message = _problem(definitions, b, overrides or {})
        if message:
            problems.append((f"line {b.line}", message))
    for number, line in enumerate(runbook.text.splitlines(), start=1):
        for m in INTERNAL.finditer(line):
            rule = definitions.alert(m["alert"])
            if rule is None:
                problems.append((f"line {number}", f"names {m['alert']}, which is not a defined alert"))
            elif internal_name(m["field"]) not in rule.internal:
                problems.append((f"line {number}", f"marks {m['alert']}.{m['field']} internal, but {rule.file} does not list "
                                                    f"it under `internal`: quote the public number as N<!--{m['alert']}.{m['field']}-->"))
    alerts = {a.runbook_anchor for a in definitions.alerts if a.runbook_file == runbook.file}
    for section in runbook.sections:
        if section.anchor not in alerts:
            continue
        meaning = re.sub(r"```.*?```", "", section.parts.get("Meaning", ""), flags=re.S)
        meaning = re.sub(r"`[^`]*`", "", BOUND.sub("", meaning))
        for number in _NUMBER.findall(meaning):
            if float(number) != 0:
                problems.append((f"#{section.anchor}/Meaning",
                                 f"quotes {number} without binding it to the alert definition (write {number}<!--{section.title}.FIELD-->)"))
    return problems


def render_for_stack(markdown: str, definitions, overrides: dict) -> str:
    """The runbook text with every bound number in the stack's value, every internal
    field's text filled in with the stack's value, and the comments gone: the restricted
    Grafana copy."""

    def repl(m: re.Match) -> str:
        b = Bound(0, m.group("num") + (m.group("unit") or ""), m.group("alert"), m.group("field"))
        expected, _ = _problem(definitions, b, overrides)
        return expected if expected is not None else b.text

    def fill(m: re.Match) -> str:
        rule = definitions.alert(m["alert"])
        try:
            value = definition_value(rule, m["field"], overrides.get(m["alert"]))
        except (AttributeError, KeyError):  # refused by validate
            return ""
        return " " + _VALUE.sub(lambda v: render_value("1" + (v["unit"] or ""), value), m["text"], count=1)

    return _COMMENT.sub("", BOUND.sub(repl, INTERNAL.sub(fill, markdown)))


def overridden_numbers(definitions, runbook, overrides: dict) -> list[str]:
    """Bound numbers of a runbook the stack's overrides change: 'file line N: 10% -> 15%'."""
    out = []
    for b in bound_numbers(runbook.text):
        expected, message = _problem(definitions, b, overrides)
        if message and expected is not None:
            out.append(f"runbooks/{runbook.file} line {b.line}: {b.alert}.{b.field} {b.text} -> {expected}")
    return out
