"""`queuectl bench`: figures of this queue beside references measured in the same run.

Modules: `report` (pure: figures, targets, percentiles, table and JSON), `stores` (a fresh
throwaway store per measurement: a temporary SQLite file, or a PostgreSQL schema dropped
afterwards), `reference` and `reference_pg` (the bare loops and raw rates our figures are compared
with, on plain sqlite3 and plain psycopg), `bare` (picks those for the store measured), `procs`
(child processes and their environment), `cpu` (the CPU time of processes themselves),
`figures` (drain, dispatch latency, enqueue), `bigstore` (claim cost, status and console
refresh with many waiting jobs), `queuestore` (a store of many queues, some full, some paused),
`suite` (runs them all), `cli` (the command).
"""
