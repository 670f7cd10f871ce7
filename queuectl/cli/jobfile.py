"""Reading a JSON Lines file of job specs for `enqueue --file`: all of it or an error naming the
first bad line, with a progress bar on a terminal (progress.py) for a large one."""

from __future__ import annotations

import sys

from ..errors import InvalidInput
from ..models import NewJob, parse_spec_line
from .progress import Progress

LARGE_INPUT = 20_000  # lines: a file this long shows its progress on a terminal


def read_jobs(path: str) -> tuple[list[NewJob], Progress]:
    """The jobs of the file at `path` ('-': stdin), in order (blank lines are skipped), and
    the progress bar that showed their reading (for the caller to finish)."""
    try:
        handle = sys.stdin if path == "-" else open(path, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    jobs: list[NewJob] = []
    append = jobs.append
    progress = Progress(path, handle, LARGE_INPUT)
    number, shown = 0, progress.on
    try:
        with handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    append(parse_spec_line(line))
                if shown and number % LARGE_INPUT == 0:
                    progress.read(number)
    except InvalidInput as exc:
        progress.abandon()
        raise InvalidInput(f"{path}: line {number}: {exc}") from None
    except UnicodeDecodeError:
        progress.abandon()
        raise InvalidInput(f"cannot read {path}: not UTF-8 text") from None
    except OSError as exc:
        progress.abandon()
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    if not jobs:
        raise InvalidInput(f"{path} holds no jobs")
    return jobs, progress
