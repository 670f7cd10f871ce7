"""A pool of worker processes: start, watch, replace, scale, pause and stop them.

Used by `queuectl worker start` (in the foreground, owning Ctrl+C) and by the console. Children
are started with an explicit `spawn` context (never fork: the console has threads), each opens
its own store connection, and signals carry stop requests: SIGTERM = warm stop (finish the
running job), SIGUSR1 = cold stop (kill it and give the job back). The supervising process is a
child subreaper, so what a dead worker's jobs leave behind comes to it and is killed.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from .config import settings_of
from .errors import PermissionDenied, QueueError, StoreUnusable
from .reaper import become_subreaper, kill_leftovers, kill_orphans
from .store import open_store
from .worker import dead_local_workers, host_name, policy_of
from .worker_process import worker_main

SUPERVISE_EVERY = 0.2
# Exit codes of a worker that cannot use the store at all (errors.StoreUnusable,
# errors.PermissionDenied): the pool stops rather than replacing it again and again.
STORE_UNUSABLE = (StoreUnusable.exit_code, PermissionDenied.exit_code)


@dataclass
class Child:
    id: str
    process: multiprocessing.process.BaseProcess
    paused: object  # shared value: 1 while the pool is paused
    busy: object  # shared value the worker sets while it runs a job
    retiring: bool = False
    started: float = field(default_factory=time.monotonic)


@dataclass
class Interrupts:
    """Set by `run`'s signal handlers; the supervising loop acts on them."""

    count: int = 0  # Ctrl+C / SIGTERM: the first is a warm stop, the next ones cold
    hangup: bool = False  # the terminal closed: stop cold
    acted: int = 0


class Pool:
    """N worker processes over one store."""

    def __init__(self, location: str, count: int, *, burst: bool = False, quiet: bool = False,
                 log: Callable[[str], None] | None = None,
                 queues: list[str] | None = None) -> None:
        self.location = location
        self.queues = queues  # the queues its workers serve (None: all)
        self.size = count
        self.burst = burst
        self.quiet = quiet
        self.log = log or (lambda line: None)
        self.paused = False
        self.stopping = False
        self.cold = False
        self._ctx = multiprocessing.get_context("spawn")
        self._children: list[Child] = []
        self._store = None
        self._restarts: list[float] = []
        self.failure = 0  # the exit code of a worker that found the store unusable

    # -- starting
    def start(self) -> None:
        """Check the store, rescue jobs of dead local workers at once, then start the workers."""
        self._store = open_store(self.location)
        self._store.verify()  # once per pool: damage found now is not written over by workers
        become_subreaper()
        dead = dead_local_workers(self._store, host_name())
        if dead:
            rescued = self._rescue(dead)
            if rescued:
                self.log(f"rescued {len(rescued)} job(s) left by workers that died")
        for _ in range(self.size):
            self._spawn()

    def _spawn(self) -> Child:
        worker_id = "w-" + secrets.token_hex(3)
        paused = self._ctx.Value("i", int(self.paused), lock=False)
        busy = self._ctx.Value("i", 0, lock=False)
        process = self._ctx.Process(
            target=worker_main, name=f"queuectl-worker-{worker_id}",
            args=(self.location, worker_id),
            kwargs={"burst": self.burst, "quiet": self.quiet, "paused": paused,
                    "busy": busy, "parent_pid": os.getpid(), "queues": self.queues},
        )
        process.start()
        child = Child(worker_id, process, paused, busy)
        self._children.append(child)
        return child

    # -- queries
    def worker_ids(self) -> list[str]:
        return [c.id for c in self._children if c.process.is_alive()]

    def busy(self) -> int:
        return sum(1 for c in self._children if c.process.is_alive() and c.busy.value)

    # -- changes
    def scale(self, n: int) -> None:
        """Grow or shrink to n workers; removed workers finish their running job first."""
        self.size = max(0, n)
        active = [c for c in self._children if not c.retiring and c.process.is_alive()]
        while len(active) < self.size and not self.stopping:
            active.append(self._spawn())
        for child in sorted(active, key=lambda c: c.busy.value)[self.size:]:
            child.retiring = True
            self._signal(child, signal.SIGTERM)

    def pause(self) -> None:
        self._set_paused(True)

    def resume(self) -> None:
        self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        self.paused = paused
        for child in self._children:
            child.paused.value = int(paused)
            self._signal(child, signal.SIGUSR2)

    def _signal(self, child: Child, sig: int) -> None:
        if child.process.pid and child.process.is_alive():
            try:
                os.kill(child.process.pid, sig)
            except ProcessLookupError:
                pass

    def request_stop(self, cold: bool = False) -> None:
        self.stopping = True
        self.cold = self.cold or cold
        for child in self._children:
            self._signal(child, signal.SIGUSR1 if cold else signal.SIGTERM)

    # -- watching
    def supervise(self) -> None:
        """Reap exited children; replace crashed ones and rescue their jobs at once; kill what
        dead workers' jobs left behind."""
        for child in list(self._children):
            if child.process.is_alive():
                continue
            child.process.join(0)
            self._children.remove(child)
            self._reaped(child)
        self._kill_orphans()

    def _reaped(self, child: Child) -> None:
        code = child.process.exitcode
        if code == 0 or child.retiring or self.stopping:
            if code == 0 and not child.retiring and not self.stopping and not self.burst:
                self.log(f"worker {child.id} stopped on request; stopping the pool")
                self.request_stop()
            return
        if code in STORE_UNUSABLE:  # replacing it would fail the same way: stop
            self.log(f"worker {child.id} cannot use the store; stopping the pool")
            self.failure = self.failure or code
            self.request_stop()
            return
        how = f"signal {-code}" if code is not None and code < 0 else f"exit {code}"
        self.log(f"worker {child.id} died ({how}); starting a replacement")
        self._rescue([child.id])
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < 10] + [now]
        if len(self._restarts) > 5 * max(1, self.size):
            self.log("workers keep dying; waiting a moment before restarting")
            time.sleep(1.0)
        self._spawn()

    def _kill_orphans(self) -> None:
        killed = kill_orphans(keep=[c.process.pid for c in self._children if c.process.pid])
        if killed:
            self.log(f"killed {len(killed)} process(es) left by jobs of workers that died")

    def _rescue(self, worker_ids: list[str]) -> list[str]:
        """Kill what is left of dead workers' jobs, then rescue those jobs; their ids."""
        if self._store is None:
            return []
        kill_leftovers(worker_ids)  # their jobs' processes, before the jobs can run again
        self._kill_orphans()
        try:
            return self._store.rescue_dead_workers(
                worker_ids, now=self._store.now(), policy=policy_of(settings_of(self._store)))
        except QueueError as exc:  # its row stays: another worker or the next pool rescues it
            self.log(f"could not rescue jobs of {', '.join(worker_ids)} now: {exc}")
            return []

    def stop(self, cold: bool = False, timeout: float | None = None) -> None:
        """Stop every worker (warm: let running jobs finish) and wait for them to exit."""
        self.request_stop(cold)
        deadline = None if timeout is None else time.monotonic() + timeout
        while any(c.process.is_alive() for c in self._children):
            if deadline is not None and time.monotonic() > deadline and not self.cold:
                self.request_stop(cold=True)
                deadline = time.monotonic() + 5
            elif deadline is not None and time.monotonic() > deadline:
                for child in self._children:
                    self._signal(child, signal.SIGKILL)
                break
            time.sleep(0.05)
        for child in self._children:
            child.process.join(1)
        self._rescue([c.id for c in self._children if c.process.exitcode not in (0, None)])
        self._children.clear()
        self._kill_orphans()
        if self._store is not None:
            self._store.close()
            self._store = None

    def run(self) -> int:
        """Run in the foreground until stopped: first Ctrl+C/SIGTERM warm, second cold; SIGHUP
        cold. Returns 0, or the exit code of a worker that found the store unusable."""
        asked = Interrupts()

        def on_signal(signum, frame):
            asked.count += 1

        def on_hangup(signum, frame):
            asked.hangup = True

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hangup)
        try:
            self.start()
            while self._children:
                self._act_on(asked)
                self.supervise()
                if self.burst and not self._children:
                    break
                time.sleep(SUPERVISE_EVERY)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._act_on(asked)
            self.stop(cold=self.cold, timeout=None if not self.cold else 10)
        return self.failure

    def _act_on(self, asked: Interrupts) -> None:
        if asked.hangup and not self.cold:
            self.request_stop(cold=True)  # nobody is left to wait for a warm stop
        if asked.count == asked.acted:
            return
        if asked.acted == 0:
            self.log(f"warm stop: waiting for {self.busy()} running job(s) to finish "
                     "(Ctrl+C again to kill them and give them back)")
            self.request_stop()
        if asked.count > 1 and not self.cold:
            self.log("cold stop: killing running jobs and giving them back")
            self.request_stop(cold=True)
        asked.acted = asked.count


def log_to_stderr(line: str) -> None:
    sys.stderr.write(time.strftime("%H:%M:%S") + " " + line + "\n")
    sys.stderr.flush()
