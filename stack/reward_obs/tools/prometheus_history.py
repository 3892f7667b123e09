"""Reading alert history from a real Prometheus' HTTP API: what `slo report` and the
backtest share (the JSON call, query_range's point limit, and `for` applied to the
evaluation times at which an alert expression returned a series)."""
from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass


def http_json(url: str, data: dict | None = None, timeout: float = 30.0) -> dict:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=timeout) as response:
        return json.loads(response.read())


# query_range returns at most 11,000 points per series; a week of 1-minute steps is 10,080.
MAX_POINTS = 11_000


@dataclass(frozen=True, order=True)
class Firing:
    alert: str
    labels: tuple[tuple[str, str], ...]
    start: float  # first evaluation at which the alert is firing
    end: float  # last evaluation at which it is still firing

    @property
    def seconds(self) -> float:
        return self.end - self.start


def firings_from_samples(alert: str, labels: dict, timestamps: list[float], step: float, for_seconds: float) -> list[Firing]:
    """Firing intervals of one series, from the evaluation times at which the alert
    expression returned it. A gap of more than one step resets the pending timer, as a
    missed evaluation does in Prometheus; the alert fires once it has been active for
    `for` (at once when `for` is 0)."""
    out: list[Firing] = []
    key = tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))
    run_start: float | None = None
    previous: float | None = None  # set together with run_start
    ends: list[float | None] = [*sorted(timestamps), None]  # None closes the last run
    for t in ends:
        if t is not None and previous is not None and t - previous <= step * 1.001:
            previous = t
            continue
        if run_start is not None and previous is not None and previous - run_start >= for_seconds:
            out.append(Firing(alert, key, run_start + for_seconds, previous))
        run_start = previous = t
    return out


