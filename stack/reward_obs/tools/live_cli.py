"""Subcommands that run the stack against real servers: `simulate`, `bench`,
and `alertmanager-config` (one entry in cli.COMMAND_MODULES registers them all)."""
from __future__ import annotations

from reward_obs.tools import alertmanager_cli, bench, simulator


def register(sub) -> None:

    simulator.register(sub)
    alertmanager_cli.register(sub)
    bench.register(sub)
