"""How a command that failed ends: one `error:` line on stderr and a documented exit code.
Free of Typer: the Typer app (app.py) and the lean command line (lean.py) share it."""

from __future__ import annotations

import os
import sys

from ..errors import QueueError


def _is_surrogate(exc: UnicodeEncodeError) -> bool:
    return (exc.encoding.replace("-", "").lower() == "utf8"
            and isinstance(exc.object, str) and 0xD800 <= ord(exc.object[exc.start]) <= 0xDFFF)


def failure_code(exc: BaseException, debug: bool) -> int:
    """Report `exc` (being handled by the caller's `except`) and return the exit code; with
    --debug, re-raise what is worth a traceback."""
    if isinstance(exc, QueueError):
        print(f"error: {exc}", file=sys.stderr)
        if debug:
            raise exc
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr)
        return 130
    if isinstance(exc, BrokenPipeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    if debug:
        raise exc
    if isinstance(exc, UnicodeEncodeError) and _is_surrogate(exc):
        # An argument held bytes that are not UTF-8 (Python keeps them as lone
        # surrogates): such text can be neither stored nor matched.
        print("error: an argument is not valid UTF-8 text "
              f"(U+{ord(exc.object[exc.start]):04X})", file=sys.stderr)
        return 2
    print(f"error: internal error: {type(exc).__name__}: {exc} "
          "(run with --debug for details)", file=sys.stderr)
    return 1


def flush_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
