"""The PostgreSQL schema, in a namespace of its own (default `queuectl`), and its migrations.

The namespace holds a `meta` table naming its owner and schema version, so a namespace of
another program, or one written by a newer queuectl, is refused rather than changed. Migrations
run in one transaction under an advisory lock: concurrent first starts of many workers on many
hosts create the schema exactly once.
"""

from __future__ import annotations

from ...errors import StoreMissing, StoreUnusable

SCHEMA_VERSION = 5
OWNER = "queuectl"

_V1 = """
CREATE TABLE jobs (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text NOT NULL UNIQUE,
    command      text NOT NULL,
    state        text NOT NULL,
    priority     integer NOT NULL DEFAULT 0,
    attempts     integer NOT NULL DEFAULT 0,
    max_retries  integer NOT NULL,
    timeout      double precision,
    cwd          text NOT NULL,
    run_at       double precision NOT NULL,
    created_at   double precision NOT NULL,
    updated_at   double precision NOT NULL,
    started_at   double precision,
    finished_at  double precision,
    exit_code    integer,
    last_error   text,
    worker_id    text,
    token        text,
    lease_until  double precision,
    rescues      integer NOT NULL DEFAULT 0,
    cancel       integer NOT NULL DEFAULT 0,
    cancelled    integer NOT NULL DEFAULT 0,
    runs         integer NOT NULL DEFAULT 0
);
CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, seq) WHERE state IN ('pending', 'failed');
CREATE INDEX jobs_due ON jobs (run_at) WHERE state IN ('pending', 'failed');
CREATE INDEX jobs_state_updated ON jobs (state, updated_at);
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'running';

CREATE TABLE runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       text NOT NULL,
    attempt      integer NOT NULL,
    started_at   double precision NOT NULL,
    finished_at  double precision,
    exit_code    integer,
    signal       text,
    outcome      text,
    error        text,
    worker       text,
    host         text,
    output_bytes bigint NOT NULL DEFAULT 0,
    dropped      bigint NOT NULL DEFAULT 0,
    UNIQUE (job_id, attempt)
);

CREATE TABLE output (
    run_id  bigint NOT NULL,
    part    smallint NOT NULL,  -- 0 head, 1 tail
    seq     integer NOT NULL,
    stream  smallint NOT NULL,  -- 1 stdout, 2 stderr
    data    bytea NOT NULL,
    PRIMARY KEY (run_id, part, seq)
);

CREATE TABLE workers (
    id           text PRIMARY KEY,
    pid          integer NOT NULL,
    host         text NOT NULL,
    started_at   double precision NOT NULL,
    heartbeat_at double precision NOT NULL,
    job_id       text,
    stop         integer NOT NULL DEFAULT 0
);

CREATE TABLE config (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- Jobs per state, as rows of deltas summed by `status`: statement triggers append one row per
-- state a statement changed, and workers fold the rows together now and then (compact_counts).
-- Appending, unlike updating one counter row per state, never makes two transactions wait for
-- each other.
CREATE TABLE counts (
    state text NOT NULL,
    n     bigint NOT NULL
);
CREATE FUNCTION count_inserted() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO counts (state, n) SELECT state, count(*) FROM new_rows GROUP BY state;
    RETURN NULL;
END $$;
CREATE FUNCTION count_deleted() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO counts (state, n) SELECT state, -count(*) FROM old_rows GROUP BY state;
    RETURN NULL;
END $$;
CREATE FUNCTION count_updated() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO counts (state, n)
    SELECT s, sum(d) FROM (
        SELECT o.state AS s, -1 AS d FROM old_rows o JOIN new_rows w ON w.seq = o.seq
        WHERE o.state <> w.state
        UNION ALL
        SELECT w.state, 1 FROM old_rows o JOIN new_rows w ON w.seq = o.seq
        WHERE o.state <> w.state
    ) changed GROUP BY s;
    RETURN NULL;
END $$;
CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_inserted();
CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_deleted();
CREATE TRIGGER jobs_count_update AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_updated();
"""

# 2: as SQLite's schema 2 (store/sqlite/schema.py).
_V2 = """
ALTER TABLE jobs ADD COLUMN lease double precision;
CREATE TABLE stops (
    mode integer PRIMARY KEY,
    at   double precision NOT NULL
);
"""

# 3: named queues, as SQLite's schema 3 (store/sqlite/schema.py); the count deltas are kept
# per queue and state.
_V3 = """
ALTER TABLE jobs ADD COLUMN queue text NOT NULL DEFAULT 'default';
ALTER TABLE jobs ADD COLUMN gated smallint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN slot integer;
ALTER TABLE jobs ADD COLUMN backoff_base double precision;
ALTER TABLE runs ADD COLUMN slot integer;
CREATE TABLE queues (
    name         text PRIMARY KEY,
    concurrency  integer,
    paused       smallint NOT NULL DEFAULT 0,
    max_retries  integer,
    timeout      double precision,
    backoff_base double precision,
    priority     integer,
    created_at   double precision NOT NULL
);
CREATE TABLE slots (
    queue  text NOT NULL,
    slot   integer NOT NULL,
    job_id text NOT NULL UNIQUE,
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
INSERT INTO queues (name, created_at) SELECT 'default', min(created_at) FROM jobs HAVING count(*) > 0;
ALTER TABLE counts ADD COLUMN queue text NOT NULL DEFAULT 'default';
CREATE OR REPLACE FUNCTION count_inserted() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO counts (queue, state, n) SELECT queue, state, count(*) FROM new_rows GROUP BY queue, state;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION count_deleted() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO counts (queue, state, n) SELECT queue, state, -count(*) FROM old_rows GROUP BY queue, state;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION count_updated() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO counts (queue, state, n)
    SELECT q, s, sum(d) FROM (
        SELECT o.queue AS q, o.state AS s, -1 AS d FROM old_rows o JOIN new_rows w ON w.seq = o.seq
        WHERE o.state <> w.state OR o.queue <> w.queue
        UNION ALL
        SELECT w.queue, w.state, 1 FROM old_rows o JOIN new_rows w ON w.seq = o.seq
        WHERE o.state <> w.state OR o.queue <> w.queue
    ) changed GROUP BY q, s;
    RETURN NULL;
END $$;
"""

# 4: workflows, as SQLite's schema 4 (store/sqlite/schema.py).
_V4 = """
ALTER TABLE jobs ADD COLUMN blocked integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN unique_key text;
ALTER TABLE jobs ADD COLUMN env text;
ALTER TABLE jobs ADD COLUMN on_lost text NOT NULL DEFAULT 'retry';
CREATE TABLE deps (
    job_id text NOT NULL,
    after  text NOT NULL,
    kind   text NOT NULL,
    met    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, after)
);
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

# 5: schedules and hooks, as SQLite's schema 5 (store/sqlite/schema.py).
_V5 = """
ALTER TABLE jobs ADD COLUMN origin text;
CREATE TABLE schedules (
    name       text PRIMARY KEY,
    cron       text,
    tz         text,
    every      double precision,
    anchor     double precision NOT NULL,
    spec       text NOT NULL,
    cwd        text NOT NULL,
    next_at    double precision NOT NULL,
    paused     integer NOT NULL DEFAULT 0,
    overlap    text NOT NULL DEFAULT 'skip',
    catch_up   text NOT NULL DEFAULT 'once',
    last_job   text,
    last_tick  double precision,
    skipped    integer NOT NULL DEFAULT 0,
    missed     integer NOT NULL DEFAULT 0,
    created_at double precision NOT NULL
);
CREATE INDEX schedules_next ON schedules (next_at) WHERE paused = 0;
CREATE TABLE hooks (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event      text NOT NULL,
    queue      text,
    command    text NOT NULL,
    cwd        text NOT NULL,
    created_at double precision NOT NULL
);
CREATE INDEX hooks_event ON hooks (event);
"""

MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2, 3: _V3, 4: _V4, 5: _V5}


def _version(tx, schema: str, where: str) -> int:
    """The namespace's schema version: 0 when it does not exist yet; refuse a foreign or newer one."""
    exists = tx.one("SELECT 1 FROM pg_namespace WHERE nspname = ?", (schema,))
    if exists is None:
        return 0
    has_meta = tx.one("SELECT 1 FROM pg_tables WHERE schemaname = ? AND tablename = 'meta'",
                      (schema,))
    if has_meta is None:
        tables = tx.one("SELECT count(*) FROM pg_tables WHERE schemaname = ?", (schema,))[0]
        if tables:
            raise StoreUnusable(f"schema {schema!r} at {where} belongs to another program; "
                                "choose another with ?schema=NAME in the URL")
        return 0
    meta = dict(tx.all("SELECT key, value FROM meta"))
    if meta.get("owner") != OWNER:
        raise StoreUnusable(f"schema {schema!r} at {where} belongs to another program; "
                            "choose another with ?schema=NAME in the URL")
    version = int(meta.get("version", "0"))
    if version > SCHEMA_VERSION:
        raise StoreUnusable(f"schema {schema!r} at {where} was written by a newer queuectl "
                            f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade queuectl")
    return version


def ensure_schema(conn, schema: str, where: str, *, create: bool = True) -> None:
    """Create or migrate the namespace (all steps or none); a no-op when it is current.
    Without `create`, a namespace that holds no store yet is StoreMissing, and nothing is made."""
    version = conn.transaction(lambda tx: _version(tx, schema, where))
    if version == SCHEMA_VERSION:
        return
    if version == 0 and not create:
        raise StoreMissing(f"no queuectl store at {where} (schema {schema!r} holds none; "
                           "run queuectl init, or enqueue a job, to create one)")

    def migrate(tx) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"queuectl-migrate:{schema}",))
        current = _version(tx, schema, where)  # again, under the lock
        if current == SCHEMA_VERSION:
            return
        if current == 0:
            tx.cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            tx.cur.execute(f'CREATE TABLE "{schema}".meta (key text PRIMARY KEY, value text NOT NULL)')
            tx.execute("INSERT INTO meta (key, value) VALUES ('owner', ?), ('version', '0')", (OWNER,))
        for version in range(current + 1, SCHEMA_VERSION + 1):
            tx.cur.execute(MIGRATIONS[version])
        tx.execute("UPDATE meta SET value = ? WHERE key = 'version'", (str(SCHEMA_VERSION),))

    conn.transaction(migrate)
