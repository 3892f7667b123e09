"""The machine a measurement ran on, for the numbers `bench` and `trace bench` report."""
from __future__ import annotations

import os
import platform


def facts() -> dict:
    """cpus (installed), nproc (the CPUs this process may use, as `nproc` counts them),
    memory_gib (None where /proc/meminfo is missing), python, system, load average."""
    memory_gib = None
    try:
        with open("/proc/meminfo") as f:
            memory_gib = int(next(line for line in f if line.startswith("MemTotal")).split()[1]) / 1024 / 1024
    except (OSError, StopIteration, ValueError):
        pass
    return {"cpus": os.cpu_count(), "nproc": len(os.sched_getaffinity(0)), "memory_gib": memory_gib,
            "python": platform.python_version(), "system": f"{platform.system()} {platform.machine()}", "load": os.getloadavg()}


def summary() -> str:
    """One line: CPUs, memory, Python, system and load average."""
    m = facts()
    mem = f"{m['memory_gib']:.1f} GiB" if m["memory_gib"] is not None else "?"
    load = ", ".join(f"{x:.2f}" for x in m["load"])
    return (f"{m['cpus']} CPUs (nproc {m['nproc']}), {mem} memory, "
            f"Python {m['python']}, {m['system']}; load average {load}")
