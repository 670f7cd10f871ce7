"""The SQLite bulk insert (queuectl/store/sqlite/bulk.py) stores exactly what executemany of the
same rows stores: values, their types, and the order of the rows, across statement chunks."""

from __future__ import annotations

import sqlite3

import pytest

from queuectl.store.sqlite import bulk

COLUMNS = ("a", "b", "c", "d", "state")
SCHEMA = "CREATE TABLE t (seq INTEGER PRIMARY KEY, a, b, c, d, state)"


def _stored(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT seq, a, typeof(a), b, typeof(b), c, typeof(c), d, typeof(d), "
                        "state FROM t ORDER BY seq").fetchall()


def _both(rows: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    ours, theirs = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    for conn in (ours, theirs):
        conn.execute(SCHEMA)
    bulk.insert_rows(ours, "t", COLUMNS, rows, "'pending'")
    theirs.executemany("INSERT INTO t (a, b, c, d, state) VALUES (?, ?, ?, ?, 'pending')", rows)
    return _stored(ours), _stored(theirs)


ROWS = {
    "one row": [("x", 1, None, 2.5)],
    "two varying, two shared": [(f"id{i}", f"cmd{i}", None, 2.5) for i in range(10)],
    "every column varies": [(i, str(i), float(i), bytes([i])) for i in range(10)],
    "equal values of other types": [("a", 1, 1, 0), ("b", 1.0, True, False), ("c", 1, 1, 0)],
    "shared but the last": [("x", 7, "q", None)] * 9 + [("x", 7, "q", 0)],
    "nan is never shared": [("x", float("nan"), 1, 1)] * 3,
}


@pytest.mark.parametrize("max_rows", [1000, 3, 1])
@pytest.mark.parametrize("name", ROWS)
def test_bulk_insert_stores_what_executemany_stores(monkeypatch, name, max_rows):
    monkeypatch.setattr(bulk, "MAX_ROWS", max_rows)
    ours, theirs = _both(ROWS[name])
    assert repr(ours) == repr(theirs)  # (repr: nan is not equal to itself)
    assert len(ours) == len(ROWS[name])


def test_no_rows_is_no_statement():
    conn = sqlite3.connect(":memory:")
    conn.execute(SCHEMA)
    bulk.insert_rows(conn, "t", COLUMNS, [], "'pending'")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_big_batch_has_a_larger_page_cache_only_while_it_is_inserted():
    conn = sqlite3.connect(":memory:")
    conn.execute("PRAGMA cache_size = -1234")
    with bulk.page_cache_for(conn, bulk.BIG_BATCH - 1):
        assert conn.execute("PRAGMA cache_size").fetchone() == (-1234,)
    with pytest.raises(RuntimeError):
        with bulk.page_cache_for(conn, bulk.BIG_BATCH):
            assert conn.execute("PRAGMA cache_size").fetchone() == (-bulk.BIG_CACHE_KIB,)
            raise RuntimeError
    assert conn.execute("PRAGMA cache_size").fetchone() == (-1234,)
