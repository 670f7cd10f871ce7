"""A store named by --db or QUEUECTL_DB that does not exist: commands that only read (or change
only what a store already holds) say so in one line (exit 66) and create nothing; commands that
put something in the store create it, as does any command on the per-user default store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from clihelp import assert_error, ok, run_cli, seed, stored

READERS = [
    ["status"], ["status", "--json"], ["list"], ["list", "--json"], ["show", "job1"],
    ["logs", "job1"], ["logs", "job1", "--follow"], ["worker", "list"], ["worker", "stop"],
    ["dlq", "list"], ["dlq", "retry", "--all"], ["dlq", "purge", "--yes"], ["config", "list"],
    ["config", "get", "workers"], ["config", "unset", "workers"], ["cancel", "job1"],
    ["prune", "--older-than", "1d"], ["ui", "--workers", "0"],
]


@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_a_mistyped_db_creates_nothing(tmp_path, args):
    path = tmp_path / "typo" / "queuectl.db"
    assert_error(run_cli(*args, db=path), 66, f"no queuectl store at {path}", "queuectl init")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args", [["status"], ["list", "--json"], ["config", "list"]], ids=" ".join)
def test_a_mistyped_queuectl_db_creates_nothing(tmp_path, args):
    path = tmp_path / "typo.db"
    assert_error(run_cli(*args, env={"QUEUECTL_DB": str(path)}), 66, f"no queuectl store at {path}")
    assert os.listdir(tmp_path) == []


def test_an_empty_file_is_no_store_and_stays_empty(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    assert_error(run_cli("status", db=path), 66, f"no queuectl store at {path}")
    assert os.listdir(tmp_path) == ["empty.db"] and path.read_bytes() == b""
    assert ok("enqueue", "-c", "true", "--id", "j", db=path) == "j\n"  # a write makes it a store
    assert list(stored(path)) == ["j"]


@pytest.mark.parametrize("args", [
    ["init"], ["enqueue", "-c", "true"], ["config", "set", "workers", "1"],
    ["worker", "start", "--burst", "--count", "1"],
], ids=" ".join)
def test_commands_that_write_create_the_store(tmp_path, args):
    path = tmp_path / "new" / "queuectl.db"
    code, _, err = run_cli(*args, db=path)
    assert code == 0, err
    assert json.loads(ok("status", "--json", db=path))["store"] == str(path)


def test_an_existing_store_is_read_as_before(tmp_path):
    path = tmp_path / "queuectl.db"
    seed(path, {"id": "job1", "command": "true"})
    assert [j["id"] for j in json.loads(ok("list", "--json", db=path))] == ["job1"]


def test_the_per_user_default_store_is_created_on_first_use(tmp_path):
    data = tmp_path / "data"
    env = {"XDG_DATA_HOME": str(data)}
    status = json.loads(ok("status", "--json", env=env))
    assert status["store"] == str(data / "queuectl" / "queuectl.db")
    assert set(status["counts"].values()) == {0}
    assert (data / "queuectl" / "queuectl.db").exists()


# -- PostgreSQL ---------------------------------------------------------------------------------

def _schema_exists(url: str) -> bool:
    import psycopg

    from queuectl.store.postgres.conn import parse_location

    where = parse_location(url)
    with psycopg.connect(where.conninfo, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                            (where.schema,)).fetchone() is not None


@pytest.mark.parametrize("args", [["status"], ["list", "--json"], ["worker", "list"],
                                  ["config", "get", "workers"]], ids=" ".join)
def test_a_read_on_postgres_without_the_schema_creates_nothing(pg_url, args):
    schema = pg_url.rsplit("schema=", 1)[1]
    assert_error(run_cli(*args, db=pg_url), 66, "no queuectl store at", repr(schema))
    assert not _schema_exists(pg_url)
    assert ok("enqueue", "-c", "true", "--id", "j", db=pg_url) == "j\n"
    assert _schema_exists(pg_url)
    assert [j["id"] for j in json.loads(ok("list", "--json", db=pg_url))] == ["j"]


def test_a_read_on_postgres_in_an_empty_schema_of_that_name_creates_nothing(pg_url):
    import psycopg

    from queuectl.store.postgres.conn import parse_location

    where = parse_location(pg_url)
    with psycopg.connect(where.conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{where.schema}"')
    assert_error(run_cli("status", db=pg_url), 66, "no queuectl store at")
    with psycopg.connect(where.conninfo, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s",
                            (where.schema,)).fetchone()[0] == 0
