"""Import hygiene: the headless CLI, and `enqueue` above all, imports nothing it does not need.

Run this file as a script (`python tests/test_imports.py`) to *measure* `queuectl enqueue`
against `python -c "import typer"`; the measurement is reported, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clihelp import cli_env

HEAVY = ("textual", "watchfiles", "multiprocessing", "pydantic")

PROBE = """
import json, sys
heavy = {heavy!r}
{body}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


def loaded_after(body: str, cwd: Path) -> list[str]:
    """The heavy modules present in a fresh interpreter after running `body`."""
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY, body=body)],
                          capture_output=True, text=True, cwd=cwd, env=cli_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_the_cli_imports_nothing_heavy(tmp_path):
    assert loaded_after("import queuectl, queuectl.cli, queuectl.cli.commands", tmp_path) == []


@pytest.mark.parametrize("args", [
    ["enqueue", '{"id": "job1", "command": "echo Hello World"}'],
    ["enqueue", "--command", "echo hi", "--priority", "2", "--delay", "5m"],
    ["enqueue", "--file", "jobs.jsonl"],
], ids=["spec", "flags", "file"])
def test_the_enqueue_path_imports_nothing_heavy(tmp_path, args):
    (tmp_path / "jobs.jsonl").write_text('{"command": "true"}\n{"command": "false"}\n')
    db = tmp_path / "store" / "queuectl.db"
    body = ("from queuectl.cli import main\n"
            f"code = main(['--db', {str(db)!r}, *{args!r}])\n"
            "assert code == 0, code\n")
    assert loaded_after(body, tmp_path) == []
    assert db.exists()


def test_the_enqueue_path_with_db_after_the_command_imports_nothing_heavy(tmp_path):
    db = tmp_path / "store" / "queuectl.db"
    body = ("from queuectl.cli import main\n"
            f"code = main(['enqueue', '-c', 'true', '--db', {str(db)!r}])\n"
            "assert code == 0, code\n"
            "assert 'queuectl.cli.dlq' not in sys.modules  # only the command's module\n")
    assert loaded_after(body, tmp_path) == []
    assert db.exists()


def test_the_layers_contract_holds():
    """pyproject.toml's import-linter contracts: each layer imports only from those below it,
    and the engine never imports the console."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
                          capture_output=True, text=True, cwd=root, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


def test_python_dash_m_queuectl_help(tmp_path):
    done = subprocess.run([sys.executable, "-m", "queuectl", "--help"], capture_output=True,
                          text=True, cwd=tmp_path, env=cli_env(), timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.lstrip().startswith("Usage: queuectl")
    for name in ("init", "enqueue", "list", "status", "show", "logs", "dlq", "config", "prune",
                 "cancel", "worker"):
        assert f" {name} " in done.stdout, name


def measure(repeat: int = 10) -> dict[str, float]:
    """Best-of-`repeat` wall time (seconds) of `import typer` and of `queuectl enqueue`."""
    import tempfile

    def best(cmd: list[str]) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        return min(times)

    with tempfile.TemporaryDirectory() as where:
        db = str(Path(where) / "queuectl.db")
        return {
            "python -c pass": best([sys.executable, "-c", "pass"]),
            "python -c 'import typer'": best([sys.executable, "-c", "import typer"]),
            "queuectl enqueue": best([sys.executable, "-m", "queuectl", "--db", db, "enqueue",
                                      "-c", "true"]),
        }


if __name__ == "__main__":
    for name, seconds in measure().items():
        print(f"{name:28} {seconds * 1000:7.1f} ms")
