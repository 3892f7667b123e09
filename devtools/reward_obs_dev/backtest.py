"""`reward-obs backtest`: would these alerts have fired on what already happened?

Evaluates every PromQL alert (the expression and threshold Prometheus and Grafana
evaluate) over stored history through a real Prometheus' HTTP API, applies each
rule's `for` the way the rule evaluator does, and reports per alert how many times it
would have fired, for how long and when, as a table and a PNG timeline.
"""
from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from reward_obs.builders.alerts import EVALUATION_INTERVAL, resolved_alerts
from reward_obs.catalog.config import StackConfig
from reward_obs.catalog.load import load
from reward_obs.model.definitions import Definitions
from reward_obs.model.durations import parse_duration
from reward_obs.tools.prometheus_history import MAX_POINTS, Firing, firings_from_samples, http_json


def _chunks(start: float, end: float, step: float):
    span = step * (MAX_POINTS - 1)
    t = start
    while t <= end:
        yield t, min(end, t + span)
        t += span + step


def backtest(query_range, definitions: Definitions, config: StackConfig, start: float, end: float) -> dict[str, list[Firing]]:
    """Alert name -> would-be firings. `query_range(expr, start, end, step)` is the
    Prometheus API (a list of {metric, values})."""
    step = parse_duration(EVALUATION_INTERVAL)
    result: dict[str, list[Firing]] = {}
    for alert in resolved_alerts(definitions, config):
        if not alert.rule.is_promql or alert.rule.is_heartbeat:  # the heartbeat fires always, by design
            continue
        samples: dict[tuple, tuple[dict, list[float]]] = {}
        for chunk_start, chunk_end in _chunks(start, end, step):
            for series in query_range(alert.condition_expr, chunk_start, chunk_end, step):
                key = tuple(sorted(series["metric"].items()))
                samples.setdefault(key, (series["metric"], []))[1].extend(float(t) for t, _ in series["values"])
        firings = [f for metric, times in samples.values()
                   for f in firings_from_samples(alert.name, metric, times, step, parse_duration(alert.for_))]
        result[alert.name] = sorted(firings, key=lambda f: (f.start, f.labels))
    return result


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _duration(seconds: float) -> str:
    minutes = int(round(seconds / 60))
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def table(result: dict[str, list[Firing]]) -> str:
    lines = ["| alert | would have fired | firing for | when (UTC) |", "|---|---:|---:|---|"]
    for name in sorted(result):
        firings = result[name]
        total = sum(f.seconds + parse_duration(EVALUATION_INTERVAL) for f in firings)
        when = "; ".join(f"{_when(f.start)} for {_duration(f.seconds + 60)}"
                         + (f" ({', '.join(f'{k}={v}' for k, v in f.labels if k not in ('severity', 'team', 'environment'))})" if f.labels else "")
                         for f in firings[:5])
        if len(firings) > 5:
            when += f"; … {len(firings) - 5} more"
        lines.append(f"| {name} | {len(firings)} | {_duration(total) if firings else '-'} | {when or '-'} |")
    return "\n".join(lines)


def timeline_png(result: dict[str, list[Firing]], start: float, end: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(result)
    fig, ax = plt.subplots(figsize=(12, 0.45 * len(names) + 1.5))
    for row, name in enumerate(names):
        spans = [((f.start - start) / 3600, (f.end - f.start + 60) / 3600) for f in result[name]]
        ax.broken_barh(spans, (row - 0.35, 0.7), color="tab:red" if spans else "tab:green")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlim(0, (end - start) / 3600)
    ax.set_xlabel(f"hours since {_when(start)} UTC")
    ax.set_title("Would-have-fired backtest (red: firing)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def _parse_time(text: str) -> float:
    if text.replace(".", "", 1).isdigit():
        return float(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def cmd_backtest(args) -> int:

    definitions, config = load(args)
    start, end = _parse_time(args.start), _parse_time(args.end)
    if end <= start:
        print("reward-obs backtest: --to must be after --from", file=sys.stderr)
        return 2

    def query_range(expr, s, e, step):
        data = http_json(f"{args.prometheus.rstrip('/')}/api/v1/query_range", {"query": expr, "start": s, "end": e, "step": step})
        return data["data"]["result"]

    result = backtest(query_range, definitions, config, start, end)
    print(table(result))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "backtest.md").write_text(table(result) + "\n", encoding="utf-8")
        (args.out / "backtest.json").write_text(json.dumps(
            {name: [{"labels": dict(f.labels), "start": f.start, "end": f.end} for f in firings] for name, firings in result.items()},
            indent=2, sort_keys=True) + "\n", encoding="utf-8")
        timeline_png(result, start, end, args.out / "backtest.png")
        print(f"wrote {args.out}/backtest.md, backtest.json, backtest.png")
    return 0


def register(sub) -> None:
    parser = sub.add_parser("backtest", help="evaluate every alert over stored history: would it have fired, when, for how long")
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--from", dest="start", required=True, help="start (RFC 3339 or Unix seconds)")
    parser.add_argument("--to", dest="end", required=True, help="end (RFC 3339 or Unix seconds)")
    parser.add_argument("--out", type=Path, help="also write backtest.md, backtest.json and backtest.png here")
    parser.set_defaults(handler=cmd_backtest)
