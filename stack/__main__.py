"""Pulumi entry point (Pulumi.yaml: main: stack/)."""
from reward_obs.pulumi_program import main

main()
