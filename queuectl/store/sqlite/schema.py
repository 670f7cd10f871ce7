"""The SQLite schema and its migrations, and the checks that refuse a file that is not ours."""

from __future__ import annotations

import sqlite3

from ...errors import StoreUnusable

APPLICATION_ID = 0x51554531  # "QUE1"
SCHEMA_VERSION = 5

_V1 = """
CREATE TABLE jobs (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    command      TEXT NOT NULL,
    state        TEXT NOT NULL,
    priority     INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_retries  INTEGER NOT NULL,
    timeout      REAL,
    cwd          TEXT NOT NULL,
    run_at       REAL NOT NULL,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    exit_code    INTEGER,
    last_error   TEXT,
    worker_id    TEXT,
    token        TEXT,
    lease_until  REAL,
    rescues      INTEGER NOT NULL DEFAULT 0,
    cancel       INTEGER NOT NULL DEFAULT 0,
    cancelled    INTEGER NOT NULL DEFAULT 0,
    runs         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, seq) WHERE state IN ('pending', 'failed');
CREATE INDEX jobs_due ON jobs (run_at) WHERE state IN ('pending', 'failed');
CREATE INDEX jobs_state_updated ON jobs (state, updated_at);
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'running';

CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    job_id       TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    started_at   REAL NOT NULL,
    finished_at  REAL,
    exit_code    INTEGER,
    signal       TEXT,
    outcome      TEXT,
    error        TEXT,
    worker       TEXT,
    host         TEXT,
    output_bytes INTEGER NOT NULL DEFAULT 0,
    dropped      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (job_id, attempt)
);

CREATE TABLE output (
    run_id  INTEGER NOT NULL,
    part    INTEGER NOT NULL,  -- 0 head, 1 tail
    seq     INTEGER NOT NULL,
    stream  INTEGER NOT NULL,  -- 1 stdout, 2 stderr
    data    BLOB NOT NULL,
    PRIMARY KEY (run_id, part, seq)
) WITHOUT ROWID;

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    pid          INTEGER NOT NULL,
    host         TEXT NOT NULL,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    job_id       TEXT,
    stop         INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE config (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Jobs per state, for status and the console at any size. Inserts (only enqueue) add to it in
-- one statement per batch; state changes and deletions keep it by trigger.
CREATE TABLE counts (
    state TEXT PRIMARY KEY,
    n     INTEGER NOT NULL
);
INSERT INTO counts (state, n) VALUES
    ('pending', 0), ('running', 0), ('completed', 0), ('failed', 0), ('dead', 0);
CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
    UPDATE counts SET n = n - 1 WHERE state = OLD.state;
END;
CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs WHEN OLD.state <> NEW.state BEGIN
    UPDATE counts SET n = n - 1 WHERE state = OLD.state;
    UPDATE counts SET n = n + 1 WHERE state = NEW.state;
END;
"""

# 2: the lease each running claim renews by (a rescuer judges a job by its own claim's lease,
# not by the rescuer's setting), and store-wide stop requests (they also reach a worker that
# had no row when the stop was asked: frozen past its lease, it comes back and stops).
_V2 = """
ALTER TABLE jobs ADD COLUMN lease REAL;
CREATE TABLE stops (
    mode INTEGER PRIMARY KEY,
    at   REAL NOT NULL
);
"""

# 3: named queues. A job has a queue; a queue may have a concurrency limit (held by `slots`
# rows: a running job of a limited queue holds one of slots 0..limit-1), be paused, and give
# its jobs defaults. `gated` marks waiting jobs of limited or paused queues: they are kept out
# of `jobs_ready`, which the claim walks once for every open ungated queue, and found per queue
# through `jobs_queue_ready`; `jobs_waiting` lists every waiting job in run order. Counts are
# kept per queue and state. (jobs_lease served a rescue by wall clock that no longer exists.)
_V3 = """
ALTER TABLE jobs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
ALTER TABLE jobs ADD COLUMN gated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN slot INTEGER;
ALTER TABLE jobs ADD COLUMN backoff_base REAL;
ALTER TABLE runs ADD COLUMN slot INTEGER;
CREATE TABLE queues (
    name         TEXT PRIMARY KEY,
    concurrency  INTEGER,
    paused       INTEGER NOT NULL DEFAULT 0,  -- 0 open, 1 paused, 2 paused and killing
    max_retries  INTEGER,
    timeout      REAL,
    backoff_base REAL,
    priority     INTEGER,
    created_at   REAL NOT NULL
);
CREATE TABLE slots (
    queue  TEXT NOT NULL,
    slot   INTEGER NOT NULL,
    job_id TEXT NOT NULL UNIQUE,
    PRIMARY KEY (queue, slot)
);
DROP INDEX jobs_ready;
DROP INDEX jobs_lease;
CREATE INDEX jobs_waiting ON jobs (priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed');
CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed') AND gated = 0;
CREATE INDEX jobs_queue_ready ON jobs (queue, priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed');
DROP TRIGGER jobs_count_delete;
DROP TRIGGER jobs_count_update;
ALTER TABLE counts RENAME TO counts_v2;
CREATE TABLE counts (
    queue TEXT NOT NULL,
    state TEXT NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) WITHOUT ROWID;
INSERT INTO queues (name, created_at) SELECT 'default', min(created_at) FROM jobs HAVING count(*);
INSERT INTO counts (queue, state, n) SELECT 'default', state, n FROM counts_v2
    WHERE EXISTS (SELECT 1 FROM queues);
DROP TABLE counts_v2;
CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
    UPDATE counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
END;
CREATE TRIGGER jobs_count_update AFTER UPDATE OF state, queue ON jobs
WHEN OLD.state <> NEW.state OR OLD.queue <> NEW.queue BEGIN
    UPDATE counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
    UPDATE counts SET n = n + 1 WHERE queue = NEW.queue AND state = NEW.state;
END;
"""

# 4: workflows. `deps` rows (job, after, kind ok/any, met) and `jobs.blocked`, the number of
# a job's dependencies not met yet: a blocked job waits but is kept out of the claim's indexes.
# A unique key is unique among active jobs (a partial unique index); env, on_lost.
_V4 = """
ALTER TABLE jobs ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN unique_key TEXT;
ALTER TABLE jobs ADD COLUMN env TEXT;
ALTER TABLE jobs ADD COLUMN on_lost TEXT NOT NULL DEFAULT 'retry';
CREATE TABLE deps (
    job_id TEXT NOT NULL,
    after  TEXT NOT NULL,
    kind   TEXT NOT NULL,
    met    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, after)
) WITHOUT ROWID;
CREATE INDEX deps_after ON deps (after, met);
CREATE UNIQUE INDEX jobs_unique ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'failed', 'running');
CREATE INDEX jobs_unique_done ON jobs (unique_key, finished_at)
    WHERE unique_key IS NOT NULL AND state = 'completed';
DROP INDEX jobs_ready;
DROP INDEX jobs_queue_ready;
CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed') AND gated = 0 AND blocked = 0;
CREATE INDEX jobs_queue_ready ON jobs (queue, priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed') AND blocked = 0;
CREATE INDEX jobs_queue_waiting ON jobs (queue, priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed');
"""

# 5: schedules (a job template fired at cron or interval ticks by whichever pool runs) and hooks
# (a command enqueued as a job of its own when a job reaches a state); jobs.origin marks the
# jobs they made ("schedule:NAME", "hook:ID": a hook's job never fires hooks).
_V5 = """
ALTER TABLE jobs ADD COLUMN origin TEXT;
CREATE TABLE schedules (
    name       TEXT PRIMARY KEY,
    cron       TEXT,
    tz         TEXT,
    every      REAL,
    anchor     REAL NOT NULL,
    spec       TEXT NOT NULL,
    cwd        TEXT NOT NULL,
    next_at    REAL NOT NULL,
    paused     INTEGER NOT NULL DEFAULT 0,
    overlap    TEXT NOT NULL DEFAULT 'skip',
    catch_up   TEXT NOT NULL DEFAULT 'once',
    last_job   TEXT,
    last_tick  REAL,
    skipped    INTEGER NOT NULL DEFAULT 0,
    missed     INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX schedules_next ON schedules (next_at) WHERE paused = 0;
CREATE TABLE hooks (
    id         INTEGER PRIMARY KEY,
    event      TEXT NOT NULL,
    queue      TEXT,
    command    TEXT NOT NULL,
    cwd        TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX hooks_event ON hooks (event);
"""

MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2, 3: _V3, 4: _V4, 5: _V5}


def inspect(conn: sqlite3.Connection, path: str) -> int:
    """The store's schema version (0 for a new, empty database); refuse foreign or newer files.

    The header and the tables are read in one read transaction: read apart, a store another
    process creates meanwhile would look like tables without our application id."""
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    finally:
        if own:
            conn.execute("COMMIT")
    if app_id == 0:
        if tables or version:
            raise StoreUnusable(f"{path} is an SQLite database of another program, not a queuectl store")
        return 0
    if app_id != APPLICATION_ID:
        raise StoreUnusable(f"{path} is an SQLite database of another program, not a queuectl store")
    if version > SCHEMA_VERSION:
        raise StoreUnusable(
            f"{path} was written by a newer queuectl (schema {version}, this one knows "
            f"{SCHEMA_VERSION}); upgrade queuectl"
        )
    return version


def migrate(conn: sqlite3.Connection, current: int) -> None:
    """Bring the schema to SCHEMA_VERSION in one transaction (all steps or none)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read inside the write lock: another process may have migrated meanwhile.
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (triggers keep their inner semicolons)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
