"""The lean command line (queuectl/cli/lean.py) against the Typer app: the same command line,
run once through `main` and once forced through the Typer app (`lean.full`), gives the same exit
code, stdout, stderr and store. Both run in this process, each on a fresh copy of one store;
the table marks which lines the lean path serves and which it hands to Typer, and that is
checked too. A subprocess proves the lean path imports neither Typer, Click nor Rich."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clihelp import cli_env, seed, snapshot

from queuectl.cli import lean

EVERY = ["--command", "echo all", "--id", "every", "-q", "q1", "-p", "5", "--max-retries", "2",
         "--timeout", "30s", "--delay", "5m", "--after", "base1", "--after-any", "base2",
         "--unique-key", "u1", "--unique-for", "1h", "--on-conflict", "error", "-e", "A=1",
         "-e", "B=2", "--cwd", "sub", "--on-lost", "fail"]

# (name, command line with DB/MISSING/GOOD/BAD placeholders, served by the lean path)
CASES = [
    ("spec", ["--db", "DB", "enqueue", '{"id": "j1", "command": "echo hi"}'], True),
    ("spec-generated-id", ["--db", "DB", "enqueue", '{"command": "echo hi", "priority": 3}'], True),
    ("every-option-db-after", ["enqueue", *EVERY, "--db", "DB"], True),
    ("equals-forms", ["--db=DB", "enqueue", "--command=true", "--id=j3", "--priority=-3",
                      "--env=K=V", "--after=base1,base2", "--queue=q2"], True),
    ("short-attached", ["--db", "DB", "enqueue", "-ctrue", "-p7", "-qq2", "-eX=1", "--id", "j4"],
     True),
    ("short-equals-is-the-value", ["--db", "DB", "enqueue", "-c=true", "--id", "j4b"], True),
    ("negative-priority", ["--db", "DB", "enqueue", "-c", "true", "-p", "-5", "--id", "j5"], True),
    ("value-that-looks-like-an-option", ["--db", "DB", "enqueue", "-c", "--version", "--id",
                                         "j6"], True),
    ("spec-then-option", ["--db", "DB", "enqueue", '{"command": "true", "id": "j7"}', "-q", "q3"],
     True),
    ("after-repeated-and-comma", ["--db", "DB", "enqueue", "-c", "true", "--after", "base1",
                                  "--after", "base2,base3", "--id", "j8"], True),
    ("last-of-repeated-wins", ["--db", "DB", "enqueue", "-c", "one", "-c", "two", "--id", "j9"],
     True),
    ("run-at", ["--db", "DB", "enqueue", "-c", "true", "--run-at", "2030-01-01T00:00:00Z"], True),
    ("relative-cwd", ["--db", "DB", "enqueue", "-c", "true", "--cwd", "some/where"], True),
    ("bad-json", ["--db", "DB", "enqueue", '{"command": }'], True),
    ("unknown-key", ["--db", "DB", "enqueue", '{"command": "x", "colour": "red"}'], True),
    ("no-source", ["--db", "DB", "enqueue"], True),
    ("two-sources", ["--db", "DB", "enqueue", '{"command": "x"}', "-c", "y"], True),
    ("empty-command", ["--db", "DB", "enqueue", "-c", " "], True),
    ("priority-out-of-range", ["--db", "DB", "enqueue", "-c", "x", "-p", "9999999999"], True),
    ("bad-delay", ["--db", "DB", "enqueue", "-c", "x", "--delay", "soon"], True),
    ("bad-env", ["--db", "DB", "enqueue", "-c", "x", "-e", "NOEQUALS"], True),
    ("bad-on-conflict", ["--db", "DB", "enqueue", "-c", "x", "--on-conflict", "maybe"], True),
    ("bad-unique-for", ["--db", "DB", "enqueue", "-c", "x", "--unique-key", "k",
                        "--unique-for", "ages"], True),
    ("unique-key-held", ["--db", "DB", "enqueue", "-c", "x", "--unique-key", "held"], True),
    ("unique-key-conflict", ["--db", "DB", "enqueue", "-c", "x", "--unique-key", "held",
                             "--on-conflict", "error"], True),
    ("after-unknown-id", ["--db", "DB", "enqueue", "-c", "x", "--after", "nosuchjob"], True),
    ("duplicate-id", ["--db", "DB", "enqueue", "-c", "x", "--id", "base1"], True),
    ("file", ["--db", "DB", "enqueue", "--file", "GOOD"], True),
    ("file-queue", ["--db", "DB", "enqueue", "-f", "GOOD", "-q", "fq"], True),
    ("file-bad-line", ["--db", "DB", "enqueue", "--file", "BAD"], True),
    ("file-missing", ["--db", "DB", "enqueue", "--file", "MISSING"], True),
    ("db-before-and-after-same", ["--db", "DB", "enqueue", "-c", "x", "--db", "DB"], True),
    ("db-before-and-after-differ", ["--db", "DB", "enqueue", "-c", "x", "--db", "MISSING"], True),
    ("db-empty", ["--db", "", "enqueue", "-c", "x"], True),
    ("status", ["--db", "DB", "status"], True),
    ("status-json-db-after", ["status", "--json", "--db", "DB"], True),
    ("status-missing-store", ["--db", "MISSING", "status"], True),
    ("status-missing-store-json", ["status", "--db", "MISSING", "--json"], True),
    # handed to Typer
    ("bad-priority", ["--db", "DB", "enqueue", "-c", "x", "-p", "high"], False),
    ("unknown-option", ["--db", "DB", "enqueue", "-c", "x", "--colour", "red"], False),
    ("unknown-short-option", ["--db", "DB", "enqueue", "-x"], False),
    ("missing-value", ["--db", "DB", "enqueue", "-c"], False),
    ("double-dash", ["--db", "DB", "enqueue", "-c", "x", "--", "y"], False),
    ("extra-argument", ["--db", "DB", "enqueue", '{"command": "a"}', '{"command": "b"}'], False),
    ("status-extra-argument", ["--db", "DB", "status", "now"], False),
    ("flag-with-value", ["--db", "DB", "status", "--json=yes"], False),
    ("help", ["--db", "DB", "enqueue", "--help"], False),
    ("short-help", ["status", "-h"], False),
    ("version", ["--version"], False),
    ("debug", ["--debug", "--db", "DB", "enqueue", "-c", "x"], False),
    ("no-command", [], False),
    ("another-command", ["--db", "DB", "list", "--json"], False),
    ("db-without-value", ["enqueue", "-c", "x", "--db"], False),
]
IDS = re.compile(r"\b[0-9a-f]{12}\b")
NOW = time.time() + 3600  # the clock both paths see: later than the seeded jobs


def _seeded(tmp_path: Path) -> Path:
    template = tmp_path / "template" / "queuectl.db"
    template.parent.mkdir()
    seed(template, {"id": "base1", "command": "true"}, {"id": "base2", "command": "true"},
         {"id": "base3", "command": "true"}, {"id": "holder", "command": "true",
                                                "unique_key": "held"})
    return template


def _stored(db: Path) -> dict | None:
    """The store's rows, generated ids replaced by a placeholder."""
    tables = snapshot(db)
    if tables is None:
        return None
    return {t: sorted(repr(tuple(IDS.sub("<id>", v) if isinstance(v, str) else v for v in row))
                      for row in rows) for t, rows in tables.items()}


def _run(entry, args, template: Path, work: Path, capsys, monkeypatch):
    """Run `entry` on `args` against a fresh copy of the template store, at a fixed clock (so
    that timestamps and ages agree between runs); (code, stdout, stderr, the store's rows)."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(template.parent, work)
    db = work / "queuectl.db"
    good, bad = work / "good.jsonl", work / "bad.jsonl"
    good.write_text('{"command": "true", "id": "f1"}\n\n{"command": "false", "queue": "own"}\n')
    bad.write_text('{"command": "true"}\n{"command": 5}\n')
    names = {"DB": str(db), "MISSING": str(work / "nope" / "queuectl.db"), "GOOD": str(good),
             "BAD": str(bad)}
    monkeypatch.chdir(work)
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as clock:
        clock.setattr(time, "time", lambda: NOW)
        code = entry([names.get(a, a) for a in args])
    out, err = capsys.readouterr()
    return code, IDS.sub("<id>", out), IDS.sub("<id>", err), _stored(db)


@pytest.mark.parametrize("args, served", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_the_lean_path_answers_as_the_typer_app(tmp_path, capsys, monkeypatch, args, served):
    template = _seeded(tmp_path)
    assert (lean.parse(args) is not None) is served
    lean_answer = _run(lean.main, args, template, tmp_path / "work", capsys, monkeypatch)
    typer_answer = _run(lean.full, args, template, tmp_path / "work", capsys, monkeypatch)
    assert lean_answer == typer_answer
    assert lean_answer[1] or lean_answer[2]  # every line answers something


def test_the_default_store_comes_from_queuectl_db(tmp_path, capsys, monkeypatch):
    template = _seeded(tmp_path)
    monkeypatch.setenv("QUEUECTL_DB", str(tmp_path / "work" / "queuectl.db"))
    for args in (["enqueue", "-c", "true", "--id", "env1"], ["status", "--json"]):
        assert lean.parse(args) is not None
        assert (_run(lean.main, args, template, tmp_path / "work", capsys, monkeypatch)
                == _run(lean.full, args, template, tmp_path / "work", capsys, monkeypatch))


def test_stdin_file(tmp_path, capsys, monkeypatch):
    template = _seeded(tmp_path)
    args = ["--db", "DB", "enqueue", "--file", "-"]
    answers = []
    for entry in (lean.main, lean.full):
        monkeypatch.setattr(sys, "stdin", io.StringIO('{"command": "true", "id": "s1"}\n'))
        answers.append(_run(entry, args, template, tmp_path / "work", capsys, monkeypatch))
    assert answers[0] == answers[1]
    assert answers[0][:3] == (0, "s1\n", "")


def test_the_lean_parser_knows_every_option_of_the_typer_commands():
    """lean.OPTIONS lists exactly the options jobs.py declares (and --db), each of its kind:
    an option missing there would send every line using it to Typer, one of the wrong kind
    would be parsed differently."""
    import typer

    from queuectl.cli import jobs  # noqa: F401  (registers the commands)
    from queuectl.cli.app import app

    group = typer.main.get_command(app)
    for name, options in lean.OPTIONS.items():
        expected = {}
        for param in group.commands[name].params:
            if param.param_type_name != "option" or param.name == "help":
                continue
            kind = (lean.FLAG if param.is_flag else lean.LIST if param.multiple else
                    lean.INT if param.type.name == "int" else lean.STR)
            for opt in param.opts + param.secondary_opts:
                expected[opt] = kind
        assert {k: kind for k, (_, kind) in options.items() if k != "--db"} == expected
        assert options["--db"] == ("db", lean.STR)
        assert [p.name for p in group.commands[name].params
                if p.param_type_name == "argument"] == ([lean.ARGUMENT[name]]
                                                        if lean.ARGUMENT[name] else [])


PROBE_IMPORTS = ("typer", "click", "rich", "shellingham", "textual")


def _imported(args: list[str], cwd: Path) -> set[str]:
    """The top-level packages of PROBE_IMPORTS that `python -X importtime -m queuectl ARGS`
    imported, read from its import log."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "queuectl", *args],
                          capture_output=True, text=True, cwd=cwd, env=cli_env(), timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
             if line.startswith("import time:")}
    return {n.split(".")[0] for n in names} & set(PROBE_IMPORTS)


def test_enqueue_and_status_import_neither_typer_click_nor_rich(tmp_path):
    db = str(tmp_path / "queuectl.db")
    (tmp_path / "jobs.jsonl").write_text('{"command": "true"}\n')
    assert _imported(["--db", db, "enqueue", "-c", "true", "-p", "2"], tmp_path) == set()
    assert _imported(["enqueue", "--file", "jobs.jsonl", "--db", db], tmp_path) == set()
    assert _imported(["--db", db, "status", "--json"], tmp_path) == set()
    assert _imported(["--db", db, "status"], tmp_path) == set()
    assert "typer" in _imported(["--db", db, "list"], tmp_path)  # the probe sees Typer
