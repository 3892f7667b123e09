"""Pulumi entry point (Pulumi.yaml: main: stack/)."""
from reward_obs.sinks.pulumi_program import main

main()
