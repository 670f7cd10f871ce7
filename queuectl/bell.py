"""The doorbell file next to the store: touched after commits that should wake idle workers."""

from __future__ import annotations

import os


def ensure_bell(path: str) -> None:
    if not os.path.exists(path):
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)


def ring(path: str) -> None:
    """Touch the doorbell; failures are ignored because every waiter also polls."""
    try:
        os.utime(path)
    except FileNotFoundError:
        try:
            ensure_bell(path)
        except OSError:
            pass
    except OSError:
        pass
