"""How a job's shell is started, by os.posix_spawn and by the Popen fallback: the same session,
descriptors, signals, directory, environment and start errors either way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from queuectl import spawn as spawn_mod
from queuectl.output import STDERR, STDOUT, OutputCapture
from queuectl.runner import run_command


@pytest.fixture(params=["posix_spawn", "popen"])
def how(request):
    if request.param == "posix_spawn" and not spawn_mod.fast_spawn_enabled():
        pytest.skip("no os.posix_spawn here")
    before = spawn_mod.set_fast_spawn(request.param == "posix_spawn")
    yield request.param
    spawn_mod.set_fast_spawn(before)


def run(command: str, cwd: str = "/", env=None):
    cap = OutputCapture(1 << 20)
    result = run_command(command, cwd=cwd, env=env, timeout=10, capture=cap)
    out = {STDOUT: b"", STDERR: b""}
    for stream, data in cap.take_head() + cap.tail_snapshot()[0]:
        out[stream] += data
    return result, out[STDOUT].decode(errors="surrogateescape"), out[STDERR].decode()


def test_the_shell_leads_a_session_of_its_own_with_empty_stdin(how):
    result, out, _ = run('ps -o sid= -o pgid= -p $$; echo "pid $$"; cat; echo end')
    assert result.ok
    sid, pgid, pid_line, end = out.split()[0], out.split()[1], out.splitlines()[1], out.split()[-1]
    assert sid == pgid == pid_line.split()[1] and end == "end"
    assert int(sid) != os.getsid(0)


def test_no_descriptor_of_the_worker_is_inherited(how, tmp_path):
    # A fresh process holding an inheritable descriptor from its start, as multiprocessing
    # leaves some in a worker: neither its first job nor a later one gets it.
    script = f"""
import os, sys
from queuectl import spawn
from queuectl.output import OutputCapture, STDOUT
from queuectl.runner import run_command
spawn.set_fast_spawn({how == "posix_spawn"})
leaked = os.open({str(tmp_path / "f")!r}, os.O_CREAT | os.O_RDONLY)
os.set_inheritable(leaked, True)
for _ in range(2):
    cap = OutputCapture(1 << 20)
    assert run_command("ls /proc/self/fd", cwd="/", env=None, timeout=10, capture=cap).ok
    print(len(b"".join(d for s, d in cap.take_head() if s == STDOUT).split()))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["4", "4"]  # 0, 1, 2 and the directory ls reads


def test_sigpipe_is_back_to_its_default_and_ignored_signals_stay_ignored(how):
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a worker ignores Ctrl+C
    try:
        result, out, _ = run("grep -E '^Sig(Ign|Blk)' /proc/self/status")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert result.ok
    fields = dict(line.split(":\t") for line in out.splitlines())
    ignored = int(fields["SigIgn"], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))
    assert ignored & (1 << (signal.SIGINT - 1))
    assert int(fields["SigBlk"], 16) == 0


def test_directory_and_environment(how, tmp_path):
    result, out, _ = run('pwd; echo "$FOO"', cwd=str(tmp_path),
                         env={"PATH": os.environ["PATH"], "FOO": "bar"})
    assert result.ok and out == f"{tmp_path}\nbar\n"
    result, out, _ = run('echo "$FOO"', env={b"PATH": os.environb[b"PATH"], b"FOO": b"\xffx"})
    assert result.ok and out.encode(errors="surrogateescape") == b"\xffx\n"
    assert os.getcwd() != str(tmp_path)  # this process's own directory is untouched


@pytest.mark.parametrize("cwd, message", [
    ("/nonexistent/queuectl-dir", "working directory /nonexistent/queuectl-dir does not exist"),
    ("/etc/hostname", "working directory /etc/hostname is not a directory"),
])
def test_start_errors(how, cwd, message):
    here = os.getcwd()
    result, _, _ = run("true", cwd=cwd)
    assert result.error == f"cannot start: {message}"
    assert os.getcwd() == here


def test_a_nul_byte_is_a_start_error(how):
    assert run("echo a\0b")[0].error == "cannot start: embedded null byte"


def test_a_missing_shell_is_a_start_error(how, monkeypatch):
    monkeypatch.setattr(spawn_mod, "SHELL", "/nonexistent/sh")
    assert run("true")[0].error == "cannot start: /nonexistent/sh: No such file or directory"


def test_no_descriptor_of_ours_is_left_open(how):
    before = sorted(os.listdir("/proc/self/fd"))
    for command in ("true", "exit 3", "echo out; echo err >&2"):
        run(command)
    run("true", cwd="/nonexistent")
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_with_threads_the_fallback_is_used(monkeypatch):
    if not spawn_mod.fast_spawn_enabled():
        pytest.skip("no os.posix_spawn here")
    used = []
    monkeypatch.setattr(spawn_mod, "_posix_spawn", lambda *a: used.append("fast"))
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        result, out, _ = run("echo hi")
    finally:
        stop.set()
        thread.join()
    assert result.ok and out == "hi\n" and used == []
