"""When a schedule's ticks fall: a cron expression in a time zone (with `cronsim`), or a fixed
interval. Pure: times are epoch seconds in, epoch seconds out.

Daylight-saving time is handled as cronsim (and Debian's cron) documents it: a daily time that
does not exist on a spring-forward day (02:30) fires once, at the first existing moment after
it (03:00); a daily time that happens twice on a fall-back day fires once, at its first
occurrence; expressions that fire more often than hourly fire at every real occurrence.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import NamedTuple

from .durations import format_duration, parse_duration
from .errors import InvalidInput

MIN_EVERY = 1.0  # seconds
CATCH_UP = ("once", "none")  # missed ticks (nothing ran at them): one job, or none
OVERLAP = ("skip", "allow")  # a tick while the previous job still runs: skip it, or run both
ON_TIME = 60.0  # seconds: a tick fired later than this was missed (see `due`)


class Rule(NamedTuple):
    """A cron expression in a time zone, or an interval anchored at `anchor`."""

    cron: str | None
    tz: str | None
    every: float | None
    anchor: float

    def describe(self) -> str:
        if self.cron is not None:
            return f"cron '{self.cron}'" + (f" ({self.tz})" if self.tz else " (UTC)")
        return f"every {format_duration(self.every)}"


def _zone(name: str | None):
    if name is None:
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name[:60]!r} (e.g. Europe/Berlin, UTC)") from None


def make_rule(*, cron: str | None, every: str | float | None, tz: str | None,
              now: float) -> Rule:
    """A validated rule (exactly one of `cron` and `every`)."""
    if (cron is None) == (every is None):
        raise InvalidInput("give --cron or --every (one of them)")
    if every is not None:
        if tz is not None:
            raise InvalidInput("--tz applies to --cron, not --every")
        seconds = parse_duration(every, "--every")
        if seconds < MIN_EVERY:
            raise InvalidInput(f"--every must be at least {MIN_EVERY:g}s")
        return Rule(None, None, seconds, now)
    _zone(tz)
    from cronsim import CronSim, CronSimError

    try:
        CronSim(cron, datetime.fromtimestamp(now, timezone.utc))
    except (CronSimError, ValueError) as exc:
        raise InvalidInput(f"--cron: {cron[:60]!r} is not a cron expression: {exc}") from None
    return Rule(cron.strip(), tz, None, now)


def next_after(rule: Rule, after: float) -> float:
    """The first tick strictly after `after`."""
    if rule.every is not None:
        k = math.floor((after - rule.anchor) / rule.every) + 1
        return rule.anchor + max(k, 0) * rule.every
    from cronsim import CronSim

    start = datetime.fromtimestamp(after, timezone.utc).astimezone(_zone(rule.tz))
    return next(CronSim(rule.cron, start)).timestamp()


def last_at_or_before(rule: Rule, now: float, since: float) -> float:
    """The latest tick in [since, now] (`since` itself a tick, due already)."""
    if rule.every is not None:
        k = math.floor((now - rule.anchor) / rule.every)
        return max(since, rule.anchor + k * rule.every)
    tick = since
    while True:
        following = next_after(rule, tick)
        if following > now:
            return tick
        tick = following


class Due(NamedTuple):
    """What a schedule whose next tick has come does now."""

    tick: float | None  # the tick to make a job for (None: none, missed ticks skipped)
    missed: int  # ticks that passed without a job
    next_at: float  # its next tick afterwards


def due(rule: Rule, next_at: float, now: float, catch_up: str) -> Due:
    """`next_at` <= now: one job for the latest tick that has come (ticks missed while nothing
    ran merge into it); with catch_up "none", no job when that tick is later than ON_TIME."""
    latest = last_at_or_before(rule, now, next_at)
    missed = 0
    if latest > next_at:  # count the ticks between them, cheaply for intervals
        if rule.every is not None:
            missed = round((latest - next_at) / rule.every)
        else:
            tick = next_at
            while tick < latest and missed < 10_000:
                tick = next_after(rule, tick)
                missed += 1
    following = next_after(rule, now)
    if catch_up == "none" and now - latest > ON_TIME:
        return Due(None, missed + 1, following)
    return Due(latest, missed, following)
