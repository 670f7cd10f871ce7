"""Every `queuectl` command with an example: real processes, real SQLite files in tmp_path.

Each test checks stdout, stderr, the exit code, and the store's state afterwards (read back
with `list --json` / `show --json` where that output is under test, else in this process)."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from clihelp import (assert_error, cli_env, command, copy_store, ids, jobs, ok, open_db,
                     run_burst, run_cli, seed, show, stored, wait_for)

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TIMESTAMPS = ("run_at", "created_at", "updated_at", "started_at", "finished_at")


def ts(text: str) -> float:
    assert ISO_Z.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def assert_iso_fields(job: dict) -> None:
    """Every timestamp is ISO 8601 UTC with a Z, or null."""
    for key in TIMESTAMPS:
        assert job[key] is None or ISO_Z.match(job[key]), (key, job[key])
    for run in job.get("runs", []):
        for key in ("started_at", "finished_at"):
            assert run[key] is None or ISO_Z.match(run[key]), (key, run[key])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store" / "queuectl.db"


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A store whose jobs one burst worker has run, in priority order. Completed: c3, c2, c1
    (c1 newest); dead: d1 (exit 3), d2 (exit 4), twice (exit 3 on both of its 2 attempts,
    newest); pending: p1 (delayed an hour). Tests that change it work on a copy."""
    db = tmp_path_factory.mktemp("finished") / "queuectl.db"
    store = open_db(db)
    store.config_set("backoff-max", "0")  # retry at once
    store.close()
    seed(db,
         {"id": "c3", "command": "true", "priority": 30},
         {"id": "c2", "command": "echo two", "priority": 20},
         {"id": "c1", "command": "true", "priority": 10},
         {"id": "d1", "command": "exit 3", "max_retries": 0, "priority": 5},
         {"id": "d2", "command": "exit 4", "max_retries": 0, "priority": 4},
         {"id": "twice", "command": "echo hi; exit 3", "max_retries": 1, "priority": 3},
         {"id": "p1", "command": "true", "delay": "1h"})
    run_burst(db)
    return db


@pytest.fixture
def copy(finished, tmp_path) -> Path:
    return copy_store(finished, tmp_path / "copy")


# -- init -------------------------------------------------------------------------------------

def test_init_creates_a_private_directory_and_file_and_is_idempotent(tmp_path):
    db = tmp_path / "new" / "nested" / "queuectl.db"
    code, out, err = run_cli("init", db=db)
    assert (code, out, err) == (0, f"{db}\n", "")
    assert stat.S_IMODE(os.stat(db.parent).st_mode) == 0o700
    files = [p for p in db.parent.iterdir() if p.name.startswith("queuectl.db")]
    assert db in files
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    conn = sqlite3.connect(db)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()
    assert version >= 1

    seed(db, {"id": "keep", "command": "true"})
    assert run_cli("init", db=db) == (0, f"{db}\n", "")
    assert list(stored(db)) == ["keep"]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == version
    conn.close()


def test_store_location_from_queuectl_db_environment_and_db_flag_wins(tmp_path):
    env_db, flag_db = tmp_path / "env.db", tmp_path / "flag.db"
    code, out, err = run_cli("enqueue", '{"id":"e1","command":"true"}',
                             env={"QUEUECTL_DB": str(env_db)})
    assert (code, out, err) == (0, "e1\n", "")
    assert list(stored(env_db)) == ["e1"]
    code, out, err = run_cli("enqueue", "-c", "true", "--id", "f1", db=flag_db,
                             env={"QUEUECTL_DB": str(env_db)})
    assert (code, out, err) == (0, "f1\n", "")
    assert list(stored(flag_db)) == ["f1"] and list(stored(env_db)) == ["e1"]


@pytest.mark.parametrize("where", ["before", "after", "after="])
@pytest.mark.parametrize("args", [
    ["init"], ["status"], ["list"], ["dlq", "list"], ["config", "list"], ["worker", "list"],
], ids=" ".join)
def test_db_is_accepted_before_and_after_the_command(tmp_path, args, where):
    db = tmp_path / "store.db"
    seed(db, {"id": "there", "command": "true"})
    argv = {"before": ["--db", str(db), *args], "after": [*args, "--db", str(db)],
            "after=": [*args, f"--db={db}"]}[where]
    json_flag = [] if args == ["init"] else ["--json"]
    code, out, err = run_cli(*argv, *json_flag, env={"QUEUECTL_DB": str(tmp_path / "other.db")})
    assert code == 0, err
    if args == ["list"]:
        assert [j["id"] for j in json.loads(out)] == ["there"]
    elif args == ["status"]:
        assert json.loads(out)["store"] == str(db)
    assert not (tmp_path / "other.db").exists()


def test_db_between_a_group_and_its_command(tmp_path):
    db = tmp_path / "store.db"
    seed(db, {"id": "there", "command": "true"})
    assert ok("config", "--db", str(db), "get", "workers") == "2\n"
    assert ok("worker", f"--db={db}", "list", "--json") == "[]\n"


def test_ui_takes_db_after_the_command(tmp_path):
    db = tmp_path / "store.db"
    seed(db, {"id": "there", "command": "true"})
    assert_error(run_cli("ui", "--db", str(db), "--workers", "0"), 2, "needs a terminal")


def test_db_given_twice_must_name_one_store(tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    assert_error(run_cli("--db", str(a), "enqueue", "-c", "true", "--db", str(b)), 2,
                 "--db given twice")
    assert not a.exists() and not b.exists()
    assert ok("--db", str(a), "enqueue", "-c", "true", "--id", "same", "--db", str(a)) == "same\n"
    url = "postgresql://someone:secret@127.0.0.1:1/db"
    line = assert_error(run_cli("--db", url, "status", "--db", str(a)), 2, "--db given twice",
                        "someone:***@")
    assert "secret" not in line


@pytest.mark.parametrize("argv, name", [
    (["status"], "status"), (["--db", "x.db", "status"], "status"),
    (["--db=x.db", "worker", "list"], "worker"), (["list", "--db", "x.db"], "list"),
    (["--debug", "--db", "enqueue", "enqueue"], "enqueue"), (["--db", "x.db"], None), ([], None),
])
def test_command_name_skips_db_wherever_it_is(argv, name):
    from queuectl.cli.commands import command_name

    assert command_name(argv) == name


# -- enqueue ----------------------------------------------------------------------------------

def test_readme_seed_example(db, tmp_path):
    code, out, err = run_cli("enqueue", '{"id":"job1","command":"echo Hello World"}', db=db,
                             cwd=tmp_path)
    assert (code, out, err) == (0, "job1\n", "")
    [job] = jobs(db)
    assert job["id"] == "job1" and job["command"] == "echo Hello World"
    assert job["state"] == "pending"
    assert (job["priority"], job["tries"], job["max_retries"], job["timeout"]) == (0, 0, 3, None)
    assert job["cwd"] == str(tmp_path)
    assert job["started_at"] is None and job["finished_at"] is None and job["exit_code"] is None
    assert_iso_fields(job)
    assert ts(job["run_at"]) == ts(job["created_at"])  # eligible at once
    assert abs(ts(job["created_at"]) - datetime.now(timezone.utc).timestamp()) < 60  # UTC


def test_enqueue_json_form_with_every_key(db):
    spec = {"id": "full", "command": "echo a", "priority": -7, "max_retries": 0,
            "timeout": "90s", "run_at": "2030-01-02T03:04:05Z"}
    assert run_cli("enqueue", json.dumps(spec), db=db) == (0, "full\n", "")
    job = show(db, "full")
    assert (job["priority"], job["max_retries"], job["timeout"]) == (-7, 0, 90.0)
    assert job["run_at"] == "2030-01-02T03:04:05.000Z"
    assert job["runs"] == []


def test_enqueue_generates_short_unique_url_safe_ids(db):
    first = ok("enqueue", '{"command": "true"}', db=db)
    second = ok("enqueue", "--command", "true", db=db)
    assert first.endswith("\n") and second.endswith("\n")
    first, second = first.strip(), second.strip()
    assert first != second
    for job_id in (first, second):
        assert re.fullmatch(r"[A-Za-z0-9_-]{6,16}", job_id), job_id
        assert not job_id.startswith("-")
    assert sorted(stored(db)) == sorted([first, second])


def test_enqueue_flag_form_with_every_flag(db, tmp_path):
    code, out, err = run_cli("enqueue", "--command", "echo flags", "--id", "f1", "--priority", "4",
                             "--max-retries", "2", "--timeout", "5m", "--delay", "30s", db=db,
                             cwd=tmp_path)
    assert (code, out, err) == (0, "f1\n", "")
    job = stored(db)["f1"]
    assert (job.command, job.priority, job.max_retries, job.timeout) == ("echo flags", 4, 2, 300.0)
    assert job.cwd == str(tmp_path)
    assert job.run_at - job.created_at == pytest.approx(30)

    code, out, err = run_cli("enqueue", "-c", "echo short", "--id", "f2", "-p", "-3",
                             "--run-at", "2031-05-06T07:08:09+02:00", db=db)
    assert (code, out, err) == (0, "f2\n", "")
    job = stored(db)["f2"]
    assert job.priority == -3
    assert job.run_at == datetime(2031, 5, 6, 5, 8, 9, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("delay, seconds", [
    ("30s", 30), ("5m", 300), ("2h", 7200), ("45", 45), ("1.5", 1.5),
])
def test_delay_flag(db, delay, seconds):
    job_id = ok("enqueue", "-c", "true", "--delay", delay, db=db).strip()
    job = stored(db)[job_id]
    assert job.run_at - job.created_at == pytest.approx(seconds)


@pytest.mark.parametrize("delay, seconds", [(30, 30), (2.5, 2.5), ("5m", 300), ("2h", 7200)])
def test_delay_in_json_spec(db, delay, seconds):
    job_id = ok("enqueue", json.dumps({"command": "true", "delay": delay}), db=db).strip()
    job = stored(db)[job_id]
    assert job.run_at - job.created_at == pytest.approx(seconds)


@pytest.mark.parametrize("text, expected", [
    ("2030-01-02T03:04:05Z", "2030-01-02T03:04:05.000Z"),
    ("2030-01-02T03:04:05.250+00:00", "2030-01-02T03:04:05.250Z"),
    ("2030-01-02T05:04:05+02:00", "2030-01-02T03:04:05.000Z"),
    ("2030-01-02T03:04:05", "2030-01-02T03:04:05.000Z"),  # naive = UTC
])
def test_run_at_iso(db, text, expected):
    job_id = ok("enqueue", "-c", "true", "--run-at", text, db=db).strip()
    run_at = stored(db)[job_id].run_at
    assert run_at == datetime.fromisoformat(expected.replace("Z", "+00:00")).timestamp()


def test_enqueue_file_jsonl_in_order_skipping_blank_lines(db, tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"id":"a","command":"echo a"}\n\n'
                    '{"command":"echo b","priority":2}\n'
                    '   \n{"id":"c","command":"echo c","delay":"1h"}\n', encoding="utf-8")
    code, out, err = run_cli("enqueue", "--file", str(path), db=db)
    assert code == 0 and err == ""
    printed = out.splitlines()
    assert len(printed) == 3 and printed[0] == "a" and printed[2] == "c"
    got = stored(db)
    assert sorted(got) == sorted(printed)
    assert got[printed[1]].priority == 2 and got[printed[1]].command == "echo b"


def test_enqueue_file_from_stdin(db):
    lines = "".join(json.dumps({"id": f"s{i}", "command": f"echo {i}"}) + "\n" for i in range(5))
    code, out, err = run_cli("enqueue", "--file", "-", db=db, input=lines)
    assert (code, out, err) == (0, "s0\ns1\ns2\ns3\ns4\n", "")
    assert sorted(stored(db)) == [f"s{i}" for i in range(5)]


def test_enqueue_records_the_working_directory(db, tmp_path):
    where = tmp_path / "here"
    where.mkdir()
    job_id = ok("enqueue", "-c", "pwd", db=db, cwd=where).strip()
    assert stored(db)[job_id].cwd == str(where)


# -- list -------------------------------------------------------------------------------------

def test_list_waiting_jobs_by_priority_then_run_at(db):
    seed(db,
         {"id": "low", "command": "true", "priority": -1},
         {"id": "zero-now", "command": "true"},
         {"id": "high-later", "command": "true", "priority": 5, "delay": "1h"},
         {"id": "high-now", "command": "true", "priority": 5},
         {"id": "zero-past", "command": "true", "run_at": "2020-01-01T00:00:00Z"})
    expected = ["high-now", "high-later", "zero-past", "zero-now", "low"]
    assert ids(db) == expected
    code, out, err = run_cli("list", "--state", "pending", db=db)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATE", "PRI"]
    assert [line.split()[0] for line in lines[1:]] == expected


def test_list_others_newest_first_and_state_filters(finished):
    assert ids(finished, "--state", "completed") == ["c1", "c2", "c3"]
    assert ids(finished, "--state", "dead") == ["twice", "d2", "d1"]
    assert ids(finished, "--state", "pending") == ["p1"]
    assert ids(finished, "--state", "failed,processing") == []
    comma = ids(finished, "--state", "pending,dead")
    assert sorted(comma) == ["d1", "d2", "p1", "twice"]
    assert ids(finished, "--state", "pending", "--state", "dead") == comma
    assert ids(finished, "-s", "PENDING , dead") == comma
    everything = jobs(finished)
    assert sorted(j["id"] for j in everything) == ["c1", "c2", "c3", "d1", "d2", "p1", "twice"]
    for job in everything:
        assert_iso_fields(job)


def test_list_limit(db):
    seed(db, *({"id": f"j{i}", "command": "true", "priority": 10 - i} for i in range(5)))
    assert ids(db, "--limit", "2") == ["j0", "j1"]
    code, out, _ = run_cli("list", "-n", "3", db=db)
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == ["ID", "j0", "j1", "j2"]


def test_list_json_is_one_array_and_empty_is_brackets(db):
    ok("init", db=db)
    assert run_cli("list", "--json", db=db) == (0, "[]\n", "")
    code, out, err = run_cli("list", db=db)
    assert (code, out) == (0, "") and err.strip() == "no jobs"
    seed(db, {"id": "one", "command": "echo 'x'"})
    code, out, err = run_cli("list", "--json", db=db)
    assert code == 0 and err == ""
    value = json.loads(out)
    assert isinstance(value, list) and [j["id"] for j in value] == ["one"]
    assert set(value[0]) >= {"id", "command", "state", "priority", "tries", "attempt", "max_retries",
                             "timeout", "cwd", *TIMESTAMPS, "exit_code", "last_error"}


def test_list_search_treats_percent_and_underscore_literally(db):
    seed(db, {"id": "a%b", "command": "true"}, {"id": "a_b", "command": "true"},
         {"id": "axb", "command": "true"}, {"id": "plain", "command": "echo 100% done"},
         {"id": "back\\slash", "command": "true"})
    assert sorted(ids(db, "--search", "%")) == ["a%b", "plain"]
    assert ids(db, "--search", "_") == ["a_b"]
    assert ids(db, "--search", "a_b") == ["a_b"]
    assert ids(db, "--search", "a%b") == ["a%b"]
    assert ids(db, "--search", "\\") == ["back\\slash"]
    assert ids(db, "--search", "100% d") == ["plain"]
    assert sorted(ids(db, "--search", "b")) == ["a%b", "a_b", "axb", "back\\slash"]


# -- status -----------------------------------------------------------------------------------

def test_status_of_an_empty_store(db):
    ok("init", db=db)
    code, out, err = run_cli("status", "--json", db=db)
    assert code == 0 and err == ""
    value = json.loads(out)
    assert value["counts"] == {"pending": 0, "running": 0, "completed": 0, "failed": 0, "dead": 0}
    assert value["workers"] == 0 and value["oldest_waiting_seconds"] is None
    assert value["next_due"] is None and value["finished_last_minute"] == 0
    assert value["store"] == str(db)


def test_status_text_and_json(db):
    seed(db, {"id": "ok", "command": "true", "priority": 2},
         {"id": "bad", "command": "exit 3", "max_retries": 0, "priority": 1})
    run_burst(db)
    seed(db, {"id": "now", "command": "true"},
         {"id": "later", "command": "true", "run_at": "2099-01-01T00:00:00Z"})
    code, out, err = run_cli("status", "--json", db=db)
    assert code == 0 and err == ""
    value = json.loads(out)
    assert value["counts"] == {"pending": 2, "running": 0, "completed": 1, "failed": 0, "dead": 1}
    assert value["finished_last_minute"] == 2
    assert value["oldest_waiting_seconds"] >= 0
    assert value["next_due"] == "2099-01-01T00:00:00.000Z"

    code, out, err = run_cli("status", db=db)
    assert code == 0 and err == ""
    rows = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in out.splitlines())
    assert rows["pending"] == "2" and rows["completed"] == "1" and rows["dead"] == "1"
    assert rows["workers"] == "0 live" and rows["store"] == str(db)


# -- show -------------------------------------------------------------------------------------

def test_show_json_with_runs(finished):
    code, out, err = run_cli("show", "twice", "--json", db=finished)
    assert code == 0 and err == ""
    job = json.loads(out)
    assert_iso_fields(job)
    assert (job["id"], job["state"], job["tries"], job["exit_code"]) == ("twice", "dead", 2, 3)
    assert "3" in job["last_error"]
    assert [r["attempt"] for r in job["runs"]] == [1, 2]
    for run in job["runs"]:
        assert set(run) >= {"attempt", "started_at", "finished_at", "exit_code", "outcome", "worker"}
        assert run["exit_code"] == 3 and run["outcome"] == "failed"
        assert run["worker"] and run["worker"].startswith("w-")
        assert ts(run["finished_at"]) >= ts(run["started_at"])
    assert ts(job["runs"][1]["started_at"]) >= ts(job["runs"][0]["finished_at"])

    job = show(finished, "c2")
    assert (job["state"], job["tries"], job["exit_code"], job["last_error"]) == (
        "completed", 1, 0, None)
    [run] = job["runs"]
    assert (run["attempt"], run["exit_code"], run["outcome"]) == (1, 0, "completed")


def test_show_text(finished):
    code, out, err = run_cli("show", "twice", db=finished)
    assert code == 0 and err == ""
    assert re.search(r"^id\s+twice$", out, re.M)
    assert re.search(r"^state\s+dead$", out, re.M)
    assert re.search(r"^command\s+echo hi; exit 3$", out, re.M)
    assert re.search(r"^ATTEMPT\s+STARTED", out, re.M)
    assert len(re.findall(r"^[12]\s+.*\bfailed\b", out, re.M)) == 2


# -- dlq --------------------------------------------------------------------------------------

def test_dlq_list(finished, db):
    code, out, err = run_cli("dlq", "list", "--json", db=finished)
    assert code == 0 and err == ""
    dead = json.loads(out)
    assert [j["id"] for j in dead] == ["twice", "d2", "d1"]  # newest first
    assert [j["exit_code"] for j in dead] == [3, 4, 3]
    code, out, err = run_cli("dlq", "list", db=finished)
    assert code == 0 and err == ""
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["twice", "d2", "d1"]

    ok("init", db=db)
    assert run_cli("dlq", "list", "--json", db=db) == (0, "[]\n", "")
    code, out, err = run_cli("dlq", "list", db=db)
    assert (code, out) == (0, "") and "empty" in err


def test_dlq_retry_one_keeps_history_and_resets_the_budget(copy):
    assert run_cli("dlq", "retry", "twice", db=copy) == (0, "twice\n", "")
    job = show(copy, "twice")
    assert (job["state"], job["tries"], job["max_retries"]) == ("pending", 0, 1)
    assert job["finished_at"] is None and job["last_error"] is None
    assert [r["attempt"] for r in job["runs"]] == [1, 2]  # history kept
    after = stored(copy)
    assert after["d1"].state.value == after["d2"].state.value == "dead"
    # It runs again with its full budget (2 more runs), and its history grows.
    run_burst(copy)
    job = show(copy, "twice")
    assert (job["state"], job["tries"]) == ("dead", 2)
    assert [r["attempt"] for r in job["runs"]] == [1, 2, 3, 4]


def test_dlq_retry_several_ids(copy):
    assert run_cli("dlq", "retry", "d1", "d2", db=copy) == (0, "d1\nd2\n", "")
    states = {k: j.state.value for k, j in stored(copy).items()}
    assert states["d1"] == states["d2"] == "pending" and states["twice"] == "dead"


def test_dlq_retry_all(copy):
    code, out, err = run_cli("dlq", "retry", "--all", db=copy)
    assert code == 0 and err == ""
    assert sorted(out.splitlines()) == ["d1", "d2", "twice"]
    states = {k: j.state.value for k, j in stored(copy).items()}
    assert states == {"c1": "completed", "c2": "completed", "c3": "completed",
                      "d1": "pending", "d2": "pending", "twice": "pending", "p1": "pending"}
    code, out, err = run_cli("dlq", "retry", "--all", db=copy)
    assert (code, out) == (0, "") and "empty" in err


def test_dlq_purge_yes(copy):
    assert run_cli("dlq", "purge", "--yes", db=copy) == (0, "purged 3 dead jobs\n", "")
    assert sorted(stored(copy)) == ["c1", "c2", "c3", "p1"]
    assert_error(run_cli("show", "d1", db=copy), 3)
    assert run_cli("dlq", "purge", "-y", db=copy) == (0, "purged 0 dead jobs\n", "")


# -- config -----------------------------------------------------------------------------------

def test_config_list_get_set_unset(db):
    ok("init", db=db)
    code, out, err = run_cli("config", "list", "--json", db=db)
    assert code == 0 and err == ""
    listed = json.loads(out)
    assert {"max-retries", "backoff-base", "backoff-max", "backoff-jitter", "job-timeout",
            "lease", "poll-interval", "output-limit", "workers"} <= set(listed)
    assert listed["max-retries"] == {"value": 3, "source": "default"}
    assert listed["backoff-base"] == {"value": 2, "source": "default"}
    assert run_cli("config", "get", "max-retries", db=db) == (0, "3\n", "")

    assert run_cli("config", "set", "max-retries", "5", db=db) == (0, "", "")
    assert run_cli("config", "set", "backoff_base", "1.5", db=db) == (0, "", "")  # _ spelling
    assert ok("config", "get", "max-retries", db=db) == "5\n"
    code, out, _ = run_cli("config", "list", db=db)
    assert code == 0
    assert re.search(r"^max-retries\s+5\s+store\b", out, re.M)
    assert re.search(r"^backoff-base\s+1\.5\s+store\b", out, re.M)

    # max_retries is fixed on the job at enqueue time.
    ok("enqueue", '{"id": "five", "command": "true"}', db=db)
    assert run_cli("config", "unset", "max-retries", db=db) == (0, "", "")
    ok("enqueue", '{"id": "three", "command": "true"}', db=db)
    got = stored(db)
    assert (got["five"].max_retries, got["three"].max_retries) == (5, 3)

    # The environment overrides the store.
    code, out, _ = run_cli("config", "list", "--json", db=db, env={"QUEUECTL_WORKERS": "7"})
    listed = json.loads(out)
    assert listed["workers"] == {"value": 7, "source": "env"}
    assert listed["max-retries"] == {"value": 3, "source": "default"}
    assert listed["backoff-base"] == {"value": 1.5, "source": "store"}


def test_config_shows_durations_and_sizes_in_the_units_people_type(db):
    ok("init", db=db)
    out = ok("config", "list", db=db)
    for key, value in [("backoff-max", "1h"), ("lease", "15s"), ("poll-interval", "1s"),
                       ("output-limit", "1MiB"), ("job-timeout", "none"), ("max-retries", "3"),
                       ("backoff-base", "2"), ("workers", "2")]:
        assert re.search(rf"^{key}\s+{re.escape(value)}\s+default\b", out, re.M), (key, out)
    ok("config", "set", "backoff-max", "7200", db=db)
    ok("config", "set", "job-timeout", "90", db=db)
    ok("config", "set", "output-limit", "64KiB", db=db)
    assert ok("config", "get", "backoff-max", db=db) == "2h\n"
    assert ok("config", "get", "job-timeout", db=db) == "90s\n"
    assert ok("config", "get", "output-limit", db=db) == "64KiB\n"
    listed = json.loads(ok("config", "list", "--json", db=db))  # raw numbers for scripts
    assert listed["backoff-max"] == {"value": 7200, "source": "store"}
    assert listed["job-timeout"] == {"value": 90, "source": "store"}
    assert listed["output-limit"] == {"value": 65536, "source": "store"}
    assert listed["lease"] == {"value": 15, "source": "default"}


# -- prune ------------------------------------------------------------------------------------

def test_prune_older_than_with_state(copy):
    assert run_cli("prune", "--older-than", "1h", db=copy) == (0, "pruned 0 jobs\n", "")
    assert len(stored(copy)) == 7
    assert run_cli("prune", "--older-than", "0s", "--state", "dead", db=copy) == (
        0, "pruned 3 jobs\n", "")
    assert sorted(stored(copy)) == ["c1", "c2", "c3", "p1"]
    assert_error(run_cli("logs", "twice", db=copy), 3)
    assert run_cli("prune", "--older-than", "0", "--state", "completed", db=copy) == (
        0, "pruned 3 jobs\n", "")
    assert sorted(stored(copy)) == ["p1"]
    conn = sqlite3.connect(copy)
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM output").fetchone()[0] == 0
    conn.close()


# -- cancel -----------------------------------------------------------------------------------

def test_cancel_a_pending_job(db):
    seed(db, {"id": "c", "command": "true"}, {"id": "other", "command": "true"})
    assert run_cli("cancel", "c", db=db) == (0, "c\tcancelled\n", "")
    job = show(db, "c")
    assert (job["state"], job["cancelled"], job["last_error"]) == ("dead", True, "cancelled")
    assert job["runs"] == []
    assert stored(db)["other"].state.value == "pending"
    assert [j["id"] for j in json.loads(ok("dlq", "list", "--json", db=db))] == ["c"]


def test_running_job_via_processing_alias_then_cancelled(db):
    seed(db, {"id": "long", "command": "sleep 30", "max_retries": 0})
    worker = subprocess.Popen(command("worker", "start", "--count", "1", db=db),
                              env=cli_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: stored(db)["long"].state.value == "running", timeout=20,
                 what="the job to start")
        assert ids(db, "--state", "processing") == ["long"]
        assert ids(db, "--state", "running") == ["long"]
        assert run_cli("cancel", "long", db=db) == (0, "long\tcancelling\n", "")
        wait_for(lambda: stored(db)["long"].state.value == "dead", timeout=20,
                 what="the cancelled job to be dead")
        job = show(db, "long")
        assert job["cancelled"] is True
        assert job["runs"][0]["outcome"] == "cancelled"
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def test_version(tmp_path):
    from importlib.metadata import version

    assert run_cli("--version", cwd=tmp_path) == (0, f"queuectl {version('queuectl')}\n", "")
    assert os.listdir(tmp_path) == []


# -- every command has --help, every read command --json --------------------------------------

HELP_PATHS = [
    [], ["init"], ["enqueue"], ["list"], ["status"], ["show"], ["logs"], ["cancel"], ["prune"],
    ["dlq"], ["dlq", "list"], ["dlq", "retry"], ["dlq", "purge"],
    ["config"], ["config", "list"], ["config", "get"], ["config", "set"], ["config", "unset"],
    ["worker"], ["worker", "start"], ["worker", "stop"], ["worker", "list"], ["completion"],
    ["ui"], ["demo"], ["bench"],
]


HELP_PROBE = """
import contextlib, io, json, sys
from queuectl.cli import main
result = {}
for path in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(path + ["--help"])
    result[" ".join(path)] = [code, out.getvalue(), err.getvalue()]
print(json.dumps(result))
"""


def test_help_on_every_command(tmp_path):
    """`--help` on every command and group (one process runs main() for each, to stay fast)."""
    db = tmp_path / "never.db"
    done = subprocess.run([sys.executable, "-c", HELP_PROBE, json.dumps(HELP_PATHS)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env=cli_env({"QUEUECTL_DB": str(db)}))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert len(result) == len(HELP_PATHS)
    for path, (code, out, err) in result.items():
        assert code == 0 and err == "", path
        assert out.lstrip().startswith("Usage: queuectl" + (" " + path if path else "")), path
        assert "--db" in out, path  # every command and group takes --db
        assert not re.search(r"\bissue\b", out, re.I), path  # what it does, not its history
    assert not db.exists()  # help never opens the store
    assert run_cli("show", "-h", db=db)[1].lstrip().startswith("Usage: queuectl show")


@pytest.mark.parametrize("args", [
    ["list"], ["status"], ["show", "c2"], ["logs", "c2"], ["dlq", "list"], ["config", "list"],
    ["worker", "list"],
], ids=" ".join)
def test_read_commands_print_only_json_with_json(finished, args):
    code, out, err = run_cli(*args, "--json", db=finished)
    assert code == 0 and err == "", err
    json.loads(out)


def test_bench_measures_on_the_store_given_after_the_command(tmp_path):
    """The bench asks the CLI which store was chosen (here a PostgreSQL URL after `bench`)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    url = f"postgresql://someone:secret@127.0.0.1:{port}/db"
    line = assert_error(run_cli("bench", "--db", url, cwd=tmp_path), 75, "cannot reach PostgreSQL")
    assert "secret" not in line


# -- shell completion -------------------------------------------------------------------------

def _completions(tmp_path: Path, line: str) -> list[str]:
    """What bash completes for `line` (the words typed so far, the last one being completed)
    with the script of `queuectl completion bash` loaded, queuectl being on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "queuectl"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m queuectl "$@"\n')
    shim.chmod(0o755)
    script = ok("completion", "bash")
    words = line.split(" ")
    probe = (f"{script}\nCOMP_WORDS=({' '.join(map(repr, words))})\n"
             f"COMP_CWORD={len(words) - 1}\n_queuectl_completion queuectl\n"
             'printf "%s\\n" "${COMPREPLY[@]}"\n')
    env = cli_env({"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", probe], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout.split()


def test_bash_completion_of_commands_and_options(tmp_path):
    assert "_QUEUECTL_COMPLETE=complete_bash" in ok("completion", "bash")
    assert _completions(tmp_path, "queuectl wor") == ["worker"]
    assert _completions(tmp_path, "queuectl worker st") == ["start", "stop"]
    assert _completions(tmp_path, "queuectl --db x.db worker st") == ["start", "stop"]
    assert {"--follow", "--json", "--db"} <= set(_completions(tmp_path, "queuectl logs --"))
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_completion_scripts_for_other_shells(shell):
    assert "_QUEUECTL_COMPLETE" in ok("completion", shell)


def test_completion_for_an_unknown_shell(tmp_path):
    assert_error(run_cli("completion", "tcsh"), 2, "tcsh", "bash")
