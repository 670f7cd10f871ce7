"""The label dimensions every metric is split by, in one place.

Today a store has one queue, so the scope of a value is empty. When named queues land, SCOPE
becomes ("queue",), the `scope_of_*` functions return `(row.queue,)`, and every family in
`exposition.py` gains the label without other changes.
"""

from __future__ import annotations

from typing import Any

Scope = tuple[str, ...]  # label values, in the order of SCOPE

SCOPE: tuple[str, ...] = ()
WHOLE: Scope = ()  # the scope of store-wide values


def scope_of_run(row: Any) -> Scope:
    """The scope a run (store.run_reads.RunRow) is counted in."""
    return WHOLE


def scope_of_total(total: Any) -> Scope:
    """The scope of one of the store's run totals (store.run_reads.RunTotal)."""
    return WHOLE
