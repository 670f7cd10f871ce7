"""Settings: the known keys, their defaults and validation, and where a value comes from.

Resolution order: CLI flag > environment (QUEUECTL_<KEY>) > the store's config table > default.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Mapping, NamedTuple

from .durations import exact_duration, exact_size, format_duration, parse_duration, parse_size
from .errors import InvalidInput


def _number(low: float, high: float) -> Callable[[str, str], float]:
    def parse(key: str, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise InvalidInput(f"{key}: {text!r} is not a number") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise InvalidInput(f"{key} must be a number from {low:g} to {high:g}")
        return value
    return parse


def _integer(low: int, high: int) -> Callable[[str, str], int]:
    def parse(key: str, text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise InvalidInput(f"{key}: {text[:40]!r} is not a whole number") from None
        if not low <= value <= high:
            raise InvalidInput(f"{key} must be a whole number from {low} to {high}")
        return value
    return parse


def _duration(low: float, high: float, allow_none: bool = False) -> Callable[[str, str], Any]:
    def parse(key: str, text: str) -> float | None:
        if allow_none and text.strip().lower() in ("none", "off", "0", ""):
            return None
        value = parse_duration(text, key)
        if not low <= value <= high:
            raise InvalidInput(
                f"{key} must be from {format_duration(low)} to {format_duration(high)}"
            )
        return value
    return parse


def _size(key: str, text: str) -> int:
    return parse_size(text, key)


def _choice(*choices: str) -> Callable[[str, str], str]:
    def parse(key: str, text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise InvalidInput(f"{key} must be one of: {', '.join(choices)}")
        return value
    return parse


def _plain(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _duration_text(value: float | None) -> str:
    return "none" if value is None else exact_duration(value)


class Key(NamedTuple):
    name: str
    default: str
    parse: Callable[[str, str], Any]
    help: str
    show: Callable[[Any], str] = _plain  # a parsed value as people type it (1h, 1MiB)


KEYS: dict[str, Key] = {k.name: k for k in (
    Key("max-retries", "3", _integer(0, 1000), "retries after the first run, fixed on a job at enqueue"),
    Key("backoff-base", "2", _number(1, 1000), "retry k waits backoff-base ** (k - 1) seconds"),
    Key("backoff-max", "1h", _duration(0, 365 * 86400), "the longest wait between retries",
        _duration_text),
    Key("backoff-jitter", "0", _number(0, 1), "0..1: shorten each wait by up to this fraction at random"),
    Key("job-timeout", "none", _duration(0.001, 365 * 86400, allow_none=True),
        "timeout for jobs that have none of their own (none = no limit)", _duration_text),
    Key("lease", "15s", _duration(1, 30), "how long a claimed job is held without a worker heartbeat",
        _duration_text),
    Key("poll-interval", "1s", _duration(0.01, 3600), "an idle worker checks the store at least this often",
        _duration_text),
    Key("output-limit", "1MiB", _size, "output kept per attempt (head and tail, the middle cut)",
        exact_size),
    Key("workers", "2", _integer(0, 256), "worker processes for `worker start` and `ui`"),
    Key("durability", "normal", _choice("normal", "full"),
        "normal: job state changes may re-run a job after a power cut; full: fsync every change"),
)}


def env_name(key: str) -> str:
    return "QUEUECTL_" + key.upper().replace("-", "_")


def check_key(key: str) -> Key:
    spec = KEYS.get(key) or KEYS.get(key.replace("_", "-"))
    if spec is None:
        raise InvalidInput(f"unknown config key {key[:40]!r} (known: {', '.join(KEYS)})")
    return spec


def validate(key: str, text: str) -> str:
    """Check a value for a key; return the canonical key name."""
    spec = check_key(key)
    spec.parse(spec.name, text)
    return spec.name


class Settings(NamedTuple):
    """Resolved settings, picklable, handed to worker processes."""

    max_retries: int
    backoff_base: float
    backoff_max: float
    backoff_jitter: float
    job_timeout: float | None
    lease: float
    poll_interval: float
    output_limit: int
    workers: int
    durability: str


def live_window(settings: Settings) -> float:
    """A worker is live while its last heartbeat is younger than this (two leases)."""
    return 2 * settings.lease


def settings_of(store) -> Settings:
    """The settings in force for a store (anything with `config_items()`), env included."""
    return resolve(store.config_items())[0]


def resolve(stored: Mapping[str, str], environ: Mapping[str, str] | None = None,
            overrides: Mapping[str, str] | None = None) -> tuple[Settings, dict[str, str]]:
    """Settings plus, for each key, where its value came from (flag/env/store/default)."""
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, spec in KEYS.items():
        if name in overrides:
            text, source = overrides[name], "flag"
        elif env_name(name) in environ:
            text, source = environ[env_name(name)], "env"
        elif name in stored:
            text, source = stored[name], "store"
        else:
            text, source = spec.default, "default"
        try:
            values[name.replace("-", "_")] = spec.parse(name, text)
        except InvalidInput as exc:
            where = {"env": env_name(name), "store": "the store's config"}.get(source, source)
            raise InvalidInput(f"{exc} (from {where})") from None
        sources[name] = source
    return Settings(**values), sources
