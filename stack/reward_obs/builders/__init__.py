"""Pure functions from typed definitions (and stack config) to Grafana and Prometheus
models. No I/O and no Pulumi here: the Pulumi component and the offline renderer both
call these, so what is deployed and what is rendered are the same objects."""
