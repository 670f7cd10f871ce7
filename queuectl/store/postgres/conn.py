"""Talking to PostgreSQL: the URL, errors in queuectl's terms, transactions that survive a
dropped connection, and the server's clock.

A connection lost before COMMIT changed nothing, so the transaction is simply run again on a new
connection. A connection lost *during* COMMIT leaves the outcome unknown: the caller passes a
`landed` check (e.g. "does the claim token exist?") that decides on a new connection whether the
write happened; without one the error is reported.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache
from typing import Any, Callable, NamedTuple, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...errors import (InvalidInput, PermissionDenied, QueueError, StoreBusy, StoreIOError,
                      StoreUnusable)
from ...sanitize import one_line

DEFAULT_SCHEMA = "queuectl"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")
CLOCK_RESYNC = 60.0  # seconds between re-readings of the server's clock
CONNECT_TIMEOUT = 10
ATTEMPTS = 3  # runs of one transaction when connections keep dropping before COMMIT
LANDED_PATIENCE = 30.0  # seconds to keep asking whether a COMMIT that lost its answer landed


class PgLocation(NamedTuple):
    conninfo: str  # the URL as libpq takes it (our own parameters removed)
    schema: str
    display: str  # the URL without its password, for messages


def parse_location(url: str) -> PgLocation:
    """Split `postgresql://user:pw@host:port/db?schema=name&...` into what libpq and we use."""
    parts = urlsplit(url)
    rest, schema = [], DEFAULT_SCHEMA
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            schema = value
        else:
            rest.append((key, value))
    if not _SCHEMA_NAME.match(schema):
        raise InvalidInput(f"schema name {schema!r} in the store URL is not usable: lowercase "
                           "letters, digits and _ only, at most 48 characters")
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    display_query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                               if k != "password"])
    display = urlunsplit(parts._replace(netloc=netloc, query=display_query))
    return PgLocation(urlunsplit(parts._replace(query=urlencode(rest))), schema, display)


def driver():
    try:
        import psycopg
    except ImportError:
        raise StoreUnusable("a PostgreSQL store needs the psycopg driver; install it with: "
                            "pip install 'queuectl[postgres]'") from None
    return psycopg


@lru_cache(maxsize=512)
def pg_sql(sql: str) -> str:
    """Our SQL uses `?` placeholders (shared with SQLite); psycopg wants `%s`."""
    return sql.replace("%", "%%").replace("?", "%s")


class Tx:
    """A cursor inside one transaction, taking `?`-style SQL."""

    __slots__ = ("cur",)

    def __init__(self, cur) -> None:
        self.cur = cur

    def execute(self, sql: str, params: Sequence[Any] = ()):
        return self.cur.execute(pg_sql(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.cur.executemany(pg_sql(sql), rows)

    def one(self, sql: str, params: Sequence[Any] = ()):
        return self.cur.execute(pg_sql(sql), params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.cur.execute(pg_sql(sql), params).fetchall()

    def notify(self, channel: str) -> None:
        """Queue a notification; PostgreSQL delivers it at COMMIT (and not on ROLLBACK)."""
        self.cur.execute("SELECT pg_notify(%s, '')", (channel,))


def _server_text(exc: Exception) -> str:
    """libpq's message on one line, without the "connection to server at ... failed:" prefix
    (the caller names the server)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = re.sub(r'^connection failed: ', "", text)
    text = re.sub(r'connection to server at "[^"]*"(, port \d+)? failed: ', "", text)
    text = re.sub(r'connection to server on socket "[^"]*" failed: ', "", text)
    return one_line(text.replace("FATAL:  ", "") or type(exc).__name__, 200)


def connect_error(exc: Exception, where: str) -> QueueError:
    """A failed connection attempt as the error a person can act on."""
    text = _server_text(exc)
    low = text.lower()
    if "invalid uri" in low or "invalid connection option" in low or "invalid integer" in low \
            or "invalid percent" in low or "missing \"=\"" in low:
        return InvalidInput(f"the store URL is not valid: {text}")
    if "password authentication failed" in low or "no pg_hba.conf entry" in low or (
            "role" in low and "does not exist" in low) or "permission denied" in low \
            or "password" in low:
        return PermissionDenied(f"PostgreSQL at {where} refused the login: {text}")
    if "database" in low and "does not exist" in low:
        return StoreUnusable(f"PostgreSQL at {where}: {text}; create it first (createdb)")
    return StoreBusy(f"cannot reach PostgreSQL at {where}: {text}")


def query_error(exc: Exception, where: str) -> QueueError:
    psycopg = driver()
    errors = psycopg.errors
    text = one_line(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, 160)
    if isinstance(exc, errors.InsufficientPrivilege):
        return PermissionDenied(f"PostgreSQL at {where}: {text}")
    if isinstance(exc, (errors.DiskFull, errors.OutOfMemory, errors.IoError)):
        return StoreIOError(f"PostgreSQL at {where}: {text}")
    if isinstance(exc, (errors.LockNotAvailable, errors.DeadlockDetected,
                        errors.SerializationFailure, errors.QueryCanceled,
                        errors.TooManyConnections, errors.AdminShutdown,
                        errors.CannotConnectNow, psycopg.OperationalError)):
        return StoreBusy(f"PostgreSQL at {where} is unavailable: {text}")
    if isinstance(exc, (errors.UndefinedTable, errors.UndefinedColumn, errors.InvalidSchemaName)):
        return StoreUnusable(f"the queuectl schema at {where} is damaged or was dropped: {text}")
    return StoreUnusable(f"PostgreSQL at {where}: {text}")


def _gone(conn) -> bool:
    return bool(conn.closed or conn.broken)


class PgConnection:
    """One connection (re-made when it drops) with `search_path` set to our schema."""

    def __init__(self, location: PgLocation, *, synchronous: bool = True,
                 autocommit: bool = False) -> None:
        self.location = location
        self.synchronous = synchronous
        self.autocommit = autocommit
        self._conn = None
        self._offset = 0.0  # server epoch seconds minus our monotonic clock
        self._synced_at = -CLOCK_RESYNC
        self._stall_ms = 0  # idle_in_transaction_session_timeout (0: the server's default)
        self.connect()

    # -- the connection
    def connect(self):
        psycopg = driver()
        try:
            conn = psycopg.connect(self.location.conninfo, autocommit=True,
                                   connect_timeout=CONNECT_TIMEOUT, application_name="queuectl")
        except psycopg.Error as exc:
            raise connect_error(exc, self.location.display) from None
        try:
            conn.execute("SELECT set_config('search_path', %s, false)", (self.location.schema,))
            if not self.synchronous:
                conn.execute("SET synchronous_commit = off")
            if self._stall_ms:
                self._set_stall(conn)
            self._sync_clock(conn)
            conn.autocommit = self.autocommit
        except psycopg.Error as exc:
            conn.close()
            raise query_error(exc, self.location.display) from None
        self._conn = conn
        return conn

    def limit_stall(self, seconds: float) -> None:
        """End (server side) a session of ours that sits inside a transaction for longer than
        `seconds`, now and after every reconnect: its locks are released, and the transaction,
        which never committed, is retried on a new connection when this process wakes."""
        self._stall_ms = max(1, round(seconds * 1000))
        self.transaction(lambda tx: self._set_stall(tx.cur))

    def _set_stall(self, conn_or_cursor) -> None:
        conn_or_cursor.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, "
                               "false)", (f"{self._stall_ms}ms",))

    def raw(self):
        """The live psycopg connection (connecting again if it was lost)."""
        if self._conn is None or _gone(self._conn):
            self.discard()
            return self.connect()
        return self._conn

    def discard(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - it is already broken
                pass
            self._conn = None

    def close(self) -> None:
        self.discard()

    # -- the server's clock
    def _sync_clock(self, conn) -> None:
        before = time.monotonic()
        server = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0]
        after = time.monotonic()
        self._offset = server - (before + after) / 2
        self._synced_at = after

    def now(self) -> float:
        """The server's wall clock, read through our monotonic clock (so a step of this host's
        clock changes nothing) and re-read every minute."""
        mono = time.monotonic()
        if mono - self._synced_at >= CLOCK_RESYNC and self._conn is not None \
                and not self._conn.broken and self.autocommit is False:
            try:
                self._sync_clock(self._conn)
                self._conn.rollback()
            except Exception:  # noqa: BLE001 - keep the last offset; the next write reconnects
                self._synced_at = mono
            mono = time.monotonic()
        return mono + self._offset

    # -- transactions
    def transaction(self, body: Callable[[Tx], Any], *,
                    landed: Callable[[Tx], bool] | None = None,
                    passthrough: tuple[type[Exception], ...] = ()) -> Any:
        """Run `body` in one transaction and commit it; return what it returned. psycopg errors
        of the `passthrough` classes reach the caller as they are (after the rollback)."""
        psycopg = driver()
        where = self.location.display
        for attempt in range(ATTEMPTS):
            conn = self.raw()
            try:
                with conn.cursor() as cur:
                    result = body(Tx(cur))
            except psycopg.Error as exc:
                if _gone(conn):
                    self.discard()
                    if attempt + 1 < ATTEMPTS:
                        continue
                    raise query_error(exc, where) from None
                self._rollback(conn)
                if isinstance(exc, passthrough):
                    raise
                raise query_error(exc, where) from None
            except BaseException:
                self._rollback(conn)
                raise
            try:
                conn.commit()
            except psycopg.Error as exc:
                if not _gone(conn):
                    self._rollback(conn)
                    raise query_error(exc, where) from None
                self.discard()
                if landed is None:
                    raise StoreBusy(f"lost the connection to PostgreSQL at {where} while "
                                    "committing; the change may or may not have been made") from None
                if self._landed(landed):
                    return result
                continue
            return result
        raise StoreBusy(f"PostgreSQL at {where} keeps dropping the connection")  # pragma: no cover

    def _rollback(self, conn) -> None:
        try:
            conn.rollback()
        except driver().Error:
            self.discard()  # the connection went away meanwhile: nothing is left to undo

    def _landed(self, check: Callable[[Tx], bool]) -> bool:
        """Whether a transaction whose COMMIT lost its connection took effect, asked on a new
        connection. While that cannot be asked (the new connection fails too), ask again after a
        pause, for up to LANDED_PATIENCE seconds: giving up at once would let the caller make the
        change a second time without knowing whether the first landed (a claim retried with a
        new token leaves the first claimed job to nobody until its lease lapses)."""
        psycopg = driver()
        where = self.location.display
        deadline = time.monotonic() + LANDED_PATIENCE
        delay = 0.05
        while True:
            try:
                conn = self.raw()
                try:
                    with conn.cursor() as cur:
                        found = check(Tx(cur))
                except psycopg.Error as exc:
                    if not _gone(conn):
                        self._rollback(conn)
                        raise query_error(exc, where) from None
                    raise StoreBusy(f"lost the connection to PostgreSQL at {where}: "
                                    f"{_server_text(exc)}") from None
                self._rollback(conn)  # (if that fails, the answer is in all the same)
                return found
            except StoreBusy:
                self.discard()
                if time.monotonic() + delay > deadline:
                    raise StoreBusy(f"lost the connection to PostgreSQL at {where} while "
                                    "committing, and could not learn whether the change was "
                                    "made") from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.transaction(lambda tx: tx.all(sql, params))
