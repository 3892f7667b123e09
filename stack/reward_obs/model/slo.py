"""Service level objectives as data (slos/*.yaml, schemas/slo.schema.json, OpenSLO v1
shape) and the rules generated from them: error-ratio recording rules for every burn
window and multiwindow, multi-burn-rate alerts (Google SRE Workbook, "Alerting on SLOs").

One pipeline, small stages, as in Sloth (slok/sloth internal/prometheus: spec -> model
-> recording_rules / alert_rules): `load` maps the versioned file onto the `SLO` model
and checks it against the contract; `recording_rules` and `alert_rules` are pure
functions of the model. Their output is the project's own RecordingRule and AlertRule,
so the existing builders turn them into the Prometheus rule files and Grafana-managed
rules alike (catalog/slos.py expands an SLO; builders/alerts.py, builders/grafana_recording.py
and catalog/recording.py take it from there).

Burn tiers (SLO period 30 days):
    page   (critical): 14.4x over 1h and 5m, 6x over 6h and 30m
    ticket (warning):   3x over 1d and 2h,   1x over 3d and 6h

A tier fires when the long window burns faster than its factor, unless the short window
shows it has stopped (`long > f unless short <= f`): the same as Sloth's and Pyrra's
`long > f and short > f` while traffic flows, but a short window with no events (a
low-traffic provider between two payouts) is no evidence of recovery and does not reset
the alert. Each firing tier is its own alert instance, labelled `long_window`.

Low traffic, explicitly: no minimum-volume guard (it would silence a low-traffic
provider failing every payout). Instead a tier needs at least `min-bad-events` bad
events in its long window (`min-bad-events-ticket` for the ticket tiers): one failed
payout out of three in an hour is not a page, and a total failure still pages at any
volume once that many payouts have failed.

The ticket tiers need more (20 in every SLO): the 1x tier's threshold is the objective
itself, and a healthy provider failing at half its budget crosses it by chance when its
long window holds few events (a low-traffic provider, or the first days after the series
appear, when the 3d window is partly filled). Bad events are Poisson: with 10 expected at
the threshold's 20, the chance of 20 or more is 0.35%; with a minimum of 10 the claim
scenarios' healthy providers opened false tickets (gift_card, 10 failures out of 9,447
payouts in 36h where 4.7 were expected).
"""
from __future__ import annotations

from dataclasses import dataclass

from reward_obs.model.durations import parse_duration

SLO_DIR = "slos"
SCHEMA = "slo.schema.json"
# One recording group and one alert group per SLO, as Sloth and Pyrra generate them: a
# group stays within the 20 rules Grafana Mimir's ruler accepts by default
# (-ruler.max-rules-per-rule-group), however many SLOs there are, and one SLO's slow
# evaluation cannot delay another's. RULE_GROUP_LIMIT and RULE_GROUPS_LIMIT are checked
# by the catalog over every group, SLO or not (catalog/rule_limits.py).
GROUP_PREFIX = "reward-slo-"
RECORDING_INTERVAL = "1m"
# The 30-day budget moves by an hour's events at most: every 5 minutes is plenty, and in a
# group of its own no alert waits on its 720-step sum (and promtool scenarios, which load
# only the groups alerts read, skip it).
BUDGET_INTERVAL = "5m"
PERIOD = "30d"
# The 30-day budget sums the recorded 1h rates at hourly steps: 720 recorded points per
# series each evaluation, instead of 172,800 raw samples per counter at a 15 s scrape.
PERIOD_STEP = "1h"
WINDOW_LABEL = "long_window"
ANNOTATION = "reward-obs/"


@dataclass(frozen=True)
class Tier:
    severity: str
    long: str
    short: str
    factor: float


PAGE_TIERS = (Tier("critical", "1h", "5m", 14.4), Tier("critical", "6h", "30m", 6))
TICKET_TIERS = (Tier("warning", "1d", "2h", 3), Tier("warning", "3d", "6h", 1))
TIERS = PAGE_TIERS + TICKET_TIERS
# Every window a tier reads, shortest first.
WINDOWS = tuple(sorted({w for t in TIERS for w in (t.long, t.short)}, key=parse_duration))
# Windows whose rate is read from the raw counters; each other window averages one of them.
BASE_WINDOWS = ("5m", "1h")
DERIVED_FROM = {"30m": "5m", "2h": "5m", "6h": "5m", "1d": "1h", "3d": "1h"}


@dataclass(frozen=True)
class SLO:
    file: str
    name: str
    display_name: str
    description: str
    objective: float
    bad: str  # PromQL with $window
    total: str
    labels: tuple[str, ...]  # what the SLO is evaluated per (the queries' output labels)
    alert_prefix: str
    runbook_file: str
    dashboard_uid: str
    panel_key: str
    min_bad_events: int  # page tiers
    min_bad_events_ticket: int = 0  # ticket tiers
    inhibited_by: tuple[str, ...] = ()  # alerts that hold this SLO's alerts back (alert_rules' inhibited_by)
    # (provider, objective) pairs a stack sets apart from `objective` (sloObjectives in
    # Pulumi.<stack>.yaml, catalog/objectives.py); sorted by provider.
    provider_objectives: tuple[tuple[str, float], ...] = ()

    @property
    def budget(self) -> float:
        """The error budget as a ratio: 1 - objective, without float noise (0.001, not 0.0010000000000000009)."""
        return _budget(self.objective)

    def arms(self) -> tuple[tuple[str, float], ...]:
        """(selector matchers, error budget) of each part of the SLO with its own objective:
        one per provider the stack sets apart, and the rest at `objective`. With no
        provider objective, one arm with no matcher."""
        if not self.provider_objectives:
            return (("", self.budget),)
        named = [p for p, _ in self.provider_objectives]
        rest = f'provider!="{named[0]}"' if len(named) == 1 else f'provider!~"{"|".join(named)}"'
        return tuple((f'{{provider="{p}"}}', _budget(o)) for p, o in self.provider_objectives) + ((f"{{{rest}}}", self.budget),)

    @property
    def page_alert(self) -> str:
        return f"{self.alert_prefix}Burn"

    @property
    def ticket_alert(self) -> str:
        return f"{self.alert_prefix}SlowBurn"

    def record(self, window: str) -> str:
        """The recorded error ratio over `window`: level:metric:operations."""
        level = "_".join(self.labels) or "all"
        return f"{level}:reward_slo_{self.name.replace('-', '_')}_errors:ratio_rate{window}"

    def rate_record(self, which: str, window: str) -> str:
        """The recorded rate of bad or total events over a base window (5m, 1h)."""
        level = "_".join(self.labels) or "all"
        return f"{level}:reward_slo_{self.name.replace('-', '_')}_{which}:rate{window}"

    def budget_record(self) -> str:
        """The share of the error budget left over the SLO period (1 = untouched, < 0 = missed)."""
        level = "_".join(self.labels) or "all"
        return f"{level}:reward_slo_{self.name.replace('-', '_')}_budget:remaining{PERIOD}"

    @property
    def recording_group(self) -> str:
        return f"{GROUP_PREFIX}{self.name}"

    @property
    def budget_group(self) -> str:
        return f"{GROUP_PREFIX}{self.name}-budget"

    @property
    def alert_group(self) -> str:
        return f"{GROUP_PREFIX}{self.name}-alerts"

    def query(self, which: str, window: str) -> str:
        return (self.bad if which == "bad" else self.total).replace("$window", window)


def _budget(objective: float) -> float:
    return round(1 - objective, 10)
