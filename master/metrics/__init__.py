"""Prometheus metrics of the master: `catalog` declares them, `recorder` and `process` count them in each
process (no prometheus_client there), `shared` gathers the processes' counts through `<sock_dir>/metrics`,
`exposition` renders `/metrics` (the only importer of prometheus_client) and `server` is the master's own
endpoint (`metrics_port`).  rx-api serves the same text: `MetricsSource(cfg).render()`."""
