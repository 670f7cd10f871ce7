"""A progress bar on stderr for `enqueue --file` of a large file, when stderr is a terminal
(nothing at all on a pipe or a file, so scripts see only the ids and errors)."""

from __future__ import annotations

import os
import sys

WIDTH = 30  # the bar's cells


class Progress:
    """Report reading `path` through `handle` every `every` lines once that many were read,
    then the storing, then the end. Silent unless stderr is a terminal."""

    def __init__(self, path: str, handle, every: int) -> None:
        self.path = path
        self.every = every
        self.on = sys.stderr.isatty()
        self.shown = False
        self.size = 0
        if self.on:
            try:
                self.size = os.fstat(handle.fileno()).st_size if path != "-" else 0
                self.fd = handle.fileno()
            except (OSError, ValueError):
                self.on = False

    def _show(self, text: str, end: str = "") -> None:
        sys.stderr.write(f"\r{text}\x1b[K{end}")
        sys.stderr.flush()
        self.shown = True

    def read(self, lines: int) -> None:
        """`lines` lines read so far (called every `every` lines)."""
        if not self.on:
            return
        if self.size:
            try:
                part = min(1.0, os.lseek(self.fd, 0, os.SEEK_CUR) / self.size)
            except OSError:
                part = 0.0
            cells = int(part * WIDTH)
            self._show(f"reading {self.path} [{'#' * cells}{'.' * (WIDTH - cells)}] "
                       f"{part:4.0%}  {lines:,} lines")
        else:
            self._show(f"reading {self.path}: {lines:,} lines")

    def storing(self, jobs: int) -> None:
        if self.shown:
            self._show(f"storing {jobs:,} jobs")

    def done(self, jobs: int) -> None:
        if self.shown:
            self._show(f"enqueued {jobs:,} jobs", "\n")

    def abandon(self) -> None:
        """End the bar's line before an error is printed."""
        if self.shown:
            self._show("", "")
            self.shown = False
