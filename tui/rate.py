"""Throughput for the header: jobs finished per second and a sparkline of the last minutes.

Each sample is the store's own count of jobs finished in the minute before it was taken
(`Status.finished_last_minute`) divided by 60, so every bar is a real one-minute average; one
sample is kept per bucket (the latest), and missing buckets show as gaps.
"""

from __future__ import annotations

from collections import OrderedDict

BARS = "▁▂▃▄▅▆▇█"


class Rate:
    def __init__(self, bucket: float = 10.0, buckets: int = 30) -> None:
        self.bucket = bucket
        self.buckets = buckets
        self._samples: OrderedDict[int, float] = OrderedDict()

    def add(self, now: float, finished_last_minute: int) -> None:
        index = int(now // self.bucket)
        self._samples[index] = finished_last_minute / 60.0
        self._samples.move_to_end(index)
        while self._samples and next(iter(self._samples)) <= index - self.buckets:
            self._samples.popitem(last=False)

    @property
    def current(self) -> float:
        return next(reversed(self._samples.values()), 0.0)

    def spark(self) -> str:
        """One character per bucket from the first sample kept to the latest."""
        if not self._samples:
            return ""
        first, last = min(self._samples), max(self._samples)
        peak = max(self._samples.values())
        chars = []
        for index in range(first, last + 1):
            value = self._samples.get(index)
            if value is None:
                chars.append(" ")
            elif peak <= 0:
                chars.append(BARS[0])
            else:
                chars.append(BARS[min(len(BARS) - 1, int(value / peak * (len(BARS) - 1) + 0.5))])
        return "".join(chars)


def format_rate(per_second: float) -> str:
    if per_second >= 10:
        return f"{per_second:.0f}/s"
    if per_second >= 0.1 or per_second == 0:
        return f"{per_second:.1f}/s"
    return f"{per_second * 60:.0f}/min"
