"""Reliability against a real PostgreSQL server: several hosts sharing one queue.

Every scenario runs real `queuectl worker start` pools as subprocesses. A pool "on another host"
is a pool with another QUEUECTL_HOST: queuectl then knows its workers only through the store
(no pid check), exactly as it would a pool on another machine. Each test gets a database of its
own on the test server (so terminating "queuectl's backends" touches no other test's), and every
process a test starts carries a tag in its environment, by which the fixtures kill whatever is
left, pass or fail.

- two hosts share thousands of jobs: each runs exactly once, both do some of the work, and a
  job longer than the lease is never taken from a live host;
- kill -9 of one host's whole pool mid-job: the other host rescues its jobs once the lease has
  lapsed (not at once: it cannot see the dead host's processes), and finishes them;
- the server terminates every queuectl connection mid-job, twice: the worker carries on (its
  renewals and the finish land on a new connection), the job completes once, and idle workers
  are woken by LISTEN again, at once;
- the server stopped mid-drain for longer than the lease (a server of the test's own): the
  workers ride it out, no live worker's job is taken from it, each job runs once;
- a proxy cuts queuectl's connections right after forwarding a COMMIT (it lands, the worker never
  hears) and in the middle of other requests: each job still runs exactly once, none is
  claimed and forgotten, and output is stored once;
and after each, the invariants of invariants.py on the PostgreSQL store.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import statistics
import subprocess
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest

import invariants
import pgserver
from invariants import check, is_postgres, state_of
from procs import cli, env_for, processes_with_env, stop, wait_for

TAG = "QUEUECTL_TEST_FLEET"  # carried by every process a test here starts, jobs included


# -- fixtures ------------------------------------------------------------------------------------

def _admin(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=10,
                           application_name=invariants.PG_APPLICATION)


@pytest.fixture
def pg_db(pg_server):
    """A fresh database on the test server (dropped afterwards), and the queue URL in it."""
    name = f"q_{uuid.uuid4().hex[:12]}"
    with _admin(pg_server.url()) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.url(database=name, schema="queue")
    finally:
        with _admin(pg_server.url()) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_of(url: str) -> str:
    return url.split("?", 1)[0].rsplit("/", 1)[1]


def terminate_queuectl(url: str) -> int:
    """Terminate every queuectl backend of this test's database; how many there were."""
    with _admin(url.split("?", 1)[0]) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name LIKE 'queuectl%%' AND pid <> pg_backend_pid() "
            "AND datname = %s", (database_of(url),)).fetchall()
    return sum(1 for (ok,) in rows if ok)


class Fleet:
    """Pools of workers, each on a named host, all tagged so that none outlives the test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.tag = uuid.uuid4().hex[:12]
        self.pools: dict[str, subprocess.Popen] = {}

    def env(self, host: str, **extra: str) -> dict[str, str]:
        return env_for(self.url, QUEUECTL_HOST=host, **{TAG: f"{self.tag}-{host}"}, **extra)

    def start(self, host: str, count: int, *args: str) -> subprocess.Popen:
        pool = invariants.start_pool(self.url, "--count", str(count), *args, env=self.env(host))
        self.pools[host] = pool
        return pool

    def processes(self, host: str | None = None) -> list[int]:
        if host is not None:
            return processes_with_env(TAG, f"{self.tag}-{host}")
        return [p for p in processes_with_env(TAG)
                if invariants.env_of(p).get(TAG, "").startswith(self.tag + "-")]

    def kill_pool(self, host: str) -> None:
        """kill -9 of the pool's supervisor and workers at once (its process group); the jobs,
        in sessions of their own, live on."""
        pool = self.pools[host]
        os.killpg(pool.pid, signal.SIGKILL)
        pool.wait(timeout=10)

    def kill_all(self, host: str | None = None) -> None:
        """kill -9 of everything of one host (or every host), until nothing is left."""
        def gone() -> bool:
            left = self.processes(host)
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return not left
        wait_for(gone, timeout=10, interval=0.05, what="every process of the fleet killed")
        for name, pool in self.pools.items():
            if host is None or name == host:
                try:
                    pool.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass

    def stop(self, host: str) -> str:
        """Stop one pool as an operator would (warm, then cold); its log."""
        return invariants.stop_pool(self.pools.pop(host))

    def close(self) -> None:
        for host in list(self.pools):
            pool = self.pools.pop(host)
            if pool.poll() is None:
                stop(pool, timeout=15)
            try:
                os.unlink(pool.log_path)
            except OSError:
                pass
        self.kill_all()


@pytest.fixture
def fleet(pg_db):
    f = Fleet(pg_db)
    try:
        yield f
    finally:
        f.close()


def enqueue(url: str, specs: list[dict], cwd) -> list[str]:
    """Enqueue through queuectl's own store, stamped with the server's clock."""
    from queuectl.models import NewJob
    from queuectl.store import open_store

    s = open_store(url)
    try:
        return s.enqueue([NewJob(**spec) for spec in specs], now=s.now(),
                         default_max_retries=3, default_cwd=str(cwd))
    finally:
        s.close()


def configure(url: str, **settings: str) -> None:
    for key, value in settings.items():
        done = cli(url, "config", "set", key.replace("_", "-"), value)
        assert done.returncode == 0, done.stderr


def states(url: str) -> dict[str, int]:
    with invariants.reader(url) as r:
        return dict(r.all("SELECT state, count(*) FROM jobs GROUP BY state"))


def hosts_of_workers(url: str) -> set[str]:
    with invariants.reader(url) as r:
        return {h for (h,) in r.all("SELECT host FROM workers")}


def server_now(url: str) -> float:
    with invariants.reader(url) as r:
        return r.one("SELECT extract(epoch FROM clock_timestamp())::float8")[0]


def lines(path) -> list[str]:
    return path.read_text().split() if path.exists() else []


# -- 1: two hosts, one queue ---------------------------------------------------------------------

@pytest.mark.slow
def test_two_hosts_share_thousands_of_jobs_each_runs_exactly_once(fleet, tmp_path):
    url = fleet.url
    assert is_postgres(url)
    log = tmp_path / "log"
    # A short lease, so that a wrongful rescue of a live host's job would happen (and show as a
    # lost run) within the test; a few jobs run longer than the lease on each host.
    configure(url, lease="2s", backoff_max="0")
    fleet.start("host-a", 2)
    fleet.start("host-b", 2)
    wait_for(lambda: hosts_of_workers(url) == {"host-a", "host-b"}, timeout=30,
             what="both hosts' workers registered")
    n, batches = 2400, 6
    ids: list[str] = []
    long_ids = enqueue(url, [{"command": f"echo $QUEUECTL_JOB_ID >> {log}; sleep 3",
                              "priority": 1} for _ in range(4)], tmp_path)
    for _ in range(batches):  # in batches, while the workers drain the earlier ones
        ids += enqueue(url, [{"command": f"echo $QUEUECTL_JOB_ID >> {log}"}
                             for _ in range(n // batches)], tmp_path)
        time.sleep(0.2)
    everything = ids + long_ids
    wait_for(lambda: states(url).get("completed") == len(everything), timeout=150, interval=0.25,
             what=f"all {len(everything)} jobs completed")

    ran = lines(log)
    assert len(ran) == len(everything), (len(ran), len(everything))
    assert sorted(ran) == sorted(everything)  # each ran, and none twice
    history = invariants.all_runs(url)
    hosts: dict[str, int] = {}
    for job_id in everything:
        (run,) = history[job_id]  # one attempt each: nothing was rescued from a live host
        assert (run["attempt"], run["outcome"], run["exit_code"]) == (1, "completed", 0), run
        hosts[run["host"]] = hosts.get(run["host"], 0) + 1
    assert set(hosts) == {"host-a", "host-b"}, hosts
    assert min(hosts.values()) >= len(everything) // 10, hosts  # both did a real share
    jobs = check(url, everything)
    assert all(j["attempts"] == 1 and j["runs"] == 1 and j["rescues"] == 0 for j in jobs.values())
    for host in ("host-a", "host-b"):
        err = fleet.stop(host)
        assert "Traceback" not in err and "died" not in err and "rescued" not in err, err[-2000:]
    check(url, everything, leases_rescued=False)


# -- 2: one host's pool killed -------------------------------------------------------------------

@pytest.mark.slow
def test_kill_9_of_one_hosts_pool_the_other_host_rescues_after_the_lease(fleet, tmp_path):
    url = fleet.url
    log = tmp_path / "log"
    lease = 3.0
    configure(url, lease="2s", backoff_max="0")
    fleet.start("host-a", 3)
    wait_for(lambda: hosts_of_workers(url) == {"host-a"}, timeout=30, what="host-a's workers")
    long_ids = enqueue(url, [{
        "command": f"echo $QUEUECTL_JOB_ID.$QUEUECTL_ATTEMPT.start >> {log}; sleep 2; "
                   f"echo $QUEUECTL_JOB_ID.$QUEUECTL_ATTEMPT.end >> {log}",
        "max_retries": 2} for _ in range(3)], tmp_path)
    wait_for(lambda: all(f"{i}.1.start" in lines(log) for i in long_ids), timeout=20,
             what="host-a running the long jobs")
    fleet.start("host-b", 2)
    wait_for(lambda: hosts_of_workers(url) == {"host-a", "host-b"}, timeout=30,
             what="host-b's workers")
    quick = enqueue(url, [{"command": f"echo $QUEUECTL_JOB_ID.$QUEUECTL_ATTEMPT >> {log}"}
                          for _ in range(60)], tmp_path)
    assert all(state_of(url, i) == "running" for i in long_ids)

    fleet.kill_pool("host-a")  # supervisor and workers, at once
    killed_at = server_now(url)
    # Their jobs' processes are in sessions of their own and outlive the pool; nothing on
    # host-b can see them. The host goes down with them here (on a real second machine, a
    # pool restarted there kills them: test_fault_process).
    orphans = invariants._leftovers(url, long_ids)
    assert len(orphans) >= 3, orphans  # at least the shell of each long job
    fleet.kill_all("host-a")

    wait_for(lambda: states(url).get("completed") == len(long_ids) + len(quick), timeout=60,
             interval=0.1, what="every job completed on host-b")
    seen = lines(log)
    for job_id in long_ids:
        assert [s for s in seen if s.startswith(job_id + ".")] == \
            [f"{job_id}.1.start", f"{job_id}.2.start", f"{job_id}.2.end"], seen
        history = invariants.runs(url, job_id)
        assert [(r["attempt"], r["host"], r["outcome"]) for r in history] == \
            [(1, "host-a", "lost"), (2, "host-b", "completed")], history
        assert history[0]["error"].endswith("(lease expired)"), history[0]
        # Rescued only once the lease had lapsed (as seen by host-b: a lease less the time
        # since the last renewal), never at once as a dead worker of the same host would be.
        assert history[0]["finished_at"] - killed_at >= lease / 2, (history[0], killed_at)
    for job_id in quick:
        ran = [s for s in seen if s.split(".")[0] == job_id]
        assert ran == [f"{job_id}.1"], ran
        (run,) = invariants.runs(url, job_id)
        assert run["outcome"] == "completed"
    check(url, long_ids + quick)
    err = fleet.stop("host-b")
    assert err.count("(its worker was lost)") == len(long_ids), err[-3000:]
    assert "Traceback" not in err
    check(url, long_ids + quick, leases_rescued=False)


# -- 3: the server drops every connection --------------------------------------------------------

def dispatch_latencies(url: str, cwd, n: int) -> list[float]:
    """Enqueue `n` jobs one at a time into an idle pool; for each, the seconds (server clock)
    from its enqueue to its claim."""
    took = []
    for _ in range(n):
        (job_id,) = enqueue(url, [{"command": "true"}], cwd)
        wait_for(lambda: state_of(url, job_id) == "completed", timeout=10, interval=0.01,
                 what=f"job {job_id} run")
        job = invariants.jobs(url)[job_id]
        took.append(job["started_at"] - job["created_at"])
        time.sleep(0.3)  # idle again: every worker back in its wait
    return took


def test_connections_terminated_mid_job_the_worker_reconnects_and_listen_wakes_again(
        fleet, tmp_path):
    url = fleet.url
    # Workers poll the store at least once a second whatever the setting; a wake-up much
    # sooner than that (every time) comes from LISTEN.
    configure(url, poll_interval="30s")
    fleet.start("host-a", 2)
    pids = wait_for(lambda: len(invariants.worker_pids(url)) == 2 and invariants.worker_pids(url),
                    timeout=30, what="2 workers")
    before = dispatch_latencies(url, tmp_path, 3)
    assert max(before) < 0.5, before

    (job_id,) = enqueue(url, [{"command": "echo one; sleep 1.5; echo two; sleep 1.5; "
                                          "echo three"}], tmp_path)
    wait_for(lambda: state_of(url, job_id) == "running", what="job running")
    # The worker's store connection, both workers' LISTEN connections, the supervisor's.
    first = terminate_queuectl(url)
    assert first >= 3, first
    wait_for(lambda: b"two" in invariants.stored_output(url, job_id).stdout, timeout=10,
             interval=0.05, what="output stored through a new connection")
    second = terminate_queuectl(url)
    assert second >= 3, second  # they had connected again
    wait_for(lambda: state_of(url, job_id) == "completed", timeout=20, what="job completed")

    (run,) = invariants.runs(url, job_id)
    assert (run["outcome"], run["exit_code"]) == ("completed", 0), run
    jobs = check(url, [job_id], expected_output={job_id: b"one\ntwo\nthree\n"})
    assert jobs[job_id]["attempts"] == 1 and jobs[job_id]["rescues"] == 0

    # Idle workers are woken by LISTEN again, on their new connections: every new job is
    # claimed at once, not at the next poll.
    after = dispatch_latencies(url, tmp_path, 5)
    assert max(after) < 0.5, after
    # Once more, with both workers idle when their connections go.
    assert terminate_queuectl(url) >= 3
    time.sleep(0.5)
    again = dispatch_latencies(url, tmp_path, 5)
    assert statistics.median(again) < 0.3 and max(again) < 1.0, again
    assert invariants.worker_pids(url) == pids  # the same workers throughout
    err = fleet.stop("host-a")
    assert "Traceback" not in err and "died" not in err, err[-3000:]
    check(url, list(invariants.jobs(url)), leases_rescued=False)


# -- 5: a server restart mid-drain ---------------------------------------------------------------

@pytest.fixture
def own_server():
    """A PostgreSQL server of this test's own, which it may stop and start."""
    with pgserver.running() as server:
        yield server


def pg_ctl(server: pgserver.Server, *args: str) -> None:
    root = os.path.dirname(server.data_dir)
    done = pgserver._run([os.path.join(server.bin_dir, "pg_ctl"), "-D", server.data_dir, *args],
                         server.run_as, cwd=root, timeout=90)
    assert done.returncode == 0, (args, done.stderr)


def restart(server: pgserver.Server, down: float) -> None:
    """A clean shutdown (open transactions rolled back, every connection closed), `down`
    seconds without a server, then the same server again on the same port."""
    root = os.path.dirname(server.data_dir)
    pg_ctl(server, "-m", "fast", "-w", "-t", "60", "stop")
    time.sleep(down)
    options = " ".join(f"-c {k}={v}" for k, v in pgserver.FAST.items())
    # -l: the server's output to its log, not to our pipes (which it would hold open).
    pg_ctl(server, "-l", os.path.join(root, "server.log"), "-o",
           f"{options} -p {server.port} -k {root}", "-w", "-t", "60", "start")


@pytest.mark.slow
def test_a_server_restart_mid_drain_workers_ride_it_out_and_each_job_runs_once(
        own_server, tmp_path):
    url = own_server.url(schema="queue")
    log = tmp_path / "log"
    lease = 2.0
    fleet = Fleet(url)
    try:
        configure(url, lease="2s", backoff_max="0")
        # Four jobs running when the server goes: two end while it is away (their workers wait
        # to record them), two run on after it is back (their workers renew their leases).
        long_ids = enqueue(url, [{"command": f"echo $QUEUECTL_JOB_ID >> {log}; sleep {t}",
                                  "priority": 1} for t in (2, 2, 8, 8)], tmp_path)
        ids = enqueue(url, [{"command": f"echo $QUEUECTL_JOB_ID >> {log}; sleep 0.05"}
                            for _ in range(600)], tmp_path)
        fleet.start("host-a", 3)
        fleet.start("host-b", 3)
        wait_for(lambda: all(i in lines(log) for i in long_ids) and len(lines(log)) >= 30,
                 timeout=60, what="the long jobs running, the drain under way")
        pids = invariants.worker_pids(url)
        assert len(pids) == 6
        assert all(state_of(url, i) == "running" for i in long_ids)
        # Down longer than the lease: nobody can renew a lease meanwhile, and no live worker's
        # job may be taken from it for that.
        restart(own_server, down=lease + 1)
        wait_for(lambda: states(url).get("completed") == len(ids) + len(long_ids), timeout=120,
                 interval=0.25, what="the drain completed")
        assert invariants.worker_pids(url) == pids  # the same workers: none died
        ran = lines(log)
        history = invariants.all_runs(url)
        twice = {i: history.get(i) for i in set(ran) if ran.count(i) > 1}
        assert not twice, twice
        assert sorted(ran) == sorted(ids + long_ids)  # each ran, and none twice
        assert all([r["outcome"] for r in history[i]] == ["completed"] for i in ids + long_ids)
        check(url, ids + long_ids)
        logs = [fleet.stop("host-a"), fleet.stop("host-b")]
        assert all("Traceback" not in e and "died" not in e and "rescued" not in e
                   for e in logs), logs
        assert any("store unavailable" in e for e in logs)  # they did see the server go
        check(url, ids + long_ids, leases_rescued=False)
    finally:
        fleet.close()


# -- 6: connections cut at the worst moments: a proxy that reads just enough of the protocol ----

class CuttingProxy:
    """A TCP proxy in front of the server that cuts a connection at a chosen message of the
    PostgreSQL protocol: `decide(kind, body)` sees each whole message a client sends (kind: one
    byte, e.g. b"Q" for a simple query) and returns None (forward it), "before" (cut the
    connection instead of forwarding it) or "after" (forward it, let the server act on it, and
    cut the connection before the client hears the answer: a COMMIT whose outcome the client
    cannot know)."""

    def __init__(self, upstream_port: int, decide) -> None:
        self.upstream_port = upstream_port
        self.decide = decide
        self.cuts = {"before": 0, "after": 0}
        self.armed = False
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        self._sockets: set = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            link = {"cut": False, "client": client, "server": server, "victim": False}
            with self._lock:
                self._sockets |= {client, server}
            threading.Thread(target=self._client_to_server, args=(link,), daemon=True).start()
            threading.Thread(target=self._server_to_client, args=(link,), daemon=True).start()

    def _cut(self, link) -> None:
        link["cut"] = True
        for side in ("client", "server"):
            try:
                link[side].shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            link[side].close()

    def _server_to_client(self, link) -> None:
        try:
            while True:
                data = link["server"].recv(65536)
                if not data or link["cut"]:
                    break
                link["client"].sendall(data)
        except OSError:
            pass
        if not link["cut"]:
            self._cut(link)

    def _client_to_server(self, link) -> None:
        buf = b""
        untyped = True  # SSLRequest / GSSENCRequest / StartupMessage carry no type byte
        try:
            while True:
                data = link["client"].recv(65536)
                if not data or link["cut"]:
                    break
                buf += data
                while True:
                    if untyped:
                        if len(buf) < 8:
                            break
                        size = int.from_bytes(buf[:4], "big")
                        if len(buf) < size:
                            break
                        message, buf = buf[:size], buf[size:]
                        code = int.from_bytes(message[4:8], "big")
                        untyped = code in (80877103, 80877104)  # SSL/GSS: the startup follows
                        # Only queuectl's connections are cut, never the tests' own.
                        link["victim"] = b"application_name\0queuectl" in message
                        link["server"].sendall(message)
                        continue
                    if len(buf) < 5:
                        break
                    size = int.from_bytes(buf[1:5], "big")
                    if len(buf) < 1 + size:
                        break
                    message, buf = buf[:1 + size], buf[1 + size:]
                    verdict = (self.decide(message[:1], message[5:])
                               if link["victim"] and self.armed else None)
                    if verdict == "before":
                        self.cuts["before"] += 1
                        self._cut(link)
                        return
                    link["server"].sendall(message)
                    if verdict == "after":
                        self.cuts["after"] += 1
                        link["cut"] = True  # the answer is never relayed
                        time.sleep(0.05)  # the server reads the message and acts on it
                        self._cut(link)
                        return
        except OSError:
            pass
        if not link["cut"]:
            self._cut(link)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                try:
                    s.close()
                except OSError:
                    pass


@pytest.fixture
def proxy_factory():
    made: list[CuttingProxy] = []

    def make(upstream_port: int, decide) -> CuttingProxy:
        made.append(CuttingProxy(upstream_port, decide))
        return made[-1]
    try:
        yield make
    finally:
        for p in made:
            p.close()


@pytest.mark.slow
def test_connections_cut_mid_transaction_and_mid_commit_each_job_runs_once(
        pg_db, proxy_factory, tmp_path):
    direct = pg_db
    port = urlsplit(direct).port
    rng = random.Random(7)
    commits = {"n": 0}

    def decide(kind: bytes, body: bytes):
        if kind == b"Q" and body.startswith(b"COMMIT"):
            commits["n"] += 1
            r = rng.random()
            if r < 0.05:
                return "after"  # the commit lands; the worker never hears so
            if r < 0.08:
                return "before"  # the commit never happens; the worker hears nothing either
        elif kind == b"S" and rng.random() < 0.03:
            return "before"  # mid-transaction, or in the middle of a landed check
        return None

    proxy = proxy_factory(port, decide)
    url = direct.replace(f":{port}/", f":{proxy.port}/")
    log = tmp_path / "log"
    configure(direct, lease="2s", backoff_max="0")
    fleet = Fleet(url)
    try:
        fleet.start("host-a", 2)
        fleet.start("host-b", 2)
        wait_for(lambda: len(invariants.worker_pids(direct)) == 4, timeout=30, what="4 workers")
        proxy.armed = True
        ids = enqueue(direct, [{"command": f"echo $QUEUECTL_JOB_ID.$QUEUECTL_ATTEMPT >> {log}",
                                "max_retries": 0} for _ in range(400)], tmp_path)
        # Jobs whose output is stored while they run, by renewals cut as often as the rest.
        talk = "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.3; done"
        talkers = enqueue(direct, [{"command": f"echo $QUEUECTL_JOB_ID.$QUEUECTL_ATTEMPT >> {log}; "
                                               f"{talk}", "max_retries": 0}
                                   for _ in range(12)], tmp_path)
        ids += talkers
        wait_for(lambda: states(direct).get("completed", 0) + states(direct).get("dead", 0)
                 == len(ids), timeout=120, interval=0.25, what="every job finished")
        proxy.armed = False
        # It did cut: commits that landed unanswered, and requests that never arrived.
        assert proxy.cuts["after"] >= 10 and proxy.cuts["before"] >= 10, (proxy.cuts, commits)
        jobs = invariants.jobs(direct)
        history = invariants.all_runs(direct)
        bad = {i: (jobs[i]["state"], jobs[i]["last_error"],
                   [(r["outcome"], r["error"]) for r in history.get(i, [])])
               for i in ids if jobs[i]["state"] != "completed" or len(history[i]) != 1}
        assert not bad, bad
        assert sorted(lines(log)) == sorted(f"{i}.1" for i in ids)
        expected = b"".join(b"line %d\n" % i for i in range(1, 7))
        check(direct, ids, expected_output={i: expected for i in talkers})
    finally:
        proxy.armed = False
        logs = {h: fleet.stop(h) for h in list(fleet.pools)}
        fleet.close()
    for h, err in logs.items():
        assert "Traceback" not in err, err[-3000:]
