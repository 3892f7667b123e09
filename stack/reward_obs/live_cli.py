"""Subcommands that run the stack against real servers: `simulate`, `bench`,
`alertmanager-config` and `recording-rules` (one entry in cli.COMMAND_MODULES registers them all)."""
from __future__ import annotations


def register(sub) -> None:
    from . import alertmanager_cli, bench, recording, simulator

    simulator.register(sub)
    recording.register(sub)
    alertmanager_cli.register(sub)
    bench.register(sub)
