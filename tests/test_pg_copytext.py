"""The PostgreSQL bulk enqueue's COPY text (queuectl/store/postgres/copytext.py) stores exactly
what psycopg's own `write_row` of the same rows stores: values, types and order, with text that
needs escaping, NULLs, shared and varying columns, across blocks."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from queuectl.models import NewJob
from queuectl.store import open_store
from queuectl.store.postgres import copytext

TABLE = "(seq serial PRIMARY KEY, a text, b bigint, c float8, d text, state text)"
NASTY = ["tab\there", "new\nline", "cr\rhere", "back\\slash", "\\N", "", "ünïcödé ✓",
         "\\t literally", "end\\", "'quote\"", "\x1b[31mred"]


def _rows(kind: str, n: int) -> list[tuple]:
    if kind == "nasty":
        return [(NASTY[i % len(NASTY)], i, i / 7, None if i % 3 else NASTY[-i % len(NASTY)])
                for i in range(n)]
    if kind == "shared":  # every column but the first the same in every row
        return [(f"id-{i}", 5, 1.5, "same") for i in range(n)]
    if kind == "nulls":
        return [(None, None, None, None) for _ in range(n)]
    if kind == "numbers":
        return [(str(i), -2**62 + i, [0.1, 1e300, -0.0, 2.5e-320, 1796229449.8552067][i % 5],
                 "x") for i in range(n)]
    raise AssertionError(kind)


@pytest.fixture
def conn(pg_server):
    schema = f"c_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url(), autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{schema}"')
        c.execute(f'SET search_path TO "{schema}"')
        for name in ("ours", "theirs"):
            c.execute(f"CREATE TABLE {name} {TABLE}")
        yield c
        c.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _stored(c, table: str) -> list[tuple]:
    return c.execute(f"SELECT seq, a, b, c, d, state, pg_typeof(c)::text FROM {table} "
                     "ORDER BY seq").fetchall()


@pytest.mark.parametrize("kind", ["nasty", "shared", "nulls", "numbers"])
@pytest.mark.parametrize("n", [1, 2, copytext.BLOCK_ROWS + 3])
def test_copy_text_stores_what_write_row_stores(conn, kind, n):
    rows = _rows(kind, n)
    cur = conn.cursor()
    with cur.copy("COPY ours (a, b, c, d, state) FROM STDIN") as copy:
        for block in copytext.copy_blocks(rows, ("pending",)):
            copy.write(block)
    with cur.copy("COPY theirs (a, b, c, d, state) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((*row, "pending"))
    ours, theirs = _stored(conn, "ours"), _stored(conn, "theirs")
    assert len(ours) == n and ours == theirs


def test_values_are_written_in_the_text_format():
    assert copytext.value_text(None) == "\\N"
    assert copytext.value_text("a\tb\nc\rd\\e") == "a\\tb\\nc\\rd\\\\e"
    assert copytext.value_text(True) == "1" and copytext.value_text(7) == "7"
    assert float(copytext.value_text(0.1)) == 0.1
    with pytest.raises(TypeError):
        copytext.value_text(b"bytes")


def test_a_bulk_enqueue_through_copy_keeps_every_command_as_given(pg_url):
    commands = [f"echo {i} '{NASTY[i % len(NASTY)]}'" for i in range(200)]
    store = open_store(pg_url)
    try:
        ids = list(store.enqueue([NewJob(command=c, queue="q" if i % 2 else None)
                                  for i, c in enumerate(commands)],
                                 now=store.now(), default_max_retries=0, default_cwd="/"))
        assert [store.get(i).command for i in ids] == commands
        assert {store.get(i).queue for i in ids} == {"q", "default"}
    finally:
        store.close()
