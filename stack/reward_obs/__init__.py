"""reward-observability: the reward system's Grafana and Prometheus stack, as code.

Definitions (YAML under the repository root) are loaded and validated by
`definitions`, turned into Grafana and Prometheus models by the pure functions in
`builders`, and then either registered with Pulumi (`component`) or written to disk
(`render`). Both paths call the same builders, so they cannot drift apart.
"""
