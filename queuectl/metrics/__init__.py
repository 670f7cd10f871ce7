"""Metrics of a store for Prometheus: what to read (`reader`), how runs are counted once
(`tally`), and the exposition text (`exposition`, the only module that imports prometheus_client).
No HTTP here: `queuectl serve` and `queuectl metrics` use these."""
