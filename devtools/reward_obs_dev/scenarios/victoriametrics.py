"""The same rendered rule files on a second engine: VictoriaMetrics and `vmalert`'s replay mode.

For each scenario: the generator's series are written into a fresh victoria-metrics on
loopback (Prometheus remote write, staleness markers included) at BASE, a fixed past time; `vmalert` replays the
rule files over the scenario's run (`-replay.timeFrom/-replay.timeTo`), recording rules
first, writing what it computes back through remote write; then the raw `ALERTS` samples
are exported and turned into the same Firing records promtool's measure run gives, and the
scenario's claims (no firing before the fault, firing by the bound, resets, silence) are
checked on them by runner's own explanation code. docs/engines.md lists every difference.

How vmalert replays (docs/victoriametrics/vmalert.md, "Rules backfilling", and
app/vmalert/alerting.go `ExecRange` in github.com/VictoriaMetrics/VictoriaMetrics): groups
run one after another in the order of `-rule`, rules within a group one after another,
each rule as one `/api/v1/query_range` over the range, at the group's interval; an
alerting rule's `for` is walked over the returned points (pending from the first point,
firing once `for` has passed, back to pending after a gap longer than the interval). In
1.79 that walk starts over at every `query_range` request, so one request must cover the
whole run: `-replay.maxDatapointsPerQuery` is set to the run's points.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from reward_obs.model.contract import MetricsContract
from reward_obs.model.durations import parse_duration
from reward_obs_dev.scenarios import SuiteRun
from reward_obs_dev.scenarios import report as report_module
from reward_obs_dev.scenarios.generator import INSTANCE, JOB, STALE, tokens
from reward_obs_dev.scenarios.model import Scenario
from reward_obs_dev.scenarios.promtool_file import alert_recording_file
from reward_obs_dev.scenarios.runner import (
    Firing,
    Measurement,
    Rule,
    ScenarioResult,
    _explain,
    _firing_key,
    _subset,
    default_jobs,
    first_firing_of,
    generated,
    promtool_version,
    read_rules,
)
from reward_obs_dev.servers import LOOPBACK, VictoriaMetrics, binary, free_port, remote_write, victoriametrics_version

# promtool's clock starts at the Unix epoch, a Thursday midnight; the scenarios' time of
# day (and day of week) stay the same at 2015-01-01T00:00:00Z, also a Thursday midnight.
BASE = int(datetime(2015, 1, 1, tzinfo=UTC).timestamp())
# Gauges holding a Unix time: promtool's worlds count them from 0 (its epoch), so they
# move with BASE or `time() - x` would read 45 years.
TIMESTAMP_SUFFIX = "_timestamp_seconds"
# ... except where the contract gives 0 a meaning of its own: "0 for a provider that has
# never sent one" (contract/metrics.yaml), which the rule filters out with `> 0`.
ZERO_MEANS_NEVER = {"reward_payout_webhook_last_processed_timestamp_seconds"}
EVALUATION_INTERVAL = "1m"
# The group's interval as the lookback of instant queries (vmalert's default is 5m).
QUERY_STEP = "1m"
# Chained recording rules (a ratio of two recorded rates) must read what the rule before
# wrote. vmalert's way is -replay.rulesDelay between rules (>= -remoteWrite.flushInterval,
# vmalert -help): a second a rule, 90 s a scenario. Instead the rules run in dependency
# layers, one replay a layer, and VictoriaMetrics is flushed between layers (layers()).
RULES_DELAY = "0s"
FLUSH_INTERVAL = "200ms"
VMALERT_TIMEOUT = 3600


@dataclass
class EngineRun:
    firings: dict = field(default_factory=dict)  # (alert, labels) -> Firing
    seconds: float = 0.0
    problems: list = field(default_factory=list)
    log: str = ""


def write_series(scenario: Scenario, contract: MetricsContract) -> list[tuple[dict, list]]:
    """The scenario's series for remote write: one sample a minute from BASE, staleness
    markers included (None). They go through remote write, as vmagent or Prometheus would
    send them, not `/api/v1/import`: its JSON lines cannot carry a staleness marker (a null
    is imported as a plain NaN, lib/protoparser/vmimport/parser.go), and without markers a
    target that goes away would stay visible for VictoriaMetrics' staleness interval."""
    gen, _ = generated(scenario, contract)
    out = []
    for s in gen.series:
        shift = BASE if s.metric.endswith(TIMESTAMP_SUFFIX) else 0
        samples = []
        for minute, v in enumerate(tokens(s)):
            if v is None:
                continue
            if v != STALE:
                v = v + shift if v or s.metric not in ZERO_MEANS_NEVER else v
            samples.append(((BASE + 60 * minute) * 1000, None if v == STALE else v))
        if samples:
            out.append(({"__name__": s.metric, **s.labels, "job": JOB, "instance": INSTANCE}, samples))
    return out


def _rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def layers(rule_files: list[Path], workdir: Path) -> list[Path]:
    """The rule files split into layers: a rule goes one layer after the deepest recording
    rule its expression reads (alerts included: they read recorded ratios). Groups keep
    their names and intervals; only the order of evaluation changes, which for recording
    rules (no state) changes nothing but when their inputs are complete."""
    rules = []  # (group, rule)
    for path in rule_files:
        for g in (yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}).get("groups", []):
            rules += [(g, r) for r in g.get("rules", [])]
    reads = [set(_NAME.findall(r["expr"])) for _, r in rules]
    depth: dict[str, int] = {r["record"]: 0 for _, r in rules if "record" in r}
    level = [0] * len(rules)
    for _ in range(len(rules) + 1):  # to a fixed point, whatever the order the rules come in
        level = [max((depth[n] + 1 for n in names if n in depth), default=0) for names in reads]
        new = {r["record"]: 0 for _, r in rules if "record" in r}
        for (_, r), d in zip(rules, level, strict=True):
            if "record" in r:
                new[r["record"]] = max(new[r["record"]], d)
        if new == depth:
            break
        depth = new
    else:
        raise ValueError("recording rules read each other in a cycle")
    out = []
    for n in range(max(level, default=-1) + 1):
        groups: dict[str, dict] = {}
        for (g, r), d in zip(rules, level, strict=True):
            if d == n:
                head = {k: v for k, v in g.items() if k != "rules"}
                groups.setdefault(g["name"], {**head, "rules": []})["rules"].append(r)
        path = Path(workdir) / f"layer-{n}.rules.yaml"
        path.write_text(yaml.safe_dump({"groups": list(groups.values())}, sort_keys=False), encoding="utf-8")
        out.append(path)
    return out


def vmalert_command(rule_files: list[Path], vm_url: str, start: int, end: int, points: int) -> list[str]:
    return [binary("vmalert"), *(f"-rule={p}" for p in rule_files),
            f"-datasource.url={vm_url}", f"-remoteWrite.url={vm_url}",
            f"-replay.timeFrom={_rfc3339(start)}", f"-replay.timeTo={_rfc3339(end)}",
            f"-evaluationInterval={EVALUATION_INTERVAL}", f"-datasource.queryStep={QUERY_STEP}",
            f"-replay.rulesDelay={RULES_DELAY}", f"-remoteWrite.flushInterval={FLUSH_INTERVAL}",
            f"-replay.maxDatapointsPerQuery={points}", "-replay.disableProgressBar",
            # ALERTS as Prometheus writes it: without vmalert's extra `alertgroup` label.
            "-disableAlertgroupLabel",
            f"-httpListenAddr={LOOPBACK}:{free_port()}", "-loggerLevel=WARN"]


def replay(scenario: Scenario, rule_files: list[Path], rules: dict[str, Rule], contract: MetricsContract, workdir: Path,
           vm_args: tuple[str, ...] = ()) -> EngineRun:
    """One scenario on a fresh VictoriaMetrics; the firings read back from ALERTS."""
    started = time.monotonic()
    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    out = EngineRun()
    vm = VictoriaMetrics(workdir, vm_args)
    vm.start()
    try:
        remote_write(vm.url + "/api/v1/write", write_series(scenario, contract))
        vm.force_flush()
        start, end = BASE, BASE + 60 * scenario.duration
        log_path = workdir / "vmalert.log"
        # Each layer in its own replay, flushed before the next: a rule then reads every
        # point the layers before it recorded.
        for path in rule_files:
            cmd = vmalert_command([path], vm.url, start, end, scenario.duration + 2)
            with open(log_path, "ab") as log:
                result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=VMALERT_TIMEOUT, cwd=workdir)
            if result.returncode != 0:
                out.problems.append(f"vmalert replay of {Path(path).name} failed (exit {result.returncode}): "
                                    + log_path.read_text(errors="replace")[-2000:])
            vm.force_flush()
        out.log = log_path.read_text(errors="replace")[-4000:] if log_path.exists() else ""
        for series in vm.export('{__name__="ALERTS"}', start, end + 60):
            labels = series["metric"]
            state = labels.get("alertstate")
            key = _firing_key(labels, rules)
            minutes = sorted({(ts // 1000 - BASE) // 60 for ts, v in zip(series["timestamps"], series["values"], strict=True) if v == 1})
            if not minutes:
                continue
            firing = out.firings.setdefault(key, Firing(key[0], dict(key[1])))
            if state == "firing":
                firing.first, firing.last, firing.minutes = minutes[0], minutes[-1], len(minutes)
            elif state == "pending":
                firing.first_pending, firing.pending_minutes = minutes[0], len(minutes)
    finally:
        vm.stop()
    out.seconds = time.monotonic() - started
    return out


YOUNG_SERIES = ("rate() over a window longer than the series' history: VictoriaMetrics divides by the samples' span, "
                "Prometheus by the whole window (docs/engines.md, \"A series younger than the window\")")


def young_series(firing: Firing) -> bool:
    """A burn-rate page that fired, and stopped, while every series of the run was younger
    than its long window: the one difference docs/engines.md documents as not a false page
    of the rules. Narrow on purpose: the window comes from the alert's own `long_window`."""
    window = firing.labels.get("long_window")
    if window is None or firing.first is None or firing.last is None:
        return False
    return firing.last < parse_duration(window) // 60


def result_of(scenario: Scenario, run: EngineRun) -> ScenarioResult:
    """The scenario's claims checked on what VictoriaMetrics fired (runner's own wording);
    firings explained by a documented engine difference are listed apart (differences)."""
    f = scenario.fault

    def false(x: Firing) -> bool:  # as ScenarioResult.false_firings() counts it
        if x.alert in scenario.silent:
            return True
        return f is not None and x.alert == f.alert and (not _subset(f.labels, x.labels) or (x.first or 0) < f.start)

    documented = [x for x in run.firings.values() if x.first is not None and false(x) and young_series(x)]
    run.firings = {k: x for k, x in run.firings.items() if all(x is not d for d in documented)}
    fired = sorted((x for x in run.firings.values() if x.first is not None), key=lambda x: (x.alert, sorted(x.labels.items())))
    near = sorted((x for x in run.firings.values() if x.first is None), key=lambda x: (x.alert, sorted(x.labels.items())))
    first_firing = first_pending = None
    if scenario.fault is not None:
        first_firing, first_pending = first_firing_of(scenario, Measurement(firings=run.firings))
    result = ScenarioResult(scenario, True, list(run.problems), fired, first_firing, first_pending,
                            seconds=run.seconds, near_misses=near, verify_output=run.log if run.problems else "",
                            differences=[(x, YOUNG_SERIES) for x in documented])
    _explain(result)
    result.passed = not result.problems
    return result


def recording_files(rule_file: Path, workdir: Path) -> list[Path]:
    """The recording groups the alerts read, as the promtool runner loads them (first)."""
    path = alert_recording_file(rule_file, workdir)
    return [path] if path else []


def run_suite(scenarios: list[Scenario], rule_file: Path, contract: MetricsContract, workdir: Path, jobs: int | None = None,
              vm_args: tuple[str, ...] = ()) -> list[ScenarioResult]:
    """Every scenario on VictoriaMetrics, `jobs` at a time (one per core by default: each
    replay is one vmalert and one victoria-metrics, mostly one busy at a time)."""
    binary("victoria-metrics")
    binary("vmalert")
    rules = read_rules(rule_file)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    files = layers([*recording_files(rule_file, workdir), Path(rule_file).resolve()], workdir)
    for s in scenarios:
        if s.fault is not None and s.fault.alert not in rules:
            raise ValueError(f"{s.file}: {s.fault.alert} is not in the rule file {rule_file}")
    with ThreadPoolExecutor(max_workers=max(1, jobs or default_jobs())) as pool:
        order = sorted(scenarios, key=lambda s: -s.duration)
        futures = {s.name: pool.submit(replay, s, files, rules, contract, workdir / s.name, vm_args) for s in order}
        return [result_of(s, futures[s.name].result()) for s in scenarios]


def _report_inputs(scenarios: list[Scenario], contract: MetricsContract) -> dict:
    return {s.name: generated(s, contract)[0] for s in scenarios if s.fault is not None}


def run(scenarios: list[Scenario], rule_file: Path, contract: MetricsContract, out: Path, jobs: int | None = None,
        vm_args: tuple[str, ...] = (), internal: dict | None = None) -> SuiteRun:
    """`--engine victoriametrics`: the suite on VictoriaMetrics alone, its report in out."""
    out = Path(out)
    started = time.monotonic()
    results = run_suite(scenarios, rule_file, contract, out / "victoriametrics", jobs=jobs, vm_args=vm_args)
    report = report_module.write(results, _report_inputs(scenarios, contract), read_rules(rule_file), rule_file,
                                 engine_version(vm_args), time.monotonic() - started, out, plots=False, engine="victoriametrics",
                                 internal=internal)
    return SuiteRun(results, report)


def side_by_side(suite: SuiteRun, scenarios: list[Scenario], rule_file: Path, contract: MetricsContract, out: Path,
                 promtool_seconds: float, jobs: int | None = None, vm_args: tuple[str, ...] = (), plots: bool = True,
                 internal: dict | None = None) -> SuiteRun:
    """`--engine both`: promtool's suite (already run) and the same scenarios on
    VictoriaMetrics; one report with both engines (report["engines"])."""
    out = Path(out)
    started = time.monotonic()
    vm_results = run_suite(scenarios, rule_file, contract, out / "victoriametrics", jobs=jobs, vm_args=vm_args)
    engines = {"prometheus": promtool_version(), "victoriametrics": f"VictoriaMetrics {victoriametrics_version()}",
               "vm_args": " ".join(vm_args),
               "seconds": round(time.monotonic() - started, 1),
               "scenarios": report_module.engines_json(suite.results, vm_results)}
    report = report_module.write(suite.results, _report_inputs(scenarios, contract), read_rules(rule_file), rule_file,
                                 promtool_version(), promtool_seconds, out, plots=plots, engines=engines, internal=internal)
    return SuiteRun(suite.results, report)


def engine_version(vm_args: tuple[str, ...]) -> str:
    return f"VictoriaMetrics {victoriametrics_version()}" + (f" {' '.join(vm_args)}" if vm_args else "")
