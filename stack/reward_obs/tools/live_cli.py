"""Subcommands that run the stack against real servers: `simulate`, `bench`,
and `alertmanager-config` (one entry in cli.COMMAND_MODULES registers them all)."""
from __future__ import annotations


def register(sub) -> None:
    from reward_obs.tools import alertmanager_cli, bench, simulator

    simulator.register(sub)
    alertmanager_cli.register(sub)
    bench.register(sub)
