"""The benchmark's report: figures beside their references, targets, and the table or JSON.

Pure: no I/O besides building the machine description; everything here is tested as tables.
"""

from __future__ import annotations

import math
import os
import platform
import sqlite3
import sys
from dataclasses import dataclass, field
from typing import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError("p must be from 0 to 100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def ratio(value: float, reference: float | None) -> float | None:
    """value / reference, or None when there is no usable reference."""
    if reference is None or reference == 0 or not math.isfinite(reference):
        return None
    return value / reference


@dataclass(frozen=True)
class Target:
    """A goal from issue 5: `on` the figure's "value" or its "ratio", `op` ">=" or "<="."""

    on: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        if self.on not in ("value", "ratio") or self.op not in (">=", "<="):
            raise ValueError(f"bad target {self.on} {self.op} {self.bound}")

    def met(self, value: float, ratio_: float | None) -> bool | None:
        """Whether the goal is met; None when it is on a ratio that could not be computed."""
        subject = value if self.on == "value" else ratio_
        if subject is None or not math.isfinite(subject):
            return None
        return subject >= self.bound if self.op == ">=" else subject <= self.bound

    def text(self, unit: str) -> str:
        if self.on == "ratio":
            return f"{self.op} {self.bound:g}x"
        return f"{self.op} {self.bound:,g} {unit}"


@dataclass(frozen=True)
class Figure:
    key: str  # stable identifier for scripts, e.g. "drain"
    name: str  # what a person reads
    value: float
    unit: str
    reference_name: str | None = None
    reference_value: float | None = None
    target: Target | None = None
    samples: int | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return ratio(self.value, self.reference_value)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value, self.ratio)


@dataclass(frozen=True)
class Omitted:
    key: str
    reason: str


@dataclass(frozen=True)
class Report:
    machine: dict[str, object]
    settings: dict[str, object]
    figures: tuple[Figure, ...]
    omitted: tuple[Omitted, ...] = ()
    notes: tuple[str, ...] = field(default=())
    store: dict[str, object] = field(default_factory=dict)  # what was measured: see store_line


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "executable": sys.executable,
    }


def format_value(value: float | None, unit: str) -> str:
    """A number in its unit, rounded for people: "1,234 jobs/s", "4.21 ms", "0.85x"."""
    if value is None or not math.isfinite(value):
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "ms":
        digits = 2 if value < 10 else 1 if value < 100 else 0
        return f"{value:,.{digits}f} ms"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


def mark(met: bool | None) -> str:
    return {True: "ok", False: "MISS", None: "-"}[met]


def table_rows(report: Report) -> list[list[str]]:
    rows = [["figure", "value", "reference", "ref value", "ratio", "target", "met"]]
    for f in report.figures:
        rows.append([
            f.name, format_value(f.value, f.unit), f.reference_name or "-",
            format_value(f.reference_value, f.unit) if f.reference_value is not None else "-",
            format_value(f.ratio, "x"), f.target.text(f.unit) if f.target else "-",
            mark(f.met) if f.target else "",
        ])
    return rows


def store_line(store: dict[str, object]) -> str:
    """Which store the figures were measured on, e.g. "postgresql 15.4 at postgresql://u@h/db
    (server fsync=on, synchronous_commit=on), ...". Never holds a password (the caller gives
    the URL as `display_location` shows it)."""
    kind = store.get("kind", "sqlite")
    text = f"{kind} {store.get('version', '?')}"
    if store.get("at"):
        text += f" at {store['at']}"
    server = [f"{k}={store[k]}" for k in ("fsync", "synchronous_commit") if k in store]
    if server:
        text += f" (server {', '.join(server)})"
    if store.get("where"):
        text += f", {store['where']}"
    return text


def render_table(report: Report) -> str:
    """The report as an aligned plain-ASCII table with the machine, store and settings above."""
    m = report.machine
    s = report.settings
    lines = [
        f"machine: {m.get('cpus')} CPUs, {m.get('platform')}, Python {m.get('python')}, "
        f"SQLite {m.get('sqlite')}",
    ]
    if report.store:
        lines.append(f"store: {store_line(report.store)}")
    lines += [
        "settings: " + ", ".join(f"{k}={v}" for k, v in s.items()),
        "",
    ]
    rows = table_rows(report)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {1, 3, 4}
    for n, row in enumerate(rows):
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths).rstrip())
    if report.omitted:
        lines.append("")
        lines.extend(f"not measured: {o.key}: {o.reason}" for o in report.omitted)
    if report.notes:
        lines.append("")
        lines.extend(f"note: {n}" for n in report.notes)
    return "\n".join(lines) + "\n"


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def figure_json(f: Figure) -> dict[str, object]:
    return {
        "key": f.key, "name": f.name, "value": _finite(f.value), "unit": f.unit,
        "reference": None if f.reference_name is None else
        {"name": f.reference_name, "value": _finite(f.reference_value)},
        "ratio": _finite(f.ratio),
        "target": None if f.target is None else
        {"on": f.target.on, "op": f.target.op, "bound": f.target.bound,
         "text": f.target.text(f.unit)},
        "met": f.met, "samples": f.samples, "note": f.note or None,
    }


def to_json(report: Report) -> dict[str, object]:
    return {
        "machine": report.machine,
        "store": report.store,
        "settings": report.settings,
        "figures": [figure_json(f) for f in report.figures],
        "omitted": [{"key": o.key, "reason": o.reason} for o in report.omitted],
        "notes": list(report.notes),
    }
