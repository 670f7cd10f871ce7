"""Turning the store into snapshots, on a thread of its own with its own store connection."""

from __future__ import annotations

from types import MappingProxyType
from typing import Callable

from queuectl.config import settings_of
from queuectl.errors import JobNotFound, QueueError
from queuectl.logview import pieces
from queuectl.store.base import Store

from .pool_control import PoolLike
from .rate import Rate
from .snapshot import (PANE_STATES, PANES, LogData, LogRequest, PaneData, Request, Snapshot,
                       WorkersView, job_row, queue_row, schedule_row)


class Loader:
    """Builds snapshots. Use from one thread at a time (the app never overlaps refreshes)."""

    def __init__(self, store_factory: Callable[[], Store], *, pool: PoolLike | None,
                 clock: Callable[[], float] | None) -> None:
        self.store_factory = store_factory
        self.pool = pool
        self.clock = clock
        self.rate = Rate()
        self._store: Store | None = None
        self._log_key: tuple | None = None

    def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            store.close()

    def load(self, request: Request) -> Snapshot:
        """A snapshot for `request`; a QueueError drops the connection (reopened next time)."""
        try:
            if self._store is None:
                self._store = self.store_factory()
            return self._load(self._store, request)
        except QueueError:
            self.close()
            raise

    def _load(self, store: Store, request: Request) -> Snapshot:
        now = self.clock() if self.clock is not None else store.now()
        settings = settings_of(store)
        status = store.status(now, worker_timeout=settings.lease * 2)
        self.rate.add(now, status.finished_last_minute)
        queues = store.queues()
        counts = status.counts  # the panes' totals: of the whole store, or of the queue asked for
        if request.queue is not None:
            counts = next((q.counts for q in queues if q.name == request.queue), {})
        panes = {}
        for name in PANES:
            states = PANE_STATES[name]
            jobs = store.list_jobs(states, limit=request.limit, text=request.text or None,
                                   queue=request.queue)
            blocked = [job.id for job in jobs if job.blocked] if name == "pending" else []
            waits = store.waits_for(blocked) if blocked else {}
            panes[name] = PaneData(
                name=name, total=sum(counts.get(s, 0) for s in states),
                rows=tuple(job_row(name, job, now, waits.get(job.id)) for job in jobs))
        return Snapshot(
            seq=request.seq, taken_at=now,
            counts=MappingProxyType(dict(status.counts)),
            workers=self._workers(store, now, settings.lease * 2),
            rate=self.rate.current, spark=self.rate.spark(),
            panes=MappingProxyType(panes),
            log=self._log(store, request.log) if request.log else None,
            text=request.text,
            queues=tuple(queue_row(q) for q in queues),
            queue=request.queue,
            schedules=(tuple(schedule_row(x, now) for x in store.schedules())
                       if request.schedules else None),
        )

    def _workers(self, store: Store, now: float, timeout: float) -> WorkersView:
        live = {w.id for w in store.workers() if w.heartbeat_at >= now - timeout}
        if self.pool is None:
            return WorkersView(external=len(live))
        own = set(self.pool.worker_ids())
        return WorkersView(own=len(own), external=len(live - own), busy=self.pool.busy(),
                           target=self.pool.size, paused=bool(self.pool.paused))

    def _log(self, store: Store, req: LogRequest) -> LogData:
        try:
            runs = tuple(store.runs(req.job_id))
            job = store.get(req.job_id)
            deps = tuple(store.dependencies(req.job_id))
        except JobNotFound:
            return LogData(req.job_id, None, (), 0, req.offset, req.offset, (), req.attempt)
        attempt = req.attempt if req.attempt is not None else job.attempt
        run = next((r for r in runs if r.attempt == attempt), None)
        if run is None:
            return LogData(req.job_id, job, runs, 0, req.offset, req.offset, (), req.attempt, deps)
        key = (req.job_id, attempt, req.offset, run.output_bytes, run.dropped_bytes,
               run.finished_at)
        if key == self._log_key:
            return LogData(req.job_id, job, runs, attempt, req.offset, req.offset, (),
                           req.attempt, deps)
        output = store.output(req.job_id, attempt)
        found, end = pieces(output, req.offset) if output is not None else ([], req.offset)
        self._log_key = (req.job_id, attempt, end, run.output_bytes, run.dropped_bytes,
                         run.finished_at)
        return LogData(req.job_id, job, runs, attempt, req.offset, end, tuple(found), req.attempt,
                       deps)
