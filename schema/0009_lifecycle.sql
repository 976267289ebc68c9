-- Garbage collection of blobs (docs/operations.md, "Garbage collection").
--
-- A blob no snapshot references is a candidate from the moment it is known to be
-- unreferenced: uploaded (upload_grants), its reference count in `blob_archives` dropped
-- to zero, or found by `asof gc --rescan` (bytes left by a publish killed before its
-- commit). A run visits due candidates only, never every blob. A candidate that turns
-- out to be referenced again is dropped; it comes back when its count drops again.
CREATE TABLE gc_candidates (
    sha256 BLOB    PRIMARY KEY,
    since  INTEGER NOT NULL                 -- unix seconds: unreferenced since
) WITHOUT ROWID;
CREATE INDEX gc_candidates_due ON gc_candidates (since);

-- Re-signed files reference blobs too, and must never lose them: gc asks by digest.
CREATE INDEX resigned_files_by_sha256 ON resigned_files (sha256);
-- Upload grants are probed by digest alone ("did anyone upload this lately").
CREATE INDEX upload_grants_by_sha256 ON upload_grants (sha256, granted_at);

-- Retention (docs/operations.md, "Retention"): an archive's policy, as JSON
-- (retention::Policy); no row means retention is off and every snapshot is kept.
CREATE TABLE retention_policies (
    archive_id INTEGER PRIMARY KEY REFERENCES archives(id),
    policy     TEXT    NOT NULL,
    set_at     INTEGER NOT NULL,            -- unix seconds
    set_by     TEXT    NOT NULL
);

-- Snapshots kept whatever the policy says (`asof pin`), by snapshot ID.
CREATE TABLE snapshot_pins (
    archive_id INTEGER NOT NULL REFERENCES archives(id),
    id         INTEGER NOT NULL,            -- the snapshot ID (unix seconds), as resolved
    reason     TEXT    NOT NULL,
    pinned_at  INTEGER NOT NULL,
    pinned_by  TEXT    NOT NULL,
    PRIMARY KEY (archive_id, id)
) WITHOUT ROWID;
