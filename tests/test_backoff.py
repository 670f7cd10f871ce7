"""The retry rule as tables."""

from __future__ import annotations

import random

import pytest

from queuectl.backoff import next_step, retry_delay


@pytest.mark.parametrize("base, delays", [
    (2, [1, 2, 4, 8, 16, 32, 64]),
    (3, [1, 3, 9, 27, 81]),
    (1, [1, 1, 1, 1, 1]),
    (1.5, [1, 1.5, 2.25, 3.375]),
    (10, [1, 10, 100, 1000]),
])
def test_retry_k_waits_base_to_the_k_minus_1(base, delays):
    assert [retry_delay(k, base) for k in range(1, len(delays) + 1)] == delays


@pytest.mark.parametrize("retry, base, cap, expected", [
    (1, 2, 60, 1),
    (6, 2, 60, 32),
    (7, 2, 60, 60),
    (8, 2, 60, 60),
    (3, 3, 5, 5),
    (1, 2, 0, 0),
    (1, 2, None, 1),
    (5000, 2, 3600, 3600),  # 2 ** 4999 overflows a float: still capped, never an error
    (5000, 1000, 60.5, 60.5),
])
def test_cap(retry, base, cap, expected):
    assert retry_delay(retry, base, cap) == expected


def test_uncapped_overflow_is_infinite_not_an_error():
    assert retry_delay(5000, 2) == float("inf")


@pytest.mark.parametrize("jitter", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("retry, base, cap", [(1, 2, None), (4, 2, None), (10, 2, 60)])
def test_jitter_only_shortens_within_bounds(jitter, retry, base, cap):
    rng = random.Random(1234)
    full = retry_delay(retry, base, cap)
    samples = [retry_delay(retry, base, cap, jitter, rng) for _ in range(500)]
    assert all(full * (1 - jitter) <= d <= full for d in samples)
    assert min(samples) < full * (1 - jitter * 0.9)  # the whole range is used
    assert max(samples) > full * (1 - jitter * 0.1)


def test_jitter_is_reproducible_with_a_seeded_random():
    a = [retry_delay(3, 2, None, 0.5, random.Random(9)) for _ in range(3)]
    b = [retry_delay(3, 2, None, 0.5, random.Random(9)) for _ in range(3)]
    assert a == b
    assert retry_delay(3, 2, None, 0.0, random.Random(9)) == 4


@pytest.mark.parametrize("retry", [0, -1])
def test_retry_numbers_start_at_one(retry):
    with pytest.raises(ValueError):
        retry_delay(retry, 2)


@pytest.mark.parametrize("attempts, max_retries, step", [
    (1, 0, "dead"),
    (1, 1, "retry"),
    (2, 1, "dead"),
    (1, 2, "retry"),
    (2, 2, "retry"),
    (3, 2, "dead"),
    (3, 3, "retry"),
    (4, 3, "dead"),
    (1000, 1000, "retry"),
    (1001, 1000, "dead"),
])
def test_next_step(attempts, max_retries, step):
    assert next_step(attempts, max_retries) == step


@pytest.mark.parametrize("max_retries", [0, 1, 2, 5])
def test_max_retries_means_that_many_retries_after_the_first_run(max_retries):
    runs = 1
    while next_step(runs, max_retries) == "retry":
        runs += 1
    assert runs == max_retries + 1
