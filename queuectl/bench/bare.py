"""The bare references for the store being measured, behind one interface: plain `sqlite3` for
an SQLite store (`reference`), plain psycopg on the same server for PostgreSQL (`reference_pg`).

Each method measures in a throwaway place of its own and returns the raw samples; `names` says
what each reference is, for the report.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Iterator

from ..store import open_store
from ..store.postgres.conn import driver, parse_location, query_error
from . import reference, reference_pg
from .stores import PostgresPlace, SQLitePlace


class SQLiteBare:
    names = {
        "drain": "bare loop claim/spawn/done, NORMAL",
        "dispatch": "bare dispatcher (pipe wake)",
        "insert": "executemany INSERT, same schema, FULL",
        "claim": "bare claim (plain sqlite3, NORMAL)",
    }

    def __init__(self, place: SQLitePlace) -> None:
        self.place = place

    def _path(self, name: str) -> str:
        return os.path.join(self.place.workdir, name)

    def drain(self, jobs: int, workers: int) -> float:
        return reference.bare_drain(self._path("bare-drain.db"), jobs, workers)

    def dispatch_ms(self, samples: int, idle: float) -> list[float]:
        return reference.bare_dispatch_ms(self._path("bare-dispatch.db"), self.place.workdir,
                                          samples, idle)

    def insert_rate(self, jobs: int) -> float:
        return reference.raw_insert_rate(self._path("raw-insert.db"), jobs, self.place.workdir)

    def claim_times(self, label: str, waiting: int, claims: int) -> list[float]:
        return reference.bare_claim_times(self._path(f"bare-claim-{label}.db"), waiting, claims)


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
        "insert": "COPY, same schema, sync commit on",
        "claim": "bare claim (plain psycopg, sync commit off)",
    }

    def __init__(self, place: PostgresPlace) -> None:
        self.place = place
        self.conninfo = place.conninfo()

    def drain(self, jobs: int, workers: int) -> float:
        with self.place.bare() as schema, _server_errors(self.place):
            return reference_pg.bare_drain(self.conninfo, schema, jobs, workers)

    def dispatch_ms(self, samples: int, idle: float) -> list[float]:
        stamps = tempfile.mkdtemp(prefix="bare-dispatch-", dir=self.place.workdir)
        with self.place.bare() as schema, _server_errors(self.place):
            return reference_pg.bare_dispatch_ms(self.conninfo, schema, stamps, samples, idle)

    def insert_rate(self, jobs: int) -> float:
        with self.place.fresh("raw-insert") as fresh, _server_errors(self.place):
            open_store(fresh.db).close()  # queuectl's own schema, indexes included
            return reference_pg.raw_copy_rate(self.conninfo, parse_location(fresh.db).schema,
                                              jobs, fresh.dir)

    def claim_times(self, label: str, waiting: int, claims: int) -> list[float]:
        with self.place.bare() as schema, _server_errors(self.place):
            return reference_pg.bare_claim_times(self.conninfo, schema, waiting, claims)


def bare_for(place: SQLitePlace | PostgresPlace) -> SQLiteBare | PostgresBare:
    return PostgresBare(place) if isinstance(place, PostgresPlace) else SQLiteBare(place)
