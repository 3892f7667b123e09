"""A simulator run as OpenMetrics history, for `promtool tsdb create-blocks-from openmetrics`
(the backtest and the live test backfill Prometheus with it)."""
from __future__ import annotations

from typing import IO

from reward_obs_dev.simulator import Simulator


def write_openmetrics(sim: Simulator, out: IO[str], start: float, end: float, step: float,
                      extra_labels: dict[str, str] | None = None, only: set[str] | None = None,
                      sim_step: float | None = None) -> int:
    """Run the simulator from `start` to `end` and write every series every `step`
    seconds as OpenMetrics with timestamps, for `promtool tsdb create-blocks-from
    openmetrics`. `extra_labels` are the target labels a scrape would add. Returns the
    number of samples written."""
    sim.now = start
    extra = "".join(f',{k}="{v}"' for k, v in sorted((extra_labels or {}).items()))
    prefixes: dict[tuple[str, tuple], str] = {}
    written = 0
    t = start
    while t <= end:
        for name, values in sim.series().items():
            if only is not None and name not in only:
                continue
            names = sim.label_names(name)
            lines = []
            for key, value in values.items():
                prefix = prefixes.get((name, key))
                if prefix is None:
                    body = ",".join(f'{n}="{v}"' for n, v in zip(names, key, strict=True)) + extra
                    prefix = prefixes[(name, key)] = f"{name}{{{body.lstrip(',')}}} "
                lines.append(f"{prefix}{value:.10g} {t:.3f}\n")
            out.write("".join(lines))
            written += len(lines)
        sim.step(sim_step if sim_step is not None else step)
        t += step
    out.write("# EOF\n")
    return written
