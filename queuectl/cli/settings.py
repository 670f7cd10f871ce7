"""Resolving settings for a command from the store's config table and the environment."""

from __future__ import annotations

from ..config import Settings, resolve
from ..store.base import RetryPolicy, Store


def settings(store: Store) -> Settings:
    return resolve(store.config_items())[0]


def policy(s: Settings) -> RetryPolicy:
    return RetryPolicy(base=s.backoff_base, cap=s.backoff_max, jitter=s.backoff_jitter)
