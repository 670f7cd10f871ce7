"""Inserting many rows into one table quickly: multi-row INSERT statements in which a column
that holds one value in every row is bound once for the statement (`?1`) and the others once
per row. For a batch of jobs that differ only in id and command, that binds two values a row
instead of seventeen, and steps one statement per chunk instead of one per row."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from itertools import chain
from operator import itemgetter
from typing import Iterator, Sequence

MAX_ROWS = 1000  # rows per statement (a full chunk's statement is prepared once, then cached)


def _shared(column: tuple) -> bool:
    """Every row holds the same value, of the same type (1, 1.0 and True are stored apart)."""
    return column.count(column[0]) == len(column) and len(set(map(type, column))) == 1


def insert_rows(conn: sqlite3.Connection, table: str, columns: Sequence[str],
                rows: Sequence[tuple], literals: str = "") -> None:
    """INSERT `rows` (one value per `columns`, each row alike in length) into `table`, in
    order, inside the caller's transaction; `literals` appends SQL constants to every row
    (e.g. `'pending'` for a trailing column named in `columns`)."""
    if not rows:
        return
    width = len(rows[0])
    values = list(zip(*rows))
    shared = [j for j in range(width) if _shared(values[j])]
    varying = [j for j in range(width) if j not in shared]
    first = rows[0]
    consts = [first[j] for j in shared]
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per_statement = max(1, min(MAX_ROWS, (limit - len(consts)) // max(1, len(varying))))
    names = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    tail = f", {literals}" if literals else ""
    pick = itemgetter(*varying) if len(varying) > 1 else None

    def statement(count: int) -> str:
        where = {j: f"?{n}" for n, j in enumerate(shared, 1)}
        tuples = []
        for r in range(count):
            base = len(shared) + r * len(varying)
            where.update({j: f"?{base + n}" for n, j in enumerate(varying, 1)})
            tuples.append("(" + ", ".join(where[j] for j in range(width)) + tail + ")")
        return names + ", ".join(tuples)

    full = statement(per_statement) if len(rows) >= per_statement else ""
    for start in range(0, len(rows), per_statement):
        chunk = rows[start:start + per_statement]
        if pick is not None:
            params = consts + list(chain.from_iterable(map(pick, chunk)))
        elif varying:
            params = consts + [r[varying[0]] for r in chunk]
        else:
            params = consts
        conn.execute(full if len(chunk) == per_statement else statement(len(chunk)), params)


BIG_BATCH = 10_000  # rows: a batch this large gets a larger page cache while it is inserted
BIG_CACHE_KIB = 64 * 1024


@contextmanager
def page_cache_for(conn: sqlite3.Connection, rows: int) -> Iterator[None]:
    """While inserting `rows` rows: a page cache large enough that the indexes' pages stay in
    memory until the commit (SQLite's default of 2 MiB spills them for big batches); the
    connection's own setting is back afterwards."""
    if rows < BIG_BATCH:
        yield
        return
    before = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = -{BIG_CACHE_KIB}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size = {int(before)}")
