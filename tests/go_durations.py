"""How Go prints a duration, written out by hand: the oracle for every duration Grafana
and Prometheus store back.

Grafana's provisioning API and Prometheus print durations with prometheus/common
model.Duration.String() (model/time.go): units y (365d), w, d, h, m, s, ms, largest
first, each printed only when non-zero, "0s" for zero. The strings below were worked
out from that function, not from reward_obs.model.durations, so a change to our formatter
cannot change its own oracle.
"""
from __future__ import annotations

import re

# seconds -> what model.Duration.String() prints
GO_DURATION_STRINGS: dict[int, str] = {
    0: "0s",
    1: "1s",
    30: "30s",
    59: "59s",
    60: "1m",
    90: "1m30s",
    120: "2m",
    180: "3m",
    240: "4m",
    300: "5m",
    600: "10m",
    900: "15m",
    1200: "20m",
    1800: "30m",
    3599: "59m59s",
    3600: "1h",
    3661: "1h1m1s",
    5400: "1h30m",
    7200: "2h",
    14400: "4h",
    43200: "12h",
    86400: "1d",
    90000: "1d1h",
    172800: "2d",
    345600: "4d",
    604800: "1w",
    691200: "1w1d",
    1209600: "2w",
    31449600: "52w",
    31536000: "1y",
    31622400: "1y1d",
    32230861: "1y1w1d1h1m1s",
}

# model.ParseDuration's grammar: units in this order, each at most once.
_GO_DURATION_RE = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_GO_UNIT_SECONDS = (365 * 24 * 3600, 7 * 24 * 3600, 24 * 3600, 3600, 60, 1)


def go_seconds(text: str) -> int:
    """Seconds in a duration as model.ParseDuration reads it (whole seconds only)."""
    match = _GO_DURATION_RE.fullmatch(text)
    assert match and text, f"{text!r} is not a duration model.ParseDuration accepts"
    return sum(int(n) * unit for n, unit in zip(match.groups(), _GO_UNIT_SECONDS, strict=True) if n)


def grafana_stores(text: str) -> str:
    """What Grafana stores back for a duration it was sent: the Go string of its value."""
    seconds = go_seconds(text)
    assert seconds in GO_DURATION_STRINGS, (
        f"{text!r} ({seconds}s) is not in GO_DURATION_STRINGS: work out model.Duration.String() of it and add it")
    return GO_DURATION_STRINGS[seconds]
