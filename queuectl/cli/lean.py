"""The command line's entry point. `enqueue` and `status`, the commands scripts run in loops,
are served here without importing Typer (or anything else they do not need); every other
invocation, and any of theirs this parser does not take exactly as Click would (help, the
version, --debug, completion, an unknown or malformed option, a bad integer, `--`, an extra
argument...), goes to the Typer app unchanged (`full`). The bodies both run are hot.py's, so
results, errors and exit codes are the same either way (tests/test_lean_cli.py compares them
over a table of command lines).

The parsing follows Click's rules for these commands: the global --db before the command,
options and the argument in any order after it, `--opt value`, `--opt=value`, `-o value`,
`-ovalue`, a value taken whatever it looks like, the last of a repeated option winning (a
repeatable one collecting them all), integers read by int().
"""

from __future__ import annotations

import os
import sys

COMPLETE_VAR = "_QUEUECTL_COMPLETE"  # set by the script of `queuectl completion` when it asks

STR, INT, LIST, FLAG = "str", "int", "list", "flag"

# Each command's options as jobs.py declares them: name -> (parameter, kind).
OPTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "enqueue": {
        "--command": ("command", STR), "-c": ("command", STR),
        "--id": ("job_id", STR),
        "--queue": ("queue", STR), "-q": ("queue", STR),
        "--priority": ("priority", INT), "-p": ("priority", INT),
        "--max-retries": ("max_retries", INT),
        "--timeout": ("timeout", STR),
        "--delay": ("delay", STR),
        "--run-at": ("run_at", STR),
        "--file": ("file", STR), "-f": ("file", STR),
        "--after": ("after", LIST),
        "--after-any": ("after_any", LIST),
        "--unique-key": ("unique_key", STR),
        "--unique-for": ("unique_for", STR),
        "--on-conflict": ("on_conflict", STR),
        "--env": ("env", LIST), "-e": ("env", LIST),
        "--cwd": ("cwd", STR),
        "--on-lost": ("on_lost", STR),
        "--db": ("db", STR),
    },
    "status": {
        "--json": ("as_json", FLAG),
        "--db": ("db", STR),
    },
}
ARGUMENT = {"enqueue": "spec", "status": None}  # the command's one optional argument


class Parsed:
    """A command line the lean path serves: the command, the --db given before it and after
    it (None: not given), and the values of the command's parameters that were given."""

    def __init__(self, command: str, root_db: str | None) -> None:
        self.command = command
        self.root_db = root_db
        self.db: str | None = None
        self.values: dict[str, object] = {}


def _option(arg: str, options: dict) -> tuple[tuple[str, str], str | None] | None:
    """The option `arg` names and the value attached to it (`--opt=v`, `-ov`), or None when
    Click would not take it that way."""
    if arg.startswith("--"):
        name, eq, attached = arg.partition("=")
        found = options.get(name)
        if found is None or (eq and found[1] == FLAG):
            return None
        return found, attached if eq else None
    found = options.get(arg[:2])
    if found is None or (len(arg) > 2 and found[1] == FLAG):
        return None
    return found, arg[2:] or None


def parse(args: list[str]) -> Parsed | None:
    """The command line `args` if the lean path serves it exactly as Click would; else None."""
    i, root_db = 0, None
    while i < len(args) and args[i].startswith("-") and len(args[i]) > 1:
        arg = args[i]
        if arg == "--db" and i + 1 < len(args):
            root_db, i = args[i + 1], i + 2
        elif arg.startswith("--db="):
            root_db, i = arg[5:], i + 1
        else:
            return None  # --debug, --version, --help, -h, --, or unknown
    if i == len(args) or args[i] not in OPTIONS:
        return None
    parsed = Parsed(args[i], root_db)
    options, argument = OPTIONS[parsed.command], ARGUMENT[parsed.command]
    rest = args[i + 1:]
    while rest:
        arg = rest.pop(0)
        if not (arg.startswith("-") and len(arg) > 1):
            if argument is None or argument in parsed.values:
                return None  # "unexpected extra argument"
            parsed.values[argument] = arg
            continue
        if arg == "--":
            return None
        found = _option(arg, options)
        if found is None:
            return None
        (name, kind), value = found
        if kind == FLAG:
            parsed.values[name] = True
            continue
        if value is None:
            if not rest:
                return None  # "requires an argument"
            value = rest.pop(0)
        if name == "db":
            parsed.db = value
        elif kind == INT:
            try:
                parsed.values[name] = int(value)
            except ValueError:
                return None
        elif kind == LIST:
            parsed.values.setdefault(name, []).append(value)  # type: ignore[union-attr]
        else:
            parsed.values[name] = value
    return parsed


def run(parsed: Parsed) -> int:
    """Run a parsed command line; every failure is one `error:` line on stderr and a
    documented exit code, as the Typer app gives."""
    from functools import partial

    from . import hot
    from .exits import failure_code, flush_stdout
    from .where import chosen_db, open_for

    try:
        db = parsed.root_db
        if parsed.db is not None:
            db = chosen_db(db, parsed.db)
        body = hot.enqueue if parsed.command == "enqueue" else hot.status
        body(partial(open_for, db), **parsed.values)
        code = 0
    except (KeyboardInterrupt, Exception) as exc:
        code = failure_code(exc, debug=False)
    flush_stdout()
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); return its exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    parsed = None if os.environ.get(COMPLETE_VAR) else parse(args)
    return full(args) if parsed is None else run(parsed)


def full(args: list[str]) -> int:
    """The Typer app's answer to `args` (what main gives any command line it does not serve)."""
    from .app import main as typer_main

    return typer_main(args)
