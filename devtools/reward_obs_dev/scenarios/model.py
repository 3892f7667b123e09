"""Scenario files (scenarios/*.yaml) as typed objects, validated against
schemas/scenario.schema.json, the metrics contract and the alert definitions.

Every problem names the file and the field, the way the definition loader does:
`scenarios/pool-low.yaml:events[1].labels.provider: 'paypal' is not a value of ...`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

SCENARIO_DIR = "scenarios"
SCHEMA = "scenario.schema.json"

SERIES_ACTIONS = ("rate", "scale", "increment", "value", "ramp_to", "absent", "stale", "reset")
SYSTEM_ACTIONS = ("restart", "target", "fund")
ACTIONS = SERIES_ACTIONS + SYSTEM_ACTIONS
COUNTER_ONLY = {"rate", "increment", "reset"}
GAUGE_ONLY = {"value", "ramp_to"}
SEASON_POINTS_ALERT = "RewardSeasonPointsAsCurrency"
# Labels Prometheus attaches from the scrape target; the generator sets them.
TARGET_LABELS = ("job", "instance")


@dataclass(frozen=True)
class Campaign:
    id: str
    pool: str
    currency: str
    budget: float
    share: float
    reward: float
    spent: float = 0.0
    source: str = "sponsor"
    start: int = 0  # minute
    end: int | None = None  # minute


DEFAULT_CAMPAIGNS = (
    Campaign("daily-login", "daily-login-stars", "STARS_GIFT", budget=150000, share=0.3, reward=1, spent=0.1),
    Campaign("summer-cup", "summer-cup-ton", "TON", budget=20000, share=0.7, reward=0.05, spent=0.4),
)


@dataclass(frozen=True)
class System:
    clock: int = 12 * 60  # minute of the day at t=0
    profile: str = "daily"
    day_factors: tuple[float, ...] = (1.0,)
    claims_per_minute: float = 60.0
    noise: bool = True
    seed: int = 1
    campaigns: tuple[Campaign, ...] = DEFAULT_CAMPAIGNS


@dataclass(frozen=True)
class Event:
    index: int
    at: int  # minute
    until: int | None  # minute, exclusive; None = end of run
    action: str
    arg: object
    metric: str | None = None
    labels: dict = field(default_factory=dict)
    create: bool = False
    over: int | None = None  # minutes, ramp_to only
    note: str = ""

    @property
    def where(self) -> str:
        return f"events[{self.index}]"


@dataclass(frozen=True)
class Resolve:
    labels: dict  # added to the fault's labels
    within: int  # minutes after fault.end


@dataclass(frozen=True)
class Fault:
    start: int  # minute
    alert: str
    labels: dict
    within: int  # minutes
    end: int | None = None  # minute: first sample without the fault
    resolves: tuple[Resolve, ...] = ()

    @property
    def deadline(self) -> int:
        return self.start + self.within


@dataclass(frozen=True)
class PlotSeries:
    metric: str
    labels: dict


@dataclass(frozen=True)
class Scenario:
    file: str  # relative to the repository root
    name: str
    description: str
    duration: int  # minutes; samples at 0..duration
    system: System
    events: tuple[Event, ...]
    fault: Fault | None
    may_fire: tuple[str, ...]
    silent: tuple[str, ...]
    plot: tuple[PlotSeries, ...] = ()
    text: str = ""  # the file's text, for caching generated series

    @property
    def kind(self) -> str:
        return "fault" if self.fault else "healthy"
