"""Output through real workers: 1 GB (memory and store bounded, head and tail kept), binary and
invalid UTF-8 byte-exact, stdout/stderr interleaved yet kept per stream, and an escape/markup
injection payload shown inert by `logs`, `show` and `list` on a terminal and exact with --raw.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
import tty

import pytest

import invariants
from invariants import check, state_of, worker_pids
from procs import QUEUECTL, cli, env_for, wait_for


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "q.db")


def on_terminal(db, *args: str, raw_tty: bool = False, cols: int = 200) -> tuple[bytes, bytes, int]:
    """Run queuectl ARGS with stdout and stderr each on its own pseudo-terminal; return what
    each terminal received, and the exit code. `raw_tty`: no newline translation by the tty."""
    masters, slaves = [], []
    for _ in range(2):
        master, slave = pty.openpty()
        if raw_tty:
            tty.setraw(slave)
        masters.append(master)
        slaves.append(slave)
    env = env_for(db, COLUMNS=str(cols), TERM="xterm-256color")
    proc = subprocess.Popen(QUEUECTL + list(args), stdin=subprocess.DEVNULL, stdout=slaves[0],
                            stderr=slaves[1], env=env)
    for s in slaves:
        os.close(s)
    got = {m: b"" for m in masters}
    open_ = set(masters)
    deadline = time.monotonic() + 30
    while open_ and time.monotonic() < deadline:
        ready, _, _ = select.select(list(open_), [], [], 0.2)
        for m in ready:
            try:
                data = os.read(m, 65536)
            except OSError:  # EIO: the other side is closed
                data = b""
            if data:
                got[m] += data
            else:
                open_.discard(m)
        if proc.poll() is not None and not ready:
            break
    code = proc.wait(timeout=10)
    for m in masters:
        os.close(m)
    return got[masters[0]], got[masters[1]], code


def rss_kb(pid: int) -> int:
    return invariants.proc_status(pid, "VmRSS") or 0


@pytest.mark.slow
def test_one_gigabyte_of_output_keeps_memory_and_store_bounded(db, tmp_path):
    total = 10**9
    invariants.init_store(db)
    pool = invariants.start_pool(db, "--count", "1")
    try:
        wait_for(lambda: worker_pids(db), what="worker registered")
        (pid,) = worker_pids(db).values()
        time.sleep(0.5)
        idle = rss_kb(pid)
        job_id = invariants.enqueue_many(db, [{
            "command": f"echo HEAD; head -c {total} /dev/zero; echo TAIL"}], tmp_path)[0]
        peak, largest_store = 0, 0
        while state_of(db, job_id) != "completed":
            peak = max(peak, rss_kb(pid))
            largest_store = max(largest_store, sum(
                os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s)))
            assert pool.poll() is None
            time.sleep(0.05)
        hwm = invariants.proc_status(pid, "VmHWM")
    finally:
        log = invariants.stop_pool(pool)
    assert "Traceback" not in log
    # The output limit is 1 MiB: the worker holds at most that plus a few read buffers, whatever
    # the volume; 1 GB held anywhere would show as ~1,000,000 kB here.
    assert peak - idle < 48 * 1024, (idle, peak)
    assert hwm - idle < 64 * 1024, (idle, hwm)
    assert largest_store < 24 * 2**20, largest_store
    limit = 2**20
    stored = invariants.stored_output(db, job_id)
    written = total + len(b"HEAD\n") + len(b"TAIL\n")
    assert stored.output_bytes == written
    assert stored.dropped == written - limit
    assert len(stored.stdout) == limit and stored.stderr == b""
    assert stored.stdout.startswith(b"HEAD\n\0") and stored.stdout.endswith(b"\0TAIL\n")
    check(db, [job_id])
    logs = subprocess.run(QUEUECTL + ["logs", job_id], env=env_for(db), capture_output=True)
    assert logs.returncode == 0
    assert logs.stdout == stored.stdout
    assert logs.stderr == f"\n[queuectl: {written - limit} bytes of output cut here]\n".encode()


PAYLOAD_OUT = (bytes(range(256)) * 3 + b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x82\xf0\x28\x8c\xbc"
               + b"\xed\xa0\x80" + b"\0" * 7 + b"\r\n\r" + "é🙂".encode() + b"no newline at end")
PAYLOAD_ERR = bytes(reversed(PAYLOAD_OUT))


def test_binary_and_invalid_utf8_output_is_stored_and_shown_raw_byte_exact(db, tmp_path):
    (tmp_path / "out.bin").write_bytes(PAYLOAD_OUT)
    (tmp_path / "err.bin").write_bytes(PAYLOAD_ERR)
    job_id = invariants.enqueue_many(db, [{"command": "cat out.bin; cat err.bin >&2"}],
                                     tmp_path)[0]
    assert cli(db, "worker", "start", "--count", "1", "--burst").returncode == 0
    check(db, [job_id], expected_output={job_id: PAYLOAD_OUT})
    assert invariants.stored_output(db, job_id).stderr == PAYLOAD_ERR
    for args in (["logs", job_id], ["logs", "--raw", job_id]):  # not a terminal: raw either way
        done = subprocess.run(QUEUECTL + args, env=env_for(db), capture_output=True)
        assert done.returncode == 0
        assert (done.stdout, done.stderr) == (PAYLOAD_OUT, PAYLOAD_ERR)
    out, err, code = on_terminal(db, "logs", "--raw", job_id, raw_tty=True)
    assert code == 0 and (out, err) == (PAYLOAD_OUT, PAYLOAD_ERR)
    out, err, code = on_terminal(db, "logs", job_id, raw_tty=True)  # on a terminal: made safe
    assert code == 0
    text = out.decode("utf-8")  # valid UTF-8: invalid bytes became U+FFFD
    assert "\ufffd" in text and "é🙂" in text and "\x1b" not in text and "\0" not in text


def test_interleaved_stdout_and_stderr_are_kept_per_stream_in_order(db, tmp_path):
    job_id = invariants.enqueue_many(db, [{"command": (
        "for i in $(seq 40); do echo out$i; echo err$i >&2; sleep 0.005; done")}], tmp_path)[0]
    assert cli(db, "worker", "start", "--count", "1", "--burst").returncode == 0
    expected_out = "".join(f"out{i}\n" for i in range(1, 41)).encode()
    expected_err = "".join(f"err{i}\n" for i in range(1, 41)).encode()
    check(db, [job_id], expected_output={job_id: expected_out})
    stored = invariants.stored_output(db, job_id)
    assert stored.stderr == expected_err
    # The interleaving itself is kept: chunks alternate between the streams, in write order.
    streams = [s for s, _ in stored.chunks]
    assert sum(a != b for a, b in zip(streams, streams[1:])) >= 40
    merged = b"".join(d for _, d in stored.chunks).decode().split()
    assert merged.index("out7") < merged.index("err7") < merged.index("out8")
    done = subprocess.run(QUEUECTL + ["logs", job_id], env=env_for(db), capture_output=True)
    assert (done.stdout, done.stderr) == (expected_out, expected_err)


INJECTION = (
    b"\x1b]0;pwned title\x07"                                 # OSC: window title
    b"\x1b[2J\x1b[H"                                          # CSI: clear screen, home
    b"\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\"  # OSC 8 hyperlink
    + "\u009b31m".encode() + b" c1 csi "                       # C1 CSI, as UTF-8
    + b"\x9b32m raw c1 byte "                                 # C1 CSI, as a raw byte
    + "\u202egnp.exe \u2066isolate\u2069".encode()            # bidi override and isolate
    + b" [link=https://evil.example]markup[/link] [/] [bold red]x[/]\n"
    + b"\x1bP+q544e\x1b\\"                                    # DCS
    + b"\x07\x08\x7f end\n"                                   # BEL, BS, DEL
)
DANGEROUS = [b"\x1b", b"\x07", b"\x08", b"\x7f", b"\x9b", "\u009b".encode(), "\u202e".encode(),
             "\u2066".encode(), "\u2069".encode()]


def test_escape_and_markup_injection_is_inert_on_a_terminal_and_exact_with_raw(db, tmp_path):
    (tmp_path / "payload").write_bytes(INJECTION)
    job_id = invariants.enqueue_many(db, [
        {"id": "inject", "command": "cat payload; cat payload >&2; printf '\\033[2J' >/dev/null"}],
        tmp_path)[0]
    assert cli(db, "worker", "start", "--count", "1", "--burst").returncode == 0
    check(db, [job_id], expected_output={job_id: INJECTION})

    out, err, code = on_terminal(db, "logs", job_id)
    assert code == 0
    for shown in (out, err):
        assert not [d for d in DANGEROUS if d in shown], shown
        text = shown.decode("utf-8")
        # Visible, not interpreted: the escapes as placeholders, the markup as plain text.
        assert "^[]0;pwned title" in text and "^[[2J" in text and "<U+009B>31m" in text
        assert "<U+202E>" in text
        assert "[link=https://evil.example]markup[/link] [/] [bold red]x[/]" in text

    out, err, code = on_terminal(db, "logs", "--raw", job_id, raw_tty=True)
    assert code == 0 and out == INJECTION and err == INJECTION


def test_escapes_in_commands_ids_and_errors_are_inert_in_list_show_and_errors(db, tmp_path):
    command = INJECTION.decode("utf-8", "replace").replace("\0", "").replace("\n", " ")
    job_id = invariants.enqueue_many(db, [{"command": "echo hi # " + command}], tmp_path)[0]
    for args in (["list"], ["show", job_id], ["status"], ["dlq", "list"]):
        out, err, code = on_terminal(db, *args)
        assert code == 0, (args, err)
        assert not [d for d in DANGEROUS if d in out + err], (args, out, err)
    # An error that echoes a hostile id keeps it inert too.
    out, err, code = on_terminal(db, "show", "\x1b]0;pwned\x07\u202e")
    assert code == 3 and out == b""
    assert not [d for d in DANGEROUS if d in err], err
    check(db, [job_id])
