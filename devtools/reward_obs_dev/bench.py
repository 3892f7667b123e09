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
   recording rules (bench copy: groups every 10s instead of 1m); the bench reads every
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
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

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
from reward_obs_dev.servers import Prometheus, backfill_recording_rules, binary, prometheus_version
from reward_obs_dev.simulator import Simulator, Topology

SCALES = (10, 100, 1000)
RANGES = {"24h": 86400, "7d": 7 * 86400}
BLOCK = 18 * 3600  # promtool and Prometheus block size
DAY = 86400
INSTANCE = "reward-backend:9464"  # a label value only: nothing is scraped
BENCH_RULE_INTERVAL = "10s"
TARGET_MS = 100.0
OPERATIONS_DASHBOARD = "reward-operations"
_COUNTER_SUFFIXES = ("_total", "_bucket", "_count", "_sum")


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
        self.counters: list[tuple[str, float, float, int, bool]] = []  # prefix, v0, rate, phase, integer
        self.gauges: list[tuple[str, float, float, int]] = []  # prefix, level, amplitude, phase
        for name, values in sorted(after.items()):
            label_names = sim.label_names(name)
            for key, value in sorted(values.items()):
                labels = ",".join(f'{n}="{v}"' for n, v in zip(label_names, key, strict=True))
                prefix = f'{name}{{{labels},job="{job}",instance="{INSTANCE}"}} '
                phase = zlib.crc32(prefix.encode()) % 4
                if name.endswith(_COUNTER_SUFFIXES):
                    start = before[name].get(key, 0.0)
                    self.counters.append((prefix, start, (value - start) / warmup, phase, not name.endswith("_sum")))
                else:
                    steady = name in ("reward_provider_up", "reward_campaigns")
                    self.gauges.append((prefix, value, 0.0 if steady else 0.1 * value, phase))

    @property
    def series(self) -> int:
        return len(self.counters) + len(self.gauges)

    def write(self, out, start: int, end: int, step: int, origin: int) -> int:
        """Samples for start <= t < end, every `step` seconds; counters count from `origin`."""
        w = 2 * math.pi / DAY
        amplitude = 0.5 / w
        shifts = [k * math.pi / 2 for k in range(4)]
        written = 0
        t = start
        while t < end:
            ts = f" {t}\n"
            integral = [(t - origin) + amplitude * (math.cos(w * origin + s) - math.cos(w * t + s)) for s in shifts]
            wave = [math.sin(w * t + s) for s in shifts]
            parts = [f"{p}{int(v0 + r * integral[ph])}{ts}" if whole else f"{p}{v0 + r * integral[ph]:.3f}{ts}"
                     for p, v0, r, ph, whole in self.counters]
            parts += [f"{p}{level + a * wave[ph]:.3f}{ts}" for p, level, a, ph in self.gauges]
            out.write("".join(parts))
            written += len(parts)
            t += step
        return written


def backfill_week(history: History, data_dir: Path, work: Path, end: int, days: int, step: int, log=print) -> int:
    """Write and backfill [end - days, end) chunk by chunk (one 18h block each), running
    promtool on one chunk while the next is written."""
    start = end - days * DAY
    start -= start % step
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
                samples += history.write(out, chunk_start, chunk_end, step, origin=start)
                out.write("# EOF\n")
            if running:
                job, running = running, None
                finish(job)
            running = (subprocess.Popen([binary("promtool"), "tsdb", "create-blocks-from", "openmetrics",
                                         f"--max-block-duration={BLOCK // 3600}h", str(path), str(data_dir)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), path)
            log(f"    chunk {index}: {time.strftime('%m-%d %H:%M', time.gmtime(chunk_start))} .. "
                f"{time.strftime('%m-%d %H:%M', time.gmtime(chunk_end))} UTC written")
            chunk_start = chunk_end
            index += 1
        if running:
            job, running = running, None
            finish(job)
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
    return {"exec_ms": round(statistics.median(execs), 1), "wall_ms": round(statistics.median(walls), 1),
            "series": len(result), "points": points, "bytes": len(body)}


def rule_file(definitions, config, extra_groups: list[dict] = ()) -> dict:
    rules = yaml.safe_load(render_files(definitions, config)[PROMETHEUS_RULE_FILE])
    rules["groups"] = [*rules["groups"], *extra_groups]
    for group in rules["groups"]:
        group["interval"] = BENCH_RULE_INTERVAL
    return rules


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


def measure(prom: Prometheus, definitions, config, rules: dict, runs: int, now: float, ranges: dict[str, int],
            variables: dict[str, str], log=print) -> dict:
    """Series counts, rule expressions, rule group evaluation and the raw "before" queries
    (all on raw history only)."""

    scrape = parse_duration(config.scrape_interval)
    result: dict = {"raw": {}, "rules": {}, "rule_exprs": {}, "series": {}}
    log("    series per metric")
    for row in prom.query(f'count by (__name__) ({{job="{definitions.contract.scrape_job}"}})', now):
        result["series"][row["metric"]["__name__"]] = int(row["value"][1])
    log("    raw-metric queries the recorded series stand for")
    instant = {f"{q.panel_key}[{q.ref}]": q.instant for q in panel_queries(definitions, OPERATIONS_DASHBOARD)}
    raw = [(key, q["raw"], instant[key]) for key, q in recording.raw_queries(definitions, OPERATIONS_DASHBOARD).items()]
    result["raw"] = {row["query"]: row for row in time_panel_queries(prom, raw, scrape, now, runs, ranges, variables)}
    log("    rule expressions")
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            result["rule_exprs"][name] = {"group": group["name"],
                                         **timed_query(prom, "query", {"query": rule["expr"], "time": f"{now:.3f}"}, runs)}
    log("    rule group evaluation (/api/v1/rules)")
    interval = parse_duration(BENCH_RULE_INTERVAL)
    samples: dict[str, list[float]] = {}
    deadline = time.monotonic() + interval * (runs + 2)
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        for group in prom.rule_groups():
            if group.get("lastEvaluation") and seen.get(group["name"]) != group["lastEvaluation"]:
                seen[group["name"]] = group["lastEvaluation"]
                samples.setdefault(group["name"], []).append(group["evaluationTime"] * 1000)
        time.sleep(interval / 2)
    result["rules"] = {name: {"ms": round(statistics.median(v), 2), "evaluations": len(v)} for name, v in samples.items()}
    return result


def backfill_recorded_history(prom: Prometheus, groups: list[dict], start: float, end: float, log=print) -> int:
    """The recording rules' history over the backfilled week (servers.backfill_recording_rules),
    then wait until Prometheus has compacted the new blocks into the raw ones, so the
    timings are not those of overlapping blocks. Returns the number of blocks then loaded."""
    t0 = time.monotonic()
    raw_blocks = sum(1 for d in prom.data_dir.iterdir() if (d / "meta.json").is_file())
    backfill_recording_rules(prom, [{**g, "interval": "1m"} for g in groups], start, end)
    log(f"    recording rules backfilled in {time.monotonic() - t0:.0f}s; waiting for compaction ({raw_blocks} raw blocks)")
    # Overlapping blocks are merged into the raw ones; wait until that is done, or 5 min
    # (blocks that overlap the head wait for the head; queries read overlapping blocks fine).
    blocks, deadline = None, time.monotonic() + 300
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{prom.url}/metrics", timeout=30) as response:
            text = response.read().decode()
        blocks = next((int(float(line.split()[-1])) for line in text.splitlines()
                       if line.startswith("prometheus_tsdb_blocks_loaded ")), None)
        if blocks is not None and blocks <= raw_blocks + 2:
            break
        time.sleep(15)
    log(f"    {blocks} blocks after compaction")
    return blocks


# ------------------------------------------------------------------ one scale


def run_scale(definitions, config, pools: int, days: int, step: int, runs: int, work: Path,
              recording_groups: list[dict], log=print, keep: Path | None = None) -> dict:
    topology = Topology.scaled(pools, len(definitions.contract.labels["provider"]["values"]))
    log(f"  {pools} pools: {topology.campaigns} campaigns, {topology.providers} providers")
    history = History(definitions, topology, definitions.contract.scrape_job)
    end = int(time.time()) + 2 * 3600
    end -= end % step
    prom_dir = work / f"prometheus-{pools}"
    rules = rule_file(definitions, config, recording_groups)
    prom = Prometheus(prom_dir, {"global": {"evaluation_interval": BENCH_RULE_INTERVAL}}, {"rules.yaml": dump_yaml(rules)},
                      extra_args=("--storage.tsdb.retention.time=15d", f"--storage.tsdb.max-block-duration={BLOCK // 3600}h"))
    t0 = time.monotonic()
    samples = backfill_week(history, prom.data_dir, prom_dir, end, days, step, log=log)
    backfill_s = time.monotonic() - t0
    log(f"    backfilled {samples:,} samples of {history.series:,} series in {backfill_s:.0f}s")
    ranges = {label: seconds for label, seconds in RANGES.items() if seconds <= days * DAY}
    try:
        prom.start(timeout=300)
        now = time.time()
        variables = default_variables(definitions, OPERATIONS_DASHBOARD, lambda expr: prom.query(expr, now))
        measured = measure(prom, definitions, config, rules, runs, now, ranges, variables, log=log)
        blocks_after = backfill_recorded_history(prom, recording_groups, end - days * DAY, now, log=log)
        log("    dashboard queries, as Grafana sends them")
        queries = [(f"{q.panel_key}[{q.ref}]", q.expr, q.instant) for q in panel_queries(definitions, OPERATIONS_DASHBOARD)]
        measured["queries"] = time_panel_queries(prom, queries, parse_duration(config.scrape_interval), now, runs, ranges, variables)
    finally:
        prom.stop()
        if keep is None:
            subprocess.run(["rm", "-rf", str(prom_dir)], check=False)
        else:
            keep.mkdir(parents=True, exist_ok=True)
            subprocess.run(["rm", "-rf", str(keep / prom_dir.name)], check=False)
            prom_dir.rename(keep / prom_dir.name)
            log(f"    kept {keep / prom_dir.name}")
    predicted = {name: b.series for name, b in budget(definitions.contract, topology).items()}
    return {"pools": pools, "campaigns": topology.campaigns, "providers": topology.providers,
            "series_total": history.series, "samples": samples, "backfill_s": round(backfill_s), "predicted": predicted,
            "budget": {name: b.formula for name, b in budget(definitions.contract, topology).items()},
            "ranges": list(ranges), "variables": variables, "blocks_after_recording_backfill": blocks_after, **measured}


# ------------------------------------------------------------------ report


def _series_of_prom_metrics(series: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, n in series.items():
        base = next((name.removesuffix(s) for s in ("_bucket", "_count", "_sum") if name.startswith("reward_payout_duration_seconds") and name.endswith(s)), name)
        out[base] = out.get(base, 0) + n
    return out


def _ms(cell: dict) -> str:
    return f"{cell['exec_ms']:g} / {cell['wall_ms']:g}"


def report(results: dict) -> str:
    scales = results["scales"]
    ranges = scales[-1].get("ranges", list(RANGES))
    m = results["machine"]
    variables = ", ".join(f"${k} = {'All' if v == '.*' else v}" for k, v in scales[-1].get("variables", {}).items())
    lines = [f"Machine: `nproc` {m['nproc']}, {m['memory_gib']} GiB memory, Prometheus {m['prometheus']} (Debian). "
             f"History: {results['days']} days at {results['step']}s resolution per series (the stack scrapes every "
             f"{results['scrape_interval']}), backfilled with promtool in 18h blocks; the recording rules' history "
             "backfilled with `promtool tsdb create-blocks-from rules` and Prometheus restarted on it and left to compact. "
             f"Times are medians of {results['runs']} runs after a warm-up: **exec** is Prometheus's own execTotalTime "
             "(stats=all), **wall** is request to last byte over loopback (JSON encoding included). Range queries use "
             "Grafana's step for a 1,100-point panel (24h: 1m, 7d: 10m) and its $__rate_interval (24h: 2m, 7d: 10m30s); "
             f"instant panels are one query at now; variables as Grafana sets them on load ({variables}).", ""]
    header = "| | " + " | ".join(f"{s['pools']} pools" for s in scales) + " |"
    sep = "|---|" + "---|" * len(scales)
    lines += ["**Size**", "", header, sep]
    lines.append("| campaigns / providers | " + " | ".join(f"{s['campaigns']} / {s['providers']}" for s in scales) + " |")
    lines.append("| series | " + " | ".join(f"{s['series_total']:,}" for s in scales) + " |")
    lines.append("| samples backfilled | " + " | ".join(f"{s['samples']:,}" for s in scales) + " |")
    lines.append("| backfill time (s) | " + " | ".join(str(s["backfill_s"]) for s in scales) + " |")
    lines += ["", "**Rule groups**: evaluationTime from /api/v1/rules, ms (median of the evaluations seen)", "", header, sep]
    for group in sorted(scales[-1]["rules"]):
        lines.append(f"| {group} | " + " | ".join(f"{s['rules'].get(group, {}).get('ms', '-')}" for s in scales) + " |")
    lines += ["", "**Rule expressions** (instant query at now, exec / wall ms)", "", header, sep]
    for name in scales[-1]["rule_exprs"]:
        lines.append(f"| {name} | " + " | ".join(_ms(s["rule_exprs"][name]) for s in scales if name in s["rule_exprs"]) + " |")
    for span in ranges:
        lines += ["", f"**Operations dashboard queries, {span}** (exec / wall ms; ⚠ = wall over {TARGET_MS:g} ms at the "
                  "largest scale; instant panels: one query at now)", "",
                  "| panel query | " + " | ".join(f"{s['pools']} pools" for s in scales) + " | series returned | wall growth, last two scales |",
                  "|---|" + "---|" * (len(scales) + 2)]
        for i, row in enumerate(scales[-1]["queries"]):
            cells = [_ms(s["queries"][i][span]) for s in scales]
            growth = ""
            if len(scales) >= 2:
                a, b = scales[-2]["queries"][i][span]["wall_ms"], scales[-1]["queries"][i][span]["wall_ms"]
                growth = f"×{b / a:.1f}" if a else ""
            mark = " ⚠" if scales[-1]["queries"][i][span]["wall_ms"] > TARGET_MS else ""
            kind = " (instant)" if row.get("instant") else ""
            series = " → ".join(str(s["queries"][i][span]["series"]) for s in scales)
            lines.append(f"| `{row['query']}`{kind}{mark} | " + " | ".join(cells) + f" | {series} | {growth} |")
    if any(s.get("raw") for s in scales):
        lines += ["", "**Recorded series, before → after** (exec / wall ms: the same answer from the raw metrics → the "
                  "panel's query on the recorded series)", "",
                  "| panel query | " + " | ".join(f"{s['pools']} pools, {span}" for span in ranges for s in scales) + " |",
                  "|---|" + "---|" * (len(ranges) * len(scales))]
        after = [{row["query"]: row for row in s["queries"]} for s in scales]
        for key in scales[-1]["raw"]:
            cells = [f"{_ms(s['raw'][key][span])} → {_ms(after[j][key][span])}" for span in ranges for j, s in enumerate(scales)]
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


def machine_facts() -> dict:
    m = machine.facts()
    return {"nproc": m["nproc"], "memory_gib": round(m["memory_gib"]), "prometheus": prometheus_version()}


def cmd_bench(args) -> int:

    def terminate(signum, frame):  # stop like Ctrl-C, so servers stop and temporary TSDBs are removed
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    definitions, config = load(args)
    recording_groups = recording.prometheus_groups(definitions)  # the dashboard reads recorded series
    results = {"machine": machine_facts(), "days": args.days, "step": args.step, "runs": args.runs,
               "scrape_interval": config.scrape_interval, "scales": []}
    print(f"reward-obs bench: {results['machine']}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="reward-obs-bench-", dir=args.workdir) as work:
        for pools in args.scales:
            results["scales"].append(run_scale(definitions, config, pools, args.days, args.step, args.runs, Path(work),
                                               recording_groups, log=log, keep=args.keep))
            (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    text = report(results)
    (args.out / "RESULTS.md").write_text("# Scale benchmark results\n\nWritten by `reward-obs bench` (`make bench`).\n\n" + text,
                                         encoding="utf-8")
    print(text)
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure rule evaluation and dashboard query cost on a real Prometheus at 10/100/1,000 pools",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", type=lambda s: [int(x) for x in s.split(",")], default=list(SCALES),
                   help="comma-separated pool counts (default 10,100,1000)")
    p.add_argument("--days", type=int, default=7, help="days of history to backfill (at least 2: a panel compares with a day ago; "
                   "ranges longer than the history are not timed)")
    p.add_argument("--step", type=int, default=60, help="seconds between backfilled samples")
    p.add_argument("--runs", type=int, default=5, help="timed runs per query (after one warm-up)")
    p.add_argument("--out", type=Path, default=Path("bench"), help="where results.json and RESULTS.md go")
    p.add_argument("--workdir", help="parent of the temporary TSDB directories (default: system temp)")
    p.add_argument("--keep", type=Path, help="move each scale's Prometheus directory (TSDB and rules) here instead of deleting it")
    p.set_defaults(handler=cmd_bench)
