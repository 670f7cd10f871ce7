"""Config keys, their validation, and where a resolved value comes from."""

from __future__ import annotations

import pickle

import pytest

from queuectl.config import KEYS, Settings, check_key, env_name, resolve, validate
from queuectl.errors import InvalidInput

GOOD = [
    ("max-retries", "0", 0), ("max-retries", "3", 3), ("max-retries", " 7 ", 7),
    ("max-retries", "1000", 1000),
    ("backoff-base", "1", 1.0), ("backoff-base", "2", 2.0), ("backoff-base", "2.5", 2.5),
    ("backoff-base", "1000", 1000.0),
    ("backoff-max", "0", 0.0), ("backoff-max", "30", 30.0), ("backoff-max", "1h", 3600.0),
    ("backoff-max", "365d", 365 * 86400.0),
    ("backoff-jitter", "0", 0.0), ("backoff-jitter", "0.25", 0.25), ("backoff-jitter", "1", 1.0),
    ("job-timeout", "none", None), ("job-timeout", "None", None), ("job-timeout", "off", None),
    ("job-timeout", "0", None), ("job-timeout", "", None), ("job-timeout", "1ms", 0.001),
    ("job-timeout", "30s", 30.0), ("job-timeout", "2h", 7200.0),
    ("job-timeout", "365d", 365 * 86400.0),
    ("lease", "1", 1.0), ("lease", "15s", 15.0), ("lease", "30s", 30.0), ("lease", "2.5", 2.5),
    ("poll-interval", "10ms", 0.01), ("poll-interval", "1s", 1.0), ("poll-interval", "1h", 3600.0),
    ("output-limit", "0", 0), ("output-limit", "4096", 4096), ("output-limit", "64KiB", 65536),
    ("output-limit", "1MiB", 2**20), ("output-limit", "10MB", 10**7),
    ("output-limit", "1024GiB", 2**40),
    ("workers", "0", 0), ("workers", "2", 2), ("workers", "256", 256),
    ("durability", "normal", "normal"), ("durability", "full", "full"),
    ("durability", " FULL ", "full"),
]

BAD = [
    ("max-retries", "-1"), ("max-retries", "1001"), ("max-retries", "3.5"), ("max-retries", "x"),
    ("max-retries", ""), ("max-retries", "1e3"), ("max-retries", "9" * 5000),
    ("backoff-base", "0.5"), ("backoff-base", "0"), ("backoff-base", "-2"),
    ("backoff-base", "1001"), ("backoff-base", "nan"), ("backoff-base", "inf"),
    ("backoff-base", "x"), ("backoff-base", ""),
    ("backoff-max", "366d"), ("backoff-max", "-1"), ("backoff-max", "x"), ("backoff-max", "nan"),
    ("backoff-max", ""),
    ("backoff-jitter", "1.1"), ("backoff-jitter", "-0.1"), ("backoff-jitter", "nan"),
    ("backoff-jitter", "x"),
    ("job-timeout", "0.0001"), ("job-timeout", "366d"), ("job-timeout", "-1"),
    ("job-timeout", "forever"),
    ("lease", "0"), ("lease", "0.5"), ("lease", "31"), ("lease", "1m"), ("lease", "x"),
    ("lease", ""),
    ("poll-interval", "1ms"), ("poll-interval", "2h"), ("poll-interval", "x"),
    ("output-limit", "1.5MB"), ("output-limit", "x"), ("output-limit", "-1"),
    ("output-limit", "1TiB"), ("output-limit", "1025GiB"), ("output-limit", ""),
    ("workers", "257"), ("workers", "-1"), ("workers", "two"), ("workers", "1.0"),
    ("durability", "fast"), ("durability", "off"), ("durability", ""),
]


@pytest.mark.parametrize("key, text, value", GOOD)
def test_valid_values(key, text, value):
    assert validate(key, text) == key
    assert KEYS[key].parse(key, text) == value


@pytest.mark.parametrize("key, text", BAD, ids=[f"{k}={t[:10]!r}" for k, t in BAD])
def test_invalid_values(key, text):
    with pytest.raises(InvalidInput) as info:
        validate(key, text)
    message = str(info.value)
    assert message.startswith(key)
    assert "\n" not in message and len(message) < 200


def test_every_key_is_covered_by_the_tables():
    assert {k for k, _, _ in GOOD} == set(KEYS)
    assert {k for k, _ in BAD} == set(KEYS)


@pytest.mark.parametrize("key", sorted(KEYS))
def test_every_default_is_valid(key):
    assert validate(key, KEYS[key].default) == key


def test_underscore_spelling_is_accepted():
    assert validate("max_retries", "4") == "max-retries"
    assert check_key("poll_interval").name == "poll-interval"


@pytest.mark.parametrize("key", ["bogus", "max-retry", "", "max retries", "x" * 5000])
def test_unknown_key(key):
    with pytest.raises(InvalidInput, match="unknown config key") as info:
        validate(key, "1")
    assert "max-retries" in str(info.value) and len(str(info.value)) < 400


def test_env_names():
    assert env_name("max-retries") == "QUEUECTL_MAX_RETRIES"
    assert env_name("poll-interval") == "QUEUECTL_POLL_INTERVAL"


def test_defaults():
    settings, sources = resolve({}, environ={})
    assert settings == Settings(max_retries=3, backoff_base=2.0, backoff_max=3600.0,
                                backoff_jitter=0.0, job_timeout=None, lease=15.0,
                                poll_interval=1.0, output_limit=2**20, workers=2,
                                durability="normal")
    assert sources == {k: "default" for k in KEYS}


def test_precedence_flag_over_env_over_store_over_default():
    stored = {"max-retries": "5", "lease": "20s", "workers": "4", "bogus": "ignored"}
    environ = {"QUEUECTL_MAX_RETRIES": "6", "QUEUECTL_LEASE": "25s", "UNRELATED": "x"}
    overrides = {"max-retries": "7"}
    settings, sources = resolve(stored, environ=environ, overrides=overrides)
    assert (settings.max_retries, settings.lease, settings.workers) == (7, 25.0, 4)
    assert settings.backoff_base == 2.0
    assert sources["max-retries"] == "flag"
    assert sources["lease"] == "env"
    assert sources["workers"] == "store"
    assert sources["backoff-base"] == "default"
    assert set(sources) == set(KEYS)


def test_a_shadowed_bad_value_does_not_matter():
    settings, sources = resolve({"lease": "999"}, environ={"QUEUECTL_LEASE": "20"},
                                overrides={})
    assert (settings.lease, sources["lease"]) == (20.0, "env")
    settings, _ = resolve({}, environ={"QUEUECTL_WORKERS": "many"}, overrides={"workers": "3"})
    assert settings.workers == 3


@pytest.mark.parametrize("stored, environ, overrides, where", [
    ({"lease": "999"}, {}, {}, "the store's config"),
    ({}, {"QUEUECTL_LEASE": "999"}, {}, "QUEUECTL_LEASE"),
    ({}, {}, {"lease": "999"}, "flag"),
])
def test_a_bad_value_names_its_source(stored, environ, overrides, where):
    with pytest.raises(InvalidInput) as info:
        resolve(stored, environ=environ, overrides=overrides)
    assert str(info.value).startswith("lease")
    assert f"(from {where})" in str(info.value)


def test_resolve_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("QUEUECTL_BACKOFF_BASE", "3")
    settings, sources = resolve({})
    assert (settings.backoff_base, sources["backoff-base"]) == (3.0, "env")


def test_settings_are_picklable_for_worker_processes():
    settings, _ = resolve({"job-timeout": "30s"}, environ={})
    assert pickle.loads(pickle.dumps(settings)) == settings
    assert settings.job_timeout == 30.0
