"""`queuectl bench`: figures of this queue beside references measured in the same run.

Modules: `report` (pure: figures, targets, percentiles, table and JSON), `reference` (the bare
loops and raw rates our figures are compared with), `procs` (child processes and the temporary
store's environment), `figures` (drain, dispatch latency, enqueue), `bigstore` (claim cost,
status and console refresh with many waiting jobs), `suite` (runs them all), `cli` (the command).
"""
