"""`queuectl serve`: the console in a browser (textual-serve), /metrics and /healthz, behind a
token. `access` checks every request, `tabs` runs one console process per browser tab, `site`
is the aiohttp application, `server` binds, runs and stops it all (with the pool, if any)."""
