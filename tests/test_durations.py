"""Durations and sizes people type, and times shown to people, as tables."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from queuectl.durations import (MAX_SECONDS, exact_duration, exact_size, format_duration, iso,
                                parse_duration, parse_iso, parse_size, relative)
from queuectl.errors import InvalidInput


@pytest.mark.parametrize("value, seconds", [
    (0, 0.0), (5, 5.0), (2.5, 2.5), ("0", 0.0), ("30", 30.0), ("30s", 30.0), ("1.5", 1.5),
    (".5s", 0.5), ("250ms", 0.25), ("5m", 300.0), ("2h", 7200.0), ("1.5d", 129600.0),
    ("1w", 604800.0), (" 10 s ", 10.0), ("10 m", 600.0), ("3650d", MAX_SECONDS),
    (MAX_SECONDS, MAX_SECONDS),
])
def test_parse_duration_good(value, seconds):
    assert parse_duration(value) == seconds
    assert isinstance(parse_duration(value), float)


@pytest.mark.parametrize("value", [
    True, False, None, [], {}, b"5s", -1, -0.5, "-1", "-1s", math.nan, math.inf, -math.inf,
    "nan", "inf", "infinity", "", " ", "s", "5x", "5 sec", "5S", "5M", "1e3", "1_000", "5s5",
    "1h30m", "0x10", "3651d", MAX_SECONDS + 1, 1e300, 10**30, 10**400, "9" * 400,
    "1" + "0" * 5000, "5\n5", "x" * 10_000, "5" + "s" * 10_000,
], ids=lambda v: repr(v)[:30])
def test_parse_duration_bad(value):
    with pytest.raises(InvalidInput) as info:
        parse_duration(value, "timeout")
    message = str(info.value)
    assert message.startswith("timeout") and "\n" not in message and len(message) < 200


@pytest.mark.parametrize("value, size", [
    (0, 0), (1, 1), (512, 512), ("512", 512), ("1b", 1), ("1B", 1), ("1k", 1000), ("1KB", 1000),
    ("1KiB", 1024), ("64kib", 65536), ("10MB", 10**7), ("1MiB", 2**20), ("1 MiB", 2**20),
    ("2g", 2 * 10**9), ("1GiB", 2**30), ("1024GiB", 2**40), (2**40, 2**40),
])
def test_parse_size_good(value, size):
    assert parse_size(value) == size


@pytest.mark.parametrize("value", [
    True, False, None, 1.0, 1.5, "1.5MB", -1, "-1", "1TB", "1 XB", "", "MB", "1e6", "0x10",
    2**40 + 1, "1025GiB", 10**30, "9" * 30, "9" * 5000, "1 2", [], math.nan,
    "x" * 10_000, "1" + "k" * 10_000,
], ids=lambda v: repr(v)[:30])
def test_parse_size_bad(value):
    with pytest.raises(InvalidInput) as info:
        parse_size(value, "output-limit")
    message = str(info.value)
    assert message.startswith("output-limit") and "\n" not in message and len(message) < 200


@pytest.mark.parametrize("seconds, text", [
    (-5, "0ms"), (0, "0ms"), (0.001, "1ms"), (0.45, "450ms"), (0.999, "999ms"), (1, "1s"),
    (3, "3s"), (3.5, "3.5s"), (9.94, "9.9s"), (10, "10s"), (59.9, "59s"), (60, "1m"),
    (125, "2m05s"), (3599, "59m59s"), (3600, "1h"), (3659, "1h"), (3660, "1h01m"),
    (3840, "1h04m"), (86399, "23h59m"), (86400, "1d"), (86400 + 3599, "1d"),
    (86400 + 7200, "1d2h"), (30 * 86400, "30d"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("ts, now, text", [
    (None, 100.0, "-"), (100.0, 100.0, "now"), (100.4, 100.0, "now"), (99.6, 100.0, "now"),
    (97.0, 100.0, "3s ago"), (220.0, 100.0, "in 2m"), (100.0, 3700.0, "1h ago"),
    (100.0, 100.75, "750ms ago"),
])
def test_relative(ts, now, text):
    assert relative(ts, now) == text


@pytest.mark.parametrize("ts, text", [
    (None, None),
    (0.0, "1970-01-01T00:00:00.000Z"),
    (1_700_000_000.0, "2023-11-14T22:13:20.000Z"),
    (1_700_000_000.123, "2023-11-14T22:13:20.123Z"),
])
def test_iso(ts, text):
    assert iso(ts) == text


@pytest.mark.parametrize("text, ts", [
    ("2023-11-14T22:13:20Z", 1_700_000_000.0),
    ("2023-11-14T22:13:20z", 1_700_000_000.0),
    ("2023-11-14T22:13:20.500Z", 1_700_000_000.5),
    ("2023-11-14T22:13:20+00:00", 1_700_000_000.0),
    ("2023-11-15T00:13:20+02:00", 1_700_000_000.0),
    ("2023-11-14T17:13:20-05:00", 1_700_000_000.0),
    ("2023-11-14T22:13:20", 1_700_000_000.0),  # naive means UTC, not local time
    ("2023-11-14 22:13:20", 1_700_000_000.0),
    ("  2023-11-14T22:13:20Z ", 1_700_000_000.0),
    ("2023-11-14", 1_699_920_000.0),
])
def test_parse_iso(text, ts):
    assert parse_iso(text) == ts


@pytest.mark.parametrize("ts", [0.0, 1_700_000_000.0, 1_700_000_000.25, 4_102_444_800.999])
def test_iso_round_trip(ts):
    assert parse_iso(iso(ts)) == ts
    naive = iso(ts).removesuffix("Z")
    assert parse_iso(naive) == ts


def test_parse_iso_matches_datetime():
    dt = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert parse_iso(dt.isoformat()) == dt.timestamp()


@pytest.mark.parametrize("value", [
    None, 5, 1.5, True, b"2023-11-14", "", "tomorrow", "2023-13-01T00:00:00Z",
    "2023-11-14T25:00:00", "14/11/2023", "2023-11-14T22:13:20ZZ", "Z", "1700000000",
    "2" * 10_000, "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
], ids=lambda v: repr(v)[:30])
def test_parse_iso_bad(value):
    with pytest.raises(InvalidInput) as info:
        parse_iso(value, "run_at")
    message = str(info.value)
    assert message.startswith("run_at") and "\n" not in message and len(message) < 200


# -- settings shown in the units people type, and typed back unchanged --------------------------

@pytest.mark.parametrize("seconds, text", [
    (0.0, "0s"), (1.0, "1s"), (15.0, "15s"), (90.0, "90s"), (60.0, "1m"), (3600.0, "1h"),
    (7200.0, "2h"), (5400.0, "90m"), (86400.0, "1d"), (604800.0, "1w"), (1209600.0, "2w"),
    (0.25, "250ms"), (0.01, "10ms"), (1.5, "1500ms"), (0.0005, "0.0005s"), (2.25, "2250ms"),
    (31536000.0, "365d"), (1e-9, "0.000000001s"),
])
def test_exact_duration_is_the_largest_whole_unit_and_parses_back(seconds, text):
    assert exact_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize("size, text", [
    (0, "0B"), (1, "1B"), (1000, "1KB"), (1024, "1KiB"), (65536, "64KiB"), (2**20, "1MiB"),
    (10**6, "1MB"), (10 * 10**6, "10MB"), (2**30, "1GiB"), (10**9, "1GB"), (1500, "1500B"),
    (3 * 2**20 + 1, "3145729B"), (2**40, "1024GiB"),
])
def test_exact_size_is_the_largest_whole_unit_and_parses_back(size, text):
    assert exact_size(size) == text
    assert parse_size(text) == size
