"""Which module registers which command; `load` imports just what one invocation needs."""

from __future__ import annotations

import importlib

MODULES = {
    "init": "jobs", "enqueue": "jobs", "list": "jobs", "status": "jobs", "show": "jobs",
    "logs": "jobs", "cancel": "jobs", "prune": "jobs",
    "dlq": "dlq", "config": "config_cmd", "worker": "worker_cmd", "ui": "ui_cmd",
    "demo": "ui_cmd", "bench": "..bench.cli", "completion": "completion_cmd",
    "queue": "queue_cmd", "serve": "serve_cmd", "metrics": "serve_cmd",
    "edit": "workflow_cmd", "restart": "workflow_cmd", "run-now": "workflow_cmd",
    "remove": "workflow_cmd", "wait": "workflow_cmd",
    "schedule": "schedule_cmd", "hook": "schedule_cmd",
}


def command_name(args: list[str]) -> str | None:
    """The subcommand in argv, skipping the global options (--db PATH, --debug)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--db":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def load(args: list[str]) -> None:
    """Import the module of the command being run (every module for help or a typo)."""
    name = command_name(args)
    wanted = [MODULES[name]] if name in MODULES else sorted(set(MODULES.values()))
    for module in wanted:
        importlib.import_module(("." if not module.startswith(".") else "") + module, __package__)
