"""run_command against real processes: exits, signals, output, timeouts, stops, leftovers."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

import queuectl
from queuectl.output import STDERR, STDOUT, OutputCapture
from queuectl.runner import RunResult, _start_error, run_command, signal_name

from procs import processes_with_env

REPO = str(Path(queuectl.__file__).resolve().parent.parent)


def marker() -> str:
    return f"test-{uuid.uuid4().hex}"


def job_env(mark: str, **extra: str) -> dict[str, str]:
    return dict(os.environ, QUEUECTL_JOB_ID=mark, **extra)


def marked_pids(mark: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries QUEUECTL_JOB_ID=mark."""
    return processes_with_env("QUEUECTL_JOB_ID", mark)


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def kill_marked(mark: str) -> None:
    for pid in marked_pids(mark):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run(command: str, limit: int = 1 << 20, *, cwd: str = "/", env=None, timeout=10.0, **kw):
    cap = OutputCapture(limit)
    result = run_command(command, cwd=cwd, env=env, timeout=timeout, capture=cap, **kw)
    return result, cap


def per_stream(cap: OutputCapture) -> dict[int, bytes]:
    out = {STDOUT: b"", STDERR: b""}
    for stream, data in cap.take_head() + cap.tail_snapshot()[0]:
        out[stream] += data
    return out


@pytest.mark.parametrize("command, code, text", [
    ("true", 0, "exit code 0"),
    ("exit 3", 3, "exit code 3"),
    ("false", 1, "exit code 1"),
    ("queuectl_no_such_command_x", 127, "command not found (exit 127)"),
])
def test_exit_codes(command, code, text):
    result, _ = run(command)
    assert (result.exit_code, result.signal, result.timed_out, result.error) == (code, None, False, None)
    assert result.describe() == text
    assert result.ok == (code == 0)
    assert result.duration >= 0


def test_not_executable_is_126(tmp_path):
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result, _ = run("./script", cwd=str(tmp_path))
    assert result.exit_code == 126
    assert result.describe() == "not executable (exit 126)"


def test_killed_by_signal_is_named():
    result, _ = run("kill -SEGV $$")
    assert (result.exit_code, result.signal, result.ok) == (None, "SIGSEGV", False)
    assert result.describe() == "killed by SIGSEGV"


def test_signal_name():
    assert signal_name(9) == "SIGKILL"
    assert signal_name(-11) == "SIGSEGV"
    assert signal_name(int(signal.SIGRTMIN) + 2) == "SIGRTMIN+2"


@pytest.mark.parametrize("result, text", [
    (RunResult(None, None, True, None, None, 5.3, 5.0), "timed out after 5 s"),
    (RunResult(None, "SIGTERM", True, None, None, 0.6, 0.5), "timed out after 0.5 s"),
    (RunResult(None, "SIGTERM", False, "cancelled", None, 1.0), "stopped: cancelled"),
    (RunResult(None, None, False, None, "cannot start: x", 0.0), "cannot start: x"),
    (RunResult(143, None, True, None, None, 2.0, 2.0), "timed out after 2 s"),
])
def test_describe(result, text):
    assert result.describe() == text
    assert not result.ok


def test_output_per_stream_exact_binary():
    program = ("import sys; sys.stdout.buffer.write(bytes(range(256)) * 3); "
               "sys.stderr.buffer.write(b'\\xff\\xfe bad \\xc3\\x28 utf8 \\x00 end')")
    result, cap = run(f"{sys.executable} -c \"{program}\"")
    assert result.ok
    out = per_stream(cap)
    assert out[STDOUT] == bytes(range(256)) * 3
    assert out[STDERR] == b"\xff\xfe bad \xc3\x28 utf8 \x00 end"
    assert cap.total == 768 + len(out[STDERR])


def test_interleaved_streams_keep_their_order():
    command = "for i in 1 2 3; do echo out$i; sleep 0.1; echo err$i >&2; sleep 0.1; done"
    result, cap = run(command)
    assert result.ok
    assert cap.take_head() == [
        (STDOUT, b"out1\n"), (STDERR, b"err1\n"), (STDOUT, b"out2\n"),
        (STDERR, b"err2\n"), (STDOUT, b"out3\n"), (STDERR, b"err3\n"),
    ]


def test_env_is_the_whole_environment_and_stdin_is_empty():
    env = {"PATH": os.environ["PATH"], "FOO": "bar baz"}
    result, cap = run('echo "$FOO|${HOME-unset}"; cat; echo end', env=env)
    assert result.ok
    assert per_stream(cap)[STDOUT] == b"bar baz|unset\nend\n"


def test_timeout_kills_children_and_grandchildren():
    mark = marker()
    seen = []
    result, _ = run("sleep 300 & sleep 300; wait", env=job_env(mark), timeout=0.5,
                    kill_grace=0.3, tick=lambda: seen.append(len(marked_pids(mark))),
                    tick_interval=0.1)
    try:
        assert max(seen) == 3  # the shell and both sleeps were running
        assert result.timed_out and result.exit_code is None and result.signal == "SIGTERM"
        assert result.describe() == "timed out after 0.5 s"
        assert 0.5 <= result.duration < 2.0
        assert wait_until(lambda: not marked_pids(mark), 3.0)
    finally:
        kill_marked(mark)


def test_job_ignoring_sigterm_is_killed_after_grace():
    mark = marker()
    result, _ = run("trap '' TERM; sleep 100", env=job_env(mark), timeout=0.3, kill_grace=0.3)
    try:
        assert result.timed_out and result.signal == "SIGKILL"
        assert 0.6 <= result.duration < 3.0
        assert wait_until(lambda: not marked_pids(mark), 3.0)
    finally:
        kill_marked(mark)


def test_timeout_applies_after_job_closed_its_output():
    result, _ = run("exec >/dev/null 2>&1; sleep 300", timeout=0.3, kill_grace=0.3)
    assert result.timed_out and result.signal == "SIGTERM"
    assert result.duration < 2.0


def test_stopped_job_is_continued_so_sigterm_works():
    result, _ = run("trap 'exit 7' TERM; kill -STOP $$", timeout=0.3, kill_grace=5.0)
    assert result.timed_out and result.exit_code == 7
    assert result.duration < 3.0


def test_without_pidfd_the_exit_is_polled(monkeypatch):
    monkeypatch.delattr(os, "pidfd_open")
    mark = marker()
    try:
        assert run("exit 4")[0].exit_code == 4
        result, cap = run("sleep 300 & echo done", env=job_env(mark))
        assert result.ok and result.duration < 1.5 and per_stream(cap)[STDOUT] == b"done\n"
        result, _ = run("sleep 300", timeout=0.2, kill_grace=0.3)
        assert result.timed_out and result.duration < 2.0
        assert wait_until(lambda: not marked_pids(mark), 3.0)
    finally:
        kill_marked(mark)


def test_tick_is_called_regularly():
    calls = []
    start = time.monotonic()
    result, _ = run("sleep 1", tick=lambda: calls.append(time.monotonic()), tick_interval=0.1)
    assert result.ok
    gaps = [b - a for a, b in zip([start] + calls, calls)]
    assert len(calls) >= 5
    assert max(gaps) < 0.1 + 0.2


def test_tick_stop_kills_within_interval_and_grace():
    mark = marker()
    stop_after = time.monotonic() + 0.3
    said_stop = []

    def tick():
        if time.monotonic() >= stop_after:
            said_stop.append(time.monotonic())
            return "cancelled by user"
        return None

    result, _ = run("trap '' TERM; sleep 300", env=job_env(mark), tick=tick,
                    tick_interval=0.1, kill_grace=0.3)
    ended = time.monotonic()
    try:
        assert result.stopped == "cancelled by user" and not result.timed_out
        assert result.signal == "SIGKILL" and not result.ok
        assert result.describe() == "stopped: cancelled by user"
        assert said_stop[0] - stop_after < 0.1 + 0.2
        assert ended - said_stop[0] < 0.3 + 0.5
        assert wait_until(lambda: not marked_pids(mark), 3.0)
    finally:
        kill_marked(mark)


def test_tick_exception_propagates_and_kills_the_job():
    mark = marker()

    def tick():
        raise RuntimeError("store gone")

    with pytest.raises(RuntimeError, match="store gone"):
        run("sleep 300", env=job_env(mark), tick=tick, tick_interval=0.05)
    try:
        assert wait_until(lambda: not marked_pids(mark), 3.0)
    finally:
        kill_marked(mark)


def test_background_child_does_not_hang_the_run():
    mark = marker()
    result, cap = run("sleep 300 & echo done", env=job_env(mark))
    try:
        assert result.ok
        assert result.duration < 1.5
        assert per_stream(cap)[STDOUT] == b"done\n"
        assert wait_until(lambda: not marked_pids(mark), 3.0)
    finally:
        kill_marked(mark)


def test_output_of_a_leftover_written_just_after_the_shell_exit_is_kept():
    result, cap = run("echo late & echo early")
    assert result.ok
    assert sorted(per_stream(cap)[STDOUT].splitlines()) == [b"early", b"late"]


@pytest.mark.parametrize("cwd, message", [
    ("/nonexistent/queuectl-dir", "working directory /nonexistent/queuectl-dir does not exist"),
    ("/etc/hostname", "working directory /etc/hostname is not a directory"),
])
def test_cannot_start(cwd, message):
    result, cap = run("true", cwd=cwd)
    assert result.exit_code is None and result.signal is None and not result.ok
    assert result.error == f"cannot start: {message}"
    assert result.describe() == result.error
    assert cap.total == 0


def test_start_error_messages():
    denied = PermissionError(13, "Permission denied", "/srv/x")
    assert _start_error(denied, "/srv/x") == "cannot start: working directory /srv/x: permission denied"
    no_shell = FileNotFoundError(2, "No such file or directory", "/bin/sh")
    assert _start_error(no_shell, "/tmp") == "cannot start: /bin/sh: No such file or directory"
    assert _start_error(ValueError("embedded null byte"), "/") == "cannot start: embedded null byte"


def test_nul_byte_in_command_is_a_start_error():
    result, _ = run("echo a\0b")
    assert result.error == "cannot start: embedded null byte"


def test_wall_clock_jumps_do_not_matter(monkeypatch):
    jumps = itertools.cycle([0.0, 4e9, 1e9])
    monkeypatch.setattr(time, "time", lambda: next(jumps))
    result, _ = run("sleep 5", timeout=0.3, kill_grace=0.3)
    assert result.timed_out and result.duration < 2.0


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_huge_output_keeps_memory_flat_and_head_tail_exact():
    lines = 819_200  # 64-byte lines: 50 MiB
    program = textwrap.dedent(f"""
        import sys
        w = sys.stdout.buffer.write
        pad = b"x" * 47 + b"\\n"
        for s in range(0, {lines}, 8192):
            w(b"".join(b"%015d " % i + pad for i in range(s, min(s + 8192, {lines}))))
    """)
    line = lambda i: b"%015d " % i + b"x" * 47 + b"\n"  # noqa: E731
    limit = 64 * 1024
    samples = []
    base = _rss_kib()
    result, cap = run(f"{sys.executable} -c '{program}'", limit=limit, timeout=60,
                      tick=lambda: samples.append(_rss_kib()), tick_interval=0.02)
    samples.append(_rss_kib())
    assert result.ok
    assert cap.total == lines * 64
    assert cap.dropped == lines * 64 - limit
    head = b"".join(data for _, data in cap.take_head())
    tail_chunks, dropped = cap.tail_snapshot()
    assert head == b"".join(line(i) for i in range(512))
    assert tail_chunks == [(STDOUT, b"".join(line(i) for i in range(lines - 512, lines)))]
    assert max(samples) - base < 20 * 1024


CHILD = textwrap.dedent("""
    import json, os, sys
    from queuectl.output import OutputCapture
    from queuectl.reaper import become_subreaper, is_subreaper, reap_orphans
    from queuectl.runner import run_command
    mode, mark = sys.argv[1], sys.argv[2]
    env = dict(os.environ, QUEUECTL_JOB_ID=mark, ESCAPED=f"/tmp/{mark}.pid")
    report = {"subreaper": become_subreaper() if mode != "plain" else False}
    report["is_subreaper"] = is_subreaper()
    if mode == "reap":
        # a tracked child without the marker must survive reap_orphans()
        keep = __import__("subprocess").Popen(["sleep", "300"])
        sh = __import__("subprocess").Popen(["sh", "-c", "setsid sleep 300 &"], env=env)
        sh.wait()
        report["before"] = sorted(int(p) for p in open(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read().split())
        reap_orphans(mark)
        report["keep_alive"] = keep.poll() is None
        keep.kill(); keep.wait()
    else:
        # the job ends only once the escape has left the session, so the kill is not a race
        command = ('setsid sh -c "echo \\$\\$ > $ESCAPED; exec sleep 300" & '
                   'while [ ! -s "$ESCAPED" ]; do sleep 0.01; done; echo started')
        res = run_command(command, cwd="/", env=env, timeout=10, capture=OutputCapture(1000))
        os.unlink(env["ESCAPED"])
        report["ok"] = res.ok
        report["duration"] = res.duration
    print(json.dumps(report))
""")


def _child(mode: str, mark: str) -> dict:
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run([sys.executable, "-c", CHILD, mode, mark], env=env,
                          capture_output=True, timeout=20)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def test_setsid_escape_is_killed_when_subreaper():
    mark = marker()
    try:
        report = _child("run", mark)
        assert report["subreaper"] and report["is_subreaper"] and report["ok"]
        assert report["duration"] < 2.0
        assert not marked_pids(mark)
    finally:
        kill_marked(mark)


def test_setsid_escape_survives_without_subreaper():
    mark = marker()
    try:
        report = _child("plain", mark)
        assert not report["is_subreaper"] and report["ok"]
        assert len(marked_pids(mark)) == 1  # the control: the escape is real
    finally:
        kill_marked(mark)
    assert wait_until(lambda: not marked_pids(mark), 3.0)


def test_reap_orphans_kills_only_marked_orphans():
    mark = marker()
    try:
        report = _child("reap", mark)
        assert report["subreaper"] and len(report["before"]) == 2
        assert report["keep_alive"]
        assert not marked_pids(mark)
    finally:
        kill_marked(mark)


def test_test_process_is_not_a_subreaper():
    from queuectl.reaper import is_subreaper

    assert not is_subreaper()
