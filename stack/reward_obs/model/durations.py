"""Prometheus-style durations, in the canonical form Grafana stores back ("1m", not "60s").

Grafana and Prometheus print durations with prometheus/common's model.Duration: largest
units first (y, w, d, h, m, s), zero parts left out, "0s" for zero. Sending any other
spelling makes the Grafana provider show a diff on every run."""
from __future__ import annotations

import re

_UNITS = (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_PART = re.compile(r"([0-9]+)([ywdhms])")


def parse_duration(text: str) -> int:
    """Seconds in a duration such as 5m or 1h30m; ValueError if it is not one."""
    if not isinstance(text, str) or not re.fullmatch(r"(?:[0-9]+[ywdhms])+", text):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1h30m")
    factor = dict(_UNITS)
    return sum(int(n) * factor[u] for n, u in _PART.findall(text))


def format_duration(seconds: int) -> str:
    """Canonical text of a duration: largest units first, no zero parts, 0s for zero."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def canonical(text: str) -> str:
    return format_duration(parse_duration(text))
