-- Scrub: re-hashing a rotating share of the referenced blobs (docs/operations.md, "Scrub").
--
-- A run covers the next slice of the SHA-256 space after `scrub_cursor.position` (the
-- first 8 bytes of a digest, big-endian), so a run reads only the blobs it verifies, and
-- a share of P% per run verifies every referenced blob within 100/P runs.
CREATE TABLE scrub_cursor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position BLOB    NOT NULL,              -- 8 bytes: where the next slice starts
    moved_at INTEGER NOT NULL               -- unix seconds of the run that left it there:
                                            -- `serve` schedules the next one from it
);

-- When each blob last hashed to its name (`asof verify --since`).
CREATE TABLE scrub_verified (
    sha256      BLOB    PRIMARY KEY,
    verified_at INTEGER NOT NULL            -- unix seconds
) WITHOUT ROWID;

-- Blobs found corrupt or missing: their bytes (if any) are in the blob store's quarantine
-- directory, never deleted automatically. The row goes when good bytes are back.
CREATE TABLE scrub_quarantine (
    sha256   BLOB    PRIMARY KEY,
    kind     TEXT    NOT NULL,              -- 'corrupt' or 'missing'
    found_at INTEGER NOT NULL,              -- unix seconds
    size     INTEGER NOT NULL,              -- what the manifests say
    detail   TEXT    NOT NULL,              -- what was found, where the bytes went
    refetch  TEXT                           -- the last attempt to get the bytes back upstream
) WITHOUT ROWID;

-- The entry rows naming a quarantined blob: which snapshots are damaged (those within
-- the row's interval), found once when the blob is quarantined.
CREATE TABLE scrub_damage (
    archive_id INTEGER NOT NULL,
    path       TEXT    NOT NULL,
    first_seq  INTEGER NOT NULL,
    sha256     BLOB    NOT NULL,
    PRIMARY KEY (archive_id, path, first_seq)
) WITHOUT ROWID;
CREATE INDEX scrub_damage_by_sha256 ON scrub_damage (sha256);
