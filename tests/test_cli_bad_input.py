"""Bad input, each case tested against a real `queuectl` process and a real SQLite file.

The contract for every case: the documented exit code, nothing on stdout, exactly one line on
stderr starting with `error: ` (no traceback), and the store unchanged (every row of every
table compared before and after; for files that are not stores, the bytes).

Exit codes: 2 usage or invalid input; 3 unknown job id; 4 conflict; 66 no store where a
command that only reads was pointed (tests/test_cli_missing_store.py); 69 store unusable;
74 I/O error (including a store path that cannot exist: its parent is a regular file, or a
file system such as /proc that cannot hold files); 75 store busy; 77 permission denied
(the file system refuses this user: a read-only directory or file)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from clihelp import (assert_error, cli_env, copy_store, open_db, run_burst, run_cli, seed,
                     snapshot, stored)

DEEP = "[" * 10_000 + "]" * 10_000
DIGITS_5000 = "9" * 5000


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A store holding a pending job `seed`, a completed job `done` and a dead job `dead`,
    plus one config value."""
    db = tmp_path_factory.mktemp("template") / "queuectl.db"
    seed(db, {"id": "done", "command": "true", "priority": 2},
         {"id": "dead", "command": "exit 3", "max_retries": 0, "priority": 1})
    run_burst(db)
    seed(db, {"id": "seed", "command": "echo seed", "delay": "1h"})
    store = open_db(db)
    store.config_set("workers", "3")
    store.close()
    return db


@pytest.fixture
def db(template, tmp_path) -> Path:
    """A fresh copy of the template store for one test."""
    return copy_store(template, tmp_path / "store")


def assert_rejected(db: Path, args, code: int, *fragments: str, **kw) -> str:
    """Run queuectl ARGS against `db`; check the error contract and that nothing changed."""
    before = snapshot(db)
    line = assert_error(run_cli(*args, db=db, **kw), code, *fragments)
    assert snapshot(db) == before, "the store changed"
    return line


# -- job specs --------------------------------------------------------------------------------

BAD_SPECS = [
    # malformed JSON
    ("malformed", "{bad", "invalid JSON"),
    ("truncated", '{"command": "x"', "invalid JSON"),
    ("empty-text", "", "invalid JSON"),
    ("trailing-garbage", '{"command": "x"} x', "invalid JSON"),
    # not an object
    ("array", "[]", "JSON object"),
    ("string", '"x"', "JSON object"),
    ("number", "3", "JSON object"),
    ("null", "null", "JSON object"),
    # missing or empty command
    ("no-command", "{}", "command is required"),
    ("null-command", '{"command": null}', "command is required"),
    ("empty-command", '{"command": ""}', "command must not be empty"),
    ("blank-command", '{"command": " \\t\\n "}', "command must not be empty"),
    ("number-command", '{"command": 5}', "command must be a string"),
    ("nul-in-command", '{"command": "echo \\u0000"}', "NUL"),
    ("surrogate-command", '{"command": "echo \\ud800"}', "command"),
    # unknown keys
    ("unknown-key", '{"command": "x", "cmd": "y"}', "unknown key 'cmd'"),
    ("unknown-huge-key", json.dumps({"command": "x", "k" * 10_000: 1}), "unknown key"),
    # wrong types
    ("priority-word", '{"command": "x", "priority": "high"}', "priority"),
    ("priority-bool", '{"command": "x", "priority": true}', "priority"),
    ("priority-fraction", '{"command": "x", "priority": 1.5}', "priority"),
    ("max-retries-fraction", '{"command": "x", "max_retries": 1.5}', "max_retries"),
    ("max-retries-string", '{"command": "x", "max_retries": "3"}', "max_retries"),
    ("timeout-word", '{"command": "x", "timeout": "abc"}', "timeout"),
    ("delay-word", '{"command": "x", "delay": "soon"}', "delay"),
    ("run-at-number", '{"command": "x", "run_at": 12}', "run_at"),
    ("run-at-bad-month", '{"command": "x", "run_at": "2030-13-01T00:00:00Z"}', "run_at"),
    ("run-at-past-year-9999", '{"command": "x", "run_at": "9999-12-31T23:59:59-14:00"}', "run_at"),
    ("run-at-before-year-1", '{"command": "x", "run_at": "0001-01-01T00:00:00+14:00"}', "run_at"),
    ("run-at-and-delay", '{"command": "x", "run_at": "2030-01-01T00:00:00Z", "delay": 5}',
     "not both"),
    ("id-number", '{"command": "x", "id": 5}', "id must be a string"),
    ("id-empty", '{"command": "x", "id": ""}', "id must not be empty"),
    # negative numbers (a negative priority is fine: see test_negative_priority_is_allowed)
    ("max-retries-negative", '{"command": "x", "max_retries": -1}', "max_retries"),
    ("timeout-negative", '{"command": "x", "timeout": -5}', "timeout"),
    ("timeout-zero", '{"command": "x", "timeout": 0}', "timeout"),
    ("delay-negative", '{"command": "x", "delay": -1}', "delay"),
    # NaN and infinities
    ("priority-nan", '{"command": "x", "priority": NaN}', "NaN"),
    ("timeout-infinity", '{"command": "x", "timeout": Infinity}', "Infinity"),
    ("delay-minus-infinity", '{"command": "x", "delay": -Infinity}', "-Infinity"),
    ("timeout-overflow-float", '{"command": "x", "timeout": 1e999}', "timeout"),
    # huge numbers
    ("priority-10e30", '{"command": "x", "priority": %d}' % 10**30, "priority"),
    ("delay-1e308", '{"command": "x", "delay": 1e308}', "delay"),
    ("priority-5000-digits", '{"command": "x", "priority": %s}' % DIGITS_5000, "invalid JSON"),
    # duplicate keys
    ("duplicate-command", '{"command": "x", "command": "y"}', "duplicate key 'command'"),
    # ids that are not plain printable text, or too long
    ("id-control", '{"command": "x", "id": "a\\u0001b"}', "U+0001"),
    ("id-escape", '{"command": "x", "id": "\\u001b[2J"}', "U+001B"),
    ("id-newline", '{"command": "x", "id": "a\\nb"}', "U+000A"),
    ("id-space", '{"command": "x", "id": "a b"}', "U+0020"),
    ("id-c1", '{"command": "x", "id": "a\\u009bb"}', "U+009B"),
    ("id-bidi", '{"command": "x", "id": "a\\u202eb"}', "U+202E"),
    ("id-zero-width", '{"command": "x", "id": "a\\u200bb"}', "U+200B"),
    ("id-surrogate", '{"command": "x", "id": "\\ud800"}', "id"),
    ("id-10000", json.dumps({"command": "x", "id": "i" * 10_000}), "at most"),
    # nesting
    ("deep-array", DEEP, "nested too deeply"),
    ("deep-in-command", '{"command": %s}' % DEEP, "nested too deeply"),
    ("deep-objects", '{"a":' * 10_000 + "1" + "}" * 10_000, "nested too deeply"),
]


@pytest.mark.parametrize("spec, fragment", [c[1:] for c in BAD_SPECS],
                         ids=[c[0] for c in BAD_SPECS])
def test_bad_spec(db, spec, fragment):
    line = assert_rejected(db, ["enqueue", spec], 2, fragment)
    assert len(line) < 300, line  # one clear, short line even for huge input
    assert "sys." not in line and "Traceback" not in line


def test_bad_spec_on_a_fresh_path_creates_nothing(tmp_path):
    db = tmp_path / "fresh" / "queuectl.db"
    assert_error(run_cli("enqueue", '{"command": ""}', db=db), 2, "command")
    assert not db.parent.exists()


def test_negative_priority_is_allowed(db):
    code, out, err = run_cli("enqueue", '{"id": "neg", "command": "x", "priority": -5}', db=db)
    assert (code, out, err) == (0, "neg\n", "")
    assert stored(db)["neg"].priority == -5


ODD_IDS = ['it\'s"quoted"', "100%", "a_b", "%_%", "back\\slash", "<b>&amp;</b>", "café-ü",
           "--looks-like-an-option"]


def test_ids_with_quotes_and_wildcards_round_trip_as_plain_data(db, tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text("".join(json.dumps({"id": i, "command": f"echo {n}"}) + "\n"
                            for n, i in enumerate(ODD_IDS)), encoding="utf-8")
    assert run_cli("enqueue", "--file", str(path), db=db) == (
        0, "".join(i + "\n" for i in ODD_IDS), "")
    everything = stored(db)
    for job_id in ODD_IDS:
        code, out, _ = run_cli("show", "--json", "--", job_id, db=db)
        assert code == 0 and json.loads(out)["id"] == job_id
        code, out, _ = run_cli("list", "--json", f"--search={job_id}", db=db)
        expected = {j.id for j in everything.values() if job_id in j.id or job_id in j.command}
        assert code == 0 and {j["id"] for j in json.loads(out)} == expected == {job_id}
    assert run_cli("cancel", "--", *ODD_IDS, db=db) == (
        0, "".join(f"{i}\tcancelled\n" for i in ODD_IDS), "")
    after = stored(db)
    assert all(after[i].state.value == "dead" for i in ODD_IDS)
    assert after["seed"].state.value == "pending"  # no other job was touched
    assert run_cli("dlq", "retry", "--", *ODD_IDS, db=db) == (
        0, "".join(i + "\n" for i in ODD_IDS), "")
    after = stored(db)
    assert all(after[i].state.value == "pending" for i in ODD_IDS)
    assert after["dead"].state.value == "dead"


def test_a_wildcard_id_does_not_match_other_ids(db):
    seed(db, {"id": "axb", "command": "true"})
    for pattern in ("a_b", "a%b"):
        assert_rejected(db, ["show", pattern], 3, "no job")
        assert_rejected(db, ["cancel", pattern], 3, "no job")


# -- the flag form ----------------------------------------------------------------------------

BAD_FLAGS = [
    ("command-and-spec", ["--command", "x", '{"command": "y"}'], "exactly one"),
    ("spec-and-file", ['{"command": "y"}', "--file", "-"], "exactly one"),
    ("flags-without-command", ["--priority", "1"], "command is required"),
    ("nothing", [], "exactly one"),
    ("empty-command", ["-c", ""], "command must not be empty"),
    ("blank-command", ["-c", "   "], "command must not be empty"),
    ("priority-word", ["-c", "x", "--priority", "high"], "--priority"),
    ("priority-huge", ["-c", "x", "--priority", str(10**30)], "priority"),
    ("max-retries-negative", ["-c", "x", "--max-retries", "-1"], "max_retries"),
    ("max-retries-fraction", ["-c", "x", "--max-retries", "1.5"], "--max-retries"),
    ("timeout-word", ["-c", "x", "--timeout", "abc"], "timeout"),
    ("timeout-negative", ["-c", "x", "--timeout", "-5"], "timeout"),
    ("delay-negative", ["-c", "x", "--delay", "-1"], "delay"),
    ("delay-nan", ["-c", "x", "--delay", "nan"], "delay"),
    ("delay-word", ["-c", "x", "--delay", "banana"], "delay"),
    ("delay-and-run-at", ["-c", "x", "--delay", "5m", "--run-at", "2030-01-01T00:00:00Z"],
     "not both"),
    ("id-empty", ["-c", "x", "--id", ""], "id must not be empty"),
    ("id-escape", ["-c", "x", "--id", "a\x1b[2Jb"], "U+001B"),
    ("id-10000", ["-c", "x", "--id", "i" * 10_000], "at most"),
    ("id-not-utf8", ["-c", "x", "--id", "a\udcffb"], "id"),
    ("command-not-utf8", ["-c", "echo \udcff"], "command"),
    ("spec-not-utf8", ['{"command": "echo \udcff"}'], "command"),
]


@pytest.mark.parametrize("args, fragment", [c[1:] for c in BAD_FLAGS],
                         ids=[c[0] for c in BAD_FLAGS])
def test_bad_flags(db, args, fragment):
    assert_rejected(db, ["enqueue", *args], 2, fragment)


# -- --file -----------------------------------------------------------------------------------

def test_file_bad_line_names_it_and_stores_nothing(db, tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"command": "a"}\n\n{"command": "b"}\n{"command": "c", "priority": "x"}\n'
                    '{"command": "d"}\n')
    line = assert_rejected(db, ["enqueue", "--file", str(path)], 2, "line 4", "priority")
    assert str(path) in line


def test_stdin_bad_line_names_it_and_stores_nothing(db):
    lines = '{"command": "a"}\n{"command": "b"}\n{bad json\n'
    assert_rejected(db, ["enqueue", "--file", "-"], 2, "line 3", "invalid JSON", input=lines)


def test_file_with_an_existing_id_is_a_conflict_and_stores_nothing(db, tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"command": "a", "id": "new1"}\n{"command": "b", "id": "seed"}\n')
    assert_rejected(db, ["enqueue", "-f", str(path)], 4, "'seed'", "already exists")


def test_file_with_a_repeated_id_is_a_conflict_and_stores_nothing(db, tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"command": "a", "id": "twin"}\n{"command": "b", "id": "twin"}\n')
    assert_rejected(db, ["enqueue", "-f", str(path)], 4, "'twin'")


@pytest.mark.parametrize("kind", ["missing", "directory", "not-utf8", "empty", "blank-lines"])
def test_unreadable_or_empty_file(db, tmp_path, kind):
    path = tmp_path / f"input-{kind}"
    fragment = {"missing": "No such file", "directory": "directory", "not-utf8": "UTF-8",
                "empty": "no jobs", "blank-lines": "no jobs"}[kind]
    if kind == "directory":
        path.mkdir()
    elif kind == "not-utf8":
        path.write_bytes(b'{"command": "echo \xff\xfe"}\n')
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "blank-lines":
        path.write_text("\n  \n\n")
    line = assert_rejected(db, ["enqueue", "--file", str(path)], 2, fragment)
    assert str(path) in line


# -- ids and states ---------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["spec on stdin", "file"])
def test_a_command_too_long_for_sh_is_refused_at_enqueue(db, tmp_path, how):
    """/bin/sh -c takes one argument of at most 128 KiB: a longer command could never start."""
    spec = json.dumps({"command": "echo " + "x" * 131_067})  # 131,072 bytes
    if how == "file":
        path = tmp_path / "long.jsonl"
        path.write_text(spec + "\n")
        assert_rejected(db, ["enqueue", "--file", str(path)], 2, "line 1", "131,072 bytes",
                        "at most 131,071")
    else:
        assert_rejected(db, ["enqueue", "--file", "-"], 2, "131,072 bytes", input=spec)


def test_the_longest_command_sh_takes_runs(db):
    command = "echo ok; : " + "x" * (131_071 - len("echo ok; : "))
    done = run_cli("enqueue", "--file", "-", db=db, input=json.dumps({"command": command}))
    assert done.code == 0, done.err
    job_id = done.out.strip()
    run_burst(db)
    assert json.loads(run_cli("show", job_id, "--json", db=db).out)["state"] == "completed"
    assert run_cli("logs", job_id, db=db).out == "ok\n"


def test_duplicate_id_is_a_conflict(db):
    assert_rejected(db, ["enqueue", '{"id": "seed", "command": "other"}'], 4,
                    "'seed'", "already exists")
    assert stored(db)["seed"].command == "echo seed"
    assert_rejected(db, ["enqueue", "-c", "other", "--id", "done"], 4, "already exists")


@pytest.mark.parametrize("args", [
    ["show", "nope"], ["show", "nope", "--json"], ["logs", "nope"], ["logs", "nope", "--follow"],
    ["cancel", "nope"], ["cancel", "seed", "nope"], ["dlq", "retry", "nope"],
    ["dlq", "retry", "dead", "nope"],
], ids=" ".join)
def test_unknown_job_id(db, args):
    assert_rejected(db, args, 3, "no job with id 'nope'")


@pytest.mark.parametrize("args, fragment", [
    (["dlq", "retry", "seed"], "pending"),
    (["dlq", "retry", "done"], "completed"),
    (["dlq", "retry", "dead", "seed"], "pending"),  # all or nothing: `dead` stays dead
    (["cancel", "done"], "completed"),
    (["cancel", "dead"], "dead"),
    (["cancel", "seed", "done"], "completed"),  # all or nothing: `seed` stays pending
], ids=" ".join)
def test_transition_the_state_does_not_allow_is_a_conflict(db, args, fragment):
    assert_rejected(db, args, 4, fragment)


# -- usage errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["enqueue", "--bogus"], "--bogus"),
    (["frobnicate"], "frobnicate"),
    (["show"], "Missing argument"),
    (["config", "get"], "Missing argument"),
    (["config", "set", "max-retries"], "Missing argument"),
    (["list", "--limit"], "--limit"),
    (["list", "--limit", "abc"], "--limit"),
    (["list", "--limit", "0"], "--limit"),
    (["dlq", "list", "--limit", "0"], "--limit"),
    (["list", "--state", "bogus"], "unknown state 'bogus'"),
    (["list", "--state", "pending,nope"], "unknown state 'nope'"),
    (["prune"], "--older-than"),
    (["prune", "--older-than", "banana"], "--older-than"),
    (["prune", "--older-than", "-1"], "--older-than"),
    (["prune", "--older-than", "1d", "--state", "pending"], "pending"),
    (["logs", "seed", "--attempt", "0"], "--attempt"),
    (["logs", "dead", "--attempt", "2"], "no attempt 2"),
    (["dlq", "retry"], "--all"),
    (["dlq", "retry", "--all", "dead"], "--all"),
    (["dlq", "purge"], "--yes"),  # stdin is not a terminal
    (["worker", "start", "--count", "0"], "--count"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_usage_errors(db, args, fragment):
    assert_rejected(db, args, 2, fragment)


@pytest.mark.parametrize("args", [["show", "a\udcffb"], ["cancel", "a\udcffb"],
                                  ["list", "--search", "\udcff"],
                                  ["dlq", "retry", "\udcff"]], ids=lambda a: a[0])
def test_arguments_that_are_not_utf8(db, args):
    """Bytes that are not UTF-8 in an argument are invalid input (an id can never hold them)."""
    assert_rejected(db, args, 2, "UTF-8")


def test_empty_db_option_is_refused(tmp_path):
    code, out, err = run_cli("list", db="", cwd=tmp_path)
    assert_error((code, out, err), 2, "store")


# -- config -----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["set", "nope", "1"], "unknown config key 'nope'"),
    (["get", "nope"], "unknown config key 'nope'"),
    (["unset", "nope"], "unknown config key 'nope'"),
    (["set", "max-retries", "abc"], "max-retries"),
    (["set", "max-retries", "1001"], "max-retries"),
    (["set", "backoff-base", "0.5"], "backoff-base"),
    (["set", "backoff-base", "nan"], "backoff-base"),
    (["set", "backoff-jitter", "2"], "backoff-jitter"),
    (["set", "backoff-max", "forever"], "backoff-max"),
    (["set", "job-timeout", "abc"], "job-timeout"),
    (["set", "lease", "0"], "lease"),
    (["set", "poll-interval", "--", "-1"], "poll-interval"),
    (["set", "output-limit", "lots"], "output-limit"),
    (["set", "workers", "9999"], "workers"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_config(db, args, fragment):
    assert_rejected(db, ["config", *args], 2, fragment)


# -- stores that cannot be used ---------------------------------------------------------------

def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x)")
    conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.commit()
    conn.close()


def _newer(path: Path) -> None:
    shutil.copy2(path.parent.parent / "store" / "queuectl.db", path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()


def _corrupt(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8192)


def _text(path: Path) -> None:
    path.write_text("these are my notes, not a database\n")


@pytest.mark.parametrize("make, fragment", [
    (_text, "not an SQLite database"),
    (_foreign, "another program"),
    (_newer, "newer queuectl"),
    (_corrupt, "corrupt"),
], ids=["text-file", "foreign-sqlite", "newer-schema", "corrupt"])
@pytest.mark.parametrize("args", [["enqueue", "-c", "true"], ["list", "--json"]], ids=" ".join)
def test_unusable_store_is_refused_and_left_untouched(db, tmp_path, make, fragment, args):
    path = tmp_path / "other" / "file.db"
    path.parent.mkdir()
    make(path)
    before = path.read_bytes()
    files = sorted(os.listdir(path.parent))
    line = assert_error(run_cli(*args, db=path), 69, fragment)
    assert str(path) in line
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == files  # no -wal, -shm or -journal left behind


@pytest.mark.parametrize("where", ["parent-is-a-file", "parent-under-a-file"])
def test_store_path_under_a_regular_file_is_an_io_error(tmp_path, where):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = blocker / "x.db" if where == "parent-is-a-file" else blocker / "sub" / "x.db"
    line = assert_error(run_cli("enqueue", "-c", "true", db=path), 74, str(path))
    assert "Not a directory" in line
    assert blocker.read_text() == "x"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_store_path_in_proc_is_an_io_error():
    assert_error(run_cli("enqueue", "-c", "true", db="/proc/queuectl-test.db"), 74,
                 "/proc/queuectl-test.db")


AS_NOBODY = """
import os, sys
import queuectl.cli.app, queuectl.cli.commands, queuectl.store.sqlite  # before dropping root
queuectl.cli.commands.load(sys.argv[1:])
from queuectl.cli import main
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
sys.exit(main(sys.argv[1:]))
"""


def _run_unprivileged(*args: str) -> tuple[int, str, str]:
    """queuectl's main() in a process that is not root (root ignores file modes): a root
    process imports queuectl, drops to uid/gid 65534, then runs the command."""
    done = subprocess.run([sys.executable, "-c", AS_NOBODY, *args], capture_output=True,
                          text=True, env=cli_env(), cwd="/", timeout=60)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def shared_dir():
    """A directory outside tmp_path (whose parents are private to root) that uid 65534 can
    reach; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="queuectl-ro-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_read_only_store_directory_refuses_a_new_store(shared_dir):
    store_dir = shared_dir / "ro"
    store_dir.mkdir(mode=0o555)
    store_dir.chmod(0o555)
    path = store_dir / "queuectl.db"
    assert_error(_run_unprivileged("--db", str(path), "enqueue", "-c", "true"), 77,
                 str(path), "permission denied")
    assert os.listdir(store_dir) == []


@pytest.mark.parametrize("args", [["enqueue", "-c", "true"], ["list", "--json"],
                                  ["config", "set", "workers", "1"]], ids=" ".join)
def test_read_only_store_directory_with_an_existing_store(template, shared_dir, args):
    store_dir = shared_dir / "ro"
    path = copy_store(template, store_dir)
    before = snapshot(path)
    conn = sqlite3.connect(path)  # the last connection to close removes -wal and -shm
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert not any(n.endswith(("-wal", "-shm")) for n in os.listdir(store_dir))
    uid = 65534 if os.geteuid() == 0 else os.geteuid()
    for name in os.listdir(store_dir):
        os.chown(store_dir / name, uid, -1)
    os.chown(store_dir, uid, -1)
    store_dir.chmod(0o555)  # the directory is read-only; the store file itself is writable
    assert_error(_run_unprivileged("--db", str(path), *args), 77, str(path))
    assert snapshot(path) == before


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


@pytest.mark.parametrize("args", [
    ["enqueue", "-c", "true"], ["dlq", "retry", "--all"], ["config", "set", "workers", "1"],
], ids=" ".join)
def test_store_locked_longer_than_the_busy_timeout(db, args):
    before = snapshot(db)
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline() == "locked\n"
        line = assert_error(run_cli(*args, db=db, env={"QUEUECTL_BUSY_TIMEOUT_MS": "200"}), 75,
                            str(db), "busy")
        assert "retry" in line
    finally:
        locker.stdin.close()
        locker.wait(timeout=30)
    assert snapshot(db) == before


@pytest.mark.parametrize("key, value", [("workers", "-1"), ("backoff-jitter", "-0.5"),
                                        ("max-retries", "-3")])
def test_config_set_negative_values_are_refused_by_their_key(tmp_path, key, value):
    db = str(tmp_path / "q.db")
    done = run_cli("config", "set", key, value, db=db)
    assert_error(done, 2, key)
