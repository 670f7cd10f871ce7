"""Imports every command module so their commands register on the app."""

from . import config_cmd, dlq, jobs, ui_cmd, worker_cmd  # noqa: F401
from ..bench import cli as bench_cli  # noqa: F401
