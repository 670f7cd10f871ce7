"""The console in a real terminal (tmux): hostile job output must appear literally."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

import json

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

# Job output that would clear the screen, retitle the terminal, colour text and inject Rich
# markup and a hyperlink if it were interpreted.
HOSTILE = (r"printf '\033[2J\033[H\033]0;pwned\007\033[31mred?\033[0m [bold]x[/bold] "
           r"[link=http://x]y[/]\n'")
QUEUECTL = [sys.executable, "-m", "queuectl"]


class Tmux:
    """A private tmux server running one command in a session `ui` of the given size."""

    def __init__(self, name: str, command: str, env: dict, size: tuple[int, int] = (150, 40)):
        self.base = ["tmux", "-L", f"queuectl-{name}-{os.getpid()}", "-f", "/dev/null"]
        subprocess.run(self.base + ["new-session", "-d", "-s", "ui", "-x", str(size[0]),
                                    "-y", str(size[1]), command], check=True, env=env)

    def keys(self, *keys: str) -> None:
        """Send `keys` in one tmux command: they reach the terminal as one burst."""
        subprocess.run(self.base + ["send-keys", "-t", "ui", *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(self.base + ["capture-pane", "-p", "-t", "ui"],
                              capture_output=True, text=True).stdout

    def wait_for(self, text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not on screen:\n{self.screen()}")

    def kill(self) -> None:
        subprocess.run(self.base + ["kill-server"], capture_output=True)


def test_hostile_output_is_literal_in_a_real_terminal(tmp_path):
    """The real `queuectl ui` with its own pool runs a job whose output is hostile."""
    path = str(tmp_path / "q.db")
    env = dict(os.environ, TERM="xterm-256color", QUEUECTL_DB=path)
    subprocess.run(QUEUECTL + ["enqueue", "--id", "hostile", "--command", HOSTILE],
                   check=True, env=env, capture_output=True)
    socket = f"queuectl-test-{os.getpid()}"
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]

    def capture() -> str:
        return subprocess.run(tmux + ["capture-pane", "-p", "-t", "ui"], capture_output=True,
                              text=True).stdout

    def wait_for(text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = capture()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on screen:\n{capture()}")

    subprocess.run(tmux + ["new-session", "-d", "-s", "ui", "-x", "150", "-y", "40",
                           f"{sys.executable} -m queuectl ui --workers 1"], check=True, env=env)
    try:
        wait_for("3 Completed 1")
        subprocess.run(tmux + ["send-keys", "-t", "ui", "3"], check=True)
        time.sleep(0.3)
        subprocess.run(tmux + ["send-keys", "-t", "ui", "Enter"], check=True)
        screen = wait_for("[bold]x[/bold]")
        assert "^[[2J^[[H^[]0;pwned^G^[[31mred?^[[0m" in screen
        assert "[link=http://x]y[/]" in screen
        assert "job hostile" in screen  # the screen was not cleared by the output
        subprocess.run(tmux + ["send-keys", "-t", "ui", "Escape"], check=True)
        wait_for("3 Completed 1")
        subprocess.run(tmux + ["send-keys", "-t", "ui", "q"], check=True)
        deadline = time.monotonic() + 10
        while subprocess.run(tmux + ["has-session", "-t", "ui"],
                             capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "the console did not quit on q"
            time.sleep(0.1)
        # Quitting stopped the console's pool: no worker is left registered or running.
        workers = subprocess.run(QUEUECTL + ["worker", "list", "--json"], env=env,
                                 capture_output=True, text=True).stdout
        assert json.loads(workers) == []
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)


def alive(pid: str) -> bool:
    """A process that has not ended (a zombie no one has reaped yet has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_closing_the_terminal_stops_the_pool_and_gives_jobs_back(tmp_path):
    """SIGHUP (the terminal closed) ends `queuectl ui`: its workers and their jobs are gone and
    the running job is back in the queue, uncounted."""
    path = str(tmp_path / "q.db")
    env = dict(os.environ, TERM="xterm-256color", QUEUECTL_DB=path)
    subprocess.run(QUEUECTL + ["enqueue", "--id", "long", "--command", "sleep 300"],
                   check=True, env=env, capture_output=True)
    socket = f"queuectl-hup-{os.getpid()}"
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]

    def show() -> dict:
        done = subprocess.run(QUEUECTL + ["show", "long", "--json"], env=env,
                              capture_output=True, text=True)
        return json.loads(done.stdout)

    subprocess.run(tmux + ["new-session", "-d", "-s", "ui", "-x", "150", "-y", "40",
                           f"{sys.executable} -m queuectl ui --workers 1"], check=True, env=env)
    try:
        deadline = time.monotonic() + 20
        while show()["state"] != "running":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.1)
        pid = subprocess.run(tmux + ["list-panes", "-t", "ui", "-F", "#{pane_pid}"],
                             capture_output=True, text=True).stdout.split()[0]
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
    deadline = time.monotonic() + 20
    while alive(pid) or show()["state"] != "pending":
        assert time.monotonic() < deadline, (
            f"the console or its job outlived the terminal: console "
            f"{'alive' if alive(pid) else 'gone'}, job {show()['state']}")
        time.sleep(0.1)
    job = show()
    assert job["tries"] == 0
    leftovers = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if b"QUEUECTL_JOB_ID=long\0" in f.read() + b"\0":
                    leftovers.append(entry)
        except OSError:
            continue
    assert not leftovers


def test_bursts_of_keys_in_the_new_job_form_land_in_their_fields(tmp_path):
    """Eight bursts, as fast as tmux sends them: command, Tab, id, Enter. Each job must be
    enqueued with its own command under its own id."""
    path = str(tmp_path / "q.db")
    env = dict(os.environ, TERM="xterm-256color", QUEUECTL_DB=path)
    subprocess.run(QUEUECTL + ["init"], check=True, env=env, capture_output=True)
    tmux = Tmux("burst", f"{sys.executable} -m queuectl ui --workers 0", env)
    try:
        tmux.wait_for("1 Pending 0")
        for n in range(1, 9):
            tmux.keys("n")
            tmux.wait_for("New job")
            tmux.keys(f"echo burst {n}", "Tab", f"burst-{n}", "Enter")
            tmux.wait_for(f"1 Pending {n}")
        listed = json.loads(subprocess.run(QUEUECTL + ["list", "--json"], env=env,
                                           capture_output=True, text=True, check=True).stdout)
        assert sorted((job["id"], job["command"]) for job in listed) == sorted(
            (f"burst-{n}", f"echo burst {n}") for n in range(1, 9))
    finally:
        tmux.kill()
