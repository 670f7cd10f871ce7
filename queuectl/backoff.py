"""The retry rule: how long a failed job waits before retry k, and whether it has retries left."""

from __future__ import annotations

import random


def retry_delay(
    retry: int, base: float, cap: float | None = None, jitter: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number `retry` (1-based): base ** (retry - 1), capped.

    `jitter` in [0, 1] spreads the delay uniformly over [d * (1 - jitter), d]: it never waits
    longer than the rule, so the cap stays a real cap.
    """
    if retry < 1:
        raise ValueError("retry numbers start at 1")
    try:
        delay = float(base) ** (retry - 1)
    except OverflowError:
        delay = float("inf")
    if cap is not None:
        delay = min(delay, cap)
    if jitter:
        delay *= 1.0 - jitter * (rng or random).random()
    return delay


def next_step(attempts: int, max_retries: int) -> str:
    """After `attempts` runs have failed: "retry" while retries remain, else "dead"."""
    return "retry" if attempts <= max_retries else "dead"
