"""The bare references for the store being measured, behind one interface: plain `sqlite3` for
an SQLite store (`reference`), plain psycopg on the same server for PostgreSQL (`reference_pg`).

Each method measures in a throwaway place of its own and returns the raw samples; `names` says
what each reference is, for the report. `one_shot` prepares a store and gives a function timing
one bare process writing one job to it.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Callable, Iterator

from ..store.postgres.conn import driver, parse_location, query_error
from . import reference, reference_pg
from .procs import child_env
from .reference import Drained
from .stores import PostgresPlace, SQLitePlace

OneShot = Callable[[], float]  # wall seconds of one bare one-job process


class SQLiteBare:
    names = {
        "drain": "bare loop claim/spawn/done, NORMAL",
        "dispatch": "bare dispatcher (pipe wake)",
        "insert": "executemany INSERT, same rows and schema, FULL",
        "claim": "bare claim (plain sqlite3, NORMAL)",
        "one_shot": "python -c: sqlite3, INSERT, commit (FULL)",
    }

    def __init__(self, place: SQLitePlace) -> None:
        self.place = place

    def _path(self, name: str) -> str:
        return os.path.join(self.place.workdir, name)

    def drain(self, jobs: int, workers: int) -> Drained:
        return reference.bare_drain(self._path(f"bare-drain-{workers}.db"), jobs, workers)

    def dispatch_ms(self, samples: int, idle: float) -> list[float]:
        return reference.bare_dispatch_ms(self._path("bare-dispatch.db"), self.place.workdir,
                                          samples, idle)

    def insert_rate(self, jobs: int) -> float:
        return reference.raw_insert_rate(self._path("raw-insert.db"), jobs, self.place.workdir)

    def claim_times(self, label: str, waiting: int, claims: int) -> list[float]:
        return reference.bare_claim_times(self._path(f"bare-claim-{label}.db"), waiting, claims)

    @contextmanager
    def one_shot(self, cwd: str) -> Iterator[OneShot]:
        path = self._path("one-shot.db")
        reference.store_like_ours(path)
        env = child_env(path)
        yield lambda: reference.one_shot_seconds(path, cwd, env)


@contextmanager
def _server_errors(place: PostgresPlace) -> Iterator[None]:
    """psycopg's errors from a bare reference as the one-line errors queuectl reports."""
    psycopg = driver()
    try:
        yield
    except psycopg.Error as exc:
        raise query_error(exc, place.pg.display) from None


class PostgresBare:
    names = {
        "drain": "bare loop claim/spawn/done, sync commit off",
        "dispatch": "bare dispatcher (LISTEN wake)",
        "insert": "COPY, same rows and schema, sync commit on",
        "claim": "bare claim (plain psycopg, sync commit off)",
        "one_shot": "python -c: psycopg, INSERT, commit (sync on)",
    }

    def __init__(self, place: PostgresPlace) -> None:
        self.place = place
        self.conninfo = place.conninfo()

    def drain(self, jobs: int, workers: int) -> Drained:
        with self.place.bare() as schema, _server_errors(self.place):
            return reference_pg.bare_drain(self.conninfo, schema, jobs, workers)

    def dispatch_ms(self, samples: int, idle: float) -> list[float]:
        stamps = tempfile.mkdtemp(prefix="bare-dispatch-", dir=self.place.workdir)
        with self.place.bare() as schema, _server_errors(self.place):
            return reference_pg.bare_dispatch_ms(self.conninfo, schema, stamps, samples, idle)

    def insert_rate(self, jobs: int) -> float:
        with self.place.fresh("raw-insert") as fresh, _server_errors(self.place):
            reference.store_like_ours(fresh.db)
            return reference_pg.raw_copy_rate(self.conninfo, parse_location(fresh.db).schema,
                                              jobs, fresh.dir)

    def claim_times(self, label: str, waiting: int, claims: int) -> list[float]:
        with self.place.bare() as schema, _server_errors(self.place):
            return reference_pg.bare_claim_times(self.conninfo, schema, waiting, claims)

    @contextmanager
    def one_shot(self, cwd: str) -> Iterator[OneShot]:
        with self.place.fresh("one-shot") as fresh:
            reference.store_like_ours(fresh.db)
            schema, env = parse_location(fresh.db).schema, child_env(fresh.db)
            yield lambda: reference_pg.one_shot_seconds(self.conninfo, schema, cwd, env)


def bare_for(place: SQLitePlace | PostgresPlace) -> SQLiteBare | PostgresBare:
    return PostgresBare(place) if isinstance(place, PostgresPlace) else SQLiteBare(place)
