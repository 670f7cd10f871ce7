"""`enqueue --file` of a large file shows a progress bar on stderr when stderr is a terminal,
and prints nothing but the ids (and errors) when it is not."""

from __future__ import annotations

from clihelp import job_count, run_cli, run_on_tty

from queuectl.cli.jobfile import LARGE_INPUT

LINES = LARGE_INPUT + 500


def _file(tmp_path, bad_line: int | None = None):
    path = tmp_path / "jobs.jsonl"
    lines = ['{"command": "true"}\n'] * LINES
    if bad_line is not None:
        lines[bad_line - 1] = '{"command": 5}\n'
    path.write_text("".join(lines))
    return path


def test_a_large_file_shows_its_progress_on_a_terminal(tmp_path):
    db = tmp_path / "queuectl.db"
    code, out, err = run_on_tty(["enqueue", "--file", str(_file(tmp_path))], db=db)
    assert code == 0, err
    assert len(out.split()) == LINES
    text = err.decode()
    assert f"reading {tmp_path / 'jobs.jsonl'} [" in text and f"{LARGE_INPUT:,} lines" in text
    assert f"storing {LINES:,} jobs" in text
    assert text.endswith(f"\renqueued {LINES:,} jobs\x1b[K\n")
    assert job_count(db) == LINES


def test_a_bad_line_ends_the_bar_before_the_error(tmp_path):
    db = tmp_path / "queuectl.db"
    code, out, err = run_on_tty(["enqueue", "--file", str(_file(tmp_path, LINES - 1))], db=db)
    assert code == 2 and out == b""
    assert err.decode().endswith(f"\r\x1b[Kerror: {tmp_path / 'jobs.jsonl'}: line {LINES - 1}: "
                                 "command must be a string\n")
    assert not db.exists()  # all or nothing: not even the store


def test_nothing_but_the_ids_on_a_pipe(tmp_path):
    db = tmp_path / "queuectl.db"
    code, out, err = run_cli("enqueue", "--file", str(_file(tmp_path)), db=db)
    assert (code, err) == (0, "")
    assert len(out.split()) == LINES


def test_a_small_file_shows_no_bar_on_a_terminal(tmp_path):
    db = tmp_path / "queuectl.db"
    path = tmp_path / "few.jsonl"
    path.write_text('{"command": "true"}\n' * 3)
    code, out, err = run_on_tty(["enqueue", "--file", str(path)], db=db)
    assert (code, err) == (0, b"")
    assert len(out.split()) == 3
