"""`queuectl schedule` and `queuectl hook` as a person types them: good and bad input."""

from __future__ import annotations

import json

import pytest

from clihelp import assert_error, run_cli


@pytest.fixture
def db(tmp_path):
    return tmp_path / "q.db"


def test_add_list_show_pause_resume_run_now_remove(db, tmp_path):
    code, out, err = run_cli("schedule", "add", "nightly", "--cron", "0 3 * * *", "--tz",
                             "Europe/Berlin", "-q", "reports", "--timeout", "1h", "--",
                             "./report.sh", "--day", "yesterday", db=db, cwd=tmp_path)
    assert code == 0, err
    assert "cron '0 3 * * *' (Europe/Berlin)" in err
    [listed] = json.loads(run_cli("schedule", "list", "--json", db=db).out)
    assert listed["spec"] == {"command": "./report.sh --day yesterday", "queue": "reports",
                              "timeout": "1h"}
    assert (listed["cwd"], listed["paused"], listed["overlap"], listed["catch_up"]) == (
        str(tmp_path), False, "skip", "once")
    assert run_cli("schedule", "pause", "nightly", db=db).code == 0
    assert json.loads(run_cli("schedule", "show", "nightly", "--json", db=db).out)["paused"]
    assert run_cli("schedule", "resume", "nightly", db=db).code == 0
    code, out, err = run_cli("schedule", "run-now", "nightly", db=db)
    assert code == 0, err
    shown = json.loads(run_cli("show", out.strip(), "--json", db=db).out)
    assert (shown["queue"], shown["timeout"], shown["command"]) == (
        "reports", 3600.0, "./report.sh --day yesterday")
    status = json.loads(run_cli("status", "--json", db=db).out)
    assert status["next_schedule_tick"] is not None
    assert run_cli("schedule", "remove", "nightly", db=db).code == 0
    assert json.loads(run_cli("schedule", "list", "--json", db=db).out) == []


@pytest.mark.parametrize("args, code, fragment", [
    (["schedule", "add", "x", "--", "true"], 2, "--cron or --every"),
    (["schedule", "add", "x", "--cron", "nope", "--", "true"], 2, "not a cron expression"),
    (["schedule", "add", "x", "--every", "0s", "--", "true"], 2, "at least 1s"),
    (["schedule", "add", "x", "--every", "1m"], 2, "give the command after --"),
    (["schedule", "add", "x", "--every", "1m", "--overlap", "maybe", "--", "true"], 2, "--overlap"),
    (["schedule", "add", "x", "--cron", "0 3 * * *", "--tz", "Nowhere/City", "--", "true"], 2,
     "unknown time zone"),
    (["schedule", "add", "bad name", "--every", "1m", "--", "true"], 2, "whitespace"),
    (["schedule", "pause", "ghost"], 3, "no schedule named 'ghost'"),
    (["hook", "add", "on-birthday", "--", "true"], 2, "unknown hook event"),
    (["hook", "remove", "abc"], 2, "not a hook id"),
    (["hook", "remove", "99"], 3, "no hook 99"),
])
def test_bad_input_is_one_line(db, args, code, fragment):
    run_cli("schedule", "add", "exists", "--every", "1h", "--", "true", db=db)
    assert_error(run_cli(*args, db=db), code, fragment)


def test_a_schedule_name_taken_is_a_conflict(db):
    assert run_cli("schedule", "add", "s", "--every", "1h", "--", "true", db=db).code == 0
    assert_error(run_cli("schedule", "add", "s", "--every", "1h", "--", "true", db=db), 4,
                 "exists")


def test_hook_add_list_test_remove(db, tmp_path):
    code, out, err = run_cli("hook", "add", "on-dead", "-q", "deploy", "--", "notify-send",
                             "job died", db=db, cwd=tmp_path)
    assert code == 0, err
    hook_id = out.strip()
    [listed] = json.loads(run_cli("hook", "list", "--json", db=db).out)
    assert (str(listed["id"]), listed["event"], listed["queue"], listed["command"]) == (
        hook_id, "on-dead", "deploy", "notify-send 'job died'")
    code, out, err = run_cli("hook", "test", hook_id, db=db)
    assert code == 0, err
    job = json.loads(run_cli("show", out.strip(), "--json", db=db).out)
    assert job["queue"] == "hooks" and job["env"]["QUEUECTL_HOOK_JOB_ID"] == "sample-job"
    assert run_cli("hook", "remove", hook_id, db=db).code == 0
    assert json.loads(run_cli("hook", "list", "--json", db=db).out) == []
