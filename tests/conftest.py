"""Shared fixtures: a fresh store per backend, and a settable fake clock."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from queuectl.store.base import Store

START = 1_700_000_000.0


def _open_sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    from queuectl.store.sqlite import SQLiteStore

    # durability "normal": the contract does not depend on fsync, and the suite stays fast.
    return SQLiteStore(str(tmp_path / "store" / "queuectl.db"), durability="normal")


# Backend id -> opener. A PostgreSQL backend adds an opener that connects to a live server
# (e.g. from QUEUECTL_TEST_POSTGRES_URL, skipping when unset) and gives each test a fresh schema.
BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], Store]] = {
    "sqlite": _open_sqlite,
}


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
