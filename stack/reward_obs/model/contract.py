"""The metrics contract as typed objects, and the rules a contract itself must obey."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from reward_obs.model.names import SCRAPE_JOB

# A label that identifies one person or one entity multiplies series without bound and
# puts personal data in a system with no access control per series. Such values belong
# in logs (with the correlation id), never in metric labels.
_IDENTITY_LABEL = re.compile(
    r"(^|_)(account|user|player|telegram|tg|wallet|address|email|e_mail|phone|ip|kyc|"
    r"claim_id|payout_id|correlation|session|device|name)(_|$)|kyc",
)
_EXACT_IDENTITY = {"claim_id", "payout_id", "correlation_id", "user_id", "account_id", "telegram_id", "ip"}

_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def identity_label(name: str) -> bool:
    """True for a label name that would identify a person or a single entity."""
    return name in _EXACT_IDENTITY or bool(_IDENTITY_LABEL.search(name))


@dataclass(frozen=True)
class Metric:
    name: str
    type: str
    unit: str
    help: str
    labels: tuple[str, ...]
    label_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    synthetic: bool = False


@dataclass(frozen=True)
class MetricsContract:
    scrape_job: str
    labels: dict[str, dict]
    metrics: dict[str, Metric]
    label_value_max_length: int = 128

    def max_length(self, label: str) -> int:
        """The longest value, in characters, the backend may export for this label."""
        return self.labels.get(label, {}).get("max_length", self.label_value_max_length)

    def series_metric(self, series_name: str) -> Metric | None:
        """The contract metric a series name belongs to (histograms export three series)."""
        if series_name in self.metrics and self.metrics[series_name].type != "histogram":
            return self.metrics[series_name]
        for suffix in _HISTOGRAM_SUFFIXES:
            base = series_name.removesuffix(suffix)
            if base != series_name and base in self.metrics and self.metrics[base].type == "histogram":
                return self.metrics[base]
        return None

    def series_labels(self, series_name: str) -> set[str]:
        metric = self.series_metric(series_name)
        if metric is None:
            return set()
        labels = set(metric.labels)
        if series_name.endswith("_bucket"):
            labels.add("le")
        if not metric.synthetic:
            # Prometheus adds the target labels to every scraped series.
            labels |= {"job", "instance"}
        return labels

    def label_values(self, series_name: str, label: str) -> tuple[str, ...] | None:
        """Allowed values of a label on a series, or None when the label is open-ended."""
        metric = self.series_metric(series_name)
        if metric is None:
            return None
        if label in metric.label_values:
            return metric.label_values[label]
        spec = self.labels.get(label, {})
        if spec.get("open") or "values" not in spec:
            return None
        return tuple(spec["values"])

    def all_labels(self) -> set[str]:
        return set(self.labels)

    def blamed(self, label: str, party: str) -> tuple[str, ...]:
        """The label's values the contract marks as counting against `party` (platform or
        player), in the contract's order."""
        spec = self.labels.get(label, {})
        return tuple(v for v in spec.get("values", ()) if spec.get("blame", {}).get(v) == party)

    def refused(self, label: str, value: str) -> bool:
        """A value the backend must never export for this label (Season Points as a currency),
        in any letter case."""
        return value.upper() in {v.upper() for v in self.labels.get(label, {}).get("refused", ())}


def build_contract(data: dict, file: str, problems) -> MetricsContract:
    """Typed contract from schema-valid data; contract rules are reported to `problems`."""
    declared = data["labels"]
    bound = data["label_value_max_length"]
    for label, spec in declared.items():
        if identity_label(label):
            problems.add(file, f"labels.{label}", "identifies a person or an entity; put it in logs, not in metric labels")
        if spec.get("max_length", bound) > bound:
            problems.add(file, f"labels.{label}.max_length", f"{spec['max_length']} is over label_value_max_length ({bound}); "
                         "a label may only lower the global bound")
        longest = min(spec.get("max_length", bound), bound)
        for key in ("values", "refused"):
            for value in spec.get(key, ()):
                if len(value) > longest:
                    problems.add(file, f"labels.{label}.{key}", f"{value!r} is {len(value)} characters, over this label's bound of {longest}")
        if "blame" in spec:
            values = spec.get("values", ())
            for value in values:
                if value not in spec["blame"]:
                    problems.add(file, f"labels.{label}.blame", f"{value!r} is not marked: say whether it counts against the platform or the player")
            for value in spec["blame"]:
                if value not in values:
                    problems.add(file, f"labels.{label}.blame.{value}", f"is not one of the values of {label!r}")
    metrics: dict[str, Metric] = {}
    for name, spec in data["metrics"].items():
        where = f"metrics.{name}"
        if spec["type"] == "counter" and not name.endswith("_total"):
            problems.add(file, f"{where}.type", "a counter's name must end in _total")
        if spec["type"] != "counter" and name.endswith("_total"):
            problems.add(file, f"{where}.type", "only counters may end in _total")
        for label in spec["labels"]:
            if identity_label(label):
                problems.add(file, f"{where}.labels", f"{label!r} identifies a person or an entity; put it in logs, not in metric labels")
            elif label not in declared:
                problems.add(file, f"{where}.labels", f"label {label!r} is not declared under labels:")
        for label, values in spec.get("label_values", {}).items():
            if label not in spec["labels"]:
                problems.add(file, f"{where}.label_values.{label}", "is not one of this metric's labels")
            longest = min(declared.get(label, {}).get("max_length", bound), bound)
            for value in values:
                if len(value) > longest:
                    problems.add(file, f"{where}.label_values.{label}", f"{value!r} is {len(value)} characters, over this label's bound of {longest}")
        metrics[name] = Metric(
            name=name,
            type=spec["type"],
            unit=spec["unit"],
            help=spec["help"],
            labels=tuple(spec["labels"]),
            label_values={k: tuple(v) for k, v in spec.get("label_values", {}).items()},
            synthetic=spec.get("synthetic", False),
        )
    if data["scrape_job"] != SCRAPE_JOB:
        problems.add(file, "scrape_job", f"{data['scrape_job']!r} differs from the job every query selects, {SCRAPE_JOB!r} "
                     "(model/names.py SCRAPE_JOB): change both together")
    return MetricsContract(scrape_job=data["scrape_job"], labels=declared, metrics=metrics, label_value_max_length=bound)
