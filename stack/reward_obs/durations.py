"""Prometheus-style durations, in the canonical form Grafana stores back ("1m", not "60s")."""
from __future__ import annotations

import re

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_PART = re.compile(r"([0-9]+)([dhms])")


def parse_duration(text: str) -> int:
    """Seconds in a duration such as 5m or 1h30m; ValueError if it is not one."""
    if not isinstance(text, str) or not re.fullmatch(r"(?:[0-9]+[dhms])+", text):
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
