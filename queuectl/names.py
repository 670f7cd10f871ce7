"""Names people type for jobs and queues: printable, no whitespace, bounded. Pure."""

from __future__ import annotations

import unicodedata

from .errors import InvalidInput

MAX_ID_LENGTH = 128
MAX_QUEUE_NAME = 64


def validate_id(value: object, what: str = "id", longest: int = MAX_ID_LENGTH) -> str:
    """A job id (or, with `what`, another name people type): printable, no whitespace."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string")
    if not value:
        raise InvalidInput(f"{what} must not be empty")
    if len(value) > longest:
        raise InvalidInput(f"{what} is {len(value)} characters long; at most {longest} allowed")
    for ch in value:
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise InvalidInput(
                f"{what} must not contain whitespace or control characters (found U+{ord(ch):04X})"
            )
    return value


def validate_queue(value: object) -> str:
    return validate_id(value, "queue name", MAX_QUEUE_NAME)
