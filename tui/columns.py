"""The columns of each pane (and of the queue view), and which of them fit a given width.

A pane always shows a job's id, its state (when it runs, how long it has run, when it
finished, why it died) and its command; the lesser columns are dropped, least useful first,
when the pane is too narrow for them (the job's queue last of them), and the id column narrows
last. Flexible columns (the
command; in the Dead pane the error too) share whatever room is left. The widths are computed
only when the pane is resized, so updating rows never re-measures the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int  # the width it wants; for a flexible column, the least it gets
    keep: int = 0  # 0: always shown; otherwise dropped before columns with a higher `keep`
    flex: int = 0  # a flexible column's share of the room left over
    narrow: int | None = None  # its width when even the kept columns do not fit


_ID = Column("id", "id", 14, narrow=12)  # generated ids are 12 hex digits
_COMMAND = Column("command", "command", 8, flex=1)
_QUEUE = Column("queue", "queue", 9, keep=3)  # running in a limited queue: with its slot

# The columns of each pane in display order; a Row's cells are in this order (snapshot.py).
COLUMNS: Mapping[str, tuple[Column, ...]] = MappingProxyType({
    "pending": (_ID, _QUEUE, Column("pri", "pri", 4, keep=1), Column("when", "when", 12, narrow=11),
                Column("tries", "tries", 5, keep=2), _COMMAND),
    "running": (_ID, _QUEUE, Column("elapsed", "elapsed", 8), Column("worker", "worker", 10, keep=1),
                Column("attempt", "try", 5, keep=2), _COMMAND),
    "completed": (_ID, _QUEUE, Column("took", "took", 7, keep=2), Column("finished", "finished", 10),
                  Column("exit", "exit", 4, keep=1), _COMMAND),
    "dead": (_ID, _QUEUE, Column("tries", "tries", 5, keep=1), Column("died", "died", 9, keep=2),
             Column("error", "last error", 11, flex=2), _COMMAND),
})

# The queue view's columns (queue_view.py): the name, its limit and state, its jobs per state.
QUEUE_COLUMNS: tuple[Column, ...] = (
    Column("name", "queue", 16, narrow=10), Column("limit", "limit", 9, narrow=5),
    Column("state", "state", 11), Column("waiting", "waiting", 7, keep=3),
    Column("running", "running", 7), Column("completed", "completed", 9, keep=2),
    Column("dead", "dead", 5, keep=3), Column("defaults", "defaults", 8, keep=1, flex=1),
)

# The schedule view's columns (schedule_view.py): the name, its rule, its next and last job.
SCHEDULE_COLUMNS: tuple[Column, ...] = (
    Column("name", "schedule", 16, narrow=10), Column("rule", "when", 16, narrow=10),
    Column("state", "state", 7), Column("next", "next run", 10),
    Column("last", "last job", 14, keep=2, narrow=12), Column("last_state", "its state", 9, keep=3),
    Column("command", "command", 8, keep=1, flex=1),
)


def fit(pane: str, width: int, padding: int = 1) -> tuple[tuple[Column, int], ...]:
    """The columns of `pane` to show in `width` cells, with their widths (see `fit_columns`)."""
    return fit_columns(COLUMNS[pane], width, padding)


def fit_columns(all_columns: tuple[Column, ...], width: int,
                padding: int = 1) -> tuple[tuple[Column, int], ...]:
    """The columns of `all_columns` to show in `width` cells, with their widths, in display order.

    Each column also takes `padding` cells on both sides. When even the kept columns at their
    narrow widths do not fit, they are all returned at those widths (the pane crops them).
    """
    columns = list(all_columns)
    narrow = False

    def size(column: Column) -> int:
        return (column.narrow if narrow and column.narrow else column.width) + 2 * padding

    while sum(size(c) for c in columns) > width:
        droppable = [c for c in columns if c.keep]
        if droppable:
            columns.remove(min(droppable, key=lambda c: c.keep))
        elif not narrow:
            narrow = True
        else:
            break
    widths = {c.key: size(c) - 2 * padding for c in columns}
    room = max(0, width - sum(size(c) for c in columns))
    flexible = [c for c in columns if c.flex]
    shares = sum(c.flex for c in flexible)
    for column in flexible:
        widths[column.key] += room * column.flex // shares
    if flexible:  # what rounding left over goes to the last one
        widths[flexible[-1].key] += room - sum(room * c.flex // shares for c in flexible)
    return tuple((c, widths[c.key]) for c in columns)
