"""The SQLite store's doorbells: a worker's rings on new work; a console's on any change."""

from __future__ import annotations

import os
import threading
import time

import pytest

from queuectl.models import NewJob
from queuectl.store.sqlite import SQLiteStore
from queuectl.store.sqlite.doorbell import Doorbell

NOW = 1_700_000_000.0


@pytest.fixture
def store(tmp_path):
    store = SQLiteStore(str(tmp_path / "q.db"), durability="normal")
    yield store
    store.close()


def enqueue(store, job_id: str) -> None:
    store.enqueue([NewJob(command="true", id=job_id)], now=NOW, default_max_retries=0,
                  default_cwd="/")


def rings_within(bell, seconds: float) -> bool:
    return bell.wait(seconds)


@pytest.mark.parametrize("mechanism", ["inotify", "watchfiles"])
def test_a_consoles_doorbell_rings_on_every_change_not_only_on_new_work(tmp_path, mechanism):
    path = str(tmp_path / "q.db")
    store = SQLiteStore(path, durability="normal")
    store.register_worker("w-1", 1, "h", NOW)
    bell = Doorbell(path + "-bell", also=(path, path + "-wal"), required=True,
                    mechanisms=(mechanism,))
    try:
        assert bell.mechanism == mechanism
        time.sleep(0.2)  # let a watchfiles thread start watching
        bell.clear()
        store.heartbeat("w-1", NOW + 1)  # a write that does not ring the worker's bell
        assert rings_within(bell, 5)
        time.sleep(0.1)
        bell.clear()
        enqueue(store, "a")
        assert rings_within(bell, 5)
    finally:
        bell.close()
        store.close()


def test_the_stores_console_doorbell_watches_the_database(store):
    store.register_worker("w-1", 1, "h", NOW)
    bell = store.doorbell(everything=True)
    try:
        assert bell is not None and bell.mechanism == "inotify"
        bell.clear()
        store.heartbeat("w-1", NOW + 1)
        assert rings_within(bell, 2)
    finally:
        bell.close()


def test_a_workers_doorbell_ignores_writes_that_bring_no_work(store):
    store.register_worker("w-1", 1, "h", NOW)
    bell = store.doorbell()
    try:
        bell.clear()
        store.heartbeat("w-1", NOW + 1)
        assert not rings_within(bell, 0.2)
        enqueue(store, "a")
        assert rings_within(bell, 2)
    finally:
        bell.close()


def test_without_a_mechanism_a_wait_sleeps_its_whole_timeout_or_until_woken(tmp_path):
    bell = Doorbell(str(tmp_path / "q.db-bell"), mechanisms=())
    try:
        assert bell.mechanism == "poll" and bell.problem
        started = time.monotonic()
        assert bell.wait(0.3) is False
        assert time.monotonic() - started >= 0.29
        read, write = os.pipe()
        threading.Timer(0.1, os.write, (write, b"x")).start()
        started = time.monotonic()
        assert bell.wait(5, (read,)) is False
        assert time.monotonic() - started < 2
        os.close(read)
        os.close(write)
    finally:
        bell.close()


def test_a_consoles_doorbell_that_cannot_watch_says_why(tmp_path):
    with pytest.raises(OSError, match="no way to watch"):
        Doorbell(str(tmp_path / "q.db-bell"), also=("q.db",), required=True, mechanisms=())
    with pytest.raises(OSError, match="cannot create"):
        Doorbell(str(tmp_path / "gone" / "q.db-bell"), also=("q.db",), required=True)


@pytest.mark.parametrize("mechanism", ["inotify", "watchfiles"])
def test_a_wake_fd_ends_the_wait(tmp_path, mechanism):
    bell = Doorbell(str(tmp_path / "q.db-bell"), mechanisms=(mechanism,))
    read, write = os.pipe()
    try:
        os.write(write, b"x")
        started = time.monotonic()
        assert bell.wait(5, (read,)) is False
        assert time.monotonic() - started < 1
    finally:
        bell.close()
        os.close(read)
        os.close(write)


def test_the_watchfiles_fallback_rings_on_the_bell(store):
    bell = Doorbell(store.bell_path, mechanisms=("watchfiles",))
    try:
        assert bell.mechanism == "watchfiles"
        time.sleep(0.2)  # let its thread start watching
        bell.clear()
        store.ring()
        assert rings_within(bell, 5)
    finally:
        bell.close()
