"""Rows in COPY's text format, written to the server in large blocks: what `copy.write_row`
does one row at a time in Python, done a column at a time (a value that every row shares is
formatted once). For a bulk file of plain jobs that is two values formatted a row instead of
eighteen, and one write per block of rows.

The text format: columns separated by a tab, rows by a newline, NULL as `\\N`, and in text
values a backslash, tab, newline and carriage return escaped with a backslash (PostgreSQL's
"COPY ... FROM STDIN" text format). Values are str, int, float or None, as the enqueue rows
hold them.
"""

from __future__ import annotations

from itertools import repeat
from typing import Iterator, Sequence

NULL = "\\N"
BLOCK_ROWS = 10_000  # rows per write to the server
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def value_text(value: object) -> str:
    """One value as COPY's text format writes it."""
    if value is None:
        return NULL
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, bool):  # (an int, but COPY would not read "True" as one)
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    raise TypeError(f"no COPY text for a {type(value).__name__}")


def _column_text(column: tuple) -> Iterator[str]:
    """A column's values as text: formatted once when every row holds the same value (and
    type)."""
    first = column[0]
    kinds = set(map(type, column))
    if column.count(first) == len(column) and len(kinds) == 1:
        return repeat(value_text(first), len(column))
    if kinds == {str}:  # (ids, commands) usually with nothing to escape: as they are
        joined = "\0".join(column)
        if not any(c in joined for c in "\\\t\n\r"):
            return iter(column)
    return map(value_text, column)


def copy_blocks(rows: Sequence[tuple], constants: tuple = ()) -> Iterator[str]:
    """The rows (each alike in length), each followed by the `constants`, as blocks of COPY
    text, in order."""
    for start in range(0, len(rows), BLOCK_ROWS):
        block = rows[start:start + BLOCK_ROWS]
        columns = [_column_text(column) for column in zip(*block)]
        columns += [repeat(value_text(c), len(block)) for c in constants]
        yield "\n".join(map("\t".join, zip(*columns))) + "\n"
