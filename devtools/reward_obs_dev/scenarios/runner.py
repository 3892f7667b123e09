"""Run scenarios through `promtool test rules` against a rendered Prometheus rule file.

The verdict is always the exit status of a verify run: promtool assertions that the alert
under test did not fire before its fault, fired within its bound with the fault's labels
and no others, stopped within each reset bound, and that every silent alert never fired.

For the report a fault scenario also gets a measure run (queries on `ALERTS` whose
results promtool prints: first and last firing, the value each minute), and its verify
run then also pins the first-firing minute, so the reported latency is promtool's. With
measure_faults=False (the test suite) a scenario runs once, verify only; a measure run
follows only to explain a failure.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from reward_obs.model.contract import MetricsContract
from reward_obs.model.durations import format_duration, parse_duration
from reward_obs_dev.scenarios import promtool_file as pf
from reward_obs_dev.scenarios.generator import Generated, generate
from reward_obs_dev.scenarios.model import Scenario

PROMTOOL_TIMEOUT = 1800  # the healthy week evaluates 55 SLO recording rules every minute of 7 days
# Labels every ALERTS series of a rule carries; dropped when showing what fired.
_ALERT_META = {"alertname", "alertstate", "__name__"}


class PromtoolMissing(RuntimeError):
    pass


# ---------------------------------------------------------------- the rule file


@dataclass(frozen=True)
class Rule:
    name: str
    expr: str
    value_expr: str
    op: str
    threshold: float
    for_: str
    labels: dict


_CONDITION = re.compile(r"^\((?P<value>.*)\)\s*(?P<op>[<>])\s*(?P<threshold>[-+0-9.eE]+)\s*$", re.S)


def read_rules(rule_file: Path) -> dict[str, Rule]:
    """The alerting rules of a rendered rule file (`(value) op threshold` form)."""
    data = yaml.safe_load(Path(rule_file).read_text(encoding="utf-8"))
    rules = {}
    for group in data.get("groups", []):
        for r in group.get("rules", []):
            if "alert" not in r:
                continue
            m = _CONDITION.match(r["expr"].strip())
            value, op, threshold = (m["value"], m["op"], float(m["threshold"])) if m else (None, None, None)
            rules[r["alert"]] = Rule(r["alert"], r["expr"], value, op, threshold, str(r.get("for", "0s")), dict(r.get("labels", {})))
    return rules


# ---------------------------------------------------------------- promtool output


@dataclass(frozen=True)
class Failure:
    expr: str
    minute: int
    got: tuple  # ((labels dict, value), ...)
    error: str = ""


_FAILURE = re.compile(
    r'expr: (?P<expr>"(?:[^"\\]|\\.)*"), time: (?P<time>[^,\s]+),'
    r'(?:[ \t]*err: (?P<err>[^\n]*)|[ \t]*\n[ \t]*exp: (?P<exp>[^\n]*)\n[ \t]*got: (?P<got>[^\n]*))')
_SAMPLE = re.compile(r'\{(?P<labels>(?:[^{}"]|"(?:[^"\\]|\\.)*")*)\} (?P<value>[^\s,]+)(?:, |$)')
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _go_duration_minutes(text: str) -> int:
    return parse_duration(text) // 60 if text != "0s" else 0


def parse_samples(text: str) -> tuple:
    text = text.strip()
    if text in ("nil", "[]", ""):
        return ()
    out = []
    for m in _SAMPLE.finditer(text):
        labels = {k: json.loads(f'"{v}"') for k, v in _LABEL.findall(m["labels"])}
        out.append((labels, float(m["value"])))
    return tuple(out)


def parse_failures(output: str) -> list[Failure]:
    failures = []
    for m in _FAILURE.finditer(output):
        failures.append(Failure(json.loads(m["expr"]), _go_duration_minutes(m["time"]),
                                parse_samples(m["got"] or ""), m["err"] or ""))
    return failures


def promtool_binary() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise PromtoolMissing("promtool is not installed: run `make tools` (Debian package prometheus)")
    return path


def promtool_version() -> str:
    result = subprocess.run([promtool_binary(), "--version"], capture_output=True, text=True)
    return (result.stdout or result.stderr).splitlines()[0].strip() if (result.stdout or result.stderr) else "unknown"


# A unit test evaluates every rule at every minute and allocates for each query. With the
# Go collector running a quarter as often (GOGC=400), promtool 2.42 used 11-14% less CPU
# here (the healthy week 4m53s -> 4m12s of user time; a two-day claim scenario 66 s -> 59 s)
# for twice the peak memory (that scenario: 136 -> 276 MB).
PROMTOOL_ENV = {"GOGC": "400"}


def run_promtool(test_file: Path) -> tuple[int, str]:
    result = subprocess.run([promtool_binary(), "test", "rules", str(test_file)], capture_output=True, text=True,
                            timeout=PROMTOOL_TIMEOUT, env={**os.environ, **PROMTOOL_ENV})
    output = "\n".join(line for line in (result.stdout + result.stderr).splitlines() if line.strip())
    return result.returncode, output


# ---------------------------------------------------------------- results


@dataclass
class Firing:
    alert: str
    labels: dict  # the alert's own labels (expression output), rule labels left out
    first: int | None = None  # minute
    last: int | None = None
    minutes: int = 0
    first_pending: int | None = None
    pending_minutes: int = 0

    def as_dict(self) -> dict:
        return {"alert": self.alert, "labels": self.labels, "first_firing_min": self.first, "last_firing_min": self.last,
                "firing_evaluations": self.minutes, "first_pending_min": self.first_pending,
                "pending_evaluations": self.pending_minutes}


@dataclass
class ScenarioResult:
    scenario: Scenario
    passed: bool
    problems: list[str]
    firings: list[Firing]  # every alert series that fired (measured), expected or not
    first_firing: int | None = None  # minute the alert under test first fired (with the fault's labels)
    first_pending: int | None = None
    timeline: list[dict] = field(default_factory=list)  # minute, values [(labels, value)], state
    verify_output: str = ""
    seconds: float = 0.0
    files: dict = field(default_factory=dict)
    near_misses: list[Firing] = field(default_factory=list)  # pending, never firing
    peaks: dict = field(default_factory=dict)  # alert -> [[labels, peak value of its expression]]
    # Firings another engine shows for a documented reason (docs/engines.md), not counted as false.
    differences: list = field(default_factory=list)  # [(Firing, reason)]

    @property
    def latency(self) -> int | None:
        f = self.scenario.fault
        if f is None or self.first_firing is None:
            return None
        return self.first_firing - f.start

    def resets(self) -> list[tuple[dict, int]]:
        """(labels beyond the fault's, minutes) for every firing of the alert under test with
        the fault's labels: how long after the fault's end it stopped firing (its first
        evaluation not firing; 0 if it stopped before the fault ended). Needs fault.end."""
        f = self.scenario.fault
        if f is None or f.end is None:
            return []
        out = []
        for x in self.firings:
            if x.alert == f.alert and _subset(f.labels, x.labels) and x.last is not None:
                extra = {k: v for k, v in x.labels.items() if k not in f.labels}
                out.append((extra, max(0, x.last + 1 - f.end)))
        return sorted(out, key=lambda item: sorted(item[0].items()))

    def false_firings(self) -> list[Firing]:
        """Firings of alerts that had to stay silent, of the alert under test with other
        labels, or of the alert under test before its fault started."""
        f = self.scenario.fault
        out = []
        for firing in self.firings:
            if firing.alert in self.scenario.silent:
                out.append(firing)
            elif f is not None and firing.alert == f.alert:
                if not _subset(f.labels, firing.labels) or (firing.first is not None and firing.first < f.start):
                    out.append(firing)
        return out

    def allowed_firings(self) -> list[Firing]:
        return [x for x in self.firings if x.alert in self.scenario.may_fire]


def _subset(small: dict, big: dict) -> bool:
    return all(big.get(k) == v for k, v in small.items())


def _own_labels(labels: dict, rules: dict[str, Rule]) -> dict:
    rule = rules.get(labels.get("alertname"))
    static = set(rule.labels) if rule else set()
    return {k: v for k, v in labels.items() if k not in _ALERT_META and k not in static}


def _firing_key(labels: dict, rules) -> tuple:
    return (labels.get("alertname", ""), tuple(sorted(_own_labels(labels, rules).items())))


# ---------------------------------------------------------------- running


_cache_lock = threading.Lock()
_series_cache: dict[str, tuple[Generated, str]] = {}


def generated(scenario: Scenario, contract: MetricsContract) -> tuple[Generated, str]:
    """The scenario's series and their input_series block; cached by file content."""
    key = hashlib.sha256((scenario.file + "\0" + scenario.text + "\0" + repr(sorted(contract.metrics))).encode()).hexdigest()
    with _cache_lock:
        hit = _series_cache.get(key)
    if hit is None:
        gen = generate(scenario, contract)
        hit = (gen, pf.input_series_block(gen))
        with _cache_lock:
            _series_cache[key] = hit
    return hit


def plot_window(scenario: Scenario) -> range:
    f = scenario.fault
    if f is None:
        return range(0)
    margin = max(20, f.within)
    return range(max(0, f.start - margin), min(scenario.duration, f.deadline + margin) + 1)


@dataclass
class Measurement:
    firings: dict = field(default_factory=dict)  # (alert, labels) -> Firing
    peaks: dict = field(default_factory=dict)
    timeline: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    file: str = ""


def measure(scenario: Scenario, rule_file: Path, rules: dict[str, Rule], contract: MetricsContract, workdir: Path,
            headroom: bool = False, recording: tuple = ()) -> Measurement:
    """One promtool run whose every assertion fails on purpose and so prints its result.

    headroom: also the extreme value of every alert's expression over the run (one more
    evaluation of every expression each minute, through recording rules)."""
    f = scenario.fault
    _, block = generated(scenario, contract)
    workdir.mkdir(parents=True, exist_ok=True)
    out = Measurement()
    measures = pf.measure_assertions(scenario, rules, plot_window(scenario), headroom)
    extra = tuple(recording)
    if headroom:
        recording_file = workdir / "measure-values.rules.yaml"
        recording_file.write_text(pf.recording_rules(rules), encoding="utf-8")
        extra += (recording_file,)
    measure_file = workdir / "measure.yaml"
    measure_file.write_text(pf.test_file(rule_file, block, [a for _, a in measures], extra), encoding="utf-8")
    out.file = str(measure_file)
    _, output = run_promtool(measure_file)
    by_key = {(a.expr, a.minute): what for what, a in measures}
    seen, peaks = set(), {}
    for failure in parse_failures(output):
        what = by_key.get((failure.expr, failure.minute))
        if what is None:
            continue
        seen.add(what)
        if failure.error:
            out.problems.append(f"promtool could not evaluate {what}: {failure.error}")
        elif what.startswith(pf.TIMELINE):
            values = [(lab, v) for lab, v in failure.got if "alertstate" not in lab]
            states = [lab.get("alertstate") for lab, _ in failure.got
                      if "alertstate" in lab and _subset(f.labels, _own_labels(lab, rules))]
            state = "firing" if "firing" in states else "pending" if "pending" in states else "inactive"
            out.timeline.append({"minute": failure.minute, "values": [[_own(lab), v] for lab, v in values], "state": state})
        elif what.startswith(pf.PEAK):
            name = what[len(pf.PEAK):]
            best = peaks.setdefault(name, {})
            pick = min if rules[name].op == "<" else max
            for lab, v in failure.got:
                key = tuple(sorted(_own(lab).items()))
                best[key] = v if key not in best else pick(best[key], v)
        else:
            for labels, value in failure.got:
                key = _firing_key(labels, rules)
                firing = out.firings.setdefault(key, Firing(key[0], dict(key[1])))
                if what == pf.MEASURE_FIRST:
                    firing.first = int(value) // 60
                elif what == pf.MEASURE_LAST:
                    firing.last = int(value) // 60
                elif what == pf.MEASURE_COUNT:
                    firing.minutes = int(value)
                elif what == pf.MEASURE_PENDING:
                    firing.first_pending = int(value) // 60
                elif what == pf.MEASURE_PENDING_COUNT:
                    firing.pending_minutes = int(value)
    missing = {w for w, _ in measures} - seen
    if missing:
        out.problems.append(f"promtool printed no result for {len(missing)} measurement(s): {output[:2000]}")
    out.timeline.sort(key=lambda x: x["minute"])
    out.peaks = {name: [[dict(k), v] for k, v in sorted(best.items())] for name, best in sorted(peaks.items())}
    return out


def first_firing_of(scenario: Scenario, m: Measurement) -> tuple[int | None, int | None]:
    """First firing and first pending minute of the alert under test, with the fault's labels."""
    f = scenario.fault
    mine = [x for x in m.firings.values() if x.alert == f.alert and _subset(f.labels, x.labels)]
    fired = [x.first for x in mine if x.first is not None]
    pend = [x.first_pending for x in mine if x.first_pending is not None]
    return (min(fired) if fired else None), (min(pend) if pend else None)


def verify(scenario: Scenario, rule_file: Path, contract: MetricsContract, workdir: Path,
           first_firing: int | None, recording: tuple = ()) -> tuple[bool, str, str]:
    """The verdict: promtool's exit status on the scenario's assertions. (passed, output, file)"""
    _, block = generated(scenario, contract)
    workdir.mkdir(parents=True, exist_ok=True)
    verify_file = workdir / "verify.yaml"
    assertions = pf.verify_assertions(scenario, first_firing, set(read_rules(rule_file)))
    verify_file.write_text(pf.test_file(rule_file, block, assertions, tuple(recording)), encoding="utf-8")
    code, output = run_promtool(verify_file)
    return code == 0, output, str(verify_file)


def _diagnostics(output: str, rules) -> dict:
    """What a failed silence check says fired (when there was no measure run)."""
    firings: dict = {}
    for failure in parse_failures(output):
        for labels, value in failure.got:
            key = _firing_key(labels, rules)
            firing = firings.setdefault(key, Firing(key[0], dict(key[1])))
            if failure.expr.startswith("min_over_time(timestamp("):
                firing.first = int(value) // 60
            elif failure.expr.startswith("count_over_time(ALERTS"):
                firing.minutes = int(value)
    return firings


def assemble(scenario: Scenario, rules, m: Measurement | None, verdict: tuple[bool, str, str], seconds: float) -> ScenarioResult:
    passed, output, verify_file = verdict
    firings = dict(m.firings) if m else {}
    if not passed and m is None:
        firings = _diagnostics(output, rules)
    first_firing = first_pending = None
    if scenario.fault is not None and m is not None:
        first_firing, first_pending = first_firing_of(scenario, m)
        first_pending = _pending_before(m.timeline, first_firing, first_pending)
    fired = sorted((x for x in firings.values() if x.first is not None or x.minutes), key=lambda x: (x.alert, sorted(x.labels.items())))
    near = sorted((x for x in firings.values() if x.first is None and not x.minutes), key=lambda x: (x.alert, sorted(x.labels.items())))
    files = {"verify": verify_file, **({"measure": m.file} if m else {})}
    result = ScenarioResult(scenario, passed, list(m.problems) if m else [], fired, first_firing, first_pending,
                            m.timeline if m else [], "" if passed else output, seconds, files, near, m.peaks if m else {})
    if m is not None or not passed:
        _explain(result)  # a verdict without a measurement has nothing to explain
    if not passed and not result.problems:
        result.problems.append("promtool reported a failure: " + output[:2000])
    if passed and result.problems:
        result.passed = False  # promtool passed but the measurements disagree or are missing: trust neither
    return result


def _pending_before(timeline: list[dict], first_firing: int | None, fallback: int | None) -> int | None:
    """Start of the pending period that led to the first firing (None for `for: 0s`)."""
    states = {p["minute"]: p["state"] for p in timeline}
    if first_firing is None or first_firing not in states:
        return fallback
    m = first_firing - 1
    while states.get(m) == "pending":
        m -= 1
    return m + 1 if m + 1 < first_firing else None


def default_jobs() -> int:
    """promtool is single-threaded: one process per core."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def run_suite(scenarios: list[Scenario], rule_file: Path, contract: MetricsContract, workdir: Path, jobs: int | None = None,
              measure_silent: bool = True, headroom: bool = True, measure_faults: bool = True) -> list[ScenarioResult]:
    """Every scenario, `jobs` promtool processes at a time (default: one per core), longest
    first; results in input order.

    A fault scenario's verify run needs its measurement; a silence scenario's two runs are
    independent and go in parallel. measure_silent=False skips the measure run of silence
    scenarios (same verdict; no near misses or headroom in the report); headroom=False
    skips the extreme values of the alert expressions in silence scenarios;
    measure_faults=False gives fault scenarios the verify run alone (same verdict: the
    bounds are promtool assertions) and measures only a failure, to explain it."""
    rules = read_rules(rule_file)
    promtool_binary()
    workdir = Path(workdir)
    recording = tuple(p for p in (pf.alert_recording_file(rule_file, workdir),) if p)
    for s in scenarios:
        if s.fault is not None and s.fault.alert not in rules:
            raise ValueError(f"{s.file}: {s.fault.alert} is not in the rule file {rule_file}")
    with ThreadPoolExecutor(max_workers=max(1, jobs or default_jobs())) as pool:
        tasks = []  # (cost, name, kind, callable)
        for s in scenarios:
            wd = workdir / s.name
            if s.fault is not None and not measure_faults:
                def verify_then_explain(s=s, wd=wd):
                    verdict = verify(s, rule_file, contract, wd, None, recording)
                    if verdict[0]:
                        return None, verdict
                    return measure(s, rule_file, rules, contract, wd, recording=recording), verdict
                tasks.append((s.duration, s.name, "chain", verify_then_explain))
            elif s.fault is not None:
                def chain(s=s, wd=wd):
                    m = measure(s, rule_file, rules, contract, wd, recording=recording)
                    return m, verify(s, rule_file, contract, wd, first_firing_of(s, m)[0], recording)
                tasks.append((3 * s.duration, s.name, "chain", chain))
            else:
                tasks.append((s.duration, s.name, "verify",
                              lambda s=s, wd=wd: verify(s, rule_file, contract, wd, None, recording)))
                if measure_silent:
                    tasks.append(((3 if headroom else 1) * s.duration, s.name, "measure",
                                  lambda s=s, wd=wd: measure(s, rule_file, rules, contract, wd, headroom, recording)))
        futures = {(name, kind): pool.submit(_timed, fn) for _, name, kind, fn in sorted(tasks, key=lambda t: -t[0])}
        results = []
        for s in scenarios:
            if s.fault is not None:
                (m, verdict), seconds = futures[(s.name, "chain")].result()
            else:
                verdict, seconds = futures[(s.name, "verify")].result()
                m = None
                if (s.name, "measure") in futures:
                    m, more = futures[(s.name, "measure")].result()
                    seconds += more
            results.append(assemble(s, rules, m, verdict, seconds))
        return results


def _timed(fn):
    started = time.monotonic()
    value = fn()
    return value, time.monotonic() - started


def _own(labels: dict) -> dict:
    return {k: v for k, v in labels.items() if k != "__name__"}


def _explain(result: ScenarioResult) -> None:
    """Why a scenario failed, in words, from the measurements."""
    f = result.scenario.fault
    if f is not None:
        if result.first_firing is None:
            result.problems.append(f"{f.alert}{_fmt(f.labels)} never fired (fault at {_t(f.start)}, must fire within {_t(f.within)})")
        elif result.first_firing < f.start:
            result.problems.append(f"{f.alert} fired at {_t(result.first_firing)}, before the fault started at {_t(f.start)}")
        elif result.first_firing > f.deadline:
            result.problems.append(f"{f.alert} first fired {_t(result.latency)} after the fault, later than {_t(f.within)}")
    if f is not None and f.end is not None:
        resets = result.resets()
        for r in f.resolves:
            mine = [(labels, m) for labels, m in resets if _subset(r.labels, labels)]
            if not mine:
                result.problems.append(f"{f.alert}{_fmt({**f.labels, **r.labels})} never fired, so its reset cannot be measured")
            for labels, minutes in mine:
                if minutes > r.within:
                    result.problems.append(f"{f.alert}{_fmt({**f.labels, **labels})} kept firing {_t(minutes)} after the fault ended "
                                           f"(bound {_t(r.within)})")
    for x in result.false_firings():
        when = f"first at {_t(x.first)}" if x.first is not None else "at some evaluation"
        result.problems.append(f"false firing: {x.alert}{_fmt(x.labels)} fired {when} for {x.minutes} evaluation(s)")


def _fmt(labels: dict) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""


def _t(minutes: int | None) -> str:
    return "-" if minutes is None else format_duration(int(minutes) * 60)
