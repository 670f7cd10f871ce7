"""The workflow fields of a job spec, validated (pure, no I/O): dependencies, a unique key, the
job's own environment and directory, and what a lost run does. What dependencies mean for a
job's state is in lifecycle.py."""

from __future__ import annotations

import os
import re
from typing import Mapping

from .errors import InvalidInput
from .names import validate_id

AFTER_OK, AFTER_ANY = "ok", "any"  # run once the dependency completed / once it ended at all
ON_LOST = ("retry", "fail")  # a run whose worker died: run it again, or bury it as lost
MAX_DEPENDENCIES = 1000
MAX_UNIQUE_KEY = 200
MAX_ENV = 256
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# Environment names whose values `show` masks.
_SECRET = re.compile(r"(SECRET|TOKEN|PASSW|PASS$|PWD|KEY|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION)",
                     re.IGNORECASE)
RESERVED_ENV = ("QUEUECTL_JOB_ID", "QUEUECTL_WORKER_ID", "QUEUECTL_ATTEMPT", "QUEUECTL_QUEUE",
                "QUEUECTL_SLOT")


def validate_after(value: object, key: str) -> tuple[str, ...]:
    """A list of job ids (or one id, or comma-separated ids in a string)."""
    if value is None:
        return ()
    if isinstance(value, str):
        items = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise InvalidInput(f"{key} must be a list of job ids")
    ids = tuple(dict.fromkeys(validate_id(i, f"{key} id") for i in items))
    if len(ids) > MAX_DEPENDENCIES:
        raise InvalidInput(f"{key}: at most {MAX_DEPENDENCIES} dependencies")
    return ids


def validate_env(value: object) -> dict[str, str] | None:
    """An object of variable names to string values (set for the job's command only)."""
    if value is None:
        return None
    if isinstance(value, list):  # ["KEY=VALUE", ...], as --env gives them
        pairs = {}
        for item in value:
            if not isinstance(item, str) or "=" not in item:
                raise InvalidInput(f"env: {str(item)[:40]!r} is not KEY=VALUE")
            name, _, text = item.partition("=")
            pairs[name] = text
        value = pairs
    if not isinstance(value, dict):
        raise InvalidInput("env must be an object of names to strings, e.g. {\"LANG\": \"C\"}")
    if len(value) > MAX_ENV:
        raise InvalidInput(f"env: at most {MAX_ENV} variables")
    for name, text in value.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise InvalidInput(f"env: {str(name)[:40]!r} is not a variable name "
                               "(letters, digits and _, not starting with a digit)")
        if name in RESERVED_ENV:
            raise InvalidInput(f"env: {name} is set by queuectl for every job")
        if not isinstance(text, str):
            raise InvalidInput(f"env: the value of {name} must be a string")
        if "\x00" in text:
            raise InvalidInput(f"env: the value of {name} must not contain NUL characters")
    return dict(value)


def validate_cwd(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("cwd must be a directory path")
    if "\x00" in value:
        raise InvalidInput("cwd must not contain NUL characters")
    if not os.path.isabs(value):
        raise InvalidInput(f"cwd must be an absolute path, not {value[:60]!r}")
    return os.path.normpath(value)


def validate_unique_key(value: object) -> str | None:
    return None if value is None else validate_id(value, "unique_key", MAX_UNIQUE_KEY)


def validate_on_lost(value: object) -> str | None:
    if value is None:
        return None
    if value not in ON_LOST:
        raise InvalidInput(f"on_lost must be one of: {', '.join(ON_LOST)}")
    return str(value)


def masked(env: Mapping[str, str] | None) -> dict[str, str]:
    """`env` as shown to people: values of names that look like secrets are ***."""
    return {k: ("***" if _SECRET.search(k) else v) for k, v in (env or {}).items()}
