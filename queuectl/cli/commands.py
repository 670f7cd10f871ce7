"""Imports every command module so their commands register on the app."""

from . import config_cmd, dlq, jobs, worker_cmd  # noqa: F401
