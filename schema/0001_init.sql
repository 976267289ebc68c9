-- asof metadata, version 1.
--
-- History is stored as validity intervals (as snapshot.debian.org does): one `entries` row
-- per (archive, path, content) that lives from snapshot `first_seq` up to, not including,
-- `last_seq` (NULL while it is still in the archive's latest snapshot). A publish that
-- changes k of n paths closes k intervals and opens k new ones: O(k) metadata.

CREATE TABLE archives (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL           -- unix seconds
);

CREATE TABLE snapshots (
    archive_id   INTEGER NOT NULL REFERENCES archives(id),
    seq          INTEGER NOT NULL,         -- 1, 2, 3... per archive, in commit order
    id           INTEGER NOT NULL,         -- the snapshot ID as unix seconds; strictly increasing
    committed_at INTEGER NOT NULL,         -- wall clock at commit, unix milliseconds
    digest       BLOB    NOT NULL,         -- SHA-256 content digest of the full manifest
    files        INTEGER NOT NULL,         -- files and symlinks
    bytes        INTEGER NOT NULL,         -- sum of file sizes
    added        INTEGER NOT NULL,
    changed      INTEGER NOT NULL,
    removed      INTEGER NOT NULL,
    source       TEXT    NOT NULL,         -- JSON: how the snapshot was made
    PRIMARY KEY (archive_id, seq),
    UNIQUE (archive_id, id)
) WITHOUT ROWID;

CREATE TABLE entries (
    archive_id  INTEGER NOT NULL,
    path        TEXT    NOT NULL,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER,                   -- exclusive end; NULL = present in the latest snapshot
    parent_hash INTEGER NOT NULL,          -- first 8 bytes of SHA-256(directory of `path`), as
                                           -- a signed integer; '' is the root. Readers check
                                           -- the real parent, so collisions cost nothing.
    kind        INTEGER NOT NULL,          -- 0 file, 1 symlink, 2 directory
    size        INTEGER NOT NULL,
    sha256      BLOB,                      -- files only
    target      TEXT,                      -- symlinks only
    PRIMARY KEY (archive_id, path, first_seq)
) WITHOUT ROWID;

-- Directory listings and by-hash lookups. A hash instead of the parent's text keeps each
-- new row near 170 bytes all in (the target is under 200 per changed path).
CREATE INDEX entries_by_parent ON entries (archive_id, parent_hash, first_seq);
-- The latest state of an archive, which every publish diffs against. Only live rows are
-- in it, so replacing a path does not grow it.
CREATE INDEX entries_live ON entries (archive_id, path) WHERE last_seq IS NULL;
