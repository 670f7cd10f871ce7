"""Bad input against real `queuectl` processes, where tests/test_cli_bad_input.py does not go:
every numeric and duration flag of every command, every config key by `config set` and by
environment, deep nesting through --file and stdin, and hostile ids as plain data end to end
(through a worker, the job's environment, `logs`, `show`, `cancel`, `dlq retry`, `--search`).

Invariant 6 for each: the documented exit code, one `error: ` line on stderr, nothing on
stdout, no traceback; and the store unchanged (invariant 1).
"""

from __future__ import annotations

import json

import pytest

import invariants
from invariants import check, one_line_error
from procs import cli, env_for

from queuectl.config import KEYS, env_name


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with one finished job `done` (attempt 1) and one dead job `dead`."""
    path = tmp_path_factory.mktemp("input") / "q.db"
    db = str(path)
    invariants.enqueue_many(db, [{"id": "done", "command": "echo hi"},
                                 {"id": "dead", "command": "exit 1", "max_retries": 0}],
                            path.parent)
    assert cli(db, "worker", "start", "--count", "1", "--burst").returncode == 0
    return db


def rows(db) -> dict:
    return {k: {c: v for c, v in j.items() if c != "updated_at"}
            for k, j in invariants.jobs(db).items()}


NOT_NUMBERS = ["abc", "nan", "inf", "1e999", "", "0x10", "1,5"]
HUGE = ["9" * 30]
NEGATIVE = ["-1", "-0.5"]

FLAGS = [
    # (command before the flag, the flag, command after it, values that must be refused)
    (["list"], "--limit", [], NOT_NUMBERS + HUGE + NEGATIVE + ["0", "1.5"]),
    (["dlq", "list"], "--limit", [], NOT_NUMBERS + HUGE + NEGATIVE + ["0"]),
    (["logs", "done"], "--attempt", [], NOT_NUMBERS + HUGE + NEGATIVE + ["0", "1.5"]),
    (["worker", "start"], "--count", ["--burst"], NOT_NUMBERS + HUGE + NEGATIVE + ["0", "257"]),
    (["worker", "stop"], "--timeout", [], NOT_NUMBERS + HUGE + NEGATIVE + ["5 parsecs"]),
    (["prune"], "--older-than", [], NOT_NUMBERS + HUGE + NEGATIVE + ["7 days", "1y"]),
    (["enqueue", "-c", "true"], "--priority", [], NOT_NUMBERS + HUGE + ["1.5", str(2**31)]),
    (["enqueue", "-c", "true"], "--max-retries", [], NOT_NUMBERS + HUGE + NEGATIVE + ["1001"]),
    (["enqueue", "-c", "true"], "--timeout", [], NOT_NUMBERS + HUGE + NEGATIVE + ["0", "1e3"]),
    (["enqueue", "-c", "true"], "--delay", [], NOT_NUMBERS + HUGE + NEGATIVE + ["11y"]),
    (["enqueue", "-c", "true"], "--run-at", [], NOT_NUMBERS + ["tomorrow", "2030-02-30T00:00:00"]),
]
FLAG_CASES = [(pre, flag, post, value) for pre, flag, post, values in FLAGS for value in values]


@pytest.mark.parametrize("pre, flag, post, value", FLAG_CASES,
                         ids=[f"{' '.join(c[0][:2])} {c[1]}={c[3][:12]!r}" for c in FLAG_CASES])
def test_every_numeric_and_duration_flag_refuses_a_bad_value(store, pre, flag, post, value):
    before = rows(store)
    one_line_error(cli(store, *pre, f"{flag}={value}", *post), 2)
    assert rows(store) == before


BAD_SETTINGS = ["abc", "nan", "inf", "1e999", "", "-1", "9" * 30, "5 parsecs"]
# Values a key accepts although they appear in BAD_SETTINGS (job-timeout: none, off, 0 or empty).
ACCEPTED = {"job-timeout": {""}}
CONFIG_CASES = [(key, value) for key in KEYS for value in BAD_SETTINGS
                if value not in ACCEPTED.get(key, set())]


@pytest.mark.parametrize("key, value", CONFIG_CASES,
                         ids=[f"{k}={v[:12]!r}" for k, v in CONFIG_CASES])
def test_every_config_key_refuses_a_bad_value_by_set_and_by_environment(store, key, value):
    before = invariants.connect(store).execute("SELECT * FROM config").fetchall()
    one_line_error(cli(store, "config", "set", "--", key, value), 2, contains=key)
    # The same value from the environment: every command that resolves settings refuses it,
    # naming the variable, rather than running with a default.
    env = env_for(store, **{env_name(key): value})
    commands = [["status"]] + ([["worker", "start", "--burst"]] if value == "abc" else [])
    for args in commands:
        one_line_error(cli(store, *args, env=env), 2, contains=env_name(key))
    assert invariants.connect(store).execute("SELECT * FROM config").fetchall() == before


@pytest.mark.parametrize("source, depth", [
    ("file", 10_000), ("stdin", 10_000), ("argument", 10_000), ("file", 100_000),
    ("stdin", 100_000),  # (an argument that long is refused by the kernel: E2BIG)
])
def test_deep_nesting_is_refused_without_a_crash(store, tmp_path, source, depth):
    before = rows(store)
    spec = '{"command": "true", "id": ' + "[" * depth + "]" * depth + "}"
    if source == "file":
        path = tmp_path / "jobs.jsonl"
        path.write_text(json.dumps({"command": "true"}) + "\n" + spec + "\n")
        done = cli(store, "enqueue", "--file", str(path))
    elif source == "stdin":
        done = cli(store, "enqueue", "--file", "-", input=json.dumps({"command": "true"}) + "\n" + spec)
    else:
        done = cli(store, "enqueue", spec)
    line = one_line_error(done, 2, contains="nested too deeply")
    if source != "argument":
        assert "line 2" in line
    assert rows(store) == before  # all or nothing: the good first line was not stored


def test_duplicate_keys_are_refused_at_every_level(store):
    before = rows(store)
    for spec in ['{"command": "a", "command": "a"}', '{"command": "a", "id": "x", "id": "x"}',
                 '{"command": "a", "priority": 1, "priority": 2}']:
        one_line_error(cli(store, "enqueue", spec), 2, contains="duplicate key")
    assert rows(store) == before


HOSTILE_IDS = [
    "a'b", 'a"b', "%", "_", "a%b", "a_b", "\\", "a\\%b", "';DROP_TABLE_jobs;--",
    "$(touch${IFS}PWNED)", "`touch${IFS}PWNED`", ";touch${IFS}PWNED;", "*", "[abc]", "a" * 128, "é中文🙂",
    "%%", "__",
]


def test_hostile_ids_are_plain_data_everywhere(tmp_path):
    db = str(tmp_path / "q.db")
    work = tmp_path / "work"
    work.mkdir()
    specs = [{"id": i, "command": 'printf "%s" "$QUEUECTL_JOB_ID"'} for i in HOSTILE_IDS]
    specs += [{"id": "plain", "command": "echo plain"},
              {"id": "waiting", "command": "true", "delay": 3600}]
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in specs))
    done = cli(db, "enqueue", "--file", str(path), cwd=str(work))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [s["id"] for s in specs]
    assert cli(db, "worker", "start", "--count", "2", "--burst", cwd=str(work)).returncode == 0
    assert not (work / "PWNED").exists() and not (tmp_path / "PWNED").exists()
    check(db, [s["id"] for s in specs],
          expected_output={i: i.encode() for i in HOSTILE_IDS})
    for job_id in HOSTILE_IDS:
        shown = cli(db, "show", "--json", "--", job_id)
        assert shown.returncode == 0, (job_id, shown.stderr)
        assert json.loads(shown.stdout)["id"] == job_id
        logs = cli(db, "logs", "--raw", "--", job_id)
        assert logs.returncode == 0 and logs.stdout == job_id, job_id
        # --search finds exactly the jobs whose id or command contains the text literally.
        found = json.loads(cli(db, "list", "--json", "--search", job_id).stdout)
        expected = {s["id"] for s in specs if job_id in s["id"] or job_id in s["command"]}
        assert {j["id"] for j in found} == expected, job_id
        # Cancelling a completed job is a conflict; the id is echoed, bounded, on one line.
        one_line_error(cli(db, "cancel", "--", job_id), 4, contains="already completed")
    for pattern in ("%", "_", "\\", "'", '"', "%%"):
        one_line_error(cli(db, "show", "--", pattern + "nope"), 3, contains="no job")
    # A dead job with a hostile id goes through the DLQ like any other.
    assert cli(db, "cancel", "--", "waiting").returncode == 0
    assert cli(db, "dlq", "retry", "--", "waiting").stdout == "waiting\n"
    check(db, [s["id"] for s in specs])
