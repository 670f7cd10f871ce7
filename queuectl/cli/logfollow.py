"""`queuectl logs`: write a run's output to stdout/stderr, once or following it live."""

from __future__ import annotations

import base64
import codecs
import sys
import time
from typing import Any

from ..logview import Piece, pieces
from ..models import JobState
from ..sanitize import clean
from ..store.base import Store
from .render import run_json

FOLLOW_INTERVAL = 0.2


class _TextStream:
    """One output stream shown as text: bytes decoded as UTF-8 across pieces (a character split
    between two stored chunks is shown whole), made inert for a terminal."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.cr = ""  # a trailing "\r" held back: it may begin a "\r\n" in the next piece

    def write(self, data: bytes, final: bool = False) -> None:
        text = self.cr + self.decoder.decode(data, final=final)
        self.cr = ""
        if text.endswith("\r") and not final:
            text, self.cr = text[:-1], "\r"
        if text:
            self.stream.write(clean(text))
            self.stream.flush()

    def flush(self) -> None:
        """Write what is held back (an incomplete character shows as U+FFFD) and start afresh."""
        self.write(b"", final=True)
        self.decoder.reset()


class Writer:
    """Writes pieces of output to stdout/stderr: exact bytes to a pipe or with `raw`, else text
    decoded per stream. `close()` writes whatever a stream still holds back."""

    def __init__(self, raw: bool) -> None:
        self.err = sys.stderr
        self.text: dict[int, _TextStream] = {}
        self.raw: dict[int, object] = {}
        for number, stream in ((1, sys.stdout), (2, sys.stderr)):
            if raw or not stream.isatty():
                self.raw[number] = stream
            else:
                self.text[number] = _TextStream(stream)

    def write(self, piece: Piece) -> None:
        if piece.stream == 0:  # bytes are missing here: nothing joins across the cut
            self.close()
            self.err.write(f"\n[queuectl: {piece.skipped} bytes of output cut here]\n")
            self.err.flush()
        elif piece.stream in self.text:
            self.text[piece.stream].write(piece.data)
        else:
            stream = self.raw[piece.stream]
            stream.flush()
            stream.buffer.write(piece.data)
            stream.buffer.flush()

    def close(self) -> None:
        for text in self.text.values():
            text.flush()


def print_output(store: Store, job_id: str, attempt: int | None, *, follow: bool, raw: bool) -> None:
    """Print the chosen run's output; with `follow`, keep printing until that run ends."""
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
    writer = Writer(raw)
    position = 0
    try:
        while True:
            new, position = pieces(output, position)
            for piece in new:
                writer.write(piece)
            if not follow or output.run.finished_at is not None:
                return
            time.sleep(FOLLOW_INTERVAL)
            output = store.output(job_id, output.run.attempt)
    finally:
        writer.close()


STREAM_NAMES = {1: "stdout", 2: "stderr"}


def output_json(store: Store, job_id: str, attempt: int | None, *, raw: bool) -> dict[str, Any]:
    """A run's metadata and its whole output as one JSON-ready document. `output` holds, in
    order, {"stream": "stdout"|"stderr", "text": ...} (UTF-8 decoded across chunks, invalid
    bytes as U+FFFD; with `raw`, "base64" of the exact bytes instead) and {"stream": "cut",
    "bytes": N} where the output limit cut N bytes."""
    output = store.output(job_id, attempt)
    if output is None:  # the job has not run yet
        return {"id": job_id, "attempt": None, "run": None, "output": []}
    entries: list[dict[str, Any]] = []
    decoders = {n: codecs.getincrementaldecoder("utf-8")(errors="replace") for n in STREAM_NAMES}

    def add(stream: int, data: bytes | str) -> None:
        name = STREAM_NAMES[stream]
        if entries and entries[-1]["stream"] == name:
            entries[-1]["data"] += data
        elif data:
            entries.append({"stream": name, "data": data})

    def flush() -> None:
        for number, decoder in decoders.items():
            add(number, decoder.decode(b"", final=True))
            decoder.reset()

    for piece in pieces(output)[0]:
        if piece.stream == 0:
            if not raw:
                flush()
            entries.append({"stream": "cut", "bytes": piece.skipped})
        else:
            add(piece.stream, piece.data if raw else decoders[piece.stream].decode(piece.data))
    if not raw:
        flush()
    for entry in entries:
        if "data" in entry:
            data = entry.pop("data")
            entry["base64" if raw else "text"] = (
                base64.b64encode(data).decode("ascii") if raw else data)
    return {"id": job_id, "attempt": output.run.attempt, "run": run_json(output.run),
            "output": entries}
