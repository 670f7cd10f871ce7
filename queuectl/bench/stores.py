"""Where the benchmark's stores live: a fresh, throwaway store for each measurement.

`SQLitePlace` gives a new SQLite file under the benchmark's temporary directory (deleted with
it). `PostgresPlace` gives a new PostgreSQL schema `queuectl_bench_<pid>_<n>` in the database of
the URL the user named, and drops it when the measurement ends, whether it succeeded, failed or
was interrupted; it never opens the user's own schema (`?schema=` of the URL is replaced).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..store.postgres.conn import connect_error, driver, parse_location, query_error

PREFIX = "queuectl_bench_"
DROP_LOCK_TIMEOUT = "10s"  # a drop waits this long for another session's locks, then gives up


class Fresh(NamedTuple):
    db: str  # the store's location (a file path, or a URL naming the schema)
    dir: str  # a directory of its own for logs, stamps, job files and the jobs' cwd


def _scratch(workdir: str, name: str) -> str:
    path = os.path.join(workdir, name)
    os.makedirs(path, exist_ok=True)
    return path


def with_schema(url: str, schema: str) -> str:
    """`url` with its `schema` query parameter set to `schema` (other parameters kept)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    return urlunsplit(parts._replace(query=urlencode(query + [("schema", schema)])))


class SQLitePlace:
    kind = "sqlite"

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir

    @contextmanager
    def fresh(self, name: str) -> Iterator[Fresh]:
        path = _scratch(self.workdir, name)
        yield Fresh(os.path.join(path, "queuectl.db"), path)

    def describe(self) -> dict[str, object]:
        import sqlite3

        return {"kind": "sqlite", "version": sqlite3.sqlite_version,
                "where": "temporary files, deleted afterwards"}

    def close(self) -> None:
        pass


class PostgresPlace:
    """Schemas in the database of `url`, one per measurement, each dropped when it ends."""

    kind = "postgresql"

    def __init__(self, url: str, workdir: str) -> None:
        self.url = url
        self.workdir = workdir
        self.pg = parse_location(url)
        self._made = 0
        self._live: list[str] = []
        self.failed_drops: list[str] = []
        self._admin = self._connect()
        try:
            self.server = self._server_settings()
        except BaseException:
            self._admin.close()
            raise

    def _connect(self):
        psycopg = driver()
        try:
            conn = psycopg.connect(self.pg.conninfo, autocommit=True, connect_timeout=10,
                                   application_name="queuectl-bench")
        except psycopg.Error as exc:
            raise connect_error(exc, self.pg.display) from None
        return conn

    def _server_settings(self) -> dict[str, str]:
        psycopg = driver()
        try:
            row = self._admin.execute(
                "SELECT current_setting('server_version'), current_setting('fsync'), "
                "current_setting('synchronous_commit'), current_database()").fetchone()
        except psycopg.Error as exc:
            raise query_error(exc, self.pg.display) from None
        return {"version": row[0].split()[0], "fsync": row[1], "synchronous_commit": row[2],
                "database": row[3]}

    def conninfo(self) -> str:
        return self.pg.conninfo

    def new_schema(self) -> str:
        self._made += 1
        schema = f"{PREFIX}{os.getpid()}_{self._made}"
        self._live.append(schema)
        return schema

    @contextmanager
    def fresh(self, name: str) -> Iterator[Fresh]:
        """A URL naming a new schema (queuectl creates it on first open); dropped afterwards."""
        schema = self.new_schema()
        try:
            yield Fresh(with_schema(self.url, schema), _scratch(self.workdir, name))
        finally:
            self.drop(schema)

    @contextmanager
    def bare(self) -> Iterator[str]:
        """A new empty schema for a bare reference (created here); dropped afterwards."""
        schema = self.new_schema()
        try:
            try:
                self._admin.execute(f'CREATE SCHEMA "{schema}"')
            except driver().Error as exc:
                raise query_error(exc, self.pg.display) from None
            yield schema
        finally:
            self.drop(schema)

    def drop(self, schema: str) -> None:
        """DROP SCHEMA ... CASCADE; a failure is remembered and reported, not raised (it must
        not hide the error that ended the measurement)."""
        if schema not in self._live:
            return
        self._live.remove(schema)
        try:
            try:
                self._drop(schema)
            except driver().OperationalError:
                if not (self._admin.closed or self._admin.broken):
                    raise
                self._drop(schema)  # once more on a new connection: the old one was lost
        except Exception as exc:  # noqa: BLE001 - reported below, never raised
            self.failed_drops.append(schema)
            print(f"bench: could not drop schema {schema} ({type(exc).__name__}: "
                  f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); "
                  f'drop it with: DROP SCHEMA "{schema}" CASCADE', file=sys.stderr, flush=True)

    def _drop(self, schema: str) -> None:
        if self._admin.closed or self._admin.broken:
            self._admin = self._connect()
        self._admin.execute(f"SET lock_timeout = '{DROP_LOCK_TIMEOUT}'")
        self._admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def describe(self) -> dict[str, object]:
        """What was measured, for the report: never the password (`display` drops it)."""
        import sqlite3

        return {"kind": "postgresql", "version": self.server["version"],
                "at": self.pg.display.split("?", 1)[0],
                "fsync": self.server["fsync"],
                "synchronous_commit": self.server["synchronous_commit"],
                "where": f"one schema per measurement ({PREFIX}{os.getpid()}_<n>), dropped "
                         f"afterwards; the drain also on SQLite {sqlite3.sqlite_version} "
                         "for comparison"}

    def close(self) -> None:
        for schema in list(self._live):
            self.drop(schema)
        try:
            self._admin.close()
        except Exception:  # noqa: BLE001 - nothing left to do with it
            pass
