"""The Typer application, its global options, and the mapping of errors to exit codes."""

from __future__ import annotations

import os
import sys
import typer

from . import where
from .exits import failure_code, flush_stdout
from .lean import COMPLETE_VAR

app = typer.Typer(
    name="queuectl",
    help="A background job queue for shell commands, with a live terminal console.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
dlq_app = typer.Typer(help="The dead letter queue: jobs that ran out of retries.", no_args_is_help=True)
config_app = typer.Typer(help="Read and change settings stored in the queue.", no_args_is_help=True)
worker_app = typer.Typer(help="Run and manage worker processes.", no_args_is_help=True)
queue_app = typer.Typer(help="Named queues: concurrency limits across every host, pause and "
                             "resume, the defaults of their jobs.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(config_app, name="config")
app.add_typer(worker_app, name="worker")
app.add_typer(queue_app, name="queue")
schedule_app = typer.Typer(help="Recurring jobs: a job at each cron or interval tick, exactly once "
                                "however many pools run.", no_args_is_help=True)
hook_app = typer.Typer(help="Hooks: when a job dies (completes, retries), run a command as a job "
                            "of its own.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")
app.add_typer(hook_app, name="hook")


DB_HELP = ("The store: an SQLite file path, or postgresql://user@host/db[?schema=NAME] "
           "(default: queuectl.db in your data directory; env QUEUECTL_DB). Accepted before "
           "or after any command.")


class _Chosen:
    """The --db of this invocation (None when not given), wherever on the line it was given."""

    db: str | None = None


_chosen = _Chosen()


def _take_db(ctx, param, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    _chosen.db = where.chosen_db(_chosen.db, value)


def _accept_db(command) -> None:
    """Give `command` and every command under it a --db option (the root's and a
    subcommand's are the same setting)."""
    from typer.core import TyperOption

    command.params.append(TyperOption(param_decls=["--db"], metavar="PATH|URL", default=None,
                                      callback=_take_db, expose_value=False, help=DB_HELP))
    for sub in getattr(command, "commands", {}).values():
        _accept_db(sub)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"queuectl {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print queuectl's version and exit."),
) -> None:
    """--debug is read from argv by main(), before any command runs; --db by `_take_db`."""


def location() -> str:
    """The store this invocation uses: --db (before or after the command), else QUEUECTL_DB,
    else the per-user default."""
    return where.location(_chosen.db)


def store(durability: str = "full", *, create: bool):
    """Open the store named by --db / QUEUECTL_DB / the default (see where.open_for)."""
    return where.open_for(_chosen.db, durability, create=create)


def fail(message: str, code: int = 1) -> "typer.Exit":
    """Print one error line on stderr and return the Exit to raise."""
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def main(argv: list[str] | None = None) -> int:
    """Run the Typer app on `args`; every failure is one `error:` line on stderr and a
    documented exit code. (queuectl.cli.main, lean.py, hands it what it does not serve.)"""
    args = sys.argv[1:] if argv is None else argv
    from .commands import load

    load(args)  # registers the commands this invocation can reach

    _chosen.db = None
    if os.environ.get(COMPLETE_VAR):  # a shell asking for completions: Click answers it
        from typer._completion_classes import completion_init

        completion_init()
    command = typer.main.get_command(app)
    _accept_db(command)
    debug = "--debug" in args
    try:
        # Without standalone mode, Click returns the code of a `typer.Exit` a command raised.
        result = command.main(args=args, prog_name="queuectl", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        code = 1
    except typer.TyperException as exc:  # Click's usage errors (Typer vendors Click)
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.ctx.get_help()  # Typer renders the help itself
            return 0
        text = " ".join(exc.format_message().split())
        path = getattr(getattr(exc, "ctx", None), "command_path", None)
        if path and getattr(exc, "exit_code", 1) == 2:
            text += f" (see: {path} --help)"
        print(f"error: {text}", file=sys.stderr)
        code = getattr(exc, "exit_code", 1)
    except (KeyboardInterrupt, Exception) as exc:
        code = failure_code(exc, debug)
    flush_stdout()
    return code
