"""`queuectl bench`: the pure helpers as tables, and one tiny real run checked for the report's
structure and sanity (never for timings)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from queuectl.bench import bigstore, cpu, queuestore, reference
from queuectl.bench.report import (Figure, Omitted, Report, Target, format_value, median,
                                   percentile, ratio, render_table, store_line, to_json)
from queuectl.bench.stores import with_schema
from queuectl.bench.suite import Options, filesystem_of

QUEUECTL = [sys.executable, "-m", "queuectl"]


@pytest.mark.parametrize("values, p, expected", [
    ([5.0], 0, 5.0),
    ([5.0], 99, 5.0),
    ([1.0, 2.0, 3.0], 50, 2.0),
    ([3.0, 1.0, 2.0], 50, 2.0),
    ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
    ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
    ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
    ([0.0, 10.0], 99, 9.9),
    ([float(i) for i in range(1, 101)], 99, 99.01),
])
def test_percentile(values, p, expected):
    assert percentile(values, p) == pytest.approx(expected)


@pytest.mark.parametrize("values, p", [([], 50), ([1.0], -1), ([1.0], 101)])
def test_percentile_refuses(values, p):
    with pytest.raises(ValueError):
        percentile(values, p)


def test_median_is_p50():
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


@pytest.mark.parametrize("value, reference, expected", [
    (10.0, 5.0, 2.0),
    (1.0, 4.0, 0.25),
    (3.0, None, None),
    (3.0, 0.0, None),
    (3.0, math.inf, None),
])
def test_ratio(value, reference, expected):
    assert ratio(value, reference) == expected


@pytest.mark.parametrize("target, value, ratio_, met", [
    (Target("ratio", ">=", 1.0), 900.0, 0.9, False),
    (Target("ratio", ">=", 1.0), 1000.0, 1.0, True),
    (Target("ratio", ">=", 0.5), 1.0, 0.75, True),
    (Target("ratio", "<=", 1.3), 200.0, 2.0, False),
    (Target("ratio", "<=", 1.5), 0.1, 1.5, True),
    (Target("ratio", "<=", 1.5), 0.1, None, None),
    (Target("value", "<=", 5.0), 4.9, None, True),
    (Target("value", "<=", 5.0), 5.1, 1.0, False),
    (Target("value", ">=", 100_000), 99_999.0, 10.0, False),
    (Target("value", ">=", 100_000), 100_000.0, None, True),
    (Target("value", "<=", 20.0), math.nan, None, None),
])
def test_target_met(target, value, ratio_, met):
    assert target.met(value, ratio_) is met


@pytest.mark.parametrize("on, op", [("speed", ">="), ("value", "<"), ("ratio", "==")])
def test_target_refuses_unknown_kinds(on, op):
    with pytest.raises(ValueError):
        Target(on, op, 1.0)


@pytest.mark.parametrize("target, unit, text", [
    (Target("ratio", ">=", 1.0), "jobs/s", ">= 1x"),
    (Target("ratio", "<=", 1.3), "ms", "<= 1.3x"),
    (Target("value", "<=", 5.0), "ms", "<= 5 ms"),
    (Target("value", ">=", 100_000), "jobs/s", ">= 100,000 jobs/s"),
])
def test_target_text(target, unit, text):
    assert target.text(unit) == text


@pytest.mark.parametrize("value, unit, text", [
    (1234.4, "jobs/s", "1,234 jobs/s"),
    (56.789, "jobs/s", "56.8 jobs/s"),
    (4.214, "ms", "4.21 ms"),
    (42.26, "ms", "42.3 ms"),
    (171.4, "ms", "171 ms"),
    (0.854, "x", "0.85x"),
    (None, "ms", "-"),
    (math.inf, "ms", "-"),
])
def test_format_value(value, unit, text):
    assert format_value(value, unit) == text


def test_figure_ratio_and_met():
    f = Figure("drain", "drain", 800.0, "jobs/s", "bare", 1600.0, Target("ratio", ">=", 1.0))
    assert f.ratio == 0.5 and f.met is False
    g = Figure("x", "x", 3.0, "ms")
    assert g.ratio is None and g.met is None


def _report() -> Report:
    return Report(
        machine={"cpus": 2, "platform": "Linux", "python": "3.11", "sqlite": "3.40"},
        settings={"jobs": 10},
        figures=(
            Figure("drain", "drain, 10 jobs", 800.0, "jobs/s", "bare loop", 1600.0,
                   Target("ratio", ">=", 1.0), 10),
            Figure("dispatch_p50_50ms", "p50", 3.0, "ms", "floor", 2.0,
                   Target("value", "<=", 5.0), 20),
            Figure("claim_1k", "claim", 0.1, "ms", "bare claim", 0.05),
        ),
        omitted=(Omitted("console_1M", "console not available"),),
    )


def test_table_is_plain_ascii_with_every_figure_and_mark():
    text = render_table(_report())
    assert text.isascii()
    lines = text.splitlines()
    assert any(line.startswith("drain, 10 jobs") and line.rstrip().endswith("MISS") for line in lines)
    assert any(line.startswith("p50") and line.rstrip().endswith("ok") for line in lines)
    assert any(line.startswith("claim") and "2.00x" in line for line in lines)
    assert "not measured: console_1M: console not available" in text


def test_json_shape():
    data = json.loads(json.dumps(to_json(_report())))
    assert list(data) == ["machine", "store", "settings", "figures", "omitted", "notes"]
    drain = data["figures"][0]
    assert drain["reference"] == {"name": "bare loop", "value": 1600.0}
    assert drain["ratio"] == 0.5 and drain["met"] is False
    assert drain["target"] == {"on": "ratio", "op": ">=", "bound": 1.0, "text": ">= 1x"}
    assert data["figures"][2]["target"] is None and data["figures"][2]["met"] is None
    assert data["omitted"] == [{"key": "console_1M", "reason": "console not available"}]


def test_store_line_names_the_store_and_the_server():
    assert store_line({"kind": "sqlite", "version": "3.40.1",
                       "where": "temporary files, deleted afterwards"}) == \
        "sqlite 3.40.1, temporary files, deleted afterwards"
    line = store_line({"kind": "postgresql", "version": "15.4", "at": "postgresql://u@h:5/db",
                       "fsync": "on", "synchronous_commit": "on", "where": "one schema each"})
    assert line == ("postgresql 15.4 at postgresql://u@h:5/db (server fsync=on, "
                    "synchronous_commit=on), one schema each")


def test_table_shows_the_store_line():
    report = Report(**{**_report().__dict__, "store": {"kind": "sqlite", "version": "3.40"}})
    lines = render_table(report).splitlines()
    assert lines[0].startswith("machine: ") and lines[1] == "store: sqlite 3.40"
    assert lines[2].startswith("settings: ")


@pytest.mark.parametrize("url, query", [
    ("postgresql://u@h:5432/db", {"schema": ["queuectl_bench_1_2"]}),
    ("postgresql://u@h/db?schema=queuectl", {"schema": ["queuectl_bench_1_2"]}),
    ("postgres://u:pw@h/db?sslmode=require&schema=mine",
     {"sslmode": ["require"], "schema": ["queuectl_bench_1_2"]}),
])
def test_with_schema_replaces_only_the_schema(url, query):
    made = urlsplit(with_schema(url, "queuectl_bench_1_2"))
    original = urlsplit(url)
    assert (made.scheme, made.netloc, made.path) == (original.scheme, original.netloc,
                                                     original.path)
    assert parse_qs(made.query) == query


def test_sample_counts_follow_runs():
    o = Options(runs=3)
    assert (o.latency_samples, o.claims) == (6, 60)


def test_filesystem_of_names_something():
    assert filesystem_of(os.getcwd())


@pytest.mark.parametrize("stat, ticks", [
    ("1234 (python3) S 1 1234 1234 0 -1 4194560 900 0 0 0 25 7 3 4 20 0 1 0 99 1 1", 32),
    ("9 (a) b (c) R 1 9 9 0 -1 0 0 0 0 0 0 0 100 200 20 0 1 0 5 1 1", 0),
    ("9 (sh -c x) S 1 9 9 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 1 1", 3),
])
def test_stat_ticks_are_the_process_own_user_and_system_time(stat, ticks):
    assert cpu.stat_ticks(stat) == ticks  # utime + stime; never the children's cutime/cstime


def test_processes_seconds_of_this_process_grow_with_work():
    before = cpu.processes_seconds([os.getpid()])
    deadline = cpu.own_seconds() + 0.05
    while cpu.own_seconds() < deadline:
        pass
    assert cpu.processes_seconds([os.getpid()]) > before


def test_queue_layout_has_each_kind_of_queue_and_serves_one_of_each():
    plan = queuestore.layout()
    assert len(plan.names) == len(set(plan.names)) == 100
    assert len(plan.limited) == len(plan.paused) == 10
    assert not set(plan.limited) & set(plan.paused)
    assert len(plan.open) == 80
    open_, full, paused = plan.served
    assert open_ in plan.open and full in plan.limited and paused in plan.paused
    assert plan.claimable == open_


VARYING = {"seq", "id", "run_at", "created_at", "updated_at"}


def _sqlite_rows(path: Path) -> tuple[list, list, list]:
    conn = sqlite3.connect(path)
    try:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(jobs)") if r[1] not in VARYING]
        return (conn.execute(f"SELECT {', '.join(cols)} FROM jobs").fetchall(),
                conn.execute("SELECT queue, state, n FROM counts ORDER BY 1, 2").fetchall(),
                conn.execute("SELECT name, concurrency, paused FROM queues").fetchall())
    finally:
        conn.close()


def _enqueue_file(db: str, cwd: Path, lines: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEUECTL_")}
    env["QUEUECTL_DB"] = db
    (cwd / "jobs.jsonl").write_text('{"command": "true"}\n' * lines)
    for args in (["init"], ["enqueue", "--file", "jobs.jsonl"]):
        done = subprocess.run(QUEUECTL + args, env=env, cwd=cwd, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_bare_sqlite_writers_store_the_rows_our_enqueue_stores(tmp_path):
    """The executemany and the one-shot references write what `queuectl enqueue` writes: every
    column the same but the id and the times, the same counts, the same queue."""
    ours = tmp_path / "ours.db"
    _enqueue_file(str(ours), tmp_path, 3)
    bulk = tmp_path / "bulk.db"
    assert reference.raw_insert_rate(str(bulk), 3, str(tmp_path)) > 0
    once = tmp_path / "once.db"
    reference.store_like_ours(str(once))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEUECTL_")}
    for _ in range(3):
        assert reference.one_shot_seconds(str(once), str(tmp_path), env) > 0
    assert _sqlite_rows(bulk) == _sqlite_rows(once) == _sqlite_rows(ours)
    assert len(_sqlite_rows(ours)[0]) == 3


def test_bare_postgres_writers_store_the_rows_our_enqueue_stores(pg_server, tmp_path):
    import psycopg

    from queuectl.bench import reference_pg
    from queuectl.store.postgres.conn import parse_location

    def rows(url: str) -> list:
        schema = parse_location(url).schema
        with psycopg.connect(pg_server.url(), autocommit=True) as conn:
            cols = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = 'jobs' ORDER BY ordinal_position", (schema,))
                if r[0] not in VARYING]
            return (conn.execute(f'SELECT {", ".join(cols)} FROM "{schema}".jobs').fetchall(),
                    conn.execute(f'SELECT name, concurrency, paused FROM "{schema}".queues')
                    .fetchall())

    urls = {k: pg_server.url(schema=f"t_rows_{k}_{os.getpid()}") for k in ("ours", "bulk", "once")}
    try:
        _enqueue_file(urls["ours"], tmp_path, 70)  # enough for COPY, as big batches use
        reference.store_like_ours(urls["bulk"])
        conninfo = parse_location(urls["bulk"]).conninfo
        assert reference_pg.raw_copy_rate(conninfo, parse_location(urls["bulk"]).schema, 70,
                                          str(tmp_path)) > 0
        reference.store_like_ours(urls["once"])
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUEUECTL_")}
        assert reference_pg.one_shot_seconds(conninfo, parse_location(urls["once"]).schema,
                                             str(tmp_path), env) > 0
        assert rows(urls["bulk"]) == rows(urls["ours"])
        once_rows, once_queues = rows(urls["once"])
        assert once_rows == rows(urls["ours"])[0][:1] and once_queues == rows(urls["ours"])[1]
    finally:
        with psycopg.connect(pg_server.url(), autocommit=True) as conn:
            for url in urls.values():
                conn.execute(f'DROP SCHEMA IF EXISTS "{parse_location(url).schema}" CASCADE')


def test_console_figure_is_omitted_without_the_console(monkeypatch, tmp_path):
    for name in ("queuectl_tui", "queuectl_tui.loader", "queuectl_tui.snapshot"):
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    times, why = bigstore.console_refresh_times(str(tmp_path / "q.db"), 1)
    assert times is None and "console not available" in why
    assert not (tmp_path / "q.db").exists()


def test_bench_is_not_loaded_by_other_commands():
    code = ("import sys, queuectl.cli.commands as c; c.load(sys.argv[1:]); "
            "print(sorted(m for m in sys.modules if m.startswith('queuectl.bench') "
            "or m == 'multiprocessing'))")
    for args, loaded in ((["enqueue", "-c", "true"], []), (["--help"], ["queuectl.bench",
                                                                         "queuectl.bench.cli"])):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, check=True)
        assert json.loads(done.stdout.replace("'", '"')) == loaded


# -- one real run, tiny


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("user")
    user_db = home / "queuectl.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEUECTL_")}
    env["QUEUECTL_DB"] = str(user_db)
    made = subprocess.run(QUEUECTL + ["enqueue", "--command", "echo mine"], env=env,
                          capture_output=True, text=True, cwd=home)
    assert made.returncode == 0, made.stderr
    before = _digest(home)
    other_db = home / "given-with-db.db"
    done = subprocess.run(
        QUEUECTL + ["--db", str(other_db), "bench", "--jobs", "50", "--workers", "1",
                    "--runs", "2", "--bulk", "500", "--json"],
        env=env, capture_output=True, text=True, cwd=home, timeout=120)
    return done, before, home


def test_real_run_succeeds_with_json_only_on_stdout(real_run):
    done, _, _ = real_run
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == {"machine", "store", "settings", "figures", "omitted", "notes"}
    assert "bench: drain" in done.stderr
    assert data["settings"]["jobs"] == 50 and data["settings"]["workers"] == 1
    assert data["store"]["kind"] == "sqlite"  # --db named a file: a temporary store instead


def test_real_run_leaves_the_users_store_alone(real_run):
    _, before, home = real_run
    assert _digest(home) == before  # neither QUEUECTL_DB nor --db was opened


def test_real_run_reports_every_figure(real_run):
    data = json.loads(real_run[0].stdout)
    keys = [f["key"] for f in data["figures"]]
    expected = ["drain", "drain_vs_spawn", "drain_many_workers", "worker_cpu",
                "dispatch_p50_50ms", "dispatch_p99_50ms", "dispatch_p50_2s", "dispatch_p99_2s",
                "dispatch_p50_limited_50ms", "bulk_enqueue", "bulk_enqueue_rate",
                "enqueue_process", "enqueue_process_vs_typer", "claim_1k", "status_1k"]
    assert keys[:len(expected)] == expected
    queues = ["claim_100q_10k", "claim_3of100q_10k"]
    assert keys[-len(queues):] == queues
    console = keys[len(expected):-len(queues)]
    omitted = [o["key"] for o in data["omitted"]]
    assert console == ["console_1k"] or "console_1k" in omitted
    assert "1M-job figures" in omitted
    assert set(data["machine"]) >= {"cpus", "python", "sqlite", "platform"}


def _assert_sane(data: dict) -> None:
    for f in data["figures"]:
        assert f["value"] is not None and math.isfinite(f["value"]) and f["value"] > 0, f
        assert f["unit"] in ("jobs/s", "ms"), f
        ref = f["reference"]
        assert ref and ref["name"] and ref["value"] > 0, f
        assert f["ratio"] == pytest.approx(f["value"] / ref["value"]), f
        if f["target"] is None:
            assert f["met"] is None
        else:
            t = f["target"]
            subject = f["value"] if t["on"] == "value" else f["ratio"]
            assert f["met"] == (subject >= t["bound"] if t["op"] == ">=" else subject <= t["bound"])


def test_real_run_figures_are_sane(real_run):
    data = json.loads(real_run[0].stdout)
    _assert_sane(data)
    figures = {f["key"]: f for f in data["figures"]}
    assert figures["dispatch_p50_50ms"]["samples"] == 4
    assert figures["dispatch_p50_limited_50ms"]["samples"] == 4
    assert figures["claim_1k"]["samples"] == 40 and figures["claim_100q_10k"]["samples"] == 40
    assert {k: f["target"]["bound"] for k, f in figures.items()
            if k.startswith("dispatch_p50")} == {"dispatch_p50_50ms": 5.0,
                                                  "dispatch_p50_2s": 5.0,
                                                  "dispatch_p50_limited_50ms": 5.0}
    _assert_targets(figures)
    # each figure that compares us with ourselves names the figure it is compared with
    assert figures["drain_many_workers"]["reference"]["value"] == figures["drain"]["value"]
    assert figures["dispatch_p50_limited_50ms"]["reference"]["value"] == \
        figures["dispatch_p50_50ms"]["value"]
    assert figures["claim_100q_10k"]["reference"]["value"] == figures["claim_1k"]["value"]
    assert figures["claim_3of100q_10k"]["reference"]["value"] == \
        figures["claim_100q_10k"]["value"]
    assert figures["bulk_enqueue_rate"]["value"] == figures["bulk_enqueue"]["value"]
    assert figures["drain_many_workers"]["name"] == "drain, 50 jobs, 4 workers"


# The targets of issue 16, on both stores.
TARGETS = {
    "drain": ("ratio", ">=", 1.0),
    "drain_vs_spawn": ("ratio", ">=", 0.8),
    "drain_many_workers": ("ratio", ">=", 0.9),
    "bulk_enqueue": ("ratio", ">=", 1.0),
    "bulk_enqueue_rate": ("value", ">=", 100_000),
    "enqueue_process": ("ratio", "<=", 2.0),
    "claim_100q_10k": ("ratio", "<=", 1.5),
    "claim_3of100q_10k": ("ratio", "<=", 1.5),
}


def _assert_targets(figures: dict) -> None:
    for key, (on, op, bound) in TARGETS.items():
        t = figures[key]["target"]
        assert (t["on"], t["op"], t["bound"]) == (on, op, bound), key
    for key in ("worker_cpu", "enqueue_process_vs_typer"):
        assert figures[key]["target"] is None, key


# -- on PostgreSQL: throwaway schemas in the URL's database, dropped afterwards


def _admin(url: str):
    import psycopg

    return psycopg.connect(url.split("?", 1)[0], autocommit=True)


def _bench_schemas(url: str, pid: int) -> list[str]:
    with _admin(url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
            (f"queuectl_bench_{pid}_%",))]


def _user_jobs(url: str, schema: str) -> list[tuple]:
    with _admin(url) as conn:
        return conn.execute(f'SELECT id, command, state FROM "{schema}".jobs').fetchall()


def _pg_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEUECTL_")}
    env["QUEUECTL_DB"] = str(home / "never-opened.db")
    return env


def test_bench_on_postgresql_reports_its_figures_and_drops_its_schemas(pg_url, tmp_path):
    """--db names a PostgreSQL URL whose own schema holds a user's queue: the bench measures in
    schemas of its own in that database, leaves the user's schema as it was, and drops its own."""
    schema = parse_qs(urlsplit(pg_url).query)["schema"][0]
    env = _pg_env(tmp_path)
    made = subprocess.run(QUEUECTL + ["--db", pg_url, "enqueue", "--command", "echo mine"],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    mine = _user_jobs(pg_url, schema)
    proc = subprocess.Popen(
        QUEUECTL + ["--db", pg_url, "bench", "--jobs", "30", "--workers", "2", "--runs", "1",
                    "--bulk", "1000", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    data = json.loads(out)

    store = data["store"]
    assert store["kind"] == "postgresql" and store["version"][:1].isdigit()
    assert store["at"] == pg_url.split("?", 1)[0]
    assert f"queuectl_bench_{proc.pid}_<n>" in store["where"]
    assert {"fsync", "synchronous_commit"} <= set(store)

    figures = {f["key"]: f for f in data["figures"]}
    expected = ["drain", "drain_vs_spawn", "drain_many_workers", "worker_cpu", "drain_vs_sqlite",
                "dispatch_p50_50ms", "dispatch_p99_50ms", "dispatch_p50_2s", "dispatch_p99_2s",
                "dispatch_p50_limited_50ms", "bulk_enqueue", "bulk_enqueue_rate",
                "enqueue_process", "enqueue_process_vs_typer", "claim_1k", "status_1k"]
    assert list(figures)[:len(expected)] == expected
    assert list(figures)[-2:] == ["claim_100q_10k", "claim_3of100q_10k"]
    _assert_sane(data)
    _assert_targets(figures)
    # PostgreSQL's own references and targets
    assert "sync commit off" in figures["drain"]["reference"]["name"]
    assert "SQLite" in figures["drain_vs_sqlite"]["reference"]["name"]
    assert figures["drain_vs_sqlite"]["target"] == {"on": "ratio", "op": ">=", "bound": 0.5,
                                                    "text": ">= 0.5x"}
    assert "LISTEN" in figures["dispatch_p50_50ms"]["reference"]["name"]
    assert figures["dispatch_p50_50ms"]["target"]["bound"] == 10.0
    assert figures["dispatch_p50_limited_50ms"]["target"]["bound"] == 10.0
    assert figures["dispatch_p99_2s"]["target"]["bound"] == 20.0
    assert "COPY" in figures["bulk_enqueue"]["reference"]["name"]
    assert "psycopg" in figures["claim_1k"]["reference"]["name"]
    assert "psycopg" in figures["enqueue_process"]["reference"]["name"]
    assert "bare loop" in figures["worker_cpu"]["reference"]["name"]
    assert "bench: drain on SQLite for comparison" in err

    assert _bench_schemas(pg_url, proc.pid) == []
    assert _user_jobs(pg_url, schema) == mine
    assert not (tmp_path / "never-opened.db").exists()


def test_bench_on_postgresql_interrupted_drops_its_schemas(pg_url, tmp_path):
    proc = subprocess.Popen(
        QUEUECTL + ["--db", pg_url, "bench", "--jobs", "20", "--runs", "1", "--bulk", "100"],
        env=_pg_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path)
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("bench: dispatch latency after"):  # its workers are running
                assert _bench_schemas(pg_url, proc.pid)
                proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, "".join(seen)  # Typer turns Ctrl+C into exit 130
    assert "Traceback" not in "".join(seen)
    assert _bench_schemas(pg_url, proc.pid) == []


def test_bench_on_an_unreachable_server_is_one_error_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    done = subprocess.run(
        QUEUECTL + ["--db", f"postgresql://someone:secret@127.0.0.1:{port}/db", "bench"],
        env=_pg_env(tmp_path), capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 75
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach PostgreSQL at ")
    assert "secret" not in done.stderr
