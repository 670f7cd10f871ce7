"""The Typer application, its global options, and the mapping of errors to exit codes."""

from __future__ import annotations

import os
import sys
import typer

from ..errors import InvalidInput, QueueError
from ..store import display_location, open_store, resolve_location

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


COMPLETE_VAR = "_QUEUECTL_COMPLETE"  # set by the script of `queuectl completion` when it asks


class _Chosen:
    """The --db of this invocation (None when not given), wherever on the line it was given."""

    db: str | None = None


_chosen = _Chosen()


def _take_db(ctx, param, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    if _chosen.db is not None and value != _chosen.db:
        raise InvalidInput("--db given twice, with different stores "
                           f"({display_location(_chosen.db)} and {display_location(value)})")
    _chosen.db = value


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
    if _chosen.db is not None and not _chosen.db.strip():
        raise InvalidInput("--db: the store location is empty")
    return resolve_location(_chosen.db)


def store(durability: str = "full", *, create: bool):
    """Open the store named by --db / QUEUECTL_DB / the default.

    Commands that put something in the store pass `create=True` (a missing store is created);
    the others pass False, so a mistyped --db or QUEUECTL_DB is an error (StoreMissing) instead
    of a new, empty store. The per-user default store is created on first use either way."""
    named = _chosen.db is not None or bool(os.environ.get("QUEUECTL_DB"))
    return open_store(location(), durability=durability, create=create or not named)


def fail(message: str, code: int = 1) -> "typer.Exit":
    """Print one error line on stderr and return the Exit to raise."""
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def _is_surrogate(exc: UnicodeEncodeError) -> bool:
    return (exc.encoding.replace("-", "").lower() == "utf8"
            and isinstance(exc.object, str) and 0xD800 <= ord(exc.object[exc.start]) <= 0xDFFF)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure is one `error:` line on stderr and a documented exit code."""
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
    except QueueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
        if debug:
            raise
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except UnicodeEncodeError as exc:
        if debug:
            raise
        if _is_surrogate(exc):
            # An argument held bytes that are not UTF-8 (Python keeps them as lone
            # surrogates): such text can be neither stored nor matched.
            print("error: an argument is not valid UTF-8 text "
                  f"(U+{ord(exc.object[exc.start]):04X})", file=sys.stderr)
            code = 2
        else:
            print(f"error: internal error: {type(exc).__name__}: {exc} "
                  "(run with --debug for details)", file=sys.stderr)
            code = 1
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        code = 1
    except typer.TyperException as exc:  # Click's usage errors (Typer vendors Click)
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.ctx.get_help()  # Typer renders the help itself
            return 0
        text = " ".join(exc.format_message().split())
        where = getattr(getattr(exc, "ctx", None), "command_path", None)
        if where and getattr(exc, "exit_code", 1) == 2:
            text += f" (see: {where} --help)"
        print(f"error: {text}", file=sys.stderr)
        code = getattr(exc, "exit_code", 1)
    except Exception as exc:
        if debug:
            raise
        print(f"error: internal error: {type(exc).__name__}: {exc} "
              "(run with --debug for details)", file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return code
