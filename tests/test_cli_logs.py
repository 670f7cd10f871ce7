"""`queuectl logs`: exact bytes to a pipe (stdout to stdout, stderr to stderr), control
sequences neutralised on a terminal, exact bytes with --raw, --attempt, and --follow."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from clihelp import (assert_error, cli_env, command, open_db, run_burst, run_cli, run_on_tty,
                     seed, stored, wait_for)

# What the jobs below write (printf with octal escapes, as /bin/sh's printf knows no \x).
BIN_OUT = b"out\xff\x00\nA\xe2\x82\nend"  # invalid UTF-8, NUL, a cut multi-byte sequence
BIN_ERR = b"err\x01\x1b[2J\n"
ESC_OUT = (b"\x1b[2J\x1b]0;pwned\x07"  # clear screen; set the window title
           b"c1:\xc2\x9b31m raw:\x9b31m "  # C1 CSI as a character and as a bare byte
           b"\xe2\x80\xaeevil\n"  # right-to-left override
           b"cr\rover\n")
ESC_ERR = b"E:\x1b[31mred\x1b[0m\n"


def printf(data: bytes) -> str:
    return "printf '" + "".join(f"\\{b:03o}" for b in data) + "'"


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Path:
    """A store whose jobs have run: `bin` and `esc` (output above), `multi` (attempt 1 prints
    "first" and fails, attempt 2 prints "second"), `silent` (no output); `never` has not run."""
    where = tmp_path_factory.mktemp("logs")
    db = where / "queuectl.db"
    store = open_db(db)
    store.config_set("backoff-max", "0")  # retry at once
    store.close()
    seed(db,
         {"id": "bin", "command": f"{printf(BIN_OUT)}; {printf(BIN_ERR)} >&2"},
         {"id": "esc", "command": f"{printf(ESC_OUT)}; {printf(ESC_ERR)} >&2"},
         {"id": "multi", "max_retries": 1,
          "command": "if [ -e marker ]; then echo second; else : > marker; echo first; exit 1; fi"},
         {"id": "silent", "command": "true"},
         {"id": "never", "command": "echo never", "delay": "1h"},
         cwd=where)
    run_burst(db)
    jobs = stored(db)
    assert [jobs[i].state.value for i in ("bin", "esc", "multi", "silent")] == ["completed"] * 4
    return db


# -- to a pipe: exact bytes ---------------------------------------------------------------------

@pytest.mark.parametrize("job_id, out, err", [("bin", BIN_OUT, BIN_ERR), ("esc", ESC_OUT, ESC_ERR)])
def test_pipe_gets_exact_bytes_on_the_right_streams(ran, job_id, out, err):
    assert run_cli("logs", job_id, db=ran, binary=True) == (0, out, err)


def test_raw_to_a_pipe_is_the_same(ran):
    assert run_cli("logs", "esc", "--raw", db=ran, binary=True) == (0, ESC_OUT, ESC_ERR)


def test_a_job_without_output(ran):
    assert run_cli("logs", "silent", db=ran) == (0, "", "")


def test_a_job_that_has_not_run_says_so_on_stderr(ran):
    code, out, err = run_cli("logs", "never", db=ran)
    assert (code, out) == (0, "")
    assert "not run" in err and err.count("\n") == 1


# -- --attempt ----------------------------------------------------------------------------------

def test_attempt_picks_the_nth_run_and_the_latest_by_default(ran):
    assert run_cli("logs", "multi", "--attempt", "1", db=ran) == (0, "first\n", "")
    assert run_cli("logs", "multi", "-a", "2", db=ran) == (0, "second\n", "")
    assert run_cli("logs", "multi", db=ran) == (0, "second\n", "")


@pytest.mark.parametrize("job_id, attempt, fragment", [
    ("multi", "3", "no attempt 3"), ("bin", "2", "no attempt 2"), ("never", "1", "not run"),
    ("multi", "0", "--attempt"), ("multi", "x", "--attempt"),
])
def test_unknown_attempt_is_a_usage_error(ran, job_id, attempt, fragment):
    assert_error(run_cli("logs", job_id, "--attempt", attempt, db=ran), 2, fragment)


def test_unknown_job(ran):
    assert_error(run_cli("logs", "nope", db=ran), 3, "no job with id 'nope'")


# -- on a terminal ------------------------------------------------------------------------------

FORBIDDEN = [b"\x1b", b"\x07", b"\x9b", b"\xc2\x9b", b"\xe2\x80\xae", b"\r"]


def test_terminal_neutralises_escape_sequences(ran):
    code, out, err = run_on_tty(["logs", "esc"], db=ran)
    assert code == 0
    for bad in FORBIDDEN:
        assert bad not in out and bad not in err, (bad, out, err)
    text = out.decode("utf-8")
    assert "^[[2J" in text and "^[]0;pwned^G" in text
    assert "c1:<U+009B>31m" in text
    assert "raw:\ufffd31m" in text  # a bare C1 byte is not UTF-8: shown as U+FFFD
    assert "<U+202E>evil\n" in text
    assert "cr^Mover\n" in text
    assert err.decode("utf-8") == "E:^[[31mred^[[0m\n"


def test_terminal_shows_invalid_utf8_as_replacement_characters(ran):
    code, out, err = run_on_tty(["logs", "bin"], db=ran)
    assert code == 0
    assert out.decode("utf-8") == "out\ufffd^@\nA\ufffd\nend"
    assert err.decode("utf-8") == "err^A^[[2J\n"


def test_raw_on_a_terminal_is_exact_bytes(ran):
    assert run_on_tty(["logs", "esc", "--raw"], db=ran) == (0, ESC_OUT, ESC_ERR)
    assert run_on_tty(["logs", "bin", "--raw"], db=ran) == (0, BIN_OUT, BIN_ERR)


# -- --follow -----------------------------------------------------------------------------------

def test_follow_prints_every_line_of_a_running_job_and_returns_when_it_ends(tmp_path):
    db = tmp_path / "queuectl.db"
    seed(db, {"id": "count", "command": "for i in 1 2 3; do echo $i; sleep 0.3; done; echo done >&2"})
    worker = subprocess.Popen(command("worker", "start", "--count", "1", db=db), env=cli_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        wait_for(lambda: stored(db)["count"].state.value == "running", timeout=20,
                 what="the job to start")
        code, out, err = run_cli("logs", "count", "--follow", db=db, timeout=30)
        assert (code, out, err) == (0, "1\n2\n3\n", "done\n")
        job = stored(db)["count"]
        assert job.state.value == "completed" and job.finished_at is not None
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def test_follow_of_a_job_that_will_never_run(tmp_path):
    db = tmp_path / "queuectl.db"
    seed(db, {"id": "gone", "command": "echo x"})
    assert run_cli("cancel", "gone", db=db)[0] == 0
    code, out, err = run_cli("logs", "gone", "--follow", db=db, timeout=30)
    assert (code, out) == (0, "")
    assert "without running" in err and err.count("\n") == 1


def test_follow_of_a_finished_job_prints_it_and_returns(ran):
    assert run_cli("logs", "bin", "--follow", db=ran, binary=True, timeout=30) == (
        0, BIN_OUT, BIN_ERR)


# -- UTF-8 split across stored chunks -----------------------------------------------------------

# "café ok" with the two bytes of "é" written 1.3 s apart: the worker stores output every half
# second, so the character is split across two stored chunks.
SPLIT = "printf 'caf\\303'; sleep 1.3; printf '\\251 ok\\n'"


def _chunks(db, job_id: str) -> list[tuple[int, bytes]]:
    store = open_db(db)
    try:
        return store.output(job_id).chunks
    finally:
        store.close()


def test_terminal_decodes_a_character_split_across_stored_chunks(tmp_path):
    db = tmp_path / "queuectl.db"
    seed(db, {"id": "split", "command": SPLIT}, cwd=tmp_path)
    run_burst(db)
    assert [data for _, data in _chunks(db, "split")][:2] == [b"caf\xc3", b"\xa9 ok\n"]
    assert run_on_tty(["logs", "split"], db=db) == (0, "café ok\n".encode(), b"")


def test_follow_on_a_terminal_decodes_a_character_split_across_stored_chunks(tmp_path):
    db = tmp_path / "queuectl.db"
    seed(db, {"id": "split", "command": SPLIT}, cwd=tmp_path)
    worker = subprocess.Popen(command("worker", "start", "--count", "1", db=db), env=cli_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        wait_for(lambda: stored(db)["split"].state.value == "running", timeout=20,
                 what="the job to start")
        assert run_on_tty(["logs", "split", "--follow"], db=db) == (0, "café ok\n".encode(), b"")
        assert len(_chunks(db, "split")) == 2
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def test_terminal_does_not_join_bytes_across_a_cut(tmp_path):
    """A character cut by the output limit is not glued to bytes from the other side of the cut:
    the half on each side shows as U+FFFD."""
    db = tmp_path / "queuectl.db"
    store = open_db(db)
    store.config_set("output-limit", "16")
    store.close()
    # 42 bytes: "x", twenty "é", "\n". Head: "xééé" + the first byte of the fourth "é";
    # tail: the second byte of an "é", then "ééé\n".
    seed(db, {"id": "cut", "command": "printf 'x'; " + "printf '\\303\\251'; " * 20 + "echo"},
         cwd=tmp_path)
    run_burst(db)
    code, out, err = run_on_tty(["logs", "cut"], db=db)
    assert code == 0
    assert out.decode("utf-8") == "xééé\ufffd\ufffdééé\n"
    assert err.decode("utf-8") == "\n[queuectl: 26 bytes of output cut here]\n"


# -- --json ---------------------------------------------------------------------------------------

def _logs_json(db, *args: str) -> dict:
    code, out, err = run_cli("logs", *args, "--json", db=db)
    assert (code, err) == (0, ""), err
    return json.loads(out)


def test_json_is_one_document_with_the_run_and_its_output_as_text(ran):
    doc = _logs_json(ran, "bin")
    assert (doc["id"], doc["attempt"]) == ("bin", 1)
    assert doc["run"]["outcome"] == "completed" and doc["run"]["exit_code"] == 0
    assert doc["run"]["output_bytes"] == len(BIN_OUT) + len(BIN_ERR)
    assert doc["output"] == [
        {"stream": "stdout", "text": BIN_OUT.decode("utf-8", "replace")},
        {"stream": "stderr", "text": BIN_ERR.decode("utf-8")},
    ]


def test_json_raw_gives_the_exact_bytes_in_base64(ran):
    doc = _logs_json(ran, "esc", "--raw")
    assert [(o["stream"], base64.b64decode(o["base64"])) for o in doc["output"]] == [
        ("stdout", ESC_OUT), ("stderr", ESC_ERR)]


def test_json_of_an_attempt_and_of_a_job_that_has_not_run(ran):
    first = _logs_json(ran, "multi", "--attempt", "1")
    assert (first["attempt"], first["run"]["outcome"]) == (1, "failed")
    assert first["output"] == [{"stream": "stdout", "text": "first\n"}]
    assert _logs_json(ran, "never") == {"id": "never", "attempt": None, "run": None, "output": []}
    assert _logs_json(ran, "silent")["output"] == []


def test_json_decodes_across_chunks_and_marks_the_cut(tmp_path):
    db = tmp_path / "queuectl.db"
    store = open_db(db)
    store.config_set("output-limit", "16")
    store.close()
    seed(db, {"id": "split", "command": SPLIT},
         {"id": "cut", "command": "printf 'x'; " + "printf '\\303\\251'; " * 20 + "echo"},
         cwd=tmp_path)
    run_burst(db)
    assert _logs_json(db, "split")["output"] == [{"stream": "stdout", "text": "café ok\n"}]
    assert _logs_json(db, "cut")["output"] == [
        {"stream": "stdout", "text": "xééé\ufffd"}, {"stream": "cut", "bytes": 26},
        {"stream": "stdout", "text": "\ufffdééé\n"}]


def test_json_with_follow_is_a_usage_error(ran):
    assert_error(run_cli("logs", "bin", "--json", "--follow", db=ran), 2, "--json", "--follow")


@pytest.mark.parametrize("flag", ["-f", "-F", "--follow"])
def test_follow_short_flags(ran, flag):
    assert run_cli("logs", "bin", flag, db=ran, binary=True, timeout=30) == (0, BIN_OUT, BIN_ERR)
