"""The label dimensions every metric is split by, in one place.

Values are kept per named queue: every family in `exposition.py` carries the labels of SCOPE
(PromQL's `sum without (queue)` gives the store-wide value).
"""

from __future__ import annotations

from typing import Any

Scope = tuple[str, ...]  # label values, in the order of SCOPE

SCOPE: tuple[str, ...] = ("queue",)
WHOLE: Scope = ("default",)  # where a value goes that has no queue of its own


def scope_of_run(row: Any) -> Scope:
    """The scope a run (store.run_reads.RunRow) is counted in: its job's queue."""
    return (row.queue,)


def scope_of_total(total: Any) -> Scope:
    """The scope of one of the store's run totals (store.run_reads.RunTotal)."""
    return (total.queue,)


def scope_of_queue(queue: Any) -> Scope:
    """The scope of a queue's own values (models.QueueInfo)."""
    return (queue.name,)
