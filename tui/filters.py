"""The filter bar's text: `queue:NAME` picks one queue, the rest matches ids and commands.

Queue names hold no whitespace, so a `queue:` word is the whole name; the last such word wins.
Both parts go to the store (`list_jobs(queue=..., text=...)`): nothing is filtered here.
"""

from __future__ import annotations

import re
from typing import NamedTuple

PREFIX = "queue:"
# A `queue:` word with the whitespace before it; a bare `queue:` is a word being typed.
_QUEUE_WORD = re.compile(r"(?:^|\s+)queue:(\S*)(?=\s|$)")


class Filter(NamedTuple):
    queue: str | None = None
    text: str | None = None


def parse_filter(value: str | None) -> Filter:
    """The queue and the text that `value` asks for (None: no such filter)."""
    value = value or ""
    names = [name for name in _QUEUE_WORD.findall(value) if name]
    text = _QUEUE_WORD.sub("", value).strip()
    return Filter(names[-1] if names else None, text or None)


def with_queue(value: str | None, queue: str) -> str:
    """`value` filtered to `queue` instead of any queue it named; its text stays."""
    text = parse_filter(value).text
    return f"{PREFIX}{queue}" + (f" {text}" if text else "")
