"""`queuectl logs`: write a run's output to stdout/stderr, once or following it live."""

from __future__ import annotations

import sys
import time

from ..logview import Piece, pieces
from ..models import JobState
from ..sanitize import clean_bytes
from ..store.base import Store

FOLLOW_INTERVAL = 0.2


def _writer(raw: bool):
    out, err = sys.stdout, sys.stderr
    raw_out = raw or not out.isatty()
    raw_err = raw or not err.isatty()

    def write(piece: Piece) -> None:
        if piece.stream == 0:
            err.write(f"\n[queuectl: {piece.skipped} bytes of output cut here]\n")
            err.flush()
            return
        stream, is_raw = (out, raw_out) if piece.stream == 1 else (err, raw_err)
        if is_raw:
            stream.flush()
            stream.buffer.write(piece.data)
            stream.buffer.flush()
        else:
            stream.write(clean_bytes(piece.data))
            stream.flush()
    return write


def print_output(store: Store, job_id: str, attempt: int | None, *, follow: bool, raw: bool) -> None:
    """Print the chosen run's output; with `follow`, keep printing until that run ends."""
    write = _writer(raw)
    output = store.output(job_id, attempt)
    while output is None:  # the job has not run yet
        if not follow:
            print(f"job {job_id} has not run yet; no output", file=sys.stderr)
            return
        if store.get(job_id).state in (JobState.COMPLETED, JobState.DEAD):
            print(f"job {job_id} ended without running; no output", file=sys.stderr)
            return
        time.sleep(FOLLOW_INTERVAL)
        output = store.output(job_id, attempt)
    position = 0
    while True:
        new, position = pieces(output, position)
        for piece in new:
            write(piece)
        if not follow or output.run.finished_at is not None:
            return
        time.sleep(FOLLOW_INTERVAL)
        output = store.output(job_id, output.run.attempt)
