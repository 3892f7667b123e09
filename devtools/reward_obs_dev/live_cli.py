"""Subcommands that run the stack against real servers: `simulate` and `bench`."""
from __future__ import annotations

from reward_obs_dev import bench, simulator


def register(sub) -> None:
    simulator.register(sub)
    bench.register(sub)
