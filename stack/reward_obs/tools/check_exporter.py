"""`reward-obs check-exporter SOURCE`: the backend team's acceptance test of a `/metrics`
endpoint against the metrics contract (contract/metrics.yaml).

SOURCE is an http(s) URL or a file of Prometheus text (0.0.4) or OpenMetrics text. It
is parsed with prometheus_client's own parsers, never by hand. Every violation is one
line, `metric: problem`; the exit code is 1 on any violation (or an unreadable source)
and 0 on a conforming exporter. docs/exporter-acceptance.md explains each check.

What is checked, per contract metric:
* it is exported, with the contract's type;
* each series carries exactly the contract's labels: no unknown label, no label that
  identifies a person or an entity, none missing;
* each label value is in the label's enumeration (unless the label is open), is not a
  value the contract refuses (Season Points as a currency), and is no longer than the
  contract's `label_value_max_length` (or the label's own `max_length`);
* no sample is timestamped in the future;
* counters exist at 0 for every known label value: every value of an outcome label (an
  enumerated label that only counters carry: outcome, decision, result, ...) for every
  entity (pool, campaign, provider, currency) the exporter shows anywhere;
* each histogram has the buckets the SLOs read (the `le` matchers of slos/*.yaml);
* each staleness gauge (`*_age_seconds`, `*_timestamp_seconds`) is exported for every
  entity the exporter shows, from startup;
* with `--again SECONDS`, a second scrape: counters only go up.
"""
from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families

from reward_obs.catalog.load import load
from reward_obs.lang import promql
from reward_obs.lang.secret_scan import SECRET_PATTERNS
from reward_obs.model.contract import Metric, MetricsContract, identity_label
from reward_obs.model.definitions import Definitions

# What Prometheus asks for (scrape_protocols); the answer's Content-Type picks the parser.
ACCEPT = "application/openmetrics-text;version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.5"
OPENMETRICS_TYPE = "application/openmetrics-text"
MAX_BODY = 64 << 20  # bytes: far above any real exporter; a runaway endpoint is refused, not buffered
SCRAPE_TIMEOUT = 10.0
DEFAULT_CLOCK_SKEW = 60.0  # seconds a sample's timestamp may be ahead of this machine's clock
MAX_PER_METRIC = 5  # missing combinations listed per metric and check; the rest are counted
VALUE_SHOWN = 40  # characters of an offending label value echoed in a message
STALENESS_SUFFIXES = ("_age_seconds", "_timestamp_seconds")
PROJECT_PREFIX = "reward_"  # a series with this prefix that the contract lacks is a contract change


class SourceError(Exception):
    """The source cannot be read or parsed at all."""


@dataclass(frozen=True)
class Violation:
    metric: str
    problem: str

    def __str__(self) -> str:
        return f"{self.metric}: {self.problem}"


@dataclass
class Exposition:
    """The families of one scrape, grouped by the contract metric they belong to."""

    by_metric: dict[str, list] = field(default_factory=dict)  # contract metric -> families
    unknown: list[str] = field(default_factory=list)  # reward_* names the contract lacks
    ignored: list[str] = field(default_factory=list)  # other families (runtime metrics of the client library)


@dataclass(frozen=True)
class BucketRequirement:
    """A histogram bucket a query reads: the selector's matchers and where it comes from."""

    metric: str
    le_op: str
    le_value: str
    matchers: tuple[tuple[str, str, str], ...]  # the selector's other label matchers
    reader: str  # "the SLO claim-to-paid-latency (slos/claim-to-paid-latency.yaml)"


@dataclass
class Result:
    source: str
    violations: list[Violation]
    checked: int = 0
    ignored: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict:
        return {"source": self.source, "ok": self.ok, "metrics_checked": self.checked,
                "violations": [{"metric": v.metric, "problem": v.problem} for v in self.violations],
                "ignored_families": self.ignored}


# ------------------------------------------------------------------ reading


def read_source(source: str) -> tuple[str, bool]:
    """(text, is_openmetrics) of a URL or a file."""
    if re.match(r"(?i)^https?://", source):
        request = urllib.request.Request(source, headers={"Accept": ACCEPT})
        try:
            with urllib.request.urlopen(request, timeout=SCRAPE_TIMEOUT) as response:  # noqa: S310 (http(s) only, checked above)
                body = response.read(MAX_BODY + 1)
                content_type = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            raise SourceError(f"scrape answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceError(f"cannot scrape: {reason}") from None
        if len(body) > MAX_BODY:
            raise SourceError(f"the answer is over {MAX_BODY >> 20} MiB")
        openmetrics = content_type.split(";")[0].strip().lower() == OPENMETRICS_TYPE
    elif "://" in source:
        raise SourceError("only http:// and https:// URLs can be scraped")
    else:
        try:
            with open(source, "rb") as f:
                body = f.read(MAX_BODY + 1)
        except OSError as exc:
            raise SourceError(f"cannot read: {exc.strerror}") from None
        if len(body) > MAX_BODY:
            raise SourceError(f"the file is over {MAX_BODY >> 20} MiB")
        openmetrics = None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"not UTF-8 at byte {exc.start}") from None
    if openmetrics is None:  # a file: OpenMetrics ends with the "# EOF" line, Prometheus text never does
        openmetrics = text.rstrip("\n").rsplit("\n", 1)[-1].strip() == "# EOF"
    return text, openmetrics


def parse(text: str, openmetrics: bool) -> list:
    """Metric families, through prometheus_client's parser for the format."""
    try:
        if openmetrics:
            return list(openmetrics_parser.text_string_to_metric_families(text))
        return list(text_string_to_metric_families(text))
    except Exception as exc:  # the parsers raise bare ValueError/IndexError/TypeError on bad input
        detail = _redact(str(exc))[:200] or type(exc).__name__
        kind = "OpenMetrics" if openmetrics else "Prometheus text format"
        raise SourceError(f"not valid {kind}: {detail}") from None


def group(families: list, contract: MetricsContract) -> Exposition:
    """Each family under the contract metric it exports. prometheus_client names a counter
    family without `_total`, and gives every sample without a TYPE line a family of its own
    (untyped, named like the sample), so both spellings are looked up."""
    out = Exposition()
    for family in families:
        candidates = [family.name + "_total", family.name] if family.type == "counter" else [family.name]
        metric = next((contract.metrics[n] for n in candidates if n in contract.metrics), None)
        if metric is None and family.type in ("unknown", "untyped"):
            metric = contract.series_metric(family.name)
        if metric is None:
            name = candidates[0]
            (out.unknown if name.startswith(PROJECT_PREFIX) else out.ignored).append(name)
            continue
        out.by_metric.setdefault(metric.name, []).append(family)
    return out


# ------------------------------------------------------------------ what the definitions read


def bucket_requirements(definitions: Definitions) -> list[BucketRequirement]:
    """Every histogram bucket an SLO reads, from the `le` matchers of its queries."""
    contract = definitions.contract
    found: dict[tuple, BucketRequirement] = {}
    for slo in definitions.slos:
        for which in ("bad", "total"):
            tree = promql.parse(slo.query(which, "5m"))
            for sel in promql.selectors(tree):
                if sel.metric is None or not sel.metric.endswith("_bucket"):
                    continue
                metric = contract.series_metric(sel.metric)
                if metric is None or metric.type != "histogram":
                    continue
                others = tuple(m for m in sel.matchers if m[0] != "le")
                for label, op, value in sel.matchers:
                    if label == "le" and op in ("=", "=~"):
                        req = BucketRequirement(metric.name, op, value, others, f"the SLO {slo.name} ({slo.file})")
                        found.setdefault((req.metric, op, value, others, req.reader), req)
    return sorted(found.values(), key=lambda r: (r.metric, r.reader, r.le_value))


def alert_readers(definitions: Definitions) -> dict[str, list[str]]:
    """Contract metric -> the Prometheus alert rules whose expression reads it, so a
    missing metric says which alerts it leaves blind."""
    contract = definitions.contract
    readers: dict[str, set[str]] = {}
    for alert in definitions.alerts:
        if not alert.is_promql:
            continue
        for sel in promql.selectors(promql.parse(alert.resolved().expr)):
            metric = contract.series_metric(sel.metric) if sel.metric else None
            if metric is not None:
                readers.setdefault(metric.name, set()).add(alert.name)
    return {name: sorted(names) for name, names in readers.items()}


def _matches(op: str, pattern: str, value: str) -> bool:
    """A PromQL label matcher; Prometheus anchors regular expressions at both ends."""
    if op == "=":
        return value == pattern
    if op == "!=":
        return value != pattern
    hit = re.fullmatch(pattern, value) is not None
    return hit if op == "=~" else not hit


# ------------------------------------------------------------------ the checks


def _redact(text: str) -> str:
    """A credential glued into a label value must not travel on into a CI log."""
    for pattern in SECRET_PATTERNS.values():
        text = pattern.sub("[redacted]", text)
    return text


def _shown(value: str) -> str:
    value = _redact(value)
    text = value if len(value) <= VALUE_SHOWN else value[:VALUE_SHOWN] + "..."
    return json.dumps(text)


def _labelset(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    return "{" + ", ".join(f"{n}={json.dumps(v)}" for n, v in zip(names, values, strict=True)) + "}"


def _outcome_labels(contract: MetricsContract) -> set[str]:
    """Enumerated labels that no gauge carries: what happened (outcome, decision, result,
    operation, error_code, source), whose every value a counter starts at 0. The others
    name an entity (pool, campaign, provider, currency): a deployment exports the ones it
    has, so their known values are those the exporter shows."""
    on_gauges = {label for m in contract.metrics.values() if m.type == "gauge" for label in m.labels}
    return {name for name, spec in contract.labels.items() if "values" in spec and name not in on_gauges}


def _known_values(contract: MetricsContract, metric: Metric, label: str) -> tuple[str, ...]:
    if label in metric.label_values:
        return metric.label_values[label]
    return tuple(contract.labels.get(label, {}).get("values", ()))


def _samples(families: list) -> list:
    return [s for f in families for s in f.samples]


def check(families: list, definitions: Definitions, *, now: float | None = None,
          clock_skew: float = DEFAULT_CLOCK_SKEW) -> tuple[list[Violation], Exposition]:
    """Every violation of the contract in one scrape, sorted by metric."""
    contract = definitions.contract
    now = time.time() if now is None else now
    exposition = group(families, contract)
    found: dict[str, list[str]] = {}

    def add(metric: str, problem: str) -> None:
        problems = found.setdefault(metric, [])
        if problem not in problems:
            problems.append(problem)

    for name in sorted(set(exposition.unknown)):
        add(name, "not in the metrics contract (a new series is a contract change: add it to contract/metrics.yaml first)")

    # Entity values the exporter shows anywhere: what "every known value" means for them.
    # A value that is itself a violation (refused, too long, outside an enumeration) is
    # reported once where it is, not demanded of every other metric.
    outcome = _outcome_labels(contract)
    seen: dict[str, set[str]] = {}
    for metric_name, fams in exposition.by_metric.items():
        for sample in _samples(fams):
            for label, value in sample.labels.items():
                if label in contract.metrics[metric_name].labels and label not in outcome and value \
                        and _value_problem(contract, metric_name, label, value) is None:
                    seen.setdefault(label, set()).add(value)

    readers = alert_readers(definitions)
    for metric_name, metric in sorted(contract.metrics.items()):
        fams = exposition.by_metric.get(metric_name, [])
        if metric.synthetic:
            if fams:
                add(metric_name, "is added by Prometheus itself; an exporter must not export it")
            continue
        samples = _samples(fams)
        staleness = metric.type == "gauge" and metric_name.endswith(STALENESS_SUFFIXES)
        if not samples:
            blind = readers.get(metric_name)
            add(metric_name, ("staleness gauge missing (no series exported)" if staleness else "missing (no series exported)")
                + (f"; alerts that read it: {', '.join(blind)}" if blind else ""))
            continue
        exported_types = sorted({f.type for f in fams})
        for exported in exported_types:
            if exported != metric.type:
                shown = "without a TYPE line (untyped)" if exported in ("unknown", "untyped") else f"as {exported}"
                add(metric_name, f"exported {shown}; the contract says {metric.type}")
        _check_series(metric, samples, contract, now, clock_skew, add)
        if metric.type == "counter":
            _check_initialised(metric, samples, contract, outcome, seen, add)
        if staleness:
            _check_entities(metric, samples, seen, add, "staleness gauge has no series for {} (exported for every one the exporter "
                            "knows, from startup: 0 when nothing waits)")
    for req in bucket_requirements(definitions):
        _check_buckets(req, contract.metrics[req.metric], _samples(exposition.by_metric.get(req.metric, [])), add)
    violations = [Violation(m, p) for m in sorted(found) for p in found[m]]
    return violations, exposition


def _check_series(metric: Metric, samples: list, contract: MetricsContract, now: float, clock_skew: float, add) -> None:
    allowed = set(metric.labels) | ({"le"} if metric.type == "histogram" else set())
    seen_series: set[tuple] = set()
    for sample in samples:
        labels = sample.labels
        series = (sample.name, tuple(sorted(labels.items())))
        if series in seen_series:  # Prometheus refuses the whole scrape for it ("duplicate sample")
            add(metric.name, f"a series is exported twice: {sample.name}{_labelset(tuple(k for k, _ in series[1]), tuple(_redact(v) for _, v in series[1]))}")
        seen_series.add(series)
        if metric.type == "counter" and sample.name == metric.name and not sample.value >= 0:
            add(metric.name, f"a series has the value {sample.value:g}; a counter is never negative or NaN")
        for label in sorted(set(labels) - allowed):
            if identity_label(label):
                add(metric.name, f"label {label!r} identifies a person or an entity; it belongs in logs, never in a metric label")
            else:
                add(metric.name, f"label {label!r} is not in the contract (its labels: {', '.join(metric.labels) or 'none'})")
        for label in metric.labels:
            if not labels.get(label):
                add(metric.name, f"a series has no label {label!r}")
        for label in sorted(set(labels) & set(metric.labels)):
            problem = _value_problem(contract, metric.name, label, labels[label])
            if problem is not None:
                add(metric.name, problem)
        ts = sample.timestamp
        if ts is not None:
            seconds = float(ts) if not hasattr(ts, "sec") else ts.sec + ts.nsec / 1e9
            if seconds > now + clock_skew:
                stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                add(metric.name, f"a sample is timestamped {stamp}, in the future (more than {clock_skew:g} s ahead of this clock)")


def _value_problem(contract: MetricsContract, metric: str, label: str, value: str) -> str | None:
    bound = contract.max_length(label)
    if len(value) > bound:
        where = f"labels.{label}.max_length" if "max_length" in contract.labels.get(label, {}) else "label_value_max_length"
        return f"label {label} has a value of {len(value)} characters, over the contract's {where} {bound}"
    if contract.refused(label, value):
        return (f"{label}={_shown(value)} is refused by the metrics contract (labels.{label}.refused: "
                f"{', '.join(contract.labels[label]['refused'])})")
    values = contract.label_values(metric, label)
    if values is not None and value not in values:
        return f"{label}={_shown(value)} is not one of its values ({', '.join(values)})"
    return None


def _check_initialised(metric: Metric, samples: list, contract: MetricsContract, outcome: set[str],
                       seen: dict[str, set[str]], add) -> None:
    entities = tuple(label for label in metric.labels if label not in outcome)
    outcomes = tuple(label for label in metric.labels if label in outcome)
    present = {tuple(s.labels.get(label, "") for label in metric.labels) for s in samples}
    _check_entities(metric, samples, seen, add, "not initialised: no series for {} (counters start at 0 for every known value)")
    entity_tuples = sorted({tuple(s.labels.get(label, "") for label in entities) for s in samples})
    combos = list(itertools.product(*(_known_values(contract, metric, label) for label in outcomes)))
    missing = []
    for ent in entity_tuples:
        for combo in combos:
            values = dict(zip(entities, ent, strict=True)) | dict(zip(outcomes, combo, strict=True))
            key = tuple(values[label] for label in metric.labels)
            if key not in present:
                missing.append(_labelset(metric.labels, key))
    for labelset in missing[:MAX_PER_METRIC]:
        add(metric.name, f"not initialised: no series {labelset} (counters start at 0 for every known value)")
    if len(missing) > MAX_PER_METRIC:
        add(metric.name, f"not initialised: {len(missing) - MAX_PER_METRIC} more series missing")


def _check_entities(metric: Metric, samples: list, seen: dict[str, set[str]], add, message: str) -> None:
    """Each entity value the exporter shows anywhere has a series of this metric."""
    for label in metric.labels:
        if label not in seen:
            continue
        have = {s.labels.get(label) for s in samples}
        missing = sorted(seen[label] - have)
        for value in missing[:MAX_PER_METRIC]:
            add(metric.name, message.format(f"{label}={_shown(value)}"))
        if len(missing) > MAX_PER_METRIC:
            add(metric.name, message.format(f"{len(missing) - MAX_PER_METRIC} more {label} values"))


def _check_buckets(req: BucketRequirement, metric: Metric, samples: list, add) -> None:
    """Every series the query selects has a bucket its `le` matcher reads."""
    buckets: dict[tuple, list[str]] = {}
    for s in samples:
        if s.name != f"{metric.name}_bucket":
            continue
        key = tuple(s.labels.get(label, "") for label in metric.labels)
        buckets.setdefault(key, []).append(s.labels.get("le", ""))
    for key in sorted(buckets):
        labels = dict(zip(metric.labels, key, strict=True))
        if not all(_matches(op, value, labels.get(label, "")) for label, op, value in req.matchers):
            continue
        if not any(_matches(req.le_op, req.le_value, le) for le in buckets[key]):
            add(metric.name, f"no bucket le{req.le_op}{json.dumps(req.le_value)} for {_labelset(metric.labels, key)}, "
                             f"which {req.reader} reads")


def counters_went_down(first: list, second: list, contract: MetricsContract) -> list[Violation]:
    """Counter series (and histogram buckets and counts) lower in the second scrape."""
    def values(families) -> dict[tuple, float]:
        out = {}
        for metric_name, fams in group(families, contract).by_metric.items():
            metric = contract.metrics[metric_name]
            for s in _samples(fams):
                counts = (metric.type == "counter" and s.name == metric.name) or (
                    metric.type == "histogram" and s.name in (f"{metric.name}_bucket", f"{metric.name}_count"))
                if counts:
                    out[(metric_name, s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    before, after = values(first), values(second)
    found = []
    for key in sorted(set(before) & set(after)):
        if after[key] < before[key]:
            metric_name, series, labels = key
            found.append(Violation(metric_name, f"{series}{_labelset(tuple(k for k, _ in labels), tuple(v for _, v in labels))} "
                                                f"went down from {before[key]:g} to {after[key]:g} between two scrapes "
                                                "(a counter only goes up)"))
    return found


# ------------------------------------------------------------------ command


def run(source: str, definitions: Definitions, *, again: float | None = None, now: float | None = None,
        clock_skew: float = DEFAULT_CLOCK_SKEW) -> Result:
    """Scrape (or read) SOURCE and check it; SourceError when it cannot be read or parsed."""
    families = parse(*read_source(source))
    violations, exposition = check(families, definitions, now=now, clock_skew=clock_skew)
    if again is not None:
        time.sleep(again)
        second = parse(*read_source(source))
        violations += counters_went_down(families, second, definitions.contract)
    return Result(source, violations, checked=len(exposition.by_metric), ignored=sorted(set(exposition.ignored)))


def format_text(result: Result) -> str:
    if result.ok:
        return (f"reward-obs check-exporter: {result.source}: conforms to the metrics contract "
                f"({result.checked} contract metrics exported; {len(result.ignored)} other families ignored)")
    lines = [f"reward-obs check-exporter: {result.source}: {len(result.violations)} violation(s) of contract/metrics.yaml"]
    lines += [f"  {v}" for v in result.violations]
    return "\n".join(lines)


def cmd_check_exporter(args) -> int:
    definitions, _config = load(args)
    if args.again is not None and not re.match(r"(?i)^https?://", args.source):
        print("reward-obs check-exporter: --again needs a URL (a file does not change between two reads)", file=sys.stderr)
        return 2
    try:
        result = run(args.source, definitions, again=args.again, clock_skew=args.clock_skew)
    except SourceError as exc:
        if args.format == "json":
            print(json.dumps({"source": args.source, "ok": False, "error": str(exc)}, indent=2))
        print(f"reward-obs check-exporter: {args.source}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.as_dict(), indent=2) if args.format == "json" else format_text(result))
    return 0 if result.ok else 1


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds, got {text}")
    return value


def register(sub) -> None:
    p = sub.add_parser("check-exporter", help="check a /metrics endpoint (or a file of its output) against the metrics contract",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Exit code: 0 conforming, 1 any violation or an unreadable source, 2 usage error.")
    p.add_argument("source", metavar="SOURCE", help="http(s)://host:port/metrics, or a file of Prometheus or OpenMetrics text")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--again", type=_seconds, metavar="SECONDS",
                   help="scrape a second time after SECONDS and check that counters only went up (URL only)")
    p.add_argument("--clock-skew", type=_seconds, default=DEFAULT_CLOCK_SKEW, metavar="SECONDS",
                   help=f"how far ahead of this clock a sample timestamp may be (default {DEFAULT_CLOCK_SKEW:g})")
    p.set_defaults(handler=cmd_check_exporter)

