-- Takedowns (docs/operations.md, "Takedowns"): a file hidden from every snapshot that
-- holds it, by path in one archive or by content (SHA-256) in every archive. Manifests and
-- snapshot digests are left as they are: a takedown is a filter on what is served.
CREATE TABLE takedowns (
    id         INTEGER PRIMARY KEY,
    archive_id INTEGER REFERENCES archives(id),  -- a path takedown's archive; NULL by content
    path       TEXT,                             -- a path takedown's path; NULL by content
    sha256     BLOB,                             -- a content takedown's digest; NULL by path
    status     INTEGER NOT NULL CHECK (status IN (410, 451)),
    reason     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,                 -- unix seconds
    created_by TEXT    NOT NULL,
    active     INTEGER NOT NULL DEFAULT 1,       -- 0 once undone
    purged     INTEGER NOT NULL DEFAULT 0,       -- 1 once its bytes were deleted (never undone)
    CHECK ((archive_id IS NULL) = (path IS NULL) AND (path IS NULL) <> (sha256 IS NULL))
);

-- What every file request probes: only active rows are in these, so with no takedown in
-- force each probe reads one empty index page. One active takedown per target.
CREATE UNIQUE INDEX takedowns_by_path ON takedowns (archive_id, path) WHERE active = 1 AND path IS NOT NULL;
CREATE UNIQUE INDEX takedowns_by_sha256 ON takedowns (sha256) WHERE active = 1 AND sha256 IS NOT NULL;

-- The bytes a purge deleted, so that `asof verify` reports them as taken down, not missing.
CREATE TABLE takedown_purged (
    sha256      BLOB    NOT NULL PRIMARY KEY,
    takedown_id INTEGER NOT NULL REFERENCES takedowns(id)
) WITHOUT ROWID;

-- The audit log: every takedown, undo and purge, who did it and when.
CREATE TABLE takedown_log (
    seq         INTEGER PRIMARY KEY,
    takedown_id INTEGER NOT NULL REFERENCES takedowns(id),
    action      TEXT    NOT NULL CHECK (action IN ('takedown', 'undo', 'purge')),
    actor       TEXT    NOT NULL,
    at          INTEGER NOT NULL                 -- unix seconds
);
CREATE INDEX takedown_log_by_takedown ON takedown_log (takedown_id, seq);
