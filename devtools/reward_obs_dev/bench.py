"""`reward-obs bench`: what the stack costs a real Prometheus as the reward system grows.

For each scale (pools; campaigns and providers in proportion, see Topology.scaled):
1. the simulator gives the label sets (every series the backend would export) and the
   healthy rates (one simulated hour of traffic);
2. a week of history is written as OpenMetrics from those rates (counters integrate a
   daily cycle, gauges wave around the simulated level) and backfilled with
   `promtool tsdb create-blocks-from openmetrics`, in 18h blocks (the largest block a
   default Prometheus builds for 15d retention), ending two hours in the future so that
   rule evaluation at "now" reads the data;
3. a real Prometheus opens that TSDB and evaluates the rendered rule files, alerts and
   recording rules, each group at its rendered interval as in production (1m, 5m); the bench reads every
   group's evaluationTime from /api/v1/rules, times every rule expression with the query
   API, and times the raw-metric query each recorded series stands for (the "before");
4. the recording rules' history is backfilled with `promtool tsdb create-blocks-from
   rules` (as one does when adding them to a running Prometheus), Prometheus restarts on
   it, and every operations-dashboard query is timed as Grafana sends it: over 24h and 7d
   (query_range, step = Grafana's $__interval for a 1100-point panel, $__rate_interval
   from the stack's scrape interval), or once at "now" for an instant panel; variables as
   Grafana sets them on load (All, or the first campaign for the single-select one).

Not a test: it takes minutes (most of it promtool) and writes GBs to a temporary
directory that is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zlib
from array import array
from pathlib import Path
from typing import NamedTuple

import yaml

from reward_obs.builders import recording
from reward_obs.catalog.load import load
from reward_obs.lang.dashboard_queries import (
    default_variables,
    grafana_interval,
    panel_queries,
    rate_interval,
    substitute,
)
from reward_obs.model.durations import parse_duration
from reward_obs.sinks.files import PROMETHEUS_RULE_FILE, dump_yaml, render_files
from reward_obs_dev import machine
from reward_obs_dev.cardinality import budget
from reward_obs_dev.servers import Prometheus, binary, prometheus_version, remote_write
from reward_obs_dev.simulator import Simulator, Topology

SCALES = (10, 100, 1000)
RANGES = {"24h": 86400, "7d": 7 * 86400}
BLOCK = 18 * 3600  # promtool and Prometheus block size
DAY = 86400
INSTANCE = "reward-backend:9464"  # a label value only: nothing is scraped
# Every group at its own interval by default: evaluating all of them six times as often
# (10s, an earlier bench's choice for more evaluations to take the median of) kept both
# cores busy at 10,000 pools, and every group and query then measured the contention
# (`--rule-interval 10s` reproduces it).
GLOBAL_EVALUATION_INTERVAL = "1m"
PANEL_TARGET_MS = {"24h": 100.0, "7d": 300.0}  # wall, at the largest scale
GROUP_TARGET_PCT = 1.0  # of the group's interval
OPERATIONS_DASHBOARD = "reward-operations"
_COUNTER_SUFFIXES = ("_total", "_bucket", "_count", "_sum")
_SCALING_LABELS = {"pool_id", "campaign_id"}  # series with these grow with the reward system
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"')
_LEDGER = ("reward_pool_budget", "reward_pool_reserved", "reward_pool_paid", "reward_pool_remaining")


# ------------------------------------------------------------------ history


class History:
    """Every series of a topology as a function of time, from the simulator's healthy rates."""

    def __init__(self, definitions, topology: Topology, job: str, seed: int = 1, warmup: float = 3600.0):
        sim = Simulator(definitions.contract, topology, "healthy", seed=seed, start=0.0)
        before = sim.series()
        remaining = warmup
        while remaining > 0:
            sim.step(60.0)
            remaining -= 60.0
        after = sim.series()
        # prefix, v0, rate, phase, integer, scaling (grows with pools or campaigns)
        self.counters: list[tuple[str, float, float, int, bool, bool]] = []
        # prefix, level, amplitude, phase, scaling, relative (the level is an offset from the sample's time)
        self.gauges: list[tuple[str, float, float, int, bool, bool]] = []
        for name, values in sorted(after.items()):
            label_names = sim.label_names(name)
            for key, value in sorted(values.items()):
                labels = ",".join(f'{n}="{v}"' for n, v in zip(label_names, key, strict=True))
                prefix = f'{name}{{{labels},job="{job}",instance="{INSTANCE}"}} '
                labels_of = dict(zip(label_names, key, strict=True))
                # Everything of one pool, campaign or provider waves in step, as its traffic
                # does: budget - reserved - paid stays equal to remaining (no
                # RewardPoolLedgerMismatch for every pool), a provider's two reconciliation
                # totals agree, and a histogram's buckets stay cumulative (the claim-to-paid
                # SLO reads count minus a bucket: out of step, a healthy world burns it).
                key_of_phase = (labels_of.get("pool_id") or labels_of.get("campaign_id") or labels_of.get("provider")
                                or prefix)
                phase = zlib.crc32(key_of_phase.encode()) % 4
                scaling = bool(_SCALING_LABELS & set(label_names))
                if name.endswith(_COUNTER_SUFFIXES):
                    start = before[name].get(key, 0.0)
                    self.counters.append((prefix, start, (value - start) / warmup, phase, not name.endswith("_sum"), scaling))
                elif name.endswith("_timestamp_seconds"):  # a time of last success: keeps its age, never waves
                    self.gauges.append((prefix, value - warmup, 0.0, phase, scaling, True))
                else:
                    steady = name in ("reward_provider_up", "reward_campaigns")
                    self.gauges.append((prefix, value, 0.0 if steady else 0.1 * value, phase, scaling, False))

    def values(self, t: int, origin: int) -> array:
        """Every series' value at `t`, counters then gauges (the order of `labels()`)."""
        w = 2 * math.pi / DAY
        amplitude = 0.5 / w
        shifts = [k * math.pi / 2 for k in range(4)]
        integral = [(t - origin) + amplitude * (math.cos(w * origin + s) - math.cos(w * t + s)) for s in shifts]
        wave = [math.sin(w * t + s) for s in shifts]
        out = array("d", (float(int(v0 + r * integral[ph])) if whole else v0 + r * integral[ph]
                          for _, v0, r, ph, whole, _ in self.counters))
        out.extend(level + (t if rel else a * wave[ph]) for _, level, a, ph, _, rel in self.gauges)
        return out

    def labels(self) -> list[dict[str, str]]:
        """Every series' labels, __name__ included, counters then gauges."""
        out = []
        for prefix, *_ in [*self.counters, *self.gauges]:
            name, rest = prefix.split("{", 1)
            out.append({"__name__": name, **dict(_LABEL.findall(rest))})
        return out

    @property
    def series(self) -> int:
        return len(self.counters) + len(self.gauges)

    def count(self, scaling: bool) -> int:
        return sum(1 for c in self.counters if c[5] == scaling) + sum(1 for g in self.gauges if g[4] == scaling)

    def write(self, out, start: int, end: int, step: int, origin: int, scaling: bool | None = None,
              names: frozenset[str] | None = None) -> int:
        """Samples for start <= t < end at the multiples of `step` seconds; counters count
        from `origin`. `scaling`: only the series that grow with pools (True), only the
        others (False), or all (None); `names`: only these metrics."""
        w = 2 * math.pi / DAY
        amplitude = 0.5 / w
        shifts = [k * math.pi / 2 for k in range(4)]
        def keep(prefix: str, s: bool) -> bool:
            return (scaling is None or s == scaling) and (names is None or prefix.split("{", 1)[0] in names)

        counters = [c for c in self.counters if keep(c[0], c[5])]
        gauges = [g for g in self.gauges if keep(g[0], g[4])]
        written = 0
        t = -(-start // step) * step
        while t < end:
            ts = f" {t}\n"
            integral = [(t - origin) + amplitude * (math.cos(w * origin + s) - math.cos(w * t + s)) for s in shifts]
            wave = [math.sin(w * t + s) for s in shifts]
            parts = [f"{p}{int(v0 + r * integral[ph])}{ts}" if whole else f"{p}{v0 + r * integral[ph]:.3f}{ts}"
                     for p, v0, r, ph, whole, _ in counters]
            parts += [f"{p}{level + (t if rel else a * wave[ph]):.3f}{ts}" for p, level, a, ph, _, rel in gauges]
            out.write("".join(parts))
            written += len(parts)
            t += step
        return written


class Tier(NamedTuple):
    """One stretch of history: the series that grow with pools (scaling=True) or the
    others, every `step` seconds over [start, end)."""
    scaling: bool
    start: int
    end: int
    step: int
    names: frozenset[str] | None = None  # only these metrics (None: all of the kind)


def history_plan(end: int, days: int, step: int, provider_days: int, provider_step: int,
                 fine_hours: int, coarse_step: int, long_metrics: frozenset[str]) -> list[Tier]:
    """History shaped by what reads it (bench/README.md, "History"):
    - per-pool and per-campaign series: every `step` over the last `fine_hours` (the
      rules' windows, `offset 1d` plus their longest window, and the 24h panels); before
      that, back to `days` (the 7d panels), every `coarse_step` and only `long_metrics`, the
      ones a range panel or a recording rule reads (not the funding counters, read over 1d
      at most, nor the switches, read at "now");
    - the provider-level series the SLO rules read: `provider_days` (the 30-day budgets)
      every `provider_step` (the stack's scrape interval)."""
    fine_start = max(end - days * DAY, end - fine_hours * 3600)
    tiers = [Tier(False, end - provider_days * DAY, end, provider_step)]
    if fine_start > end - days * DAY:
        tiers.append(Tier(True, end - days * DAY, fine_start, coarse_step, long_metrics))
    tiers.append(Tier(True, fine_start, end, step))
    return tiers


def long_history_metrics(definitions, recording_groups: list[dict]) -> frozenset[str]:
    """The metrics a range panel of the operations dashboard or a recording rule reads:
    the ones whose older history a 7d panel (or its recorded series) depends on."""
    exprs = [q.expr for q in panel_queries(definitions, OPERATIONS_DASHBOARD) if not q.instant]
    exprs += [r["expr"] for g in recording_groups for r in g["rules"]]
    names = set(re.findall(r"\breward_[a-z0-9_]+", " ".join(exprs)))
    return frozenset(n for n in names if ":" not in n)


def backfill_history(history: History, data_dir: Path, work: Path, plan: list[Tier], log=print) -> int:
    """Write and backfill the plan chunk by chunk (one 18h block each), running promtool on
    one chunk while the next is written. Counters count from the earliest start."""
    start = min(t.start for t in plan)
    end = max(t.end for t in plan)
    samples = 0
    running: tuple[subprocess.Popen, Path] | None = None

    def finish(job):
        proc, path = job
        out, err = proc.communicate()
        path.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise RuntimeError(f"promtool failed on {path.name}: {out}{err}")

    chunk_start = start
    index = 0
    try:
        while chunk_start < end:
            chunk_end = min(end, (chunk_start // BLOCK + 1) * BLOCK)
            path = work / f"chunk-{index:03d}.om"
            with open(path, "w", encoding="utf-8", buffering=1 << 22) as out:
                for tier in plan:  # in time order, so each series' samples stay in order
                    a, b = max(chunk_start, tier.start), min(chunk_end, tier.end)
                    if a < b:
                        samples += history.write(out, a, b, tier.step, origin=start, scaling=tier.scaling, names=tier.names)
                out.write("# EOF\n")
            if running:
                finish(running)  # still `running` until it has exited: an interrupt then kills it
                running = None
            running = (subprocess.Popen([binary("promtool"), "tsdb", "create-blocks-from", "openmetrics",
                                         f"--max-block-duration={BLOCK // 3600}h", str(path), str(data_dir)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), path)
            log(f"    chunk {index}: {time.strftime('%m-%d %H:%M', time.gmtime(chunk_start))} .. "
                f"{time.strftime('%m-%d %H:%M', time.gmtime(chunk_end))} UTC written")
            chunk_start = chunk_end
            index += 1
        if running:
            finish(running)
            running = None
    finally:
        if running:  # interrupted: do not leave promtool behind
            running[0].kill()
            running[0].wait()
    return samples


# ------------------------------------------------------------------ measuring


def timed_query(prom: Prometheus, path: str, params: dict, runs: int) -> dict:
    """Median over `runs` calls, after one warm-up call, of
    - exec_ms: Prometheus's own execTotalTime (stats=all): what the query costs the server;
    - wall_ms: request to last byte through the HTTP API, JSON encoding included (the
      client's parsing is not timed);
    and the response's series, points and bytes."""
    url = f"{prom.url}/api/v1/{path}?" + urllib.parse.urlencode({**params, "stats": "all"})

    def once():
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=600) as response:
            body = response.read()
        return (time.perf_counter() - t0) * 1000, body

    once()
    walls, execs = [], []
    for _ in range(runs):
        wall, body = once()
        data = json.loads(body)
        if data.get("status") != "success":
            raise RuntimeError(f"{params}: {data}")
        walls.append(wall)
        execs.append(data["data"]["stats"]["timings"]["execTotalTime"] * 1000)
    result = data["data"]["result"]
    points = sum(len(r.get("values", ())) or 1 for r in result)
    # Samples the engine read: the same on a busy machine as on an idle one, unlike times.
    samples = data["data"]["stats"].get("samples", {}).get("totalQueryableSamples")
    return {"exec_ms": round(statistics.median(execs), 1), "wall_ms": round(statistics.median(walls), 1),
            "series": len(result), "points": points, "bytes": len(body), "samples": samples}


def rule_file(definitions, config, extra_groups: list[dict] = (), every: str | None = None) -> tuple[dict, dict[str, float]]:
    """The rendered alert groups and the recording groups, and each group's interval as
    rendered (the one its evaluation time is a share of). `every`: evaluate every group at
    that interval instead (more evaluations, and more load, than production)."""
    rules = yaml.safe_load(render_files(definitions, config)[PROMETHEUS_RULE_FILE])
    rules["groups"] = [*rules["groups"], *(dict(g) for g in extra_groups)]
    intervals = {}
    for group in rules["groups"]:
        intervals[group["name"]] = parse_duration(group.get("interval", GLOBAL_EVALUATION_INTERVAL))
        if every:
            group["interval"] = every
    return rules, intervals


def proposed_groups(path: Path, rendered: dict) -> list[dict]:
    """Rule groups measured next to the rendered ones: a restructure under consideration
    (`proposed-*`) or what a shipped restructure replaced (`before-*`). Each group names
    the rendered groups it stands instead of (`instead_of`, read here and kept out of the
    rule file); each alert gets the labels and annotations of the rendered alert of its
    name, so that it costs what the shipped one would (templates included)."""
    by_name = {r["alert"]: r for g in rendered["groups"] for r in g["rules"] if "alert" in r}
    groups = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    for group in groups:
        group["instead_of"] = list(group.get("instead_of", ()))
        for rule in group["rules"]:
            if "alert" in rule and rule["alert"] in by_name:
                shipped = by_name[rule["alert"]]
                rule.update({k: shipped[k] for k in ("labels", "annotations") if k in shipped})
    return groups


def time_panel_queries(prom: Prometheus, queries: list[tuple[str, str, bool]], scrape: int, now: float, runs: int,
                       ranges: dict[str, int], variables: dict[str, str]) -> list[dict]:
    """(key, expr, instant) -> a row with one timing per range; an instant query is one
    evaluation at `now` whatever the range, so it is timed once and shown for each."""
    rows = []
    for key, expr, instant in queries:
        row = {"query": key, "expr": expr, "instant": instant}
        if instant:
            step = grafana_interval(min(ranges.values()), scrape)
            text = substitute(expr, step, rate_interval(step, scrape), variables)
            cell = {"step": None, **timed_query(prom, "query", {"query": text, "time": f"{now:.3f}"}, runs)}
            row.update({label: cell for label in ranges})
        for label, seconds in ranges.items() if not instant else ():
            step = grafana_interval(seconds, scrape)
            text = substitute(expr, step, rate_interval(step, scrape), variables)
            row[label] = {"step": step, **timed_query(prom, "query_range", {"query": text, "start": f"{now - seconds:.3f}",
                                                                             "end": f"{now:.3f}", "step": step}, runs)}
        rows.append(row)
    return rows


_RECORDED_NAME = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z_][a-zA-Z0-9_:]*")
_RANGE = re.compile(r"\[(\d+[smhdwy])\]")


def measure_raw(prom: Prometheus, definitions, config, runs: int, now: float, ranges: dict[str, int],
                variables: dict[str, str], log=print) -> dict:
    """Series counts and the raw "before" queries (on raw history only)."""
    scrape = parse_duration(config.scrape_interval)
    result: dict = {"raw": {}, "series": {}}
    log("    series per metric")
    for row in prom.query(f'count by (__name__) ({{job="{definitions.contract.scrape_job}"}})', now):
        result["series"][row["metric"]["__name__"]] = int(row["value"][1])
    log("    raw-metric queries the recorded series stand for")
    instant = {f"{q.panel_key}[{q.ref}]": q.instant for q in panel_queries(definitions, OPERATIONS_DASHBOARD)}
    raw = [(key, q["raw"], instant[key]) for key, q in recording.raw_queries(definitions, OPERATIONS_DASHBOARD).items()]
    result["raw"] = {row["query"]: row for row in time_panel_queries(prom, raw, scrape, now, runs, ranges, variables)}
    return result


def measure_rule_exprs(prom: Prometheus, rules: dict, runs: int, now: float, log=print) -> dict:
    """Every rule expression, as an instant query at `now`."""
    log("    rule expressions")
    timed: dict = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            if name in timed:  # the same alert in a proposed group
                name = f"{group['name']}/{name}"
            timed[name] = {"group": group["name"], **timed_query(prom, "query", {"query": rule["expr"], "time": f"{now:.3f}"}, runs)}
    return timed


def measure_groups(prom: Prometheus, intervals: dict[str, float], runs: int, every: str | None = None) -> dict:
    """Every loaded group's evaluationTime from /api/v1/rules (the median of the
    evaluations seen) as a share of the group's interval in the rendered files."""
    # The shortest interval a group is evaluated at; a 5m group contributes what it
    # evaluated in that time (at least its last evaluation, seen on the first poll).
    interval = parse_duration(every) if every else min(intervals.values())
    samples: dict[str, list[float]] = {}
    firing: dict[str, int] = {}
    deadline = time.monotonic() + interval * (runs + 2)
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        for group in prom.rule_groups():
            # A group not evaluated yet reports 0001-01-01 and 0 s: not a measurement.
            last = group.get("lastEvaluation") or ""
            if last and not last.startswith("0001-") and seen.get(group["name"]) != last:
                seen[group["name"]] = last
                samples.setdefault(group["name"], []).append(group["evaluationTime"] * 1000)
                firing[group["name"]] = sum(len(r.get("alerts", ())) for r in group.get("rules", ()))
        time.sleep(interval / 2)
    out = {}
    for name, v in samples.items():
        ms = statistics.median(v)
        out[name] = {"ms": round(ms, 2), "evaluations": len(v), "interval_s": intervals[name],
                     "share_pct": round(100 * ms / (1000 * intervals[name]), 4), "alerts": firing[name]}
    return out


def fill_head(workdir: Path, history: History, seconds: int, step: int, origin: int, log=print) -> dict:
    """What a Prometheus holding every series in its head costs: a second Prometheus with
    no blocks and no rules is given `seconds` of samples every `step` (the scrape interval)
    for every series, ending now, by remote write; then its memory. Not the benched one:
    its blocks end in the future (so that "now" stays inside the data while the bench
    measures), its head takes nothing older than its newest block, and Prometheus 3
    refuses remote-written samples more than 10 minutes ahead of its clock."""
    prom = Prometheus(workdir, {"global": {}}, extra_args=("--web.enable-remote-write-receiver",))
    try:
        prom.start(timeout=120)
        t0 = time.monotonic()
        end = int(time.time())
        end -= end % step
        labels = history.labels()
        stamps = list(range(end - seconds + step, end + step, step))
        columns = [history.values(t, origin) for t in stamps]
        for i in range(0, len(labels), 2000):
            batch = [(labels[j], [(t * 1000, col[j]) for t, col in zip(stamps, columns, strict=True)])
                     for j in range(i, min(i + 2000, len(labels)))]
            remote_write(f"{prom.url}/api/v1/write", batch, batch=500)
        took = time.monotonic() - t0
        time.sleep(30)  # let the write's garbage be collected before reading the heap
        out = {"samples_per_series": len(stamps), "write_s": round(took), **memory(prom)}
    finally:
        prom.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    log(f"    head-only Prometheus filled in {took:.0f}s: {out}")
    return out


def loadavg() -> list[float]:
    """The machine's 1/5/15-minute load averages: what else ran while the bench measured."""
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def memory(prom: Prometheus) -> dict:
    """Prometheus's own gauges (/metrics): resident set (includes the mmapped chunks and
    blocks it touched), Go heap in use, and the head's series."""
    with urllib.request.urlopen(f"{prom.url}/metrics", timeout=30) as response:
        text = response.read().decode()
    wanted = {"process_resident_memory_bytes": "rss_mib", "go_memstats_heap_inuse_bytes": "heap_inuse_mib",
              "go_memstats_alloc_bytes": "heap_alloc_mib"}
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            out[wanted[name]] = round(float(value) / 2**20, 1)
        elif name == "prometheus_tsdb_head_series":
            out["head_series"] = int(float(value))
    return out


def _longest_read(record: str, exprs: list[str]) -> float:
    """The longest range or subquery over which any of `exprs` reads `record` (0 if only
    at an instant)."""
    pattern = re.compile(rf"(?<![a-zA-Z0-9_:]){re.escape(record)}\s*(?:\{{[^}}]*\}})?\[(\d+[smhdwy])[\]:]")
    return max((parse_duration(m.group(1)) for e in exprs for m in pattern.finditer(e)), default=0.0)


def recorded_backfill_plan(groups: list[dict], plan: list[Tier], scaling_metrics: set[str], now: float,
                           days: int, range_panel_exprs: list[str] = (), interval: str = "1m",
                           ) -> list[list[tuple[str, list[dict], int, int]]]:
    """Stages of (what, groups, start, end) passes for `promtool tsdb create-blocks-from
    rules`, each stage run against the blocks of the stages before it.

    Stage 1, the rules that read raw metrics. Rules on provider-level metrics get `days`
    of history, or the provider history if another rule reads them over more (the 30-day
    budgets read the :rate1h series over 30 days); rules on per-pool or per-campaign
    metrics get theirs, at the rule's interval over the fine stretch and at the coarse
    step before it, where their range windows are widened to two coarse steps (a 5m rate
    over 5m samples would hold one sample and answer nothing): that changes the recorded
    values of the old stretch, not how many samples a panel reads.
    A per-pool rule whose series nothing reads over a range (no rule window, no range panel
    on any dashboard: the per-pool ratio the "closest to empty" bar gauge reads at now) gets the last
    hour only: its history would cost a run at 10,000 pools tens of minutes and no query
    reads it.
    Stage 2, the rules that read recorded series (SLO ratios, 30-day budgets), over the
    last 6 hours: alerts and panels read them at an instant.
    Every pass ends where the raw history ends (two hours past `now`): Prometheus cannot
    append its own evaluations before the end of the backfilled blocks, so the series the
    rules record while the bench measures are these."""
    all_exprs = [r["expr"] for g in groups for r in g["rules"]]
    end = max(t.end for t in plan) - 300

    def select(pred, widen: int = 0, chained: bool = False) -> list[dict]:
        out = []
        for g in groups:
            rules = []
            for r in g["rules"]:
                expr = r["expr"]
                if bool(_RECORDED_NAME.search(expr)) != chained or not pred(r):
                    continue
                if widen:
                    expr = _RANGE.sub(lambda m: f"[{max(parse_duration(m.group(1)), widen):g}s]", expr)
                rules.append({**r, "expr": expr})
            if rules:
                out.append({"name": g["name"], "interval": interval, "rules": rules})
        return out

    def scaling(rule: dict) -> bool:
        return any(re.search(rf"\b{m}\b", rule["expr"]) for m in scaling_metrics)

    def long(rule: dict) -> bool:
        return _longest_read(rule["record"], all_exprs) > days * DAY

    def ranged(rule: dict) -> bool:
        return _longest_read(rule["record"], all_exprs) > 0 or any(
            re.search(rf"(?<![a-zA-Z0-9_:]){re.escape(rule['record'])}(?![a-zA-Z0-9_:])", e) for e in range_panel_exprs)

    provider = next(t for t in plan if not t.scaling)
    first = [("provider-level, read over more than the panels' range", select(lambda r: not scaling(r) and long(r)),
              provider.start, end),
             ("provider-level, the rest", select(lambda r: not scaling(r) and not long(r)), end - days * DAY, end)]
    for tier in (t for t in plan if t.scaling):
        coarse = tier.step > parse_duration(interval)
        chosen = select(lambda r: scaling(r) and ranged(r), widen=2 * tier.step if coarse else 0)
        if coarse:
            chosen = [{**g, "interval": f"{tier.step}s"} for g in chosen]
        first.append((f"per-pool, every {chosen[0]['interval'] if chosen else '-'}", chosen, tier.start, min(tier.end, end)))
    first.append(("per-pool, read only at an instant", select(lambda r: scaling(r) and not ranged(r)), int(now) - 3600, end))
    second = [("reading recorded series", select(lambda r: True, chained=True), int(now) - 6 * 3600, end)]
    return [[p for p in stage if p[1] and p[2] < p[3]] for stage in (first, second)]


def backfill_recorded_history(prom: Prometheus, stages: list[list[tuple[str, list[dict], int, int]]], log=print) -> dict:
    """Run each stage's passes with promtool against `prom`, move the blocks in and restart
    it on them; then wait until it has compacted them into the raw blocks (so the timings
    are not those of overlapping blocks; 20 minutes at most). Returns what it took."""
    raw_blocks = sum(1 for d in prom.data_dir.iterdir() if (d / "meta.json").is_file())
    out_dir = prom.workdir / "recorded-blocks"
    took = {}
    for stage in stages:
        for what, groups, start, end in stage:
            t0 = time.monotonic()
            rule_path = prom.workdir / "recording-backfill.yaml"
            rule_path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False), encoding="utf-8")
            result = subprocess.run([binary("promtool"), "tsdb", "create-blocks-from", "rules", f"--start={int(start)}",
                                     f"--end={int(end)}", f"--url={prom.url}", f"--output-dir={out_dir}", "--quiet",
                                     str(rule_path)], capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"promtool rules backfill failed: {result.stdout}{result.stderr}")
            took[what] = {"s": round(time.monotonic() - t0), "rules": sum(len(g["rules"]) for g in groups),
                          "days": round((end - start) / DAY, 2)}
            log(f"    recorded history, {what}: {took[what]}")
        prom.stop()
        for block in out_dir.iterdir():
            block.rename(prom.data_dir / block.name)
        out_dir.rmdir()
        prom.start(timeout=1200)
    t0 = time.monotonic()
    log(f"    restarted; waiting for compaction ({raw_blocks} raw blocks)")
    blocks, deadline = None, time.monotonic() + 1200
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{prom.url}/metrics", timeout=30) as response:
            text = response.read().decode()
        blocks = next((int(float(line.split()[-1])) for line in text.splitlines()
                       if line.startswith("prometheus_tsdb_blocks_loaded ")), None)
        if blocks is not None and blocks <= raw_blocks + 2:
            break
        time.sleep(15)
    log(f"    {blocks} blocks after compaction")
    return {"passes": took, "blocks_after": blocks, "compaction_s": round(time.monotonic() - t0)}


# ------------------------------------------------------------------ one scale


def run_scale(definitions, config, pools: int, args, work: Path, recording_groups: list[dict], log=print) -> dict:
    topology = Topology.scaled(pools, len(definitions.contract.labels["provider"]["values"]))
    log(f"  {pools} pools: {topology.campaigns} campaigns, {topology.providers} providers")
    history = History(definitions, topology, definitions.contract.scrape_job)
    provider_step = args.provider_step or int(parse_duration(config.scrape_interval))
    end = int(time.time()) + 2 * 3600
    end -= end % max(args.step, args.coarse_step, provider_step)
    long_metrics = long_history_metrics(definitions, recording_groups)
    plan = history_plan(end, args.days, args.step, args.provider_days, provider_step, args.fine_hours, args.coarse_step,
                        long_metrics)
    prom_dir = work / f"prometheus-{pools}"
    rules, intervals = rule_file(definitions, config, recording_groups, args.rule_interval)
    proposed = [g for path in args.proposed or () for g in proposed_groups(path, rules)]
    # The shipped groups are measured alone, as production runs them; then the compared
    # (before/proposed) groups beside them, for the before-and-after tables.
    compared = {"groups": []}
    for group in proposed:
        intervals[group["name"]] = parse_duration(group["interval"])
        compared["groups"].append({k: v for k, v in group.items() if k != "instead_of"}
                                  | {"interval": args.rule_interval or group["interval"]})
    retention = f"{max(args.days, args.provider_days) + 5}d"
    prom = Prometheus(prom_dir, {"global": {"evaluation_interval": args.rule_interval or GLOBAL_EVALUATION_INTERVAL}}, {"rules.yaml": dump_yaml(rules)},
                      extra_args=(f"--storage.tsdb.retention.time={retention}", f"--storage.tsdb.max-block-duration={BLOCK // 3600}h",
                                  "--web.enable-remote-write-receiver"))
    t0 = time.monotonic()
    samples = backfill_history(history, prom.data_dir, prom_dir, plan, log=log)
    backfill_s = time.monotonic() - t0
    log(f"    backfilled {samples:,} samples of {history.series:,} series in {backfill_s:.0f}s")
    ranges = {label: seconds for label, seconds in RANGES.items() if seconds <= args.days * DAY}
    scaling_metrics = {c[0].split("{", 1)[0] for c in history.counters if c[5]} | {g[0].split("{", 1)[0] for g in history.gauges if g[4]}
    try:
        prom.start(timeout=600)
        now = time.time()
        variables = default_variables(definitions, OPERATIONS_DASHBOARD, lambda expr: prom.query(expr, now))
        measured = measure_raw(prom, definitions, config, args.runs, now, ranges, variables, log=log)
        range_panels = [q.expr for dash in definitions.dashboards for q in panel_queries(definitions, dash.uid) if not q.instant]
        stages = recorded_backfill_plan(recording_groups, plan, scaling_metrics, now, args.days, range_panels)
        inputs = [{"name": g["name"], "interval": g["interval"], "rules": [r for r in g["rules"] if "record" in r]}
                  for g in proposed]
        if any(g["rules"] for g in inputs):  # read at an instant: the last hour will do
            stages[0].append(("proposed restructure's inputs", [g for g in inputs if g["rules"]], int(now) - 3600,
                              max(t.end for t in plan) - 300))
        recorded = backfill_recorded_history(prom, stages, log=log)
        load = {"before_rules": loadavg()}
        measured["rule_exprs"] = measure_rule_exprs(prom, {"groups": rules["groups"] + compared["groups"]}, args.runs, now,
                                                    log=log)
        log("    rule group evaluation (/api/v1/rules), the shipped groups alone")
        measured["rules"] = measure_groups(prom, intervals, args.runs, args.rule_interval)
        measured["memory"] = memory(prom)
        log(f"    memory: {measured['memory']}")
        load["after_rules"] = loadavg()
        if compared["groups"]:
            log("    rule group evaluation, the compared groups beside them")
            prom.reload_rules({"rules.yaml": dump_yaml(rules), "compared.yaml": dump_yaml(compared)})
            measured["rules_beside"] = measure_groups(prom, intervals, args.runs, args.rule_interval)
            load["after_compared"] = loadavg()
            prom.reload_rules({"rules.yaml": dump_yaml(rules)})  # the panels are timed beside production's ruler only
        log("    dashboard queries, as Grafana sends them")
        queries = [(f"{q.panel_key}[{q.ref}]", q.expr, q.instant) for q in panel_queries(definitions, OPERATIONS_DASHBOARD)]
        measured["queries"] = time_panel_queries(prom, queries, parse_duration(config.scrape_interval), now, args.runs, ranges,
                                                 variables)
        load["after_panels"] = loadavg()
        measured["loadavg"] = load
        prom.stop()  # not measured beside the head-only one
        measured["memory_with_head"] = fill_head(work / f"head-{pools}", history, 3600, provider_step,
                                                 min(t.start for t in plan), log=log)
    finally:
        prom.stop()
        if args.keep is None:
            subprocess.run(["rm", "-rf", str(prom_dir)], check=False)
        else:
            args.keep.mkdir(parents=True, exist_ok=True)
            subprocess.run(["rm", "-rf", str(args.keep / prom_dir.name)], check=False)
            prom_dir.rename(args.keep / prom_dir.name)
            log(f"    kept {args.keep / prom_dir.name}")
    predicted = {name: b.series for name, b in budget(definitions.contract, topology).items()}
    return {"pools": pools, "campaigns": topology.campaigns, "providers": topology.providers,
            "series_total": history.series, "series_scaling": history.count(True), "series_provider": history.count(False),
            "plan": [t._asdict() | {"start": t.start - end, "end": t.end - end, "names": sorted(t.names or ())} for t in plan],
            "samples": samples, "backfill_s": round(backfill_s), "predicted": predicted,
            "budget": {name: b.formula for name, b in budget(definitions.contract, topology).items()},
            "ranges": list(ranges), "variables": variables, "recorded_history": recorded, **measured}


# ------------------------------------------------------------------ report


def _series_of_prom_metrics(series: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, n in series.items():
        base = next((name.removesuffix(s) for s in ("_bucket", "_count", "_sum") if name.startswith("reward_payout_duration_seconds") and name.endswith(s)), name)
        out[base] = out.get(base, 0) + n
    return out


def _ms(cell: dict) -> str:
    return f"{cell['exec_ms']:g} / {cell['wall_ms']:g}"


def _share(cell: dict) -> str:
    mark = " ⚠" if cell["share_pct"] >= GROUP_TARGET_PCT else ""
    return f"{cell['ms']:g} ms = {cell['share_pct']:.3g}%{mark}"


def _group_samples(scale: dict, group: str) -> str:
    """Samples the group's expressions read in one evaluation (their instant queries at now)."""
    counts = [c.get("samples") for c in scale["rule_exprs"].values() if c["group"] == group]
    return f"{sum(counts):,}" if counts and None not in counts else "-"


def _duration(seconds: int) -> str:
    return f"{seconds // 60}m{seconds % 60:02d}s"


def report(results: dict) -> str:
    scales = results["scales"]
    ranges = scales[-1].get("ranges", list(RANGES))
    m = results["machine"]
    variables = ", ".join(f"${k} = {'All' if v == '.*' else v}" for k, v in scales[-1].get("variables", {}).items())
    lines = [f"Machine: `nproc` {m['nproc']}, {m['memory_gib']} GiB memory, Prometheus {m['prometheus']} (Debian). "
             f"Command: `{results.get('command', 'reward-obs bench')}`, {_duration(results.get('run_s', 0))} in all"
             f"{' (' + results['note'] + ')' if results.get('note') else ''}. "
             f"History (bench/README.md, \"History\"): provider-level series {results['provider_days']} days every "
             f"{results['provider_step']}s; per-pool and per-campaign series every {results['step']}s over the last "
             f"{results['fine_hours']}h and, for the metrics a range panel or recording rule reads, every "
             f"{results['coarse_step']}s back to {results['days']} days; backfilled with promtool in 18h blocks. The recording "
             "rules that read raw metrics backfilled with `promtool tsdb create-blocks-from rules` over the same stretches "
             "(the rest evaluated live by Prometheus from them), Prometheus restarted on it and left to compact before "
             "anything after the raw \"before\" queries was measured. "
             + (f"Every rule group evaluated every {results['rule_interval']} (not its rendered interval: the extra load is in "
                "every time). " if results.get("rule_interval")
                else "Rule groups evaluated at their rendered intervals (1m, 5m), as in production. " if "rule_interval" in results
                else "Every rule group evaluated every 10s (not its rendered interval: the extra load is in every time). ")
             + f"Times are medians of {results['runs']} runs after a warm-up: **exec** is Prometheus's own execTotalTime "
             "(stats=all), **wall** is request to last byte over loopback (JSON encoding included). Range queries use "
             "Grafana's step for a 1,100-point panel (24h: 1m, 7d: 10m) and its $__rate_interval; "
             f"instant panels are one query at now; variables as Grafana sets them on load ({variables}).", ""]
    header = "| | " + " | ".join(f"{s['pools']} pools" for s in scales) + " |"
    sep = "|---|" + "---|" * len(scales)
    lines += ["**Size and memory**", "", header, sep]
    lines.append("| campaigns / providers | " + " | ".join(f"{s['campaigns']} / {s['providers']}" for s in scales) + " |")
    lines.append("| series (per-pool and per-campaign + provider-level) | " + " | ".join(
        f"{s['series_total']:,} ({s['series_scaling']:,} + {s['series_provider']:,})" for s in scales) + " |")
    lines.append("| samples backfilled | " + " | ".join(f"{s['samples']:,}" for s in scales) + " |")
    lines.append("| backfill time (write + promtool), s | " + " | ".join(str(s["backfill_s"]) for s in scales) + " |")
    lines.append("| recorded history (promtool rules), s | " + " | ".join(
        " + ".join(str(v["s"]) for v in s["recorded_history"]["passes"].values()) for s in scales) + " |")
    lines.append("| whole scale, wall | " + " | ".join(_duration(s.get("scale_s", 0)) for s in scales) + " |")
    lines.append("| Prometheus resident memory (RSS) after the rule groups settled, MiB | " + " | ".join(f"{s['memory']['rss_mib']:,}" for s in scales) + " |")
    lines.append("| Go heap in use, MiB | " + " | ".join(f"{s['memory']['heap_inuse_mib']:,}" for s in scales) + " |")
    lines.append("| load average (1m) at rules / after panels, 2 cores | " + " | ".join(
        f"{s['loadavg']['before_rules'][0]:g} / {s['loadavg']['after_panels'][0]:g}" for s in scales) + " |")
    lines.append("| a second Prometheus holding only the head: every series, 1h of samples each by remote write: RSS / Go heap, MiB | " + " | ".join(
        f"{s['memory_with_head']['rss_mib']:,} / {s['memory_with_head']['heap_inuse_mib']:,}" for s in scales) + " |")
    lines.append("| head series | " + " | ".join(f"{s['memory_with_head']['head_series']:,}" for s in scales) + " |")
    lines.append("| RSS per 1,000 pools (head-only Prometheus), MiB | " + " | ".join(
        f"{1000 * s['memory_with_head']['rss_mib'] / s['pools']:,.0f}" for s in scales) + " |")
    if len(scales) >= 2:
        a, b = scales[-2], scales[-1]
        for key, what in (("memory", "blocks only, after the rule groups settled"),
                          ("memory_with_head", "head-only Prometheus, every series in the head")):
            per = 1000 * (b[key]["rss_mib"] - a[key]["rss_mib"]) / (b["pools"] - a["pools"])
            heap = 1000 * (b[key]["heap_inuse_mib"] - a[key]["heap_inuse_mib"]) / (b["pools"] - a["pools"])
            lines += ["", f"Memory per 1,000 more pools, from {a['pools']:,} to {b['pools']:,} ({what}): {per:,.0f} MiB "
                      f"resident, {heap:,.0f} MiB Go heap in use."]
    alone = " The shipped groups alone, as production runs them; the compared groups below ran beside them afterwards." \
        if any(s.get("rules_beside") for s in scales) else ""
    lines += ["", f"**Rule groups**: evaluationTime from /api/v1/rules (median of the evaluations seen) as a share of the "
              f"group's interval in the rendered rule files (⚠ = {GROUP_TARGET_PCT:g}% or more).{alone} Alerts = alert instances "
              "pending or firing; samples = samples its expressions read in one evaluation (totalQueryableSamples of their "
              "instant queries at now: what the group costs whatever else runs on the machine)", "",
              "| group | interval | " + " | ".join(f"{s['pools']} pools" for s in scales) + " | samples | alerts |",
              "|---|---|" + "---|" * (len(scales) + 2)]
    for group in sorted(scales[-1]["rules"]):
        cells = [_share(s["rules"][group]) if group in s["rules"] else "-" for s in scales]
        interval = scales[-1]["rules"][group]["interval_s"]
        alerts = " → ".join(str(s["rules"].get(group, {}).get("alerts", "-")) for s in scales)
        samples = " → ".join(_group_samples(s, group) for s in scales)
        lines.append(f"| `{group}` | {interval / 60:g}m | " + " | ".join(cells) + f" | {samples} | {alerts} |")
    # Runs before `instead_of` compared their proposed groups with `reward-pools`.
    compared = results.get("compared") or {g: ["reward-pools"] for g in scales[-1]["rules"] if g.startswith("proposed-")}
    lines += comparison_tables(scales, compared, sep)
    lines += ["", "**Rule expressions** (instant query at now, exec / wall ms / samples read)", "",
              "| rule | group | " + " | ".join(f"{s['pools']} pools" for s in scales) + " |", "|---|---|" + "---|" * len(scales)]
    for name, cell in scales[-1]["rule_exprs"].items():
        lines.append(f"| {name} | {cell['group']} | " + " | ".join(
            f"{_ms(s['rule_exprs'][name])} / {s['rule_exprs'][name].get('samples') or 0:,}" if name in s["rule_exprs"] else "-"
            for s in scales) + " |")
    for span in ranges:
        target = PANEL_TARGET_MS[span]
        lines += ["", f"**Operations dashboard queries, {span}** (exec / wall ms; ⚠ = wall over {target:g} ms at the "
                  "largest scale; instant panels: one query at now)", "",
                  "| panel query | " + " | ".join(f"{s['pools']} pools" for s in scales) +
                  " | series returned | samples read | wall growth, last two scales |",
                  "|---|" + "---|" * (len(scales) + 3)]
        for i, row in enumerate(scales[-1]["queries"]):
            cells = [_ms(s["queries"][i][span]) for s in scales]
            growth = ""
            if len(scales) >= 2:
                a, b = scales[-2]["queries"][i][span]["wall_ms"], scales[-1]["queries"][i][span]["wall_ms"]
                growth = f"×{b / a:.1f}" if a else ""
            mark = " ⚠" if scales[-1]["queries"][i][span]["wall_ms"] > target else ""
            kind = " (instant)" if row.get("instant") else ""
            series = " → ".join(str(s["queries"][i][span]["series"]) for s in scales)
            read = " → ".join(f"{s['queries'][i][span].get('samples') or 0:,}" for s in scales)
            lines.append(f"| `{row['query']}`{kind}{mark} | " + " | ".join(cells) + f" | {series} | {read} | {growth} |")
    if any(s.get("raw") for s in scales):
        lines += ["", "**Recorded series, before → after** (exec / wall ms: the same answer from the raw metrics → the "
                  "panel's query on the recorded series)", "",
                  "| panel query | " + " | ".join(f"{s['pools']} pools, {span}" for span in ranges for s in scales) + " |",
                  "|---|" + "---|" * (len(ranges) * len(scales))]
        after = [{row["query"]: row for row in s["queries"]} for s in scales]
        for key in scales[-1]["raw"]:
            cells = [f"{_ms(s['raw'][key][span])} → {_ms(after[j][key][span])} ({s['raw'][key][span].get('samples') or 0:,} → "
                     f"{after[j][key][span].get('samples') or 0:,} samples)" for span in ranges for j, s in enumerate(scales)]
            lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
    lines += ["", "**Series per metric** (the cardinality budget from the contract; ✓ = Prometheus holds exactly that many)", "",
              "| metric | budget | " + " | ".join(f"{s['pools']} pools" for s in scales) + " |", "|---|---|" + "---|" * len(scales)]
    for name, formula in scales[-1]["budget"].items():
        cells = []
        for s in scales:
            measured = _series_of_prom_metrics(s["series"]).get(name, 0)
            mark = " ✓" if measured == s["predicted"][name] else f" (Prometheus: {measured})"
            cells.append(f"{s['predicted'][name]:,}{mark}")
        lines.append(f"| {name} | {formula} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def comparison_tables(scales: list[dict], compared: dict[str, list[str]], sep: str) -> list[str]:
    """One table per set of rendered groups that measured groups stand instead of
    (`compared`: measured group -> rendered groups): each group's share of its interval,
    and the ruler time a minute of either side, both sides measured at the same time
    (`rules_beside`; runs before it measured every group at once, in `rules`)."""
    def beside(s):
        return s.get("rules_beside") or s["rules"]

    def per_minute(s, groups):
        return sum(beside(s)[g]["ms"] * 60 / beside(s)[g]["interval_s"] for g in groups if g in beside(s))

    lines: list[str] = []
    families: dict[tuple[str, ...], list[str]] = {}
    for group, instead in sorted(compared.items()):
        families.setdefault(tuple(sorted(instead)), []).append(group)
    for shipped, others in sorted(families.items()):
        kind = "before" if all(g.startswith("before-") for g in others) else "proposed"
        title = (f"{', '.join(f'`{g}`' for g in shipped)} as shipped, and the groups they replaced (measured in the same Prometheus)"
                 if kind == "before" else
                 f"{', '.join(f'`{g}`' for g in shipped)} as shipped, and a proposed restructure (measured in the same Prometheus)")
        lines += ["", f"**{title}**", "", "| | " + " | ".join(f"{s['pools']} pools" for s in scales) + " |", sep]
        for group in [*shipped, *others]:
            lines.append(f"| `{group}` | " + " | ".join(_share(beside(s)[group]) if group in beside(s) else "-" for s in scales) + " |")
        lines.append(f"| ruler time a minute, {kind} vs shipped | " + " | ".join(
            f"{per_minute(s, others):.4g} ms vs {per_minute(s, shipped):.4g} ms" for s in scales) + " |")
    return lines


def machine_facts() -> dict:
    m = machine.facts()
    return {"nproc": m["nproc"], "memory_gib": round(m["memory_gib"]), "prometheus": prometheus_version()}


def cmd_bench(args) -> int:

    def terminate(signum, frame):  # stop like Ctrl-C, so servers stop and temporary TSDBs are removed
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    started = time.time()
    try:
        return _bench(args)
    except KeyboardInterrupt:  # servers stopped and the work directory removed on the way out
        done = args.out / "results.json"
        print(f"reward-obs bench: interrupted; the scales measured before it are in {done}"
              if done.is_file() and done.stat().st_mtime >= started
              else "reward-obs bench: interrupted before any scale was measured", file=sys.stderr)
        return 130


def _bench(args) -> int:
    if args.from_json:  # report runs made separately as one (scales in the order given)
        runs = [json.loads(path.read_text(encoding="utf-8")) for path in args.from_json]
        results = {**runs[0], "scales": [s for run in runs for s in run["scales"]],
                   "command": "` and `".join(run["command"] for run in runs),
                   "run_s": sum(run.get("run_s", 0) for run in runs)}
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        (args.out / "RESULTS.md").write_text("# Scale benchmark results\n\nWritten by `reward-obs bench` (`make bench`).\n\n"
                                             + report(results), encoding="utf-8")
        return 0
    definitions, config = load(args)
    recording_groups = recording.prometheus_groups(definitions)  # the dashboard reads recorded series
    results = {"machine": machine_facts(), "days": args.days, "step": args.step, "runs": args.runs,
               "rule_interval": args.rule_interval,
               "compared": {g["name"]: list(g.get("instead_of", ())) for path in args.proposed or ()
                            for g in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]},
               "coarse_step": args.coarse_step, "fine_hours": args.fine_hours, "provider_days": args.provider_days,
               "provider_step": args.provider_step or int(parse_duration(config.scrape_interval)),
               "scrape_interval": config.scrape_interval, "command": " ".join(["reward-obs", *sys.argv[1:]]), "scales": []}
    print(f"reward-obs bench: {results['machine']}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t_run = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reward-obs-bench-", dir=args.workdir) as work:
        for pools in [n for part in args.scales for n in part]:
            t0 = time.monotonic()
            results["scales"].append(run_scale(definitions, config, pools, args, Path(work), recording_groups, log=log))
            results["scales"][-1]["scale_s"] = round(time.monotonic() - t0)
            results["run_s"] = round(time.monotonic() - t_run)
            (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    text = report(results)
    (args.out / "RESULTS.md").write_text("# Scale benchmark results\n\nWritten by `reward-obs bench` (`make bench`).\n\n" + text,
                                         encoding="utf-8")
    print(text)
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure rule evaluation and dashboard query cost on a real Prometheus at 10/100/1,000 pools",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", type=lambda s: [int(x) for x in s.replace(",", " ").split()], nargs="+", default=[list(SCALES)],
                   help="pool counts, space- or comma-separated (default 10 100 1000)")
    p.add_argument("--days", type=int, default=7, help="days of history to backfill (at least 2: a panel compares with a day ago; "
                   "ranges longer than the history are not timed)")
    p.add_argument("--step", type=int, default=60, help="seconds between per-pool and per-campaign samples over the last --fine-hours")
    p.add_argument("--fine-hours", type=int, default=30, help="hours of per-pool history at --step: the rules read `offset 1d` "
                   "plus windows of up to 3h, the 24h panels 24h (default 30)")
    p.add_argument("--coarse-step", type=int, default=300, help="seconds between per-pool samples older than --fine-hours (default 300)")
    p.add_argument("--provider-days", type=int, default=30, help="days of history of the provider-level series (the 30-day SLO budgets)")
    p.add_argument("--provider-step", type=int, default=0, help="seconds between provider-level samples (default: the stack's scrape interval)")
    p.add_argument("--proposed", type=Path, nargs="+", help="rule files of groups to measure next to the rendered ones, each "
                   "naming the rendered groups it stands instead of (bench/proposed-rules.yaml, bench/before-rules.yaml); "
                   "their recording rules are backfilled over the last hour")
    p.add_argument("--from-json", type=Path, nargs="+", help="write RESULTS.md and results.json from these results.json "
                   "files (separate runs, e.g. one scale each) instead of running")
    p.add_argument("--rule-interval", help="evaluate every rule group at this interval (e.g. 10s) instead of its rendered "
                   "one: more evaluations to take the median of, but the extra load is measured too")
    p.add_argument("--runs", type=int, default=5, help="timed runs per query (after one warm-up)")
    p.add_argument("--out", type=Path, default=Path("bench"), help="where results.json and RESULTS.md go")
    p.add_argument("--workdir", help="parent of the temporary TSDB directories (default: system temp)")
    p.add_argument("--keep", type=Path, help="move each scale's Prometheus directory (TSDB and rules) here instead of deleting it")
    p.set_defaults(handler=cmd_bench)
