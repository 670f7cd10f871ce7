"""Reading a JSON Lines file of job specs for `enqueue --file`: all of it or an error naming the
first bad line."""

from __future__ import annotations

import sys

from ..errors import InvalidInput
from ..models import NewJob, parse_spec_json

LARGE_INPUT = 20_000


def read_jobs(path: str) -> list[NewJob]:
    """The jobs of the file at `path` ('-': stdin), in order; blank lines are skipped."""
    try:
        handle = sys.stdin if path == "-" else open(path, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    jobs: list[NewJob] = []
    progress = sys.stdout.isatty() and sys.stderr.isatty()
    try:
        with handle:
            for number, line in enumerate(handle, 1):
                if progress and number % LARGE_INPUT == 0:
                    print(f"\rreading {path}: {number} lines", end="", file=sys.stderr)
                if line.strip():
                    try:
                        jobs.append(parse_spec_json(line))
                    except InvalidInput as exc:
                        raise InvalidInput(f"{path}: line {number}: {exc}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"cannot read {path}: not UTF-8 text") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    if not jobs:
        raise InvalidInput(f"{path} holds no jobs")
    return jobs
