"""When schedules fire, as tables with injected times (ticks.py): cron and intervals, time zones,
both daylight-saving edges, catch-up."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from queuectl.errors import InvalidInput
from queuectl.ticks import ON_TIME, due, make_rule, next_after

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, tz=timezone.utc) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def shown(ts: float, tz=BERLIN) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M %Z")


@pytest.mark.parametrize("cron, tz, start, expected", [
    ("0 3 * * *", None, "2026-06-01 12:00", ["2026-06-02 03:00 UTC", "2026-06-03 03:00 UTC"]),
    ("*/15 * * * *", None, "2026-06-01 12:07", ["2026-06-01 12:15 UTC", "2026-06-01 12:30 UTC"]),
    ("0 9 * * 1-5", None, "2026-06-05 10:00", ["2026-06-08 09:00 UTC", "2026-06-09 09:00 UTC"]),
    ("0 3 * * *", "Europe/Berlin", "2026-06-01 12:00",
     ["2026-06-02 03:00 CEST", "2026-06-03 03:00 CEST"]),
    # Spring forward (2026-03-29, 02:00 -> 03:00): 02:30 does not exist; it fires once, at 03:00.
    ("30 2 * * *", "Europe/Berlin", "2026-03-28 12:00",
     ["2026-03-29 03:00 CEST", "2026-03-30 02:30 CEST", "2026-03-31 02:30 CEST"]),
    # Fall back (2026-10-25, 03:00 -> 02:00): 02:30 happens twice; it fires once, the first time.
    ("30 2 * * *", "Europe/Berlin", "2026-10-24 12:00",
     ["2026-10-25 02:30 CEST", "2026-10-26 02:30 CET", "2026-10-27 02:30 CET"]),
])
def test_cron_ticks(cron, tz, start, expected):
    zone = timezone.utc if tz is None else BERLIN
    rule = make_rule(cron=cron, every=None, tz=tz, now=at(start, zone))
    ticks, t = [], at(start, zone)
    for _ in expected:
        t = next_after(rule, t)
        ticks.append(shown(t, zone))
    assert ticks == expected


def test_the_spring_forward_day_fires_02_30_exactly_once_and_fall_back_once_too():
    for day in ("2026-03-29", "2026-10-25"):
        rule = make_rule(cron="30 2 * * *", every=None, tz="Europe/Berlin", now=0)
        start, end = at(f"{day} 00:00", BERLIN), at(f"{day} 23:59", BERLIN)
        ticks, t = [], start
        while (t := next_after(rule, t)) < end:
            ticks.append(t)
        assert len(ticks) == 1, [shown(x) for x in ticks]


def test_every_ticks_are_anchored_at_the_schedules_start():
    rule = make_rule(cron=None, every="15m", tz=None, now=1000.0)
    assert next_after(rule, 1000.0) == 1900.0
    assert next_after(rule, 1899.9) == 1900.0
    assert next_after(rule, 1900.0) == 2800.0
    assert next_after(rule, 0.0) == 1000.0


@pytest.mark.parametrize("now, catch_up, tick, missed, next_at", [
    (1900.0, "once", 1900.0, 0, 2800.0),  # on time
    (1930.0, "once", 1900.0, 0, 2800.0),  # a little late: still that tick
    (1900.0 + 3 * 900 + 5, "once", 1900.0 + 3 * 900, 3, 1900.0 + 4 * 900),  # 3 missed: one job
    (1900.0 + 3 * 900 + 5, "none", 1900.0 + 3 * 900, 3, 1900.0 + 4 * 900),  # last one on time
    (1900.0 + ON_TIME + 1, "none", None, 1, 2800.0),  # nothing ran at the tick: skipped
    (1900.0 + ON_TIME + 1, "once", 1900.0, 0, 2800.0),  # caught up once
])
def test_a_due_schedule_makes_one_job_for_the_latest_tick(now, catch_up, tick, missed, next_at):
    rule = make_rule(cron=None, every="15m", tz=None, now=1000.0)
    d = due(rule, 1900.0, now, catch_up)
    assert (d.tick, d.missed, d.next_at) == (tick, missed, next_at)


def test_missed_cron_ticks_merge_into_one():
    rule = make_rule(cron="0 * * * *", every=None, tz=None, now=0)
    first = at("2026-06-01 10:00")
    d = due(rule, first, at("2026-06-01 13:20"), "once")
    assert (d.tick, d.missed, d.next_at) == (at("2026-06-01 13:00"), 3, at("2026-06-01 14:00"))


@pytest.mark.parametrize("kw, fragment", [
    ({"cron": "61 * * * *"}, "not a cron expression"),
    ({"cron": "* * *"}, "not a cron expression"),
    ({"cron": "0 3 * * *", "every": "1h"}, "one of them"),
    ({}, "one of them"),
    ({"every": "0.5s"}, "at least 1s"),
    ({"every": "soon"}, "not a duration"),
    ({"every": "1h", "tz": "Europe/Berlin"}, "--tz applies to --cron"),
    ({"cron": "0 3 * * *", "tz": "Mars/Olympus"}, "unknown time zone"),
])
def test_bad_rules_are_refused(kw, fragment):
    args = {"cron": None, "every": None, "tz": None, **kw}
    with pytest.raises(InvalidInput, match=fragment):
        make_rule(now=0, **args)
