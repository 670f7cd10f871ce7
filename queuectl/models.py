"""Plain data: job states, jobs, runs, and the validation of a job spec. No I/O."""

from __future__ import annotations

import json
import math
import os
from enum import Enum
from typing import Any, NamedTuple

from .durations import format_duration, parse_duration, parse_iso
from .errors import InvalidInput
from . import workflow
from .names import MAX_ID_LENGTH, MAX_QUEUE_NAME, validate_id, validate_queue  # noqa: F401


class JobState(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    DEAD = "dead"

    @classmethod
    def parse(cls, text: str) -> "JobState":
        name = text.strip().lower()
        if name == "processing":
            name = "running"
        try:
            return cls(name)
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise InvalidInput(f"unknown state {text!r} (choose from {choices}, processing)") from None


WAITING = (JobState.PENDING, JobState.FAILED)

# Linux passes one argument of at most 128 KiB (MAX_ARG_STRLEN, NUL included) to a program, so
# a longer command could never start as `/bin/sh -c COMMAND`: it is refused at enqueue.
MAX_COMMAND_BYTES = 128 * 1024 - 1
PRIORITY_RANGE = (-(2**31), 2**31 - 1)
MAX_RETRIES_LIMIT = 1000
SPEC_KEYS = ("id", "command", "queue", "priority", "max_retries", "timeout", "run_at", "delay",
             "after", "after_any", "unique_key", "env", "cwd", "on_lost")
DEFAULT_QUEUE = "default"
_SPEC_KEYSET = frozenset(SPEC_KEYS)


class Job(NamedTuple):
    """A job as stored. `tries` counts the runs that count against its retry budget (a DLQ retry
    starts a fresh budget); `attempt` numbers its latest run over its whole life (what
    QUEUECTL_ATTEMPT, `show`, `logs --attempt` and the console call the run), 0 before the first."""

    id: str
    command: str
    state: JobState
    priority: int
    tries: int
    max_retries: int
    timeout: float | None
    cwd: str
    run_at: float
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    last_error: str | None = None
    worker_id: str | None = None
    lease_until: float | None = None
    lease: float | None = None  # seconds the running claim's worker renews its lease by
    cancelled: bool = False  # it went to the DLQ because someone cancelled it
    cancel_requested: bool = False  # running, and someone asked to cancel it
    rescues: int = 0  # runs lost with their worker, since the last DLQ retry
    token: str | None = None
    attempt: int = 0
    queue: str = DEFAULT_QUEUE
    slot: int | None = None  # running in a limited queue: the slot it holds, 0..limit-1
    backoff_base: float | None = None  # its queue's backoff base when enqueued (None: config)
    blocked: int = 0  # dependencies not met yet: it waits, and is never claimed, while > 0
    unique_key: str | None = None
    env: dict | None = None  # variables set for its command only
    on_lost: str = "retry"  # a run whose worker died: "retry" it, or "fail" (to the DLQ)
    origin: str | None = None  # "schedule:NAME" or "hook:ID" for the jobs those made


class Run(NamedTuple):
    """One run of a job (its `attempt` number), with where and how it ended."""

    job_id: str
    attempt: int
    started_at: float
    finished_at: float | None
    exit_code: int | None
    signal: str | None
    outcome: str | None
    error: str | None
    worker: str | None
    host: str | None
    output_bytes: int = 0
    dropped_bytes: int = 0
    slot: int | None = None


class QueueInfo(NamedTuple):
    """A named queue: its limit, whether it is paused, the defaults its jobs take, and how many
    jobs it holds per state."""

    name: str
    concurrency: int | None  # None: unlimited
    paused: bool
    kill: bool  # paused with --kill: its running jobs are stopped and given back
    max_retries: int | None
    timeout: float | None
    backoff_base: float | None
    priority: int | None
    created_at: float
    counts: dict  # JobState -> jobs

    @property
    def running(self) -> int:
        return self.counts.get(JobState.RUNNING, 0)

    def defaults_text(self) -> str:
        """The defaults its jobs take, as people read them ("priority 5, retries 2"; "" if none)."""
        parts = []
        if self.priority is not None:
            parts.append(f"priority {self.priority}")
        if self.max_retries is not None:
            parts.append(f"retries {self.max_retries}")
        if self.timeout is not None:
            parts.append(f"timeout {format_duration(self.timeout)}")
        if self.backoff_base is not None:
            parts.append(f"backoff {self.backoff_base:g}")
        return ", ".join(parts)

    @property
    def waiting(self) -> int:
        return self.counts.get(JobState.PENDING, 0) + self.counts.get(JobState.FAILED, 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class NewJob(NamedTuple):
    """A validated job spec, ready to be stored. None: take the queue's default, else the
    store's setting."""

    command: str
    id: str | None = None
    priority: int | None = None
    max_retries: int | None = None
    timeout: float | None = None
    run_at: float | None = None
    delay: float | None = None
    cwd: str | None = None
    queue: str | None = None  # None: the default queue
    after: tuple[str, ...] = ()  # run once these completed
    after_any: tuple[str, ...] = ()  # run once these ended, whichever way
    unique_key: str | None = None
    env: dict | None = None
    on_lost: str | None = None
    origin: str | None = None  # (set by schedules and hooks, not by specs)


def new_job_id() -> str:
    """A short, URL-safe id: 12 hex digits (48 random bits), never starting with '-'."""
    return os.urandom(6).hex()


def new_job_ids(n: int) -> list[str]:
    """`n` ids as new_job_id makes them, from one read of the random source."""
    pool = os.urandom(6 * n).hex()
    return [pool[i:i + 12] for i in range(0, 12 * n, 12)]


def _int_field(spec: dict, key: str, low: int, high: int) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            value = int(value)
        else:
            raise InvalidInput(f"{key} must be a whole number")
    if not low <= value <= high:
        raise InvalidInput(f"{key} must be between {low} and {high}")
    return value


def validate_spec(spec: object) -> NewJob:
    """Turn a decoded JSON value (or flag values in a dict) into a NewJob, or raise InvalidInput."""
    if not isinstance(spec, dict):
        raise InvalidInput("a job spec must be a JSON object, e.g. {\"command\": \"echo hi\"}")
    unknown = [] if _SPEC_KEYSET.issuperset(spec) else [k for k in spec if k not in _SPEC_KEYSET]
    if unknown:
        raise InvalidInput(
            f"unknown key {str(unknown[0])[:40]!r} (allowed: {', '.join(SPEC_KEYS)})"
        )
    command = spec.get("command")
    if command is None:
        raise InvalidInput("command is required")
    if not isinstance(command, str):
        raise InvalidInput("command must be a string")
    if not command.strip():
        raise InvalidInput("command must not be empty")
    if "\x00" in command:
        raise InvalidInput("command must not contain NUL characters")
    try:
        size = len(command) if command.isascii() else len(command.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput("command must be valid Unicode text (it has a lone surrogate)") from None
    if size > MAX_COMMAND_BYTES:
        raise InvalidInput(
            f"command is {size:,} bytes; /bin/sh -c takes at most {MAX_COMMAND_BYTES:,} "
            "(put a longer script in a file and enqueue `sh FILE`)")
    if len(spec) == 1:  # the common case: just a command
        return NewJob(command)
    job_id = spec.get("id")
    if job_id is not None:
        job_id = validate_id(job_id)
    queue = spec.get("queue")
    if queue is not None:
        queue = validate_queue(queue)
    priority = _int_field(spec, "priority", *PRIORITY_RANGE)
    max_retries = _int_field(spec, "max_retries", 0, MAX_RETRIES_LIMIT)
    timeout = spec.get("timeout")
    if timeout is not None:
        timeout = parse_duration(timeout, "timeout")
        if timeout <= 0:
            raise InvalidInput("timeout must be greater than 0")
    run_at = spec.get("run_at")
    delay = spec.get("delay")
    if run_at is not None and delay is not None:
        raise InvalidInput("give run_at or delay, not both")
    if run_at is not None:
        run_at = parse_iso(run_at, "run_at")
    if delay is not None:
        delay = parse_duration(delay, "delay")
    after = workflow.validate_after(spec.get("after"), "after")
    after_any = workflow.validate_after(spec.get("after_any"), "after_any")
    both = set(after) & set(after_any)
    if both:
        raise InvalidInput(f"job {sorted(both)[0]!r} is in both after and after_any")
    if job_id is not None and job_id in after + after_any:
        raise InvalidInput(f"job {job_id!r} cannot depend on itself")
    return NewJob(
        command=command, id=job_id, priority=priority, max_retries=max_retries,
        timeout=timeout, run_at=run_at, delay=delay, queue=queue, after=after,
        after_any=after_any, unique_key=workflow.validate_unique_key(spec.get("unique_key")),
        env=workflow.validate_env(spec.get("env")), cwd=workflow.validate_cwd(spec.get("cwd")),
        on_lost=workflow.validate_on_lost(spec.get("on_lost")),
    )


def _reject_constant(name: str) -> Any:
    raise InvalidInput(f"{name} is not allowed in a job spec")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise InvalidInput(f"duplicate key {key[:40]!r}")
    return result


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)


def parse_spec_json(text: str) -> NewJob:
    """Decode and validate one JSON job spec; every failure is an InvalidInput."""
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidInput("invalid JSON: nested too deeply") from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):  # Python's limit on integer digits
            raise InvalidInput("invalid JSON: a number has too many digits") from None
        raise InvalidInput(f"invalid JSON: {str(exc).splitlines()[0][:120]}") from None
    return validate_spec(value)


_scan = _DECODER.scan_once
_JSON_SPACE = " \t\n\r"


def parse_spec_line(line: str) -> NewJob:
    """parse_spec_json(line), faster for a valid line (no Python-level wrapper around the C
    scanner); any line it cannot take that way gets parse_spec_json's own answer or error."""
    text = line.strip(_JSON_SPACE)
    try:
        value, end = _scan(text, 0)
    except Exception:  # the error is parse_spec_json's to word
        return parse_spec_json(line)
    if end != len(text):
        return parse_spec_json(line)
    return validate_spec(value)
