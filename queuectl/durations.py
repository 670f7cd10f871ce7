"""Parsing durations and sizes people type, and showing times to people."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

from .errors import InvalidInput

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d|w)?\s*$")
_SIZE_UNITS = {
    "": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 10**6, "mb": 10**6,
    "mib": 2**20, "g": 10**9, "gb": 10**9, "gib": 2**30,
}
_SIZE = re.compile(r"^\s*(\d{1,20})\s*([a-zA-Z]*)\s*$")
MAX_SECONDS = 10 * 365 * 86400.0


def parse_duration(value: object, what: str = "duration") -> float:
    """Seconds from a number or a string like "30s", "5m", "2h", "1.5d"; never negative."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a number of seconds or a duration like 30s, 5m, 2h")
    if isinstance(value, (int, float)):
        seconds = float(value) if isinstance(value, float) or abs(value) < 2**63 else math.inf
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise InvalidInput(
                f"{what}: {value!r:.40} is not a duration (use seconds or 30s, 5m, 2h, 1d)"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise InvalidInput(f"{what} must be a number of seconds or a duration like 30s, 5m, 2h")
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInput(f"{what} must be a finite number of seconds >= 0")
    if seconds > MAX_SECONDS:
        raise InvalidInput(f"{what} must be at most 10 years")
    return seconds


def parse_size(value: object, what: str = "size") -> int:
    """Bytes from an integer or a string like "1MiB", "512k", "10MB"."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a number of bytes")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        unit = match.group(2).lower()
        if unit not in _SIZE_UNITS:
            raise InvalidInput(f"{what}: unknown unit {match.group(2)!r:.20} (use B, KB, KiB, MB, MiB, GB, GiB)")
        size = int(match.group(1)) * _SIZE_UNITS[unit]
    else:
        raise InvalidInput(f"{what}: {value!r:.40} is not a size (use bytes or 64KiB, 10MB, 1GiB)")
    if size < 0 or size > 2**40:
        raise InvalidInput(f"{what} must be between 0 and 1 TiB")
    return size


def format_duration(seconds: float) -> str:
    """A short human duration: 450ms, 3s, 2m5s, 1h4m, 3d2h."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    if seconds < 10:
        return f"{seconds:.1f}s".replace(".0s", "s")
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s" if s % 60 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m" if s % 3600 >= 60 else f"{s // 3600}h"
    return f"{s // 86400}d{(s % 86400) // 3600}h" if s % 86400 >= 3600 else f"{s // 86400}d"


_EXACT_UNITS = (("w", 604800.0), ("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0),
                ("ms", 0.001))
_EXACT_SIZES = (("GiB", 2**30), ("GB", 10**9), ("MiB", 2**20), ("MB", 10**6), ("KiB", 1024),
                ("KB", 1000))


def exact_duration(seconds: float) -> str:
    """A duration in the largest unit it is a whole number of (1h, 90s, 250ms), which
    parse_duration reads back as the same value; never rounded like format_duration."""
    for unit, factor in _EXACT_UNITS:
        count = seconds / factor
        if count >= 1 and abs(count - round(count)) <= 1e-9 * count:
            return f"{round(count)}{unit}"
    if seconds == 0:
        return "0s"
    return f"{seconds:.12f}".rstrip("0").rstrip(".") + "s"


def exact_size(size: int) -> str:
    """A byte count in the largest unit it is a whole number of (1MiB, 10MB, 1500B), which
    parse_size reads back as the same value."""
    for unit, factor in _EXACT_SIZES:
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def relative(ts: float | None, now: float) -> str:
    """"3s ago" or "in 2m" for a timestamp relative to now; "-" when absent."""
    if ts is None:
        return "-"
    delta = ts - now
    if abs(delta) < 0.5:
        return "now"
    text = format_duration(abs(delta)).replace("ms", "ms")
    return f"in {text}" if delta > 0 else f"{text} ago"


def iso(ts: float | None) -> str | None:
    """ISO 8601 UTC with milliseconds, or None."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: object, what: str = "run_at") -> float:
    """Epoch seconds from an ISO 8601 timestamp; a naive one is taken as UTC."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be an ISO 8601 timestamp string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what}: {value!r:.40} is not an ISO 8601 timestamp") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    ts = dt.timestamp()
    try:  # an offset (or rounding) can push a year-1 or year-9999 time out of `iso`'s range
        datetime.fromtimestamp(ts, tz=timezone.utc)
    except (OverflowError, ValueError, OSError):
        raise InvalidInput(f"{what}: {value!r:.40} is out of range (years 1 to 9999, UTC)") from None
    return ts
