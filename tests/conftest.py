"""Shared fixtures: a fresh store per backend, and a settable fake clock."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

import pgserver
from queuectl.store.base import Store

START = 1_700_000_000.0


def _open_sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    from queuectl.store.sqlite import SQLiteStore

    # durability "normal": the contract does not depend on fsync, and the suite stays fast.
    return SQLiteStore(str(tmp_path / "store" / "queuectl.db"), durability="normal")


def _open_postgres(tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    from queuectl.store.postgres import PostgresStore

    return PostgresStore(request.getfixturevalue("pg_url"), durability="normal")


# Backend id -> opener. Every test of the `store` fixture runs against each.
BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], Store]] = {
    "sqlite": _open_sqlite,
    "postgres": _open_postgres,
}


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pgserver.Server]:
    """A real PostgreSQL server for this test process (one per xdist worker).

    QUEUECTL_TEST_POSTGRES_URL=postgresql://... uses a running server instead (its user must be
    allowed to create and drop schemas). Without PostgreSQL's binaries the tests fail: they are
    never skipped silently."""
    given = os.environ.get("QUEUECTL_TEST_POSTGRES_URL")
    if given:
        yield pgserver.Server(given.rsplit("/", 1)[0], "", 0, "", None)
        return
    with pgserver.running() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: pgserver.Server) -> Iterator[str]:
    """The URL of a fresh, empty queuectl schema on the test server, dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    yield pg_server.url(schema=schema)
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store of each backend."""
    s = BACKENDS[request.param](tmp_path, request)
    try:
        yield s
    finally:
        s.close()


class Clock:
    """A fake `now` the test sets and advances; pass `clock.now` to every `now=` parameter."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

    def set(self, when: float) -> float:
        self.now = when
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()
