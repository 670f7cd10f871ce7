"""Reads whose SQL is the same on every backend, written once: a store supplies `_read(sql,
params)` taking `?` placeholders, and inherits these."""

from __future__ import annotations

from typing import Sequence

from ..errors import InvalidInput, JobNotFound
from ..models import Job, Run
from .base import Output
from .rows import job_from_row, run_from_row
from .sql import JOB_COLUMNS, RUN_COLUMNS


class SharedReads:
    def _read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        raise NotImplementedError

    def get(self, job_id: str) -> Job:
        rows = self._read(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise JobNotFound(f"no job with id {job_id!r}")
        return job_from_row(rows[0])

    def runs(self, job_id: str) -> list[Run]:
        self.get(job_id)
        rows = self._read(f"SELECT {RUN_COLUMNS} FROM runs WHERE job_id = ? ORDER BY attempt",
                          (job_id,))
        return [run_from_row(r) for r in rows]

    def output(self, job_id: str, attempt: int | None = None) -> Output | None:
        job = self.get(job_id)
        if attempt is None:
            attempt = job.attempt
            if attempt == 0:
                return None
        rows = self._read(f"SELECT id, {RUN_COLUMNS} FROM runs WHERE job_id = ? AND attempt = ?",
                          (job_id, attempt))
        if not rows:
            raise InvalidInput(
                f"job {job_id!r} has no attempt {attempt}"
                + (f" (it has attempts 1 to {job.attempt})" if job.attempt else
                   " (it has not run yet)"))
        run_id, run = rows[0][0], run_from_row(rows[0][1:])
        chunks = self._read("SELECT part, stream, data FROM output WHERE run_id = ? "
                            "ORDER BY part, seq", (run_id,))
        tail_start = sum(1 for part, _, _ in chunks if part == 0)
        return Output(run=run, chunks=[(s, bytes(d)) for _, s, d in chunks], tail_start=tail_start)
